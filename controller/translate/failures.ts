// Failures are collected as data while translating; the same problem can be
// found twice (a default backend used on several hosts), so they are deduplicated.
import type { ObjectKey, SourceKey } from './meta.ts';
import type { FailureReason, ObjectRef, ResourceFailure } from './types.ts';
import { compareFailures } from './sort.ts';

/** Collects failures; {@link FailureList.sorted} gives them deduplicated in stable order. */
export class FailureList {
  readonly #byKey = new Map<string, ResourceFailure>();

  add(object: ObjectRef, field: string, reason: FailureReason, message: string): void {
    const failure: ResourceFailure = { object: { kind: object.kind, namespace: object.namespace, name: object.name }, field, reason, message };
    const key = JSON.stringify([object.kind, object.namespace, object.name, field, reason, message]);
    if (!this.#byKey.has(key)) this.#byKey.set(key, failure);
  }

  sorted(): ResourceFailure[] {
    return [...this.#byKey.values()].sort(compareFailures);
  }
}

/** The reference of an Ingress. */
export function ingressRef(key: ObjectKey): ObjectRef {
  return { kind: 'Ingress', namespace: key.namespace, name: key.name };
}

/** The reference of an Ingress or a Route. */
export function sourceRef(key: SourceKey): ObjectRef {
  return { kind: key.kind, namespace: key.namespace, name: key.name };
}

/** Whether two keys name the same object. */
export function sameSource(a: SourceKey, b: SourceKey): boolean {
  return a.kind === b.kind && a.namespace === b.namespace && a.name === b.name;
}

/** Why `winner` took precedence over `loser` in a conflict, as a short clause. */
export function whyWins(winner: SourceKey, loser: SourceKey): string {
  if (sameSource(winner, loser)) return `it comes first in this ${loser.kind}`;
  if (winner.createdMs !== undefined && loser.createdMs === undefined) return `this ${loser.kind} has no creationTimestamp`;
  if (winner.createdMs !== loser.createdMs) return 'it is older';
  if (winner.namespace === loser.namespace && winner.name === loser.name) {
    return 'same creationTimestamp and namespace/name, and Ingresses come before Routes';
  }
  return 'same creationTimestamp, and it sorts first by namespace/name';
}

/** How the holder of a claim is named in a conflict message, seen from `loser`. */
export function describeHolder(holder: SourceKey, field: string, loser: SourceKey): string {
  return sameSource(holder, loser) ? `${field} of this ${loser.kind}` : `${holder.kind} ${holder.namespace}/${holder.name} (${field})`;
}

/** How a host is named in messages. */
export function describeHost(host: string): string {
  return host === '*' ? 'the catch-all host "*"' : `host ${JSON.stringify(host)}`;
}
