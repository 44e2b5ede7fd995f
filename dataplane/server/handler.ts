// The request path: look up the current table once, match, then answer
// locally or proxy. Everything here is lookups on structures built at
// snapshot time; no decision is derived from config per request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Logger } from 'pino';
import type { ConfigStore } from '../config/store.ts';
import type { CompiledRoute, ForwardPlan } from '../config/compile.ts';
import { NO_ROUTE } from '../observability/metrics.ts';
import { normalizeHost } from '../routing/host.ts';
import { splitTarget } from '../routing/request-head.ts';
import { proxyRequest } from '../upstream/proxy.ts';
import type { ProxyDeps } from '../upstream/proxy.ts';
import type { RequestContext } from './context.ts';
import { clientAddressOf, hostFieldCount } from './headers.ts';
import { replyDirect, replyError } from './local-reply.ts';
import { requestIdFor } from './request-id.ts';
import { H1Response } from './h1/response.ts';
import { onResponseClose } from './response-close.ts';
import { isGrpcRequest } from '../http2/grpc.ts';
import { countWrittenBytes } from '../http2/stream-bytes.ts';
import { replyHttpsRedirect, wantsHttpsRedirect } from '../tls/policy.ts';
import { runRequestHooks } from '../middleware/order.ts';
import { replyBodyRefused } from '../limits/body.ts';
import { DEFAULT_LIMITS } from '../limits/defaults.ts';
import { upstreamPathAndQuery } from '../transforms/index.ts';
import { replyRedirect } from '../transforms/redirect.ts';

/** What the request handler needs. */
export interface HandlerDeps extends ProxyDeps {
  readonly store: ConfigStore;
  /** Access log, one line per request. */
  readonly access: Logger;
  /** Port that HTTP → HTTPS redirects point to (443 is left out of the URL). Read per request: known only once listening. */
  readonly httpsRedirectPort?: () => number;
  /** Longest request target accepted; longer gets 414. Default 8 KiB. */
  readonly maxUriBytes?: number;
}

// Requests whose `Expect: 100-continue` the server left to this handler
// (a 'checkContinue' listener): the 100 is sent only once the request passed
// its checks, so a refused body is never sent.
const awaitingContinue = new WeakSet<IncomingMessage>();

const ignore = (): void => undefined;
const noBytes = (): number => 0;

/** Wrap the request handler as the server's `checkContinue` listener. */
export function checkContinueHandler(handler: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    awaitingContinue.add(req);
    handler(req, res);
  };
}

/** Hooks the traffic server uses to track requests for draining. */
export interface RequestTracking {
  /** A request arrived; what this returns is handed back to `finished`. */
  started(res: ServerResponse): unknown;
  finished(res: ServerResponse, token: unknown): void;
}

/**
 * What the access log reports as `bytesSent`. HTTP/1.1: what the connection
 * wrote while this response was on it, headers included (one response at a
 * time per connection, like nginx's `$bytes_sent`). HTTP/2: the body bytes
 * of this response's own stream, since the connection carries many at once.
 */
function bytesCounter(req: IncomingMessage, res: ServerResponse): () => number {
  const stream = (res as unknown as Partial<Http2ServerResponse>).stream;
  if (stream !== undefined) return countWrittenBytes(stream);
  // Kept here: by the time the response closes, req.socket may be detached.
  const socket = req.socket;
  const atStart = socket.bytesWritten;
  return () => socket.bytesWritten - atStart;
}

type AccountFn = (res: ServerResponse, ctx: RequestContext, bytesSent: () => number, token: unknown) => void;

/** What a request's close hook needs to account for it. */
class Accounting {
  readonly res: ServerResponse;
  readonly ctx: RequestContext;
  readonly bytesSent: () => number;
  readonly token: unknown;
  readonly account: AccountFn;

  constructor(res: ServerResponse, ctx: RequestContext, bytesSent: () => number, token: unknown, account: AccountFn) {
    this.res = res;
    this.ctx = ctx;
    this.bytesSent = bytesSent;
    this.token = token;
    this.account = account;
  }
}

function responseClosed(a: Accounting): void {
  // A response cut short is accounted one turn later, so the proxy's own
  // close and stream callbacks have recorded why before the line is written.
  if (a.res.writableFinished) a.account(a.res, a.ctx, a.bytesSent, a.token);
  else setImmediate(a.account, a.res, a.ctx, a.bytesSent, a.token);
}

/** Build the `request` listener of the traffic server. */
export function createRequestHandler(deps: HandlerDeps, tracking: RequestTracking): (req: IncomingMessage, res: ServerResponse) => void {
  const { metrics, access } = deps;

  const finish = (res: ServerResponse, ctx: RequestContext, bytesSent: () => number, token: unknown): void => {
    tracking.finished(res, token);
    const status = ctx.status ?? (res.headersSent ? res.statusCode : 499);
    const seconds = (performance.now() - ctx.startedAt) / 1000;
    const route = ctx.route ?? NO_ROUTE;
    metrics.requestStats.record(route, status, seconds);
    // With --access-log off, not even the line's object is built.
    if (!access.isLevelEnabled('info')) return;
    access.info({
      route: ctx.route ?? null,
      cluster: ctx.cluster ?? null,
      upstream: ctx.upstream ?? null,
      method: ctx.method,
      host: ctx.host,
      path: ctx.path,
      status,
      bytesSent: bytesSent(),
      durationMs: Math.round(seconds * 1e6) / 1e3,
      requestId: ctx.requestId,
      clientAddress: ctx.clientAddress,
      ...(ctx.error !== undefined && { error: ctx.error }),
    }, 'request');
  };

  // One function, not a closure per request: a per-request one reachable
  // from the response kept that request's objects alive into the old generation.
  const account = (res: ServerResponse, ctx: RequestContext, bytesSent: () => number, token: unknown): void => {
    try {
      if (!res.writableFinished) ctx.error ??= 'connection closed before the response was complete';
      finish(res, ctx, bytesSent, token);
    } catch (err) {
      // Bookkeeping must never take the process down with it.
      deps.log.error({ err, requestId: ctx.requestId }, 'request accounting failed');
    }
  };

  const maxUriBytes = deps.maxUriBytes ?? DEFAULT_LIMITS.maxUriBytes;

  return (req, res) => {
    const startedAt = performance.now();
    // Only the access log reads it: without one, not even its closure is made.
    const bytesSent = access.isLevelEnabled('info') ? bytesCounter(req, res) : noBytes;
    // Errors on either stream end up as a closed response, handled below.
    // PyServe's HTTP/1.1 requests and responses emit no 'error' nobody listens
    // for (server/h1/request.ts, response.ts); a listener costs ~600
    // instructions a request (docs/benchmarks.md item 22).
    if (!((res as unknown) instanceof H1Response)) {
      req.on('error', ignore);
      res.on('error', ignore);
    }
    const { path, rawQuery, pathAndQuery, authority } = splitTarget(req.url ?? '/');
    // HTTP/2 carries the host in :authority; Host is only a fallback there (RFC 9113 §8.3.1).
    const hostHeader = authority ?? (req.headers[':authority'] as string | undefined) ?? req.headers.host;
    const ctx: RequestContext = {
      requestId: requestIdFor(req.headers['x-request-id']),
      startedAt,
      clientAddress: clientAddressOf(req.socket.remoteAddress),
      method: req.method ?? 'GET',
      path,
      host: normalizeHost(hostHeader),
      secure: (req.socket as { encrypted?: boolean }).encrypted === true,
      grpc: isGrpcRequest(req.headers),
      route: undefined,
      cluster: undefined,
      upstream: undefined,
      status: undefined,
      error: undefined,
    };
    // Run once and let go, although a response closes only once: with `on`,
    // the listener (and through it this request's objects) stayed reachable
    // from the response, and the young generation promoted ~270 KB per collection.
    // One small object, not a closure over the whole handler's scope.
    onResponseClose(res, responseClosed, new Accounting(res, ctx, bytesSent, tracking.started(res), account));

    try {
      if (hostFieldCount(req.rawHeaders) > 1) {
        replyError(res, ctx, 400, 'more than one Host header');
        return;
      }
      if ((req.url ?? '').length > maxUriBytes) {
        replyError(res, ctx, 414, `request target longer than ${maxUriBytes} bytes`);
        return;
      }
      const config = deps.store.current;
      if (config === undefined) {
        replyError(res, ctx, 503, 'no configuration received yet');
        return;
      }
      const route = config.routing.table.match(ctx.host, { method: ctx.method, path, rawQuery, headers: req.headers });
      if (route === undefined) {
        replyError(res, ctx, 404, 'no route');
        return;
      }
      ctx.route = route.name;
      if (!ctx.secure) {
        if (route.redirectHttps && ctx.host !== '' && wantsHttpsRedirect(path)) {
          replyHttpsRedirect(res, ctx, pathAndQuery, deps.httpsRedirectPort?.() ?? 443);
          return;
        }
      } else if (route.hsts !== undefined) {
        res.setHeader('strict-transport-security', route.hsts);
      }
      // Access and limits phases (middleware/order.ts), e.g. a declared body over the limit.
      const refused = runRequestHooks(route.chain, req, ctx);
      if (refused !== undefined) {
        if (refused.close) replyBodyRefused(req, res, ctx, refused.status, refused.reason);
        else replyError(res, ctx, refused.status, refused.reason);
        return;
      }
      if (route.action.type === 'direct') {
        replyDirect(res, ctx, route.action);
        return;
      }
      if (route.action.type === 'redirect') {
        replyRedirect(res, ctx, route.action.status, route.action.location({ secure: ctx.secure, host: ctx.host, hostHeader, path, rawQuery }));
        return;
      }
      if (awaitingContinue.has(req)) res.writeContinue();
      proxyRequest(req, res, ctx, route as CompiledRoute & { action: ForwardPlan }, config.upstreams, {
        // Request transforms (phase 3): the rewritten path; headers are edited where they are built.
        pathAndQuery: upstreamPathAndQuery(route.transforms, path, rawQuery, pathAndQuery),
        host: hostHeader,
        listenerPort: req.socket.localPort ?? 0,
      }, deps);
    } catch (err) {
      deps.log.error({ err, requestId: ctx.requestId }, 'request handler failed');
      replyError(res, ctx, 500, 'internal error');
    }
  };
}
