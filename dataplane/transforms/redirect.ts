// Redirect actions: the Location is assembled per request from the parts
// the route fixes and the request's own; everything else is decided here,
// once per snapshot.
import { STATUS_CODES } from '../node-http.ts';
import type { ServerResponse } from 'node:http';
import type { PathMatch, RedirectAction } from '../snapshot/schema.ts';
import type { RequestContext } from '../server/context.ts';
import { compilePathRewrite } from './path.ts';
import type { PathRewriter } from './path.ts';

/** What a redirect is built from. */
export interface RedirectRequest {
  /** Arrived over TLS. */
  readonly secure: boolean;
  /** Normalized host (lower case, no port); '' when the request named none. */
  readonly host: string;
  /** The Host header (or authority) as received, for its port. */
  readonly hostHeader: string | undefined;
  /** Raw path, no query. */
  readonly path: string;
  /** Raw query without `?`. */
  readonly rawQuery: string;
}

/** A compiled redirect route. */
export interface RedirectReply {
  readonly type: 'redirect';
  readonly status: number;
  /** The Location for a request. */
  location(req: RedirectRequest): string;
}

const DEFAULT_PORT = { http: 80, https: 443 } as const;

// The client's Host is written into the Location only when it is a plain name
// or IP literal: anything else ("a.com/x", "a.com@b") could point elsewhere.
const PLAIN_HOST = /^([a-z0-9_.-]+|\[[0-9a-f:.]+\])$/;

/** The port of a Host header value (`name:port`, `[v6]:port`); undefined without one. */
export function hostHeaderPort(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /:([0-9]{1,5})$/.exec(value);
  if (m === null || (value.includes(']') && value.lastIndexOf(']') > m.index)) return undefined;
  const port = Number(m[1]);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** Compile a redirect action of a route whose path match is `match`. */
export function compileRedirect(a: RedirectAction, match: PathMatch): RedirectReply {
  const rewrite: PathRewriter | null = a.path === undefined ? null : compilePathRewrite(a.path, match);
  return {
    type: 'redirect',
    status: a.status,
    location(req) {
      const scheme = a.scheme ?? (req.secure ? 'https' : 'http');
      const host = a.hostname ?? (PLAIN_HOST.test(req.host) ? req.host : '');
      const port = a.port ?? (a.scheme === undefined ? hostHeaderPort(req.hostHeader) : undefined);
      const path = rewrite === null ? req.path : rewrite(req.path);
      const query = a.query ?? req.rawQuery;
      const tail = query === '' ? path : `${path}?${query}`;
      // Without a usable host to name, a relative Location is the only honest answer.
      if (host === '') return tail;
      const authority = port === undefined || port === DEFAULT_PORT[scheme] ? host : `${host}:${port}`;
      return `${scheme}://${authority}${tail}`;
    },
  };
}

/** Answer with a redirect and a one-line body naming the target. */
export function replyRedirect(res: ServerResponse, ctx: RequestContext, status: number, location: string): void {
  const body = `${status} ${STATUS_CODES[status] ?? ''}: ${location}\n`;
  res.writeHead(status, {
    location,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-request-id': ctx.requestId,
  });
  res.end(body);
}
