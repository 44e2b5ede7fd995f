// Object identity and age, shared by every part of the translator. Age decides
// every conflict (oldest wins), so it must read both timestamp forms the same way.
import { canonicalJson } from '../../dataplane/snapshot/hash.ts';
import type { ObjectMeta } from './types.ts';
import { compareOptionalAge, compareStrings } from './sort.ts';

/** Identity and age of an object, precomputed once for sorting. */
export interface ObjectKey {
  readonly namespace: string;
  readonly name: string;
  /** Milliseconds since the epoch; undefined when absent or unparseable. */
  readonly createdMs: number | undefined;
}

/** Kinds of object that produce routes. */
export type SourceKind = 'Ingress' | 'Route';

/** The key of an object that produces routes: the kind tells an Ingress and a Route of one name apart. */
export interface SourceKey extends ObjectKey {
  readonly kind: SourceKind;
}

/** Namespace of an object, `default` when absent (as kubectl does). */
export function namespaceOf(meta: ObjectMeta | null | undefined): string {
  return meta?.namespace || 'default';
}

/** Creation time in epoch milliseconds, from a `Date` or an ISO 8601 string. */
export function creationMs(value: string | Date | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/** The key of a named object; undefined for objects without a name, which the translator skips. */
export function objectKey(meta: ObjectMeta | null | undefined): ObjectKey | undefined {
  if (!meta?.name) return undefined;
  return { namespace: namespaceOf(meta), name: meta.name, createdMs: creationMs(meta.creationTimestamp) };
}

/**
 * Oldest first; objects without a timestamp count as newest (they cannot
 * prove they were first); then namespace and name so ties never depend on input order.
 */
export function compareAge(a: ObjectKey, b: ObjectKey): number {
  return compareOptionalAge(a.createdMs, b.createdMs) || compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name);
}

/** {@link compareAge}, then kind, so an Ingress and a Route of one name and age still order totally. */
export function compareSourceAge(a: SourceKey, b: SourceKey): number {
  return compareAge(a, b) || compareStrings(a.kind, b.kind);
}

/**
 * Index objects by namespace/name. Duplicates should not exist, but a local
 * manifests folder can hold two copies; the pick must not depend on input
 * order, so the copy with the smaller canonical JSON wins.
 */
export function indexByName<T extends { readonly metadata?: ObjectMeta | null }>(
  items: readonly T[],
  keyOf: (key: ObjectKey) => string = (k) => `${k.namespace}/${k.name}`,
): Map<string, T> {
  const out = new Map<string, T>();
  for (const item of items) {
    const key = objectKey(item.metadata);
    if (!key) continue;
    const k = keyOf(key);
    const prev = out.get(k);
    // Only duplicates pay for serialising.
    if (prev === undefined || compareStrings(contentKey(item), contentKey(prev)) < 0) out.set(k, item);
  }
  return out;
}

/** Canonical JSON of an object, to order otherwise identical duplicates. */
export function contentKey(value: unknown): string {
  // Through JSON first so Date timestamps compare as their ISO strings.
  return canonicalJson(JSON.parse(JSON.stringify(value)));
}
