// Method, header, query and cookie conditions of a route, compiled to one predicate.
// Routes without such conditions get `null`, so the common case costs one
// null check per route on the request path.
import type { RouteMatch, ValueMatch } from '../snapshot/schema.ts';
import type { RequestHead } from './request-head.ts';

/** Parsed query parameters (and cookies), computed at most once per request. */
export interface QueryCache {
  params: URLSearchParams | undefined;
  /** Cookies by name, first occurrence; parsed when a route first asks. */
  cookies?: Map<string, string>;
}

/**
 * Cookie header(s) → name/value, first occurrence of a name winning. Values
 * stay as sent (not decoded), as nginx's `$cookie_<name>` gives them.
 */
export function parseCookies(raw: string | string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (raw === undefined) return out;
  for (const pair of (Array.isArray(raw) ? raw.join('; ') : raw).split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1) continue;
    const name = pair.slice(0, eq).trim();
    if (name !== '' && !out.has(name)) out.set(name, pair.slice(eq + 1).trim());
  }
  return out;
}

/** Tests the non-path conditions of a route. */
export type ConditionMatcher = (head: RequestHead, query: QueryCache) => boolean;

type ValueTest = (value: string) => boolean;

function compileValueTest(m: ValueMatch): ValueTest {
  if (m.type === 'Exact') {
    const expected = m.value;
    return (v) => v === expected;
  }
  // Unanchored, as the schema documents: the pattern must occur in the value.
  const re = new RegExp(m.value);
  return (v) => re.test(v);
}

/** Compile methods/headers/query of a route match; `null` when there are none. */
export function compileConditions(match: RouteMatch): ConditionMatcher | null {
  const tests: ConditionMatcher[] = [];
  if (match.methods) {
    const methods = new Set(match.methods);
    tests.push((head) => methods.has(head.method));
  }
  for (const h of match.headers ?? []) {
    const name = h.name.toLowerCase();
    const test = compileValueTest(h);
    tests.push((head) => {
      const raw = head.headers[name];
      if (raw === undefined) return false;
      // Node joins repeated headers with ", " except set-cookie, which stays an array.
      return test(Array.isArray(raw) ? raw.join(', ') : raw);
    });
  }
  for (const q of match.query ?? []) {
    const name = q.name;
    const test = compileValueTest(q);
    tests.push((head, cache) => {
      cache.params ??= new URLSearchParams(head.rawQuery);
      // The first occurrence decides, as in Gateway API query matching.
      const value = cache.params.get(name);
      return value !== null && test(value);
    });
  }
  for (const c of match.cookies ?? []) {
    const name = c.name;
    const test = compileValueTest(c);
    tests.push((head, cache) => {
      cache.cookies ??= parseCookies(head.headers.cookie);
      const value = cache.cookies.get(name);
      return value !== undefined && test(value);
    });
  }
  if (tests.length === 0) return null;
  if (tests.length === 1) return tests[0]!;
  return (head, cache) => {
    for (const t of tests) if (!t(head, cache)) return false;
    return true;
  };
}
