// The Ingresses and Routes this controller owns, each once, oldest first:
// the order in which they claim paths and default backends.
import type { ObjectKey, SourceKey, SourceKind } from './meta.ts';
import type { Ingress, IngressClass, ObjectMeta, RouteObject } from './types.ts';
import type { FailureList } from './failures.ts';
import type { ClassOptions } from './ingress-class.ts';
import { compareAge, contentKey, objectKey } from './meta.ts';
import { classSelector } from './ingress-class.ts';
import { sourceRef } from './failures.ts';
import { compareStrings } from './sort.ts';

/** An Ingress this controller owns, with its identity precomputed. */
export interface OwnedIngress {
  readonly key: SourceKey;
  readonly ingress: Ingress;
  /** Valid hostnames of its rules (`*` for rules without a host), in rule order; filled by `addIngressRules`. */
  readonly hosts: string[];
}

/** A Route this controller owns, with its identity precomputed. */
export interface OwnedRoute {
  readonly key: SourceKey;
  readonly route: RouteObject;
}

/** Ingresses and Routes we own, each list oldest first. */
export interface Owned {
  readonly ingresses: OwnedIngress[];
  readonly routes: OwnedRoute[];
}

/** Select the Ingresses and Routes we own against one set of IngressClasses. */
export function ownedObjects(
  ingresses: readonly Ingress[],
  routes: readonly RouteObject[],
  classes: readonly IngressClass[],
  opts: ClassOptions,
  failures: FailureList,
): Owned {
  const selector = classSelector(classes, opts);
  return {
    ingresses: unique('Ingress', ingresses, (i) => selector.owns(i), failures).map(({ key, item }) => ({ key, ingress: item, hosts: [] })),
    routes: unique('Route', routes, (r) => selector.ownsRoute(r), failures).map(({ key, item }) => ({ key, route: item })),
  };
}

/**
 * Owned objects of one kind, oldest first. Two copies of one namespace/name
 * (only possible in a manifests folder) would emit duplicate route names, so
 * one copy is kept (the older, then the smaller canonical JSON) and the rest reported.
 */
function unique<T extends { readonly metadata?: ObjectMeta | null }>(
  kind: SourceKind,
  items: readonly T[],
  owns: (item: T) => boolean,
  failures: FailureList,
): { key: SourceKey; item: T }[] {
  const groups = new Map<string, { key: SourceKey; item: T }[]>();
  for (const item of items) {
    const meta: ObjectKey | undefined = objectKey(item.metadata);
    if (!meta || !owns(item)) continue;
    const key: SourceKey = { ...meta, kind };
    const id = `${key.namespace}/${key.name}`;
    const group = groups.get(id);
    if (group) group.push({ key, item });
    else groups.set(id, [{ key, item }]);
  }
  const out: { key: SourceKey; item: T }[] = [];
  for (const group of groups.values()) {
    if (group.length > 1) {
      group.sort((a, b) => compareAge(a.key, b.key) || compareStrings(contentKey(a.item), contentKey(b.item)));
      const { key } = group[0] as { key: SourceKey };
      failures.add(sourceRef(key), 'metadata.name', 'DuplicateObject',
        `${kind} ${key.namespace}/${key.name} appears ${group.length} times in the input; only the oldest copy is used`);
    }
    out.push(group[0] as { key: SourceKey; item: T });
  }
  return out.sort((a, b) => compareAge(a.key, b.key));
}
