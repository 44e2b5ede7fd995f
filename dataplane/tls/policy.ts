// Per-host HTTPS policy on the request path: the HTTP → HTTPS redirect and
// HSTS. Header values are built once per snapshot; a request only checks flags.
import type { ServerResponse } from 'node:http';
import type { Hsts } from '../snapshot/schema.ts';
import type { RequestContext } from '../server/context.ts';

/** The `Strict-Transport-Security` value for a virtual host's settings. */
export function hstsHeader(hsts: Hsts): string {
  return `max-age=${hsts.maxAgeSeconds}${hsts.includeSubDomains === true ? '; includeSubDomains' : ''}${hsts.preload === true ? '; preload' : ''}`;
}

// ACME HTTP-01 challenges must be answered over plain HTTP (a CA never follows
// them to https on a host whose certificate it is about to issue), as
// ingress-nginx exempts them from its redirect too.
const ACME_CHALLENGE = '/.well-known/acme-challenge/';

/** Whether a plain-HTTP request for `path` is to be redirected. */
export function wantsHttpsRedirect(path: string): boolean {
  return !path.startsWith(ACME_CHALLENGE);
}

/**
 * Answer with `308 Permanent Redirect` to the same host, path and query on
 * https. 308 (not 301) keeps the method and body, as ingress-nginx's default.
 * `port` is the HTTPS port clients use; 443 is left out of the URL.
 */
export function replyHttpsRedirect(res: ServerResponse, ctx: RequestContext, pathAndQuery: string, port: number): void {
  const location = `https://${ctx.host}${port === 443 ? '' : `:${port}`}${pathAndQuery}`;
  const body = `308 Permanent Redirect: ${location}\n`;
  res.writeHead(308, {
    location,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-request-id': ctx.requestId,
  });
  res.end(body);
}
