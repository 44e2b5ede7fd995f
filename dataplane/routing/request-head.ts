import type { IncomingHttpHeaders } from 'node:http';

/**
 * What route matching may look at. Built once per request by the traffic
 * handler; the query string is parsed only if a route asks for it.
 */
export interface RequestHead {
  /** Upper-case method as received. */
  readonly method: string;
  /** Raw path, without the query string, not percent-decoded. */
  readonly path: string;
  /** Raw query string without the leading `?` (`''` when absent). */
  readonly rawQuery: string;
  /** Node's parsed headers (lower-case names, duplicates joined). */
  readonly headers: IncomingHttpHeaders;
}

/** A request target split for matching and forwarding. */
export interface SplitTarget {
  /** Raw path, no query. */
  path: string;
  /** Raw query without `?`. */
  rawQuery: string;
  /** Path and query as they go upstream (origin-form). */
  pathAndQuery: string;
  /** Authority of an absolute-form target. */
  authority?: string;
}

/** Split a request target into raw path and raw query; absolute-form targets give their path. */
export function splitTarget(target: string): SplitTarget {
  let rest = target;
  let authority: string | undefined;
  if (!rest.startsWith('/') && rest !== '*') {
    // absolute-form (`GET http://host/path`), which RFC 9112 says servers must accept;
    // its authority then takes precedence over the Host header.
    const scheme = rest.indexOf('://');
    if (scheme !== -1) {
      const afterScheme = scheme + 3;
      let end = rest.length;
      for (const ch of ['/', '?']) {
        const i = rest.indexOf(ch, afterScheme);
        if (i !== -1 && i < end) end = i;
      }
      authority = rest.slice(afterScheme, end);
      rest = rest.slice(end);
      if (rest === '' || rest.startsWith('?')) rest = '/' + rest;
    }
  }
  const q = rest.indexOf('?');
  const path = q === -1 ? rest : rest.slice(0, q);
  const rawQuery = q === -1 ? '' : rest.slice(q + 1);
  return authority === undefined ? { path, rawQuery, pathAndQuery: rest } : { path, rawQuery, pathAndQuery: rest, authority };
}
