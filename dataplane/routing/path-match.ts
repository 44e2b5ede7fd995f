// Path matchers are compiled once per snapshot; the request path only calls
// the returned closure. Paths are compared raw (no percent-decoding, no dot
// segment removal) so that what is matched is exactly what the upstream sees.
import type { PathMatch } from '../snapshot/schema.ts';

/** Tests a raw request path (no query string). */
export type PathMatcher = (path: string) => boolean;

/** Compile a snapshot path condition. Throws on a regex that does not compile. */
export function compilePathMatch(match: PathMatch): PathMatcher {
  switch (match.type) {
    case 'Exact': {
      const value = match.value;
      return (path) => path === value;
    }
    case 'Prefix':
      return compilePrefix(match.value);
    case 'RegularExpression': {
      // Compiled alone first: a value with an unbalanced ")" could otherwise
      // close the wrapping group and escape the anchor (`a)|(b`).
      new RegExp(match.value);
      // Wrapped in a group so an alternation in the value stays anchored as a whole.
      const re = new RegExp(`^(?:${match.value})`);
      return (path) => re.test(path);
    }
  }
}

function compilePrefix(value: string): PathMatcher {
  // Kubernetes Prefix semantics: element-wise, and a trailing slash in the
  // value does not matter (`/foo/` behaves as `/foo`).
  let prefix = value;
  while (prefix.length > 1 && prefix.endsWith('/')) prefix = prefix.slice(0, -1);
  if (prefix === '/') return (path) => path.startsWith('/');
  const withSlash = prefix + '/';
  return (path) => path === prefix || path.startsWith(withSlash);
}
