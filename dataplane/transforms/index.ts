// Request and response transforms of a route (phase 3 and the header part
// of phase 6 in middleware/order.ts), compiled once per snapshot. The
// request path applies them where the upstream request and the client's
// response head are built: server/headers.ts and the proxies.
import type { Route } from '../snapshot/schema.ts';
import { compileHeaderEdits } from './headers.ts';
import type { HeaderEdits } from './headers.ts';
import { compilePathRewrite } from './path.ts';
import type { PathRewriter } from './path.ts';

/** A route's compiled transforms; each part null or undefined when unused. */
export interface RouteTransforms {
  /** Rewrites the raw path sent upstream. */
  readonly path: PathRewriter | null;
  /** Host header sent upstream instead of the client's. */
  readonly host: string | undefined;
  /** Edits of the request headers sent upstream. */
  readonly requestHeaders: HeaderEdits | null;
  /** Edits of the upstream response head sent to the client. */
  readonly responseHeaders: HeaderEdits | null;
}

/** Transforms of a route that has none. */
export const NO_TRANSFORMS: RouteTransforms = { path: null, host: undefined, requestHeaders: null, responseHeaders: null };

/** Compile a route's rewrite and header edits. Throws on a rewrite its match cannot support. */
export function compileTransforms(route: Route): RouteTransforms {
  const path = route.rewrite?.path === undefined ? null : compilePathRewrite(route.rewrite.path, route.match.path);
  const host = route.rewrite?.host;
  const requestHeaders = compileHeaderEdits(route.requestHeaders);
  const responseHeaders = compileHeaderEdits(route.responseHeaders);
  if (path === null && host === undefined && requestHeaders === null && responseHeaders === null) return NO_TRANSFORMS;
  return { path, host, requestHeaders, responseHeaders };
}

/** Path and query to send upstream: the rewritten path with the query as received. */
export function upstreamPathAndQuery(t: RouteTransforms, path: string, rawQuery: string, pathAndQuery: string): string {
  if (t.path === null) return pathAndQuery;
  const rewritten = t.path(path);
  // Keep a "?" that the client sent with an empty query: the upstream may tell them apart.
  return pathAndQuery.length > path.length ? `${rewritten}?${rawQuery}` : rewritten;
}
