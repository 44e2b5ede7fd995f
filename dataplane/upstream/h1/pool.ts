// Keep-alive connections to one upstream endpoint. No cap on their number
// (concurrency is limited per cluster by circuit breaking, upstream/admission.ts);
// idle connections are reused last-in first-out, so a quiet period lets the
// oldest ones time out instead of keeping all of them barely alive.
// A connection idle for longer than its keep-alive time is never handed out
// (checked when popped); a sweep once a second closes the expired ones.
import { maxHeaderSize } from '../../node-http.ts';
import { isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import { H1Connection, PendingExchange } from './connection.ts';
import type { ConnectionOwner, ConnectTarget, Exchange, ExchangeCallbacks, ExchangeRequest } from './connection.ts';
import { UPSTREAM_CODES, UpstreamError } from './errors.ts';
import { serializeFieldLines, serializeHead } from './request-head.ts';
import { EntryList } from '../../entry-list.ts';

/** Options of one {@link H1Pool}. */
export interface H1PoolOptions {
  readonly address: string;
  readonly port: number;
  /** HTTP/1.1 over TLS (cluster protocol `https`). */
  readonly tls: boolean;
  readonly connectTimeoutMs: number;
  /** Longest idle time of a kept-alive connection; an upstream's `Keep-Alive: timeout` hint lowers it. */
  readonly keepAliveTimeoutMs: number;
}

/** A connection the upstream's hint says to keep for less than this is closed instead. */
const MIN_IDLE_MS = 1_000;
const SWEEP_MS = 1_000;

/** HTTP/1.1 connection pool of one upstream endpoint. */
export class H1Pool implements ConnectionOwner {
  readonly #target: ConnectTarget;
  readonly #keepAliveMs: number;
  /** Host field for a request that carries none: the endpoint itself. */
  readonly #host: string;
  readonly #idle: H1Connection[] = [];
  // Not a Set: connections come and go all the time (see entry-list.ts).
  readonly #all = new EntryList<H1Connection>();
  #closing = false;
  #drained: (() => void) | undefined;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(opts: H1PoolOptions) {
    this.#target = { address: opts.address, port: opts.port, tls: opts.tls, connectTimeoutMs: opts.connectTimeoutMs, maxHeadBytes: maxHeaderSize };
    this.#keepAliveMs = opts.keepAliveTimeoutMs;
    this.#host = isIPv6(opts.address) ? `[${opts.address}]:${opts.port}` : `${opts.address}:${opts.port}`;
  }

  /** Open connections, busy and idle. */
  get connections(): number {
    return this.#all.size;
  }

  /** No further request will be taken (closing or closed). */
  get closed(): boolean {
    return this.#closing;
  }

  /** Start one request; its outcome is reported through `callbacks`, never synchronously. */
  exchange(request: ExchangeRequest, callbacks: ExchangeCallbacks): Exchange {
    if (this.#closing) return failLater(request, callbacks, new UpstreamError(UPSTREAM_CODES.poolClosed, 'upstream pool is closed'));
    let head;
    try {
      const body = request.body;
      const kind = body === null ? 'none' : Buffer.isBuffer(body) ? 'buffer' : 'stream';
      const bufferLength = Buffer.isBuffer(body) ? body.length : 0;
      const lines = request.fieldBlock;
      head = lines !== undefined
        ? serializeFieldLines(request.method, request.path, lines, request.contentLength, kind, bufferLength)
        : serializeHead(request.method, request.path, request.headers, kind, bufferLength, this.#host, request.fieldsChecked === true);
    } catch (err) {
      return failLater(request, callbacks, err as Error);
    }
    const ex = new PendingExchange(request, callbacks, head);
    (this.#takeIdle() ?? this.#open()).start(ex);
    return ex;
  }

  release(conn: H1Connection, keepAliveHintSeconds: number | undefined): void {
    let ms = this.#keepAliveMs;
    if (keepAliveHintSeconds !== undefined) {
      // The upstream's hint, less a margin; kept only if that leaves at least MIN_IDLE_MS.
      const hinted = keepAliveHintSeconds * 1000 - MIN_IDLE_MS;
      ms = hinted < MIN_IDLE_MS ? 0 : Math.min(ms, hinted);
    }
    if (this.#closing || ms <= 0) {
      conn.destroy();
      return;
    }
    conn.idle(performance.now(), ms);
    this.#idle.push(conn);
    this.#sweeper ??= setInterval(() => this.#sweep(), SWEEP_MS).unref();
  }

  gone(conn: H1Connection): void {
    if (conn.entry !== undefined) this.#all.remove(conn.entry);
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
    if (this.#closing && this.#all.size === 0) this.#drained?.();
  }

  resend(ex: PendingExchange): void {
    if (this.#closing) {
      ex.fail(new UpstreamError(UPSTREAM_CODES.poolClosed, 'upstream pool is closed'));
      return;
    }
    this.#open().start(ex);
  }

  /** Take no more requests; resolves once the requests in flight completed and every connection closed. */
  close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#sweeper);
    for (const conn of this.#idle.splice(0)) conn.destroy();
    if (this.#all.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const prior = this.#drained;
      this.#drained = () => {
        prior?.();
        resolve();
      };
    });
  }

  /** Close every connection now; requests in flight fail. */
  destroy(): void {
    this.#closing = true;
    clearInterval(this.#sweeper);
    this.#all.forEach((conn) => conn.destroy());
  }

  #takeIdle(): H1Connection | undefined {
    const now = performance.now();
    for (let conn = this.#idle.pop(); conn !== undefined; conn = this.#idle.pop()) {
      if (conn.dead) continue;
      if (now - conn.idleSince < conn.idleMs) return conn;
      conn.destroy();
    }
    return undefined;
  }

  // The oldest idle connections are at the bottom of the stack.
  #sweep(): void {
    const now = performance.now();
    while (this.#idle.length > 0 && now - this.#idle[0]!.idleSince >= this.#idle[0]!.idleMs) this.#idle.shift()!.destroy();
    if (this.#idle.length === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  #open(): H1Connection {
    const conn = new H1Connection(this, this.#target);
    conn.entry = this.#all.add(conn);
    return conn;
  }
}

function failLater(request: ExchangeRequest, callbacks: ExchangeCallbacks, err: Error): Exchange {
  const ex = new PendingExchange(request, callbacks, { head: '', framing: { kind: 'none' } });
  queueMicrotask(() => ex.fail(err));
  return ex;
}
