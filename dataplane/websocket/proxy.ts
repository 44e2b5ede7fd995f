// Opening an upgraded connection to an upstream: the same route match and
// endpoint pick as plain requests, then an HTTP/1.1 Upgrade request on a new
// connection (never a pooled one: it will not come back), then either a 101
// that turns both connections into a tunnel, or an ordinary response relayed
// to the client. The client side is abstracted (UpgradeClient) so HTTP/1.1
// Upgrade and HTTP/2 extended CONNECT (RFC 8441) share everything here.
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from '../node-http.ts';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import type { Logger } from 'pino';
import type { CompiledRoute, CompiledUpstreams, ForwardPlan } from '../config/compile.ts';
import type { DataplaneMetrics } from '../observability/metrics.ts';
import type { RequestContext } from '../server/context.ts';
import { clientResponseHeaders, upstreamRequestHeaders } from '../server/headers.ts';
import { classifyUpstreamError } from '../upstream/errors.ts';
import { chooseTarget, pickInputOf } from '../upstream/choose.ts';
import type { TunnelRegistry } from './registry.ts';
import { Tunnel } from './tunnel.ts';
import { UPSTREAM_CODES, UpstreamError } from '../upstream/h1/errors.ts';

/** The client half of an upgrade, whatever HTTP version it came over. */
export interface UpgradeClient {
  /** `h1`: an upgraded socket; `h2`: an extended CONNECT stream. */
  readonly kind: 'h1' | 'h2';
  /** The client's byte stream once the upgrade is accepted. */
  readonly stream: Duplex;
  /** Bytes the client sent after its request head (HTTP/1.1 only). */
  readonly head: Buffer;
  /** Complete the upgrade with the upstream's 101 headers (hop-by-hop already removed). */
  accept(headers: OutgoingHttpHeaders, upgrade: string): void;
  /** Send an ordinary final response instead, then end the exchange. */
  respond(status: number, headers: OutgoingHttpHeaders, body: Readable | Buffer | undefined): void;
}

/** The request that asked for the upgrade, as the upstream should get it. */
export interface UpgradeRequest {
  readonly rawHeaders: readonly string[];
  readonly headers: IncomingHttpHeaders;
  /** Origin-form target. */
  readonly pathAndQuery: string;
  /** Host header value for the upstream. */
  readonly host: string | undefined;
  readonly listenerPort: number;
  /** Upgrade token(s) to ask the upstream for, e.g. `websocket`. */
  readonly upgrade: string;
}

/** What the upgrade proxy needs. */
export interface UpgradeDeps {
  readonly tunnels: TunnelRegistry;
  readonly metrics: DataplaneMetrics;
  readonly log: Logger;
  /** Access log, one line per upgrade when it ends. */
  readonly access: Logger;
}

type ForwardRoute = CompiledRoute & { readonly action: ForwardPlan };

/** True when the upgrade tokens name WebSocket (case-insensitive, RFC 6455 §4.2.1). */
export function isWebSocketUpgrade(upgrade: string): boolean {
  return upgrade.split(',').some((t) => t.trim().toLowerCase() === 'websocket');
}

/** Answer an upgrade locally with a short text body, as the request path does for errors. */
export function rejectUpgrade(client: UpgradeClient, ctx: RequestContext, status: number, reason: string, deps: UpgradeDeps): void {
  ctx.error ??= reason;
  ctx.status = status;
  const body = Buffer.from(`${status}: ${reason}\nrequest id: ${ctx.requestId}\n`);
  client.respond(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': body.length,
    'x-request-id': ctx.requestId,
    'cache-control': 'no-store',
  }, body);
  logUpgrade(ctx, deps, undefined, client.kind);
}

/** Answer an upgrade request with an ordinary response (a redirect, a direct route) and log it. */
export function answerUpgrade(client: UpgradeClient, ctx: RequestContext, status: number, headers: OutgoingHttpHeaders, body: Buffer | undefined, deps: UpgradeDeps): void {
  ctx.status = status;
  client.respond(status, headers, body);
  logUpgrade(ctx, deps, undefined, client.kind);
}

/** One access-log line and the request counter for an upgrade, when it ends. */
function logUpgrade(ctx: RequestContext, deps: UpgradeDeps, tunnel: Tunnel | undefined, kind: UpgradeClient['kind']): void {
  const status = ctx.status ?? 499;
  const route = ctx.route ?? '(none)';
  deps.metrics.requests.inc({ route, code: status });
  deps.access.info({
    route: ctx.route ?? null,
    cluster: ctx.cluster ?? null,
    upstream: ctx.upstream ?? null,
    method: ctx.method,
    host: ctx.host,
    path: ctx.path,
    status,
    // For a tunnel: payload relayed each way, not counting the handshake.
    ...(tunnel !== undefined && { bytesSent: tunnel.bytes[1], bytesReceived: tunnel.bytes[0] }),
    durationMs: Math.round((performance.now() - ctx.startedAt) * 1e3) / 1e3,
    requestId: ctx.requestId,
    clientAddress: ctx.clientAddress,
    upgrade: true,
    // RFC 8441 WebSockets arrive over HTTP/2 streams, the others as HTTP/1.1 Upgrade.
    httpVersion: kind === 'h2' ? '2' : '1.1',
    ...(ctx.error !== undefined && { error: ctx.error }),
  }, 'request');
}

function connectUpstream(address: string, port: number, tls: boolean): Socket {
  if (!tls) return netConnect({ host: address, port, noDelay: true });
  // Backend certificates are not verified, as for pooled https upstreams.
  const socket = tlsConnect({ host: address, port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
  socket.setNoDelay(true);
  return socket;
}

/**
 * Proxy an upgrade along a forward route. Never throws: every outcome is a
 * tunnel, a relayed response, or a local error answer on `client`.
 */
export function proxyUpgrade(client: UpgradeClient, ctx: RequestContext, req: UpgradeRequest, route: ForwardRoute, upstreams: CompiledUpstreams, deps: UpgradeDeps): void {
  // Affinity cookies and hashing policies apply; tunnels are not counted against circuit-breaker limits.
  const { cluster, member } = chooseTarget(route.action, upstreams, pickInputOf({ url: req.pathAndQuery, headers: req.headers }, ctx.clientAddress));
  ctx.cluster = cluster;
  if (cluster === undefined) return rejectUpgrade(client, ctx, 503, 'route has no backend with a weight above zero', deps);
  if (member === undefined) return rejectUpgrade(client, ctx, 503, `no ready endpoints for cluster "${cluster}"`, deps);
  const endpoint = member.endpoint;
  ctx.upstream = endpoint.key;
  const protocol = route.action.protocols?.get(cluster) ?? 'http';
  if (protocol !== 'http' && protocol !== 'https') {
    return rejectUpgrade(client, ctx, 502, `upgrades to a ${protocol} upstream are not supported (HTTP/1.1 Upgrade needs an http or https cluster)`, deps);
  }

  const headers = upstreamRequestHeaders(req.rawHeaders, req.headers, {
    host: req.host,
    clientAddress: ctx.clientAddress,
    listenerPort: req.listenerPort,
    requestId: ctx.requestId,
    contentLength: undefined,
    proto: ctx.secure ? 'https' : 'http',
    upstreamHost: route.transforms.host,
    edits: route.transforms.requestHeaders,
  });
  headers.push('connection', 'upgrade', 'upgrade', req.upgrade);
  if (client.kind === 'h2' && req.headers['sec-websocket-key'] === undefined) {
    // RFC 8441 §5: HTTP/2 clients send no key; an HTTP/1.1 upstream needs one.
    headers.push('sec-websocket-key', randomBytes(16).toString('base64'));
  }

  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  const upstreamFailed = (err: unknown): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    const f = classifyUpstreamError(err);
    deps.metrics.upstreamErrors.inc({ cluster, kind: f.kind });
    deps.log.debug({ err, requestId: ctx.requestId, upstream: endpoint.key }, f.reason);
    rejectUpgrade(client, ctx, f.status, f.reason, deps);
  };

  const cr = httpRequest({
    method: 'GET',
    path: req.pathAndQuery,
    headers,
    setHost: false,
    createConnection: () => {
      const socket = connectUpstream(endpoint.address, endpoint.port, protocol === 'https');
      timer = setTimeout(() => {
        socket.destroy(new UpstreamError(UPSTREAM_CODES.connectTimeout, 'upstream connect timeout'));
      }, route.timeouts.connectMs);
      socket.once(protocol === 'https' ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          cr.destroy(new UpstreamError(UPSTREAM_CODES.headersTimeout, 'upstream response timeout'));
        }, route.timeouts.responseMs);
      });
      return socket;
    },
  });
  cr.on('error', upstreamFailed);

  // A client that leaves before the upstream answers releases the upstream too.
  const clientGone = (): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    ctx.status = 499;
    ctx.error = 'client closed the connection';
    cr.destroy();
    logUpgrade(ctx, deps, undefined, client.kind);
  };
  client.stream.once('close', clientGone);
  client.stream.on('error', () => undefined);

  cr.on('upgrade', (res: IncomingMessage, upstream: Socket, upHead: Buffer) => {
    if (settled) {
      upstream.destroy();
      return;
    }
    settled = true;
    clearTimeout(timer);
    client.stream.off('close', clientGone);
    const upgrade = String(res.headers.upgrade ?? req.upgrade);
    ctx.status = 101;
    try {
      client.accept(clientResponseHeaders(res.headers, ctx.requestId, route.transforms.responseHeaders), upgrade);
    } catch (err) {
      deps.log.debug({ err, requestId: ctx.requestId }, 'upgrade response could not be sent');
      upstream.destroy();
      client.stream.destroy();
      ctx.error = 'upgrade response could not be sent';
      logUpgrade(ctx, deps, undefined, client.kind);
      return;
    }
    const tunnel = new Tunnel(client.stream, upstream, {
      websocket: isWebSocketUpgrade(upgrade),
      idleMs: route.timeouts.websocketIdleMs,
      onClosed: (t) => {
        deps.tunnels.delete(t);
        if (t.closeReason !== undefined) ctx.error = t.closeReason;
        logUpgrade(ctx, deps, t, client.kind);
      },
    });
    deps.tunnels.add(tunnel, route.name);
    tunnel.start(client.head, upHead);
  });

  cr.on('response', (res: IncomingMessage) => {
    if (settled) {
      res.destroy();
      return;
    }
    settled = true;
    clearTimeout(timer);
    client.stream.off('close', clientGone);
    // The upstream declined the upgrade: an ordinary answer, relayed as is.
    ctx.status = res.statusCode ?? 502;
    res.on('error', () => client.stream.destroy());
    client.stream.once('close', () => {
      res.destroy();
      logUpgrade(ctx, deps, undefined, client.kind);
    });
    client.respond(ctx.status, clientResponseHeaders(res.headers, ctx.requestId, route.transforms.responseHeaders), res);
  });
  cr.end();
}
