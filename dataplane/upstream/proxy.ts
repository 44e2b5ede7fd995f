// Forwarding one request to one upstream endpoint. Both bodies are streamed:
// the client's request body is handed to undici as a stream, and the upstream
// response body is piped to the client with backpressure, so a proxied body
// is never held in memory whole.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import type { Logger } from 'pino';
import type { CompiledEndpoints, CompiledRoute, ForwardPlan } from '../config/compile.ts';
import { pickEndpoint } from '../config/compile.ts';
import type { DataplaneMetrics } from '../observability/metrics.ts';
import type { RequestContext } from '../server/context.ts';
import { clientResponseHeaders, upstreamRequestHeaders } from '../server/headers.ts';
import { replyError } from '../server/local-reply.ts';
import { classifyUpstreamError } from './errors.ts';
import type { UpstreamEndpoint } from './endpoint.ts';
import type { PoolRegistry } from './pool.ts';
import { guardRequestBody, isHttp2Protocol, proxyHttp2, requestHasBody } from './h2-proxy.ts';
import type { H2SessionRegistry } from './h2-sessions.ts';
import { requestBodyFor, runResponseHooks } from '../middleware/order.ts';
import { BodyLimitError, replyBodyRefused } from '../limits/body.ts';

/** What the proxy needs from the rest of the dataplane. */
export interface ProxyDeps {
  readonly pools: PoolRegistry;
  /** Sessions to HTTP/2 upstreams (h2c, h2, grpc, grpcs clusters). */
  readonly h2?: H2SessionRegistry;
  readonly metrics: DataplaneMetrics;
  readonly log: Logger;
}

/** The request target as received, split for forwarding. */
export interface ForwardTarget {
  /** Raw path and query to send upstream (origin-form). */
  readonly pathAndQuery: string;
  /** Host header value to send upstream. */
  readonly host: string | undefined;
  /** Local port the request arrived on. */
  readonly listenerPort: number;
}

type ForwardRoute = CompiledRoute & { readonly action: ForwardPlan };

/** Pick a cluster by weight and an endpoint of it; other weighted clusters stand in when it has none. */
export function pickTarget(plan: ForwardPlan, endpoints: CompiledEndpoints): { cluster: string | undefined; endpoint: UpstreamEndpoint | undefined } {
  const cluster = plan.backends.pick();
  if (cluster === undefined) return { cluster, endpoint: undefined };
  const endpoint = pickEndpoint(endpoints.clusters.get(cluster));
  if (endpoint !== undefined) return { cluster, endpoint };
  for (const other of plan.backends.items) {
    if (other === cluster) continue;
    const alt = pickEndpoint(endpoints.clusters.get(other));
    if (alt !== undefined) return { cluster: other, endpoint: alt };
  }
  return { cluster, endpoint: undefined };
}

/** Proxy `req` along `route`. Never throws; every outcome ends in a response or a destroyed connection. */
export function proxyRequest(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RequestContext,
  route: ForwardRoute,
  endpoints: CompiledEndpoints,
  target: ForwardTarget,
  deps: ProxyDeps,
): void {
  const { cluster, endpoint } = pickTarget(route.action, endpoints);
  ctx.cluster = cluster;
  if (cluster === undefined) {
    replyError(res, ctx, 503, 'route has no backend with a weight above zero');
    return;
  }
  if (endpoint === undefined) {
    replyError(res, ctx, 503, `no ready endpoints for cluster "${cluster}"`);
    return;
  }
  ctx.upstream = endpoint.key;

  const protocol = route.action.protocols.get(cluster) ?? 'http';
  if (isHttp2Protocol(protocol) && deps.h2 !== undefined) {
    proxyHttp2(req, res, ctx, route, cluster, endpoint, protocol, target, { ...deps, h2: deps.h2 });
    return;
  }

  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  // An HTTP/2 client's body needs no length header; requestHasBody also looks at the stream.
  const hasBody = requestHasBody(req);
  const headers = upstreamRequestHeaders(req.rawHeaders, req.headers, {
    host: target.host,
    clientAddress: ctx.clientAddress,
    listenerPort: target.listenerPort,
    requestId: ctx.requestId,
    contentLength: hasBody && te === undefined ? cl : undefined,
    proto: ctx.secure ? 'https' : 'http',
    upstreamHost: route.transforms.host,
    edits: route.transforms.requestHeaders,
  });

  const ac = new AbortController();
  let aborted: 'client' | 'timeout' | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (route.timeouts.requestMs > 0) {
    timer = setTimeout(() => {
      aborted ??= 'timeout';
      ac.abort(new Error('request timeout'));
    }, route.timeouts.requestMs);
  }
  res.once('close', () => {
    clearTimeout(timer);
    if (!res.writableFinished) {
      aborted ??= 'client';
      ac.abort(new Error('client closed the connection'));
    }
  });

  const pool = deps.pools.get(endpoint, route.timeouts.connectMs, protocol === 'https');
  const upstreamError = (err: unknown): void => {
    const f = classifyUpstreamError(err);
    deps.metrics.upstreamErrors.inc({ cluster, kind: f.kind });
    deps.log.debug({ err, requestId: ctx.requestId, upstream: endpoint.key }, f.reason);
    replyError(res, ctx, f.status, f.reason);
  };

  // Limits count the body as it streams; their failure is told apart from the upstream's.
  let refused: BodyLimitError | undefined;
  const body = hasBody ? guardRequestBody(requestBodyFor(route.chain, req), req) : null;
  if (body !== null && body !== req) {
    body.once('error', (err) => {
      if (err instanceof BodyLimitError) refused = err;
      ac.abort(err);
    });
  }

  pool.request({
    method: req.method as 'GET',
    path: target.pathAndQuery,
    headers,
    body,
    signal: ac.signal,
    headersTimeout: route.timeouts.responseMs,
    bodyTimeout: route.timeouts.responseMs,
  }).then((data) => {
    if (aborted !== undefined) {
      data.body.destroy();
      return;
    }
    const responseHeaders = clientResponseHeaders(data.headers, ctx.requestId, route.transforms.responseHeaders);
    let transforms;
    try {
      // Response phase (compression): may edit the headers and add body transforms.
      transforms = runResponseHooks(route.chain, req, { status: data.statusCode, headers: responseHeaders });
      res.writeHead(data.statusCode, responseHeaders);
    } catch (err) {
      // Node refuses a status or header value undici let through.
      data.body.destroy();
      upstreamError(Object.assign(new Error('invalid upstream response head'), { cause: err, code: 'INVALID_RESPONSE_HEAD' }));
      return;
    }
    const done = (err: NodeJS.ErrnoException | null): void => {
      clearTimeout(timer);
      if (!err) return;
      if (refused !== undefined) {
        ctx.error = refused.message;
        res.destroy();
        return;
      }
      if (aborted === 'client') ctx.error = 'client closed the connection';
      else if (aborted === 'timeout') ctx.error = 'request timeout';
      else upstreamError(err);
    };
    if (transforms === null) pipeline(data.body, res, done);
    else pipeline([data.body, ...transforms, res], done);
  }, (err: unknown) => {
    clearTimeout(timer);
    if (refused !== undefined) {
      replyBodyRefused(req, res, ctx, refused.status, refused.message);
      return;
    }
    if (aborted === 'client') {
      ctx.status = 499;
      ctx.error = 'client closed the connection';
      return;
    }
    if (aborted === 'timeout') {
      replyError(res, ctx, 504, 'request timeout');
      return;
    }
    const code = (err as { code?: unknown } | null)?.code;
    if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
      replyError(res, ctx, 400, 'request cannot be forwarded');
      return;
    }
    if (code === 'UND_ERR_CLOSED' || code === 'UND_ERR_DESTROYED') {
      replyError(res, ctx, 503, 'upstream pool is shutting down');
      return;
    }
    upstreamError(err);
  });
}
