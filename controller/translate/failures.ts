// Failures are collected as data while translating; the same problem can be
// found twice (a default backend used on several hosts), so they are deduplicated.
import type { ObjectKey } from './meta.ts';
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

/** Why `winner` took precedence over `loser` in a conflict, as a short clause. */
export function whyWins(winner: ObjectKey, loser: ObjectKey): string {
  if (winner.namespace === loser.namespace && winner.name === loser.name) return 'it comes first in this Ingress';
  if (winner.createdMs !== undefined && loser.createdMs === undefined) return 'this Ingress has no creationTimestamp';
  if (winner.createdMs !== loser.createdMs) return 'it is older';
  return 'same creationTimestamp, and it sorts first by namespace/name';
}

/** How a host is named in messages. */
export function describeHost(host: string): string {
  return host === '*' ? 'the catch-all host "*"' : `host ${JSON.stringify(host)}`;
}
