// Path rewrites, compiled once per snapshot into a closure over the raw
// request path (no query). Raw means what the upstream would have received:
// captures and kept suffixes stay percent-encoded exactly as the client sent them.
import type { PathMatch, PathRewrite } from '../snapshot/schema.ts';

/** Rewrites a raw request path (without query). */
export type PathRewriter = (path: string) => string;

/** Compile a route's path rewrite. `match` is the route's path match (ReplacePrefixMatch replaces what it matched). */
export function compilePathRewrite(rewrite: PathRewrite, match: PathMatch): PathRewriter {
  switch (rewrite.type) {
    case 'ReplaceFullPath': {
      const value = rewrite.value;
      return () => value;
    }
    case 'ReplacePrefixMatch':
      if (match.type !== 'Prefix') throw new Error('ReplacePrefixMatch needs a Prefix path match');
      return compilePrefixReplace(match.value, rewrite.value);
    case 'RegexReplace':
      return compileRegexReplace(rewrite.pattern, rewrite.substitution);
  }
}

/**
 * Gateway API ReplacePrefixMatch: the matched prefix (compared element-wise,
 * so without its trailing slash; `/` matches as the empty prefix) is
 * swapped for `value`, and exactly one `/` joins the two parts.
 */
export function compilePrefixReplace(prefix: string, value: string): PathRewriter {
  let p = prefix;
  while (p.endsWith('/')) p = p.slice(0, -1);
  const cut = p.length;
  const base = value.endsWith('/') && value.length > 1 ? value.slice(0, -1) : value;
  return (path) => {
    const rest = path.slice(cut);
    if (rest === '') return value;
    // rest starts with "/": the route matched element-wise.
    return base === '/' ? rest : base + rest;
  };
}

type Part = string | number;

/**
 * nginx `rewrite` semantics: when the anchored pattern matches, the whole
 * path becomes the substitution with `$n` expanded. The substitution is
 * parsed here, once, into literal and group parts.
 */
export function compileRegexReplace(pattern: string, substitution: string): PathRewriter {
  // Compiled alone first, so an unbalanced ")" cannot close the anchoring group.
  new RegExp(pattern);
  const re = new RegExp(`^(?:${pattern})`);
  const groups = new RegExp(`${pattern}|`).exec('')!.length - 1;
  const parts = parseSubstitution(substitution, groups);
  return (path) => {
    const m = re.exec(path);
    if (m === null) return path;
    let out = '';
    for (const part of parts) out += typeof part === 'string' ? part : (m[part] ?? '');
    return out.startsWith('/') ? out : `/${out}`;
  };
}

/**
 * `$$` is a `$`; `$` and one or two digits is a capture group (two digits
 * only when the pattern has that many groups, as in JavaScript); any other
 * `$` is literal. A group the pattern lacks expands to nothing.
 */
export function parseSubstitution(substitution: string, groups: number): Part[] {
  const parts: Part[] = [];
  let literal = '';
  for (let i = 0; i < substitution.length; i++) {
    const ch = substitution[i]!;
    const next = substitution[i + 1];
    if (ch !== '$' || next === undefined) {
      literal += ch;
      continue;
    }
    if (next === '$') {
      literal += '$';
      i++;
      continue;
    }
    if (next < '0' || next > '9') {
      literal += ch;
      continue;
    }
    let n = Number(next);
    let used = 1;
    const second = substitution[i + 2];
    if (second !== undefined && second >= '0' && second <= '9' && n * 10 + Number(second) <= groups) {
      n = n * 10 + Number(second);
      used = 2;
    }
    if (literal !== '') parts.push(literal);
    literal = '';
    parts.push(n);
    i += used;
  }
  if (literal !== '') parts.push(literal);
  return parts;
}
