// The traffic listeners and their graceful drain.
//
// Two listening sockets feed two protocol servers that never listen themselves:
//
//   plain port ── sniff the first bytes ──┬─ HTTP/2 preface ─▶ h2Server (h2c, prior knowledge)
//                                         └─ anything else ──▶ server   (HTTP/1.1)
//   TLS port ──── handshake (SNI, ALPN) ──┬─ ALPN h2 ────────▶ h2Server
//                                         └─ http/1.1 / none ▶ server
//
// So one HTTP/1.1 server (PyServe's own, server/h1/) and one HTTP/2 server
// (node:http2) carry every connection, with one request handler and one
// drain. The drain marks HTTP/1.1 responses `Connection: close`, closes
// HTTP/1.1 connections as they turn idle, and sends HTTP/2 sessions a GOAWAY.
import type { ServerResponse } from 'node:http';
import { createServer as createHttp2Server } from 'node:http2';
import type { Http2Server, Http2ServerRequest, Http2ServerResponse, Http2Session, ServerHttp2Session } from 'node:http2';
import { createServer as createNetServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { Counter } from 'prom-client';
import { NO_ROUTE } from '../observability/metrics.ts';
import { ALPN_PROTOCOLS } from '../tls/contexts.ts';
import type { TlsManager } from '../tls/contexts.ts';
import { checkContinueHandler, createRequestHandler } from './handler.ts';
import { DEFAULT_LIMITS } from '../limits/defaults.ts';
import type { ListenerLimits } from '../limits/defaults.ts';
import { applyConnectionLimit } from '../limits/server.ts';
import { listen } from './listen.ts';
import type { ListenExtra } from './listen.ts';
import type { HandlerDeps } from './handler.ts';
import { H1Server } from './h1/server.ts';
import { EntryList } from '../entry-list.ts';
import type { ListEntry } from '../entry-list.ts';

/** Outcome of {@link TrafficServer.drain}. */
export interface DrainResult {
  /** True when requests were still running at the deadline and were cut. */
  forced: boolean;
  /** Requests cut at the deadline. */
  cut: number;
}

/** HTTP/2 server limits. Defaults follow nginx where it has an equivalent. */
export interface Http2Limits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS per connection. Default 128 (nginx `http2_max_concurrent_streams`). */
  maxConcurrentStreams: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE, bytes of one header block. Default 65536. */
  maxHeaderListSize: number;
  /** Close a connection without frames in either direction for this long. Default 75 s (nginx `keepalive_timeout`). */
  idleTimeoutMs: number;
  /**
   * Rapid-reset defence (CVE-2023-44487): RST_STREAM frames a client may send
   * in a burst, then per second, before the session is closed with
   * ENHANCE_YOUR_CALM. Defaults 100 and 33 (nghttp2's are 1000 and 33: lower
   * here because every reset stream can already have cost an upstream request).
   */
  streamResetBurst: number;
  streamResetRate: number;
  /** Invalid frames tolerated per session before it is closed. Default 100 (Node: 1000). */
  maxSessionInvalidFrames: number;
  /** Streams refused (over the concurrency limit) per session before it is closed. Default 100. */
  maxSessionRejectedStreams: number;
}

/** Defaults of {@link Http2Limits}. */
export const DEFAULT_HTTP2_LIMITS: Http2Limits = {
  maxConcurrentStreams: 128,
  maxHeaderListSize: 65_536,
  idleTimeoutMs: 75_000,
  streamResetBurst: 100,
  streamResetRate: 33,
  maxSessionInvalidFrames: 100,
  maxSessionRejectedStreams: 100,
};

/** Options of {@link createTrafficServer} beyond the request handler's. */
export interface TrafficOptions {
  /** Certificates and SNI; the TLS listener serves what it holds. */
  readonly tls: TlsManager;
  /** Port written into HTTP → HTTPS redirects; 0 means the bound HTTPS port. */
  readonly httpsRedirectPort?: number;
  readonly http2?: Partial<Http2Limits>;
  /** Header, URI, timeout and connection limits (limits/defaults.ts). */
  readonly limits?: ListenerLimits;
}

/** The traffic listeners. */
export interface TrafficServer {
  /** The HTTP/1.1 server behind both ports (attach the `upgrade` handler here). */
  readonly server: H1Server;
  /** The HTTP/2 server behind both ports (h2c with prior knowledge, and h2 over TLS). */
  readonly h2Server: Http2Server;
  /** The sockets that accept connections: plain, then TLS (e.g. for `maxConnections`). */
  readonly listeners: readonly NetServer[];
  /** Requests received and not finished. */
  readonly inFlight: number;
  /** Listen on the plain port (HTTP/1.1 and h2c) and resolve with the bound port. */
  listen(port: number, host: string, extra?: ListenExtra): Promise<number>;
  /** Listen on the TLS port (HTTP/1.1 and h2 by ALPN) and resolve with the bound port. */
  listenTls(port: number, host: string, extra?: ListenExtra): Promise<number>;
  /**
   * Stop accepting connections, let in-flight requests finish for up to
   * `timeoutMs`, then close every connection by force. Upgraded connections
   * (WebSockets, also inside HTTP/2 sessions) are left to `upgraded`, which
   * closes them properly: connections are cut only once it has settled.
   */
  drain(timeoutMs: number, upgraded?: Promise<unknown>): Promise<DrainResult>;
}

// RFC 9113 §3.4: a prior-knowledge client opens with this exact sequence,
// which no HTTP/1.1 request line can start with.
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Create (but do not start) the traffic listeners. */
export function createTrafficServer(deps: HandlerDeps, opts: TrafficOptions): TrafficServer {
  // Not a Set: see entry-list.ts (a Set here promoted every response to the old generation).
  const active = new EntryList<ServerResponse>();
  const sessions = new Set<ServerHttp2Session>();
  const sockets = new EntryList<Socket>();
  const limits: Http2Limits = { ...DEFAULT_HTTP2_LIMITS, ...opts.http2 };
  let draining = false;
  let onIdle: (() => void) | undefined;
  let httpsPort = 0;
  const resetBeforeStart = new Counter({
    name: 'pyserve_http2_streams_reset_before_start_total',
    help: 'HTTP/2 requests the client reset before they were started (rapid-reset traffic, or very quick cancels).',
    registers: [deps.metrics.registry],
  });

  const isHttp1 = (res: ServerResponse): boolean => (res as unknown as Partial<Http2ServerResponse>).stream === undefined;
  const listenerLimits = opts.limits ?? DEFAULT_LIMITS;
  const handler = createRequestHandler({
    maxUriBytes: listenerLimits.maxUriBytes,
    ...deps,
    httpsRedirectPort: () => opts.httpsRedirectPort === undefined || opts.httpsRedirectPort === 0 ? httpsPort : opts.httpsRedirectPort,
  }, {
    started(res) {
      if (draining && isHttp1(res)) res.setHeader('connection', 'close');
      return active.add(res);
    },
    finished(_res, entry) {
      active.remove(entry as ListEntry<ServerResponse>);
      if (!draining) return;
      // The connection this response used may now be idle: close it rather
      // than wait for the client's next request.
      setImmediate(() => server.closeIdleConnections());
      if (active.size === 0) onIdle?.();
    },
  });

  // The handler is written against node:http's request and response types;
  // server/h1/ provides the members it uses (and node:http2's compatibility
  // objects, below, do too).
  const h1Handler = handler as unknown as (req: unknown, res: unknown) => void;
  const server = new H1Server({
    limits: listenerLimits,
    onRequest: h1Handler,
    // Expect: 100-continue is answered by the handler once the request passed
    // its checks, so a body over the limit is refused before it is sent.
    onCheckContinue: checkContinueHandler(handler) as unknown as (req: unknown, res: unknown) => void,
    onRefused(status, err) {
      deps.metrics.requests.inc({ route: NO_ROUTE, code: status });
      deps.log.debug({ status, reason: err.message }, 'malformed request');
    },
  });

  const h2Server = createHttp2Server({
    settings: {
      maxConcurrentStreams: limits.maxConcurrentStreams,
      maxHeaderListSize: limits.maxHeaderListSize,
      // RFC 8441: WebSockets over HTTP/2 (extended CONNECT), see websocket/upgrade.ts.
      enableConnectProtocol: true,
    },
    maxSessionInvalidFrames: limits.maxSessionInvalidFrames,
    maxSessionRejectedStreams: limits.maxSessionRejectedStreams,
    streamResetBurst: limits.streamResetBurst,
    streamResetRate: limits.streamResetRate,
  });
  const h2Handler = handler as unknown as (req: Http2ServerRequest, res: Http2ServerResponse) => void;
  h2Server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    // Rapid-reset defence in depth: nghttp2's reset rate limit acts per read,
    // so one large read of HEADERS + RST_STREAM pairs still opens thousands
    // of streams. Starting each request one turn later lets the resets that
    // came in the same read close their streams first; those never reach the
    // route table or an upstream.
    setImmediate(() => {
      if (req.stream.destroyed || req.stream.closed) {
        resetBeforeStart.inc();
        return;
      }
      h2Handler(req, res);
    });
  });
  h2Server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    // Graceful: a GOAWAY lets streams in progress (a quiet gRPC stream) finish.
    session.setTimeout(limits.idleTimeoutMs, () => session.close());
    if (draining) session.close();
  });
  h2Server.on('sessionError', (err: Error, session: Http2Session) => {
    deps.log.debug({ err, remoteAddress: session.socket?.remoteAddress }, 'HTTP/2 session error');
  });

  const track = (socket: Socket): void => {
    const entry = sockets.add(socket);
    socket.once('close', () => sockets.remove(entry));
  };

  // --- plain port: HTTP/1.1, or h2c when the client opens with the preface ---
  const sniffTimeoutMs = server.headersTimeout > 0 ? server.headersTimeout : 60_000;
  const plain: NetServer = createNetServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    track(socket);
    let buffered: Buffer | undefined;
    const timer = setTimeout(() => socket.destroy(), sniffTimeoutMs);
    const onError = (): void => {
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      buffered = buffered === undefined ? chunk : Buffer.concat([buffered, chunk]);
      const n = Math.min(buffered.length, PREFACE.length);
      const h2 = buffered.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (h2 && buffered.length < PREFACE.length) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('end', onEnd);
      // Put the sniffed bytes back and keep them there (paused) until the
      // protocol server is attached: in flowing mode with no 'data' listener
      // they would be read and lost. HTTP/2 then drains the buffer itself;
      // HTTP/1.1 takes it as 'data' once resumed, and further bytes go
      // straight to its native parser.
      socket.pause();
      socket.unshift(buffered);
      if (h2) {
        h2Server.emit('connection', socket);
      } else {
        server.accept(socket);
        socket.resume();
      }
    };
    const onEnd = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('end', onEnd);
  });

  // --- TLS port: certificate by SNI, protocol by ALPN ---
  const secure: TlsServer = createTlsServer({
    ...opts.tls.active.serverOptions,
    ALPNProtocols: ALPN_PROTOCOLS,
    SNICallback: (servername, cb) => cb(null, opts.tls.active.contextFor(servername)),
    // A handshake slower than this is a stalled or hostile client (nginx: ssl_handshake_timeout 60s).
    handshakeTimeout: 30_000,
    noDelay: true,
  });
  opts.tls.onServerOptions((o) => secure.setSecureContext(o));
  applyConnectionLimit([plain, secure], listenerLimits.maxConnections, deps.metrics.registry);
  secure.on('connection', track);
  secure.on('secureConnection', (socket: TLSSocket) => {
    if (socket.alpnProtocol === 'h2') h2Server.emit('connection', socket);
    else server.accept(socket);
  });
  secure.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const reason = typeof err.code === 'string' && /^[A-Z0-9_]{1,64}$/.test(err.code) ? err.code : 'other';
    opts.tls.handshakeErrors?.inc({ reason });
    deps.log.debug({ code: err.code, reason: err.message, remoteAddress: socket.remoteAddress }, 'TLS handshake failed');
  });

  const closeListener = (s: NetServer): Promise<void> => new Promise((resolve) => s.close(() => resolve()));

  return {
    server,
    h2Server,
    listeners: [plain, secure],
    get inFlight() {
      return active.size;
    },
    listen: (port, host, extra) => listen(plain, port, host, extra),
    listenTls: async (port, host, extra) => {
      httpsPort = await listen(secure, port, host, extra);
      return httpsPort;
    },
    async drain(timeoutMs, upgraded) {
      draining = true;
      for (const res of active.values()) if (!res.headersSent && isHttp1(res)) res.setHeader('connection', 'close');
      const closed = Promise.all([closeListener(plain), closeListener(secure)]);
      server.closeIdleConnections();
      for (const session of sessions) session.close();
      let timer: NodeJS.Timeout | undefined;
      const idle = active.size === 0 ? Promise.resolve(true) : new Promise<boolean>((resolve) => {
        onIdle = () => resolve(true);
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      const finished = await idle;
      clearTimeout(timer);
      const cut = active.size;
      server.closeAllConnections();
      await upgraded;
      for (const session of sessions) session.destroy();
      // Connections still sniffing or handshaking belong to neither server yet.
      sockets.forEach((socket) => socket.destroy());
      await closed;
      // Stops the HTTP/1.1 server's timeout sweep.
      server.close();
      return { forced: !finished, cut };
    },
  };
}
