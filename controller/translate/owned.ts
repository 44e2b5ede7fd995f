// The Ingresses this controller owns, each once, oldest first: the order in
// which they claim paths and default backends.
import type { ObjectKey } from './meta.ts';
import type { Ingress, IngressClass } from './types.ts';
import type { FailureList } from './failures.ts';
import type { ClassOptions } from './ingress-class.ts';
import { compareAge, contentKey, objectKey } from './meta.ts';
import { classSelector } from './ingress-class.ts';
import { ingressRef } from './failures.ts';
import { compareStrings } from './sort.ts';

/** An Ingress this controller owns, with its identity precomputed. */
export interface OwnedIngress {
  readonly key: ObjectKey;
  readonly ingress: Ingress;
  /** Valid hostnames of its rules (`*` for rules without a host), in rule order; filled by `addIngressRules`. */
  readonly hosts: string[];
}

/**
 * The Ingresses we own, oldest first. Two copies of one namespace/name (only
 * possible in a manifests folder) would emit duplicate route names, so one
 * copy is kept (the older, then the smaller canonical JSON) and the rest reported.
 */
export function ownedIngresses(
  ingresses: readonly Ingress[],
  classes: readonly IngressClass[],
  opts: ClassOptions,
  failures: FailureList,
): OwnedIngress[] {
  const selector = classSelector(classes, opts);
  const groups = new Map<string, { key: ObjectKey; ingress: Ingress }[]>();
  for (const ingress of ingresses) {
    const key = objectKey(ingress.metadata);
    if (!key || !selector.owns(ingress)) continue;
    const id = `${key.namespace}/${key.name}`;
    const group = groups.get(id);
    if (group) group.push({ key, ingress });
    else groups.set(id, [{ key, ingress }]);
  }
  const owned: OwnedIngress[] = [];
  for (const group of groups.values()) {
    if (group.length > 1) {
      group.sort((a, b) => compareAge(a.key, b.key) || compareStrings(contentKey(a.ingress), contentKey(b.ingress)));
      const { key } = group[0] as { key: ObjectKey };
      failures.add(ingressRef(key), 'metadata.name', 'DuplicateObject',
        `Ingress ${key.namespace}/${key.name} appears ${group.length} times in the input; only the oldest copy is used`);
    }
    const first = group[0] as { key: ObjectKey; ingress: Ingress };
    owned.push({ key: first.key, ingress: first.ingress, hosts: [] });
  }
  return owned.sort((a, b) => compareAge(a.key, b.key));
}
