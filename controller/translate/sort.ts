// Every ordering the translator emits. Output must be byte-identical for the
// same objects in any input order, so comparisons use code units (never
// localeCompare, which depends on the process locale) and end in a total order.
import type { ObjectRef, ResourceFailure } from './types.ts';

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

/** Namespace, then name (Ingress and Route statuses alike). */
export function compareStatuses(a: { readonly namespace: string; readonly name: string }, b: { readonly namespace: string; readonly name: string }): number {
  return compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name);
}

/** What route ordering needs to know about a route. */
export interface SortableRoute {
  /** 0: an Ingress path or a Route match; 1: an Ingress default backend; 2: the controller default backend. */
  readonly priority: 0 | 1 | 2;
  readonly type: 'Exact' | 'Prefix' | 'RegularExpression';
  /** Normalised path value, or the pattern. */
  readonly value: string;
  /** Whether the route matches on the method. */
  readonly hasMethod: boolean;
  /** Number of header conditions. */
  readonly headers: number;
  /** Number of query parameter conditions. */
  readonly query: number;
  /** Number of cookie conditions (canary routes); absent means none. */
  readonly cookies?: number;
  /** Age of the source object; undefined for the controller default. */
  readonly createdMs: number | undefined;
  readonly namespace: string;
  readonly name: string;
  /** Source kind; '' for the controller default. */
  readonly kind: string;
  readonly rule: number;
  /** Path index in an Ingress rule, match index in a Route rule. */
  readonly path: number;
}

const TYPE_RANK = { Exact: 0, Prefix: 1, RegularExpression: 2 } as const;

/**
 * Evaluation order within a virtual host (first match wins), after Gateway
 * API HTTPRoute precedence: Ingress paths and Route matches before default
 * backends; Exact, then Prefix, then RegularExpression; longer values first,
 * so an element-wise prefix always comes after every path it is a prefix of;
 * then a method condition, more header, query and cookie conditions;
 * then age, namespace, name, kind and position.
 *
 * Two different Exact or Prefix values of one length can never match the
 * same request path, so comparing them by value right after length changes
 * no routing decision; it keeps the order Ingress-only snapshots always had.
 * Regular expressions of one length can overlap, so theirs is compared only
 * after age and position, as the last resort for a total order.
 */
export function compareRoutes(a: SortableRoute, b: SortableRoute): number {
  return a.priority - b.priority
    || TYPE_RANK[a.type] - TYPE_RANK[b.type]
    || b.value.length - a.value.length
    || (a.type === 'RegularExpression' ? 0 : compareStrings(a.value, b.value))
    || Number(b.hasMethod) - Number(a.hasMethod)
    || b.headers - a.headers
    || b.query - a.query
    || (b.cookies ?? 0) - (a.cookies ?? 0)
    || compareOptionalAge(a.createdMs, b.createdMs)
    || compareStrings(a.namespace, b.namespace)
    || compareStrings(a.name, b.name)
    || compareStrings(a.kind, b.kind)
    || a.rule - b.rule
    || a.path - b.path
    || compareStrings(a.value, b.value);
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
