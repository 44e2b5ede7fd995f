// Ingress path + pathType → snapshot path match. Normalising here (rather
// than at match time) is what lets `/foo` and `/foo/` be detected as the
// same route, and gives the dataplane one canonical value per route.

/** A path match the translator emits; Ingress never produces regular expressions. */
export interface IngressPathMatch {
  readonly type: 'Exact' | 'Prefix';
  readonly value: string;
}

/** Outcome of {@link normalisePath}: a match, or the failure and the field at fault. */
export type PathResult =
  | { readonly ok: true; readonly match: IngressPathMatch }
  | { readonly ok: false; readonly reason: 'InvalidPath' | 'InvalidPathType'; readonly field: 'path' | 'pathType'; readonly message: string };

const PATH_TYPES = new Set(['Exact', 'Prefix', 'ImplementationSpecific']);

// Same sequences the API server rejects for Exact and Prefix paths (traversal
// and encoded slashes would let a request escape a path-based rule).
const BAD_SEQUENCES = ['//', '/./', '/../', '%2f', '%2F'];
const BAD_SUFFIXES = ['/..', '/.'];
// A request path can never contain these, so a route holding one could never match.
// eslint-disable-next-line no-control-regex
const NEVER_IN_REQUEST_PATH = /[\u0000-\u0020\u007f?#]/;
const MAX_PATH = 4096;

/**
 * Validate and normalise one Ingress path.
 *
 * - Absent `pathType` is read as `ImplementationSpecific` (the v1beta1 default).
 * - `ImplementationSpecific` is treated exactly as `Prefix`, and its path may
 *   be empty, meaning `/`.
 * - `Prefix` values lose their trailing slash (`/foo/` ≡ `/foo`); `/` stays `/`.
 * - `Exact` values are kept verbatim: `/foo/` matches only `/foo/`.
 */
export function normalisePath(pathType: string | null | undefined, path: string | null | undefined): PathResult {
  const type = pathType || 'ImplementationSpecific';
  if (typeof type !== 'string' || !PATH_TYPES.has(type)) {
    return { ok: false, reason: 'InvalidPathType', field: 'pathType', message: `pathType ${JSON.stringify(type)} is not one of Exact, Prefix, ImplementationSpecific` };
  }
  if (path !== null && path !== undefined && typeof path !== 'string') {
    return invalid('path must be a string');
  }
  let value = path ?? '';
  if (value === '') {
    if (type !== 'ImplementationSpecific') return invalid(`path is required with pathType ${type}`);
    value = '/';
  }
  if (!value.startsWith('/')) return invalid(`path ${JSON.stringify(value)} must start with "/"`);
  if (value.length > MAX_PATH) return invalid(`path is ${value.length} characters long, at most ${MAX_PATH} are allowed`);
  for (const seq of BAD_SEQUENCES) {
    if (value.includes(seq)) return invalid(`path ${JSON.stringify(value)} must not contain "${seq}"`);
  }
  for (const suffix of BAD_SUFFIXES) {
    if (value.endsWith(suffix)) return invalid(`path ${JSON.stringify(value)} must not end with "${suffix}"`);
  }
  if (NEVER_IN_REQUEST_PATH.test(value)) {
    return invalid(`path ${JSON.stringify(value)} contains a space, control character, "?" or "#", so no request path can match it`);
  }
  if (type === 'Exact') return { ok: true, match: { type: 'Exact', value } };
  return { ok: true, match: { type: 'Prefix', value: value.length > 1 && value.endsWith('/') ? value.slice(0, -1) : value } };
}

function invalid(message: string): PathResult {
  return { ok: false, reason: 'InvalidPath', field: 'path', message };
}

/** An Ingress path on a host where ingress-nginx's regex mode is on. */
export interface IngressRegexMatch {
  readonly type: 'RegularExpression';
  /** `(?i:<path>)`: nginx's `~*` is case-insensitive, ECMAScript's default is not. */
  readonly value: string;
}

/** Outcome of {@link normaliseRegexPath}. */
export type RegexPathResult =
  | { readonly ok: true; readonly match: IngressRegexMatch }
  | { readonly ok: false; readonly reason: 'InvalidPath' | 'InvalidPathType' | 'InvalidRegex'; readonly field: 'path' | 'pathType'; readonly message: string };

/**
 * An Ingress path as ingress-nginx reads it with `use-regex` (or
 * `rewrite-target`) on its host: whatever its pathType, a case-insensitive
 * regular expression anchored at the start only (`location ~* "^<path>"`),
 * so an Exact path matches longer paths too, as it does in ingress-nginx.
 * The traversal checks of literal paths do not apply to a pattern; it must
 * start with `/` and compile as ECMAScript.
 */
export function normaliseRegexPath(pathType: string | null | undefined, path: string | null | undefined): RegexPathResult {
  const type = pathType || 'ImplementationSpecific';
  if (typeof type !== 'string' || !PATH_TYPES.has(type)) {
    return { ok: false, reason: 'InvalidPathType', field: 'pathType', message: `pathType ${JSON.stringify(type)} is not one of Exact, Prefix, ImplementationSpecific` };
  }
  if (path !== null && path !== undefined && typeof path !== 'string') return { ok: false, reason: 'InvalidPath', field: 'path', message: 'path must be a string' };
  let value = path ?? '';
  if (value === '') {
    if (type !== 'ImplementationSpecific') return { ok: false, reason: 'InvalidPath', field: 'path', message: `path is required with pathType ${type}` };
    value = '/';
  }
  if (!value.startsWith('/')) return { ok: false, reason: 'InvalidPath', field: 'path', message: `path ${JSON.stringify(value)} must start with "/"` };
  const wrapped = `(?i:${value})`;
  if (wrapped.length > MAX_PATH) return { ok: false, reason: 'InvalidPath', field: 'path', message: `path is ${value.length} characters long, at most ${MAX_PATH - 5} are allowed for a regular expression` };
  try {
    new RegExp(value);
    new RegExp(`^(?:${wrapped})`);
  } catch (err) {
    const why = (err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
    return { ok: false, reason: 'InvalidRegex', field: 'path', message: `path ${JSON.stringify(value)} is not a valid ECMAScript regular expression (${why}), and regex paths are on for this host (use-regex or rewrite-target)` };
  }
  return { ok: true, match: { type: 'RegularExpression', value: wrapped } };
}
