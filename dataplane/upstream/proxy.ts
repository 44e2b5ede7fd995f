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

/** What the proxy needs from the rest of the dataplane. */
export interface ProxyDeps {
  readonly pools: PoolRegistry;
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
function pickTarget(plan: ForwardPlan, endpoints: CompiledEndpoints): { cluster: string | undefined; endpoint: UpstreamEndpoint | undefined } {
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

  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  const hasBody = te !== undefined || (cl !== undefined && cl !== '0');
  const headers = upstreamRequestHeaders(req.rawHeaders, req.headers, {
    host: target.host,
    clientAddress: ctx.clientAddress,
    listenerPort: target.listenerPort,
    requestId: ctx.requestId,
    contentLength: hasBody && te === undefined ? cl : undefined,
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

  const pool = deps.pools.get(endpoint, route.timeouts.connectMs);
  const upstreamError = (err: unknown): void => {
    const f = classifyUpstreamError(err);
    deps.metrics.upstreamErrors.inc({ cluster, kind: f.kind });
    deps.log.debug({ err, requestId: ctx.requestId, upstream: endpoint.key }, f.reason);
    replyError(res, ctx, f.status, f.reason);
  };

  pool.request({
    method: req.method as 'GET',
    path: target.pathAndQuery,
    headers,
    body: hasBody ? req : null,
    signal: ac.signal,
    headersTimeout: route.timeouts.responseMs,
    bodyTimeout: route.timeouts.responseMs,
  }).then((data) => {
    if (aborted !== undefined) {
      data.body.destroy();
      return;
    }
    try {
      res.writeHead(data.statusCode, clientResponseHeaders(data.headers, ctx.requestId));
    } catch (err) {
      // Node refuses a status or header value undici let through.
      data.body.destroy();
      upstreamError(Object.assign(new Error('invalid upstream response head'), { cause: err, code: 'INVALID_RESPONSE_HEAD' }));
      return;
    }
    pipeline(data.body, res, (err) => {
      clearTimeout(timer);
      if (!err) return;
      if (aborted === 'client') ctx.error = 'client closed the connection';
      else if (aborted === 'timeout') ctx.error = 'request timeout';
      else upstreamError(err);
    });
  }, (err: unknown) => {
    clearTimeout(timer);
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
