// Entry points of upgraded connections: the HTTP/1.1 server's `upgrade`
// event, and HTTP/2 extended CONNECT streams (RFC 8441) handed over by the
// HTTP/2 request path. Both match the route exactly as a plain request would
// (an extended CONNECT is matched as the GET it stands for) and then share
// proxyUpgrade.
import { STATUS_CODES } from '../node-http.ts';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { constants as h2constants } from 'node:http2';
import type { Http2Server, Http2ServerRequest, Http2ServerResponse, Http2SecureServer, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import type { CompiledRoute, ForwardPlan } from '../config/compile.ts';
import type { ConfigStore } from '../config/store.ts';
import { runRequestHooks } from '../middleware/order.ts';
import { normalizeHost } from '../routing/host.ts';
import { splitTarget } from '../routing/request-head.ts';
import type { RequestContext } from '../server/context.ts';
import { clientAddressOf, hostFieldCount } from '../server/headers.ts';
import { requestIdFor } from '../server/request-id.ts';
import { wantsHttpsRedirect } from '../tls/policy.ts';
import { upstreamPathAndQuery } from '../transforms/index.ts';
import { answerUpgrade, isWebSocketUpgrade, proxyUpgrade, rejectUpgrade } from './proxy.ts';
import type { UpgradeClient, UpgradeDeps } from './proxy.ts';

/** What the upgrade entry points need besides the proxy's dependencies. */
export interface UpgradeEntryDeps extends UpgradeDeps {
  readonly store: ConfigStore;
  /** Longest request target accepted (414 beyond). */
  readonly maxUriBytes: number;
  /** Whether the process is shutting down: new upgrades get 503. */
  readonly isDraining: () => boolean;
  /** HTTPS port for redirects of plain-HTTP upgrades on hosts with TLS. */
  readonly httpsRedirectPort?: () => number;
}

/**
 * Whether an HTTP/1.1 request with an Upgrade header is handled as an upgrade.
 * `h2c` is not: RFC 9113 deprecated the HTTP/1.1 → h2c upgrade, so such a
 * request is served as the plain HTTP/1.1 request it also is (its Upgrade
 * header is dropped as hop-by-hop), as nginx does.
 */
export function shouldUpgrade(req: { readonly headers: IncomingHttpHeaders }): boolean {
  const upgrade = req.headers.upgrade;
  if (upgrade === undefined) return false;
  return upgrade.split(',').some((t) => {
    const token = t.trim().toLowerCase();
    return token !== '' && token !== 'h2c';
  });
}

interface UpgradeHead {
  readonly method: string;
  readonly url: string;
  readonly host: string | undefined;
  readonly rawHeaders: readonly string[];
  readonly headers: IncomingHttpHeaders;
  readonly upgrade: string;
  readonly secure: boolean;
  readonly remoteAddress: string | undefined;
  readonly localPort: number;
}

function dispatch(client: UpgradeClient, head: UpgradeHead, deps: UpgradeEntryDeps): void {
  const { path, rawQuery, pathAndQuery, authority } = splitTarget(head.url);
  const hostHeader = authority ?? head.host;
  const ctx: RequestContext = {
    requestId: requestIdFor(head.headers['x-request-id']),
    startedAt: performance.now(),
    clientAddress: clientAddressOf(head.remoteAddress),
    method: head.method,
    path,
    host: normalizeHost(hostHeader),
    secure: head.secure,
    grpc: false,
    route: undefined,
    cluster: undefined,
    upstream: undefined,
    status: undefined,
    error: undefined,
  };
  try {
    if (deps.isDraining()) return rejectUpgrade(client, ctx, 503, 'shutting down', deps);
    if (head.url.length > deps.maxUriBytes) return rejectUpgrade(client, ctx, 414, `request target longer than ${deps.maxUriBytes} bytes`, deps);
    if (hostFieldCount(head.rawHeaders) > 1) return rejectUpgrade(client, ctx, 400, 'more than one Host header', deps);
    const config = deps.store.current;
    if (config === undefined) return rejectUpgrade(client, ctx, 503, 'no configuration received yet', deps);
    const route = config.routing.table.match(ctx.host, { method: ctx.method, path, rawQuery, headers: head.headers });
    if (route === undefined) return rejectUpgrade(client, ctx, 404, 'no route', deps);
    ctx.route = route.name;
    if (!ctx.secure && route.redirectHttps && ctx.host !== '' && wantsHttpsRedirect(path)) {
      const port = deps.httpsRedirectPort?.() ?? 443;
      const location = `https://${ctx.host}${port === 443 ? '' : `:${port}`}${pathAndQuery}`;
      return answerUpgrade(client, ctx, 308, { location, 'content-length': 0, 'x-request-id': ctx.requestId }, undefined, deps);
    }
    if (route.action.type === 'direct') {
      const a = route.action;
      return answerUpgrade(client, ctx, a.status, { 'content-type': a.contentType, 'content-length': a.body.length, 'x-request-id': ctx.requestId }, a.body, deps);
    }
    if (route.action.type === 'redirect') {
      const location = route.action.location({ secure: ctx.secure, host: ctx.host, hostHeader, path, rawQuery });
      return answerUpgrade(client, ctx, route.action.status, { location, 'content-length': 0, 'x-request-id': ctx.requestId }, undefined, deps);
    }
    const reply = runRequestHooks(route.chain, head, ctx);
    if (reply !== undefined) return rejectUpgrade(client, ctx, reply.status, reply.reason, deps);
    proxyUpgrade(client, ctx, {
      rawHeaders: head.rawHeaders,
      headers: head.headers,
      pathAndQuery: upstreamPathAndQuery(route.transforms, path, rawQuery, pathAndQuery),
      host: hostHeader,
      listenerPort: head.localPort,
      upgrade: head.upgrade,
    }, route as CompiledRoute & { action: ForwardPlan }, config.upstreams, deps);
  } catch (err) {
    deps.log.error({ err, requestId: ctx.requestId }, 'upgrade handler failed');
    client.stream.destroy();
  }
}

function headerLines(headers: OutgoingHttpHeaders): string {
  let out = '';
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) out += `${name}: ${String(v)}\r\n`;
  }
  return out;
}

/** The HTTP/1.1 client half: writes raw response heads on the upgraded socket. */
function h1Client(socket: Duplex, head: Buffer): UpgradeClient {
  return {
    kind: 'h1',
    stream: socket,
    head,
    accept(headers, upgrade) {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${upgrade}\r\n${headerLines(headers)}\r\n`);
    },
    respond(status, headers, body) {
      // The connection is not reused after a refused upgrade: the client may
      // already be sending frames it thought would be tunnelled.
      const h: OutgoingHttpHeaders = { ...headers, connection: 'close' };
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${headerLines(h)}\r\n`);
      if (body === undefined) socket.end();
      else if (Buffer.isBuffer(body)) socket.end(body);
      else (body as Readable).pipe(socket);
    },
  };
}

/** The request members an upgrade needs (node:http's IncomingMessage has them, and so does server/h1/). */
export type UpgradeRequest = Pick<IncomingMessage, 'method' | 'url' | 'headers' | 'rawHeaders'>;

/** An HTTP/1.1 server with node:http's upgrade hooks (`shouldUpgradeCallback`, the `upgrade` event). */
export interface UpgradeSource {
  shouldUpgradeCallback: (req: { readonly headers: IncomingHttpHeaders }) => boolean;
  on(event: 'upgrade', listener: (req: UpgradeRequest, socket: Duplex, head: Buffer) => void): unknown;
}

/**
 * Make `server` (an HTTP/1.1 server, plain or TLS) hand upgrade requests to
 * the proxy: `shouldUpgradeCallback` keeps h2c upgrades on the request path.
 */
export function attachUpgradeHandler(server: UpgradeSource, deps: UpgradeEntryDeps): void {
  server.shouldUpgradeCallback = shouldUpgrade;
  server.on('upgrade', (req: UpgradeRequest, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    dispatch(h1Client(socket, head), {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      host: req.headers.host,
      rawHeaders: req.rawHeaders,
      headers: req.headers,
      upgrade: req.headers.upgrade ?? '',
      secure: (socket as { encrypted?: boolean }).encrypted === true,
      remoteAddress: (socket as Socket).remoteAddress,
      localPort: (socket as Socket).localPort ?? 0,
    }, deps);
  });
}

/** Whether an HTTP/2 request is an RFC 8441 extended CONNECT for a WebSocket. */
export function isExtendedConnect(headers: IncomingHttpHeaders): boolean {
  return headers[':method'] === 'CONNECT' && typeof headers[':protocol'] === 'string';
}

const { HTTP2_HEADER_STATUS } = h2constants;

// Headers that describe the HTTP/1.1 handshake itself and have no place in an
// HTTP/2 response (RFC 8441 §5: no Sec-WebSocket-Accept).
const H1_HANDSHAKE_ONLY = new Set(['sec-websocket-accept', 'connection', 'upgrade', 'keep-alive', 'transfer-encoding']);

function h2Headers(status: number, headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { [HTTP2_HEADER_STATUS]: status };
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !H1_HANDSHAKE_ONLY.has(name)) out[name] = value;
  return out;
}

/**
 * Proxy an RFC 8441 extended CONNECT stream (`:protocol: websocket`) to an
 * HTTP/1.1 upstream as an Upgrade request. Meant to be called by the HTTP/2
 * server for streams where {@link isExtendedConnect} holds; the server must
 * advertise SETTINGS_ENABLE_CONNECT_PROTOCOL. A 101 from the upstream
 * becomes a 200 on the stream, after which the stream carries the frames.
 */
export function handleExtendedConnect(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: readonly string[], deps: UpgradeEntryDeps): void {
  stream.on('error', () => undefined);
  const session = stream.session;
  const socket = session?.socket as (Socket & { encrypted?: boolean }) | undefined;
  const client: UpgradeClient = {
    kind: 'h2',
    stream,
    head: Buffer.alloc(0),
    accept(h) {
      stream.respond(h2Headers(200, h));
    },
    respond(status, h, body) {
      if (stream.destroyed || stream.closed) return;
      stream.respond(h2Headers(status, h), { endStream: body === undefined });
      if (body === undefined) return;
      if (Buffer.isBuffer(body)) stream.end(body);
      else (body as Readable).pipe(stream);
    },
  };
  dispatch(client, {
    // The CONNECT stands for the GET an HTTP/1.1 client would send: routes
    // limited to GET must still accept the WebSocket.
    method: 'GET',
    url: String(headers[':path'] ?? '/'),
    host: (headers[':authority'] as string | undefined) ?? headers.host,
    rawHeaders,
    headers,
    upgrade: String(headers[':protocol']),
    secure: socket?.encrypted === true,
    remoteAddress: socket?.remoteAddress,
    localPort: socket?.localPort ?? 0,
  }, deps);
}

/**
 * Take the HTTP/2 server's CONNECT requests (Node's compatibility layer emits
 * them as `connect`, and answers 405 when nobody listens): extended CONNECT
 * for a WebSocket is proxied, any other CONNECT (a forward-proxy tunnel) is
 * refused with 405 as before. The server must also advertise
 * `enableConnectProtocol` in its settings.
 */
export function attachExtendedConnect(server: Http2Server | Http2SecureServer, deps: UpgradeEntryDeps): void {
  server.on('connect', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    if (isExtendedConnect(req.headers) && isWebSocketUpgrade(String(req.headers[':protocol']))) {
      handleExtendedConnect(res.stream, req.headers, req.rawHeaders, deps);
      return;
    }
    res.statusCode = 405;
    res.end();
  });
}
