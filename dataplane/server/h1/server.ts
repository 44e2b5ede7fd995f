// PyServe's HTTP/1.1 server for the traffic listeners. Node's `http` server
// costs about two thirds of a core's time per request on its own (measured:
// a bare `http` server answers ~18k canned responses per second here, a
// `net` server with this parser ~50k), which kept the proxy under half of
// nginx's throughput. This server keeps the parts of node:http's API the
// request path uses (see request.ts, response.ts), with a strict parser
// (request-parser.ts) and the listener limits of limits/defaults.ts.
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { ListenerLimits } from '../../limits/defaults.ts';
import { H1ServerConnection } from './connection.ts';
import type { ConnectionHost, ConnectionTimeouts } from './connection.ts';
import type { H1Request } from './request.ts';
import type { H1Response } from './response.ts';
import { EntryList } from '../../entry-list.ts';

/** Options of {@link H1Server}. */
export interface H1ServerOptions {
  readonly limits: Pick<ListenerLimits, 'maxHeaderBytes' | 'maxUriBytes' | 'clientHeaderTimeoutMs' | 'clientRequestTimeoutMs' | 'keepAliveTimeoutMs'>
    & Partial<Pick<ListenerLimits, 'clientBodyTimeoutMs'>>;
  readonly onRequest: (req: H1Request, res: H1Response) => void;
  /** Requests with `Expect: 100-continue`; default: as `onRequest` after sending the 100. */
  readonly onCheckContinue?: (req: H1Request, res: H1Response) => void;
  /** A request refused by the server itself (malformed, too large, too slow), after the answer is queued. */
  readonly onRefused?: (status: number, err: Error, socket: Socket) => void;
}

/**
 * The HTTP/1.1 server. It never listens itself: listeners hand it sockets
 * with {@link H1Server.accept}. Emits `upgrade(req, socket, head)` for
 * upgrade requests that `shouldUpgradeCallback` accepts (when someone
 * listens), as node:http does.
 */
export class H1Server extends EventEmitter {
  /** Decides which upgrade requests leave HTTP (node:http's hook of the same name). */
  shouldUpgradeCallback: (req: { readonly headers: IncomingHttpHeaders }) => boolean = () => true;
  /** Time to receive a request head, ms (0: none). */
  readonly headersTimeout: number;
  // Not a Set: connections come and go all the time (see entry-list.ts).
  readonly #conns = new EntryList<H1ServerConnection>();
  readonly #timer: NodeJS.Timeout;
  readonly #timeouts: ConnectionTimeouts;
  readonly #host: ConnectionHost;

  constructor(opts: H1ServerOptions) {
    super();
    const l = opts.limits;
    // The head is part of the request: the shorter of the two timeouts applies to it.
    this.headersTimeout = Math.min(l.clientHeaderTimeoutMs || Infinity, l.clientRequestTimeoutMs || Infinity);
    if (!Number.isFinite(this.headersTimeout)) this.headersTimeout = 0;
    this.#timeouts = { headersMs: this.headersTimeout, requestMs: l.clientRequestTimeoutMs, keepAliveMs: l.keepAliveTimeoutMs, bodyIdleMs: l.clientBodyTimeoutMs ?? 0 };
    const positive = [this.headersTimeout, l.clientRequestTimeoutMs, l.keepAliveTimeoutMs].filter((t) => t > 0);
    const shortest = positive.length > 0 ? Math.min(...positive) : 60_000;
    // Timeouts fire within a tenth of their length (at least 100 ms, at most 5 s late).
    const interval = Math.min(5_000, Math.max(100, Math.floor(shortest / 10)));
    this.#timer = setInterval(() => this.#sweep(), interval);
    this.#timer.unref();
    const checkContinue = opts.onCheckContinue ?? ((req: H1Request, res: H1Response) => {
      res.writeContinue();
      opts.onRequest(req, res);
    });
    this.#host = {
      maxHeaderBytes: l.maxHeaderBytes,
      maxUriBytes: l.maxUriBytes,
      // As node:http: clients that honour it stop reusing a connection before the server closes it.
      keepAliveHint: l.keepAliveTimeoutMs >= 1000 ? `keep-alive: timeout=${Math.floor(l.keepAliveTimeoutMs / 1000)}\r\n` : '',
      request: opts.onRequest,
      checkContinue,
      shouldUpgrade: (req) => this.listenerCount('upgrade') > 0 && this.shouldUpgradeCallback(req),
      upgrade: (req, socket, head) => this.emit('upgrade', req, socket, head),
      refused: (status, err, socket) => opts.onRefused?.(status, err, socket),
      forget: (conn) => {
        if (conn.entry !== undefined) this.#conns.remove(conn.entry);
      },
    };
  }

  /** Serve HTTP/1.1 on `socket` (plain or TLS). */
  accept(socket: Socket): void {
    const conn = new H1ServerConnection(socket, this.#host);
    conn.entry = this.#conns.add(conn);
  }

  /** Connections open (upgraded ones are no longer counted). */
  get connections(): number {
    return this.#conns.size;
  }

  /** Close the connections that are between requests. */
  closeIdleConnections(): void {
    this.#conns.forEach((conn) => {
      if (conn.idle) conn.socket.destroy();
    });
  }

  /** Close every connection now, requests in progress included. */
  closeAllConnections(): void {
    this.#conns.forEach((conn) => conn.socket.destroy());
  }

  /** Stop the timeout sweep (connections are closed separately). */
  close(): void {
    clearInterval(this.#timer);
  }

  #sweep(): void {
    const now = Date.now();
    this.#conns.forEach((conn) => conn.check(now, this.#timeouts));
  }
}
