// Every ordering the translator emits. Output must be byte-identical for the
// same objects in any input order, so comparisons use code units (never
// localeCompare, which depends on the process locale) and end in a total order.
import type { IngressStatus, ObjectRef, ResourceFailure } from './types.ts';

/** Code-unit string order, independent of locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const CHUNKS = /(\d+)|(\D+)/g;

/**
 * Like {@link compareStrings} but runs of digits compare as numbers, so
 * `spec.rules[2]` sorts before `spec.rules[10]`.
 */
export function compareNatural(a: string, b: string): number {
  const ca = a.match(CHUNKS) ?? [];
  const cb = b.match(CHUNKS) ?? [];
  const n = Math.min(ca.length, cb.length);
  for (let i = 0; i < n; i++) {
    const x = ca[i] as string;
    const y = cb[i] as string;
    const dx = x.charCodeAt(0) >= 48 && x.charCodeAt(0) <= 57;
    const dy = y.charCodeAt(0) >= 48 && y.charCodeAt(0) <= 57;
    if (dx && dy) {
      // Compare by length first so numbers beyond 2^53 still order correctly.
      const sx = x.replace(/^0+(?=\d)/, '');
      const sy = y.replace(/^0+(?=\d)/, '');
      const c = sx.length - sy.length || compareStrings(sx, sy) || x.length - y.length;
      if (c) return c;
    } else {
      const c = compareStrings(x, y);
      if (c) return c;
    }
  }
  return ca.length - cb.length || compareStrings(a, b);
}

/** Kind, then namespace, then name. */
export function compareObjectRefs(a: ObjectRef, b: ObjectRef): number {
  return compareStrings(a.kind, b.kind) || compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name);
}

/** Object, then field (naturally), then reason, then message. */
export function compareFailures(a: ResourceFailure, b: ResourceFailure): number {
  return compareObjectRefs(a.object, b.object)
    || compareNatural(a.field, b.field)
    || compareStrings(a.reason, b.reason)
    || compareStrings(a.message, b.message);
}

/** Namespace, then name. */
export function compareStatuses(a: IngressStatus, b: IngressStatus): number {
  return compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name);
}

/** What route ordering needs to know about a route. */
export interface SortableRoute {
  /** 0: an Ingress path; 1: an Ingress default backend; 2: the controller default backend. */
  readonly priority: 0 | 1 | 2;
  readonly type: 'Exact' | 'Prefix';
  /** Normalised path value. */
  readonly value: string;
  /** Age of the source Ingress; undefined for the controller default. */
  readonly createdMs: number | undefined;
  readonly namespace: string;
  readonly name: string;
  readonly rule: number;
  readonly path: number;
}

/**
 * Evaluation order within a virtual host (first match wins): Ingress paths
 * before default backends; Exact before Prefix; longer values first, so an
 * element-wise prefix always comes after every path it is a prefix of; then
 * value, age, namespace, name and position only to make the order total.
 */
export function compareRoutes(a: SortableRoute, b: SortableRoute): number {
  return a.priority - b.priority
    || (a.type === b.type ? 0 : a.type === 'Exact' ? -1 : 1)
    || b.value.length - a.value.length
    || compareStrings(a.value, b.value)
    || compareOptionalAge(a.createdMs, b.createdMs)
    || compareStrings(a.namespace, b.namespace)
    || compareStrings(a.name, b.name)
    || a.rule - b.rule
    || a.path - b.path;
}

/** Ascending creation time; an unknown time sorts last (it cannot prove it came first). */
export function compareOptionalAge(a: number | undefined, b: number | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return 1;
  if (b === undefined) return -1;
  return a - b;
}

/** Exact hostnames, then wildcards, then the catch-all `*`; alphabetical within each group. */
export function compareHostnames(a: string, b: string): number {
  return hostRank(a) - hostRank(b) || compareStrings(a, b);
}

function hostRank(host: string): number {
  if (host === '*') return 2;
  return host.startsWith('*.') ? 1 : 0;
}
