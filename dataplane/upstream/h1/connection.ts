// One keep-alive connection to an upstream and the exchange it carries. The
// response is parsed from the socket's own buffers and each body chunk goes
// straight into the sink the proxy hands back (the client response or its
// first transform); when the sink is full the socket is paused, so a slow
// client holds back the upstream instead of growing memory.
//
// Timeouts are the socket's idle timer, re-armed per phase (and only when its
// value changes, which is rare: re-arming costs more than the parse): the
// response timeout while waiting for the head, the same timeout between body
// chunks (nginx's proxy_read_timeout), none while the sink is full. Idle time
// in the pool is checked by the pool from `idleSince`, not by a timer.
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { LENDING, TAKES_LATIN1 } from '../../http1/sink.ts';
import type { Lending } from '../../http1/sink.ts';
import { UPSTREAM_CODES, UpstreamError } from './errors.ts';
import type { SerializedHead } from './request-head.ts';
import type { ListEntry } from '../../entry-list.ts';
import { ResponseParser } from './response-parser.ts';
import type { ResponseEvents, ResponseHead } from './response-parser.ts';

/** One request to send upstream. */
export interface ExchangeRequest {
  readonly method: string;
  /** Origin-form target: path and query. */
  readonly path: string;
  /** Flat `[name, value, …]` list. */
  readonly headers: readonly string[];
  /**
   * Every name in `headers` is a token and every value a field value by
   * http1/syntax.ts's checks, because they were made only from what
   * PyServe's HTTP/1.1 parser accepted (which applies those checks) and from
   * values PyServe makes itself (headers.ts, forwardedFieldsChecked). The
   * head's serializer then skips checking them again, ~6 % of a proxied
   * request's instructions (docs/benchmarks.md item 17). Default: false.
   */
  readonly fieldsChecked?: boolean;
  /**
   * The whole field block, from server/headers.ts forwardedFieldLines,
   * instead of `headers` (which is then not read): lines made only from what
   * PyServe's HTTP/1.1 parser accepted and from PyServe's own values, a Host
   * among them, no framing field. The head is the request line, these, and
   * the framing (request-head.ts serializeFieldLines).
   */
  readonly fieldBlock?: string;
  /** With `fieldBlock`: the Content-Length the body is framed with, when it has one. */
  readonly contentLength?: string;
  /** The body: none, whole (replayable), or streamed once. */
  readonly body: Buffer | Readable | null;
  /** Wait for the response head, in ms; 0 for none. */
  readonly headersTimeout: number;
  /** Longest pause between response body chunks, in ms; 0 for none. */
  readonly bodyTimeout: number;
}

/** What the caller does at each step of an exchange. */
export interface ExchangeCallbacks {
  /**
   * The final response head arrived (1xx are skipped). Return the stream the
   * body goes to, or null to drop the response (the exchange then ends with
   * no further callback). The head's `headers` object is built only when
   * read: the proxy usually passes the field lines on as they came.
   */
  onHead(head: ResponseHead): Writable | null;
  /** The whole body was written to the sink, and the sink was ended. */
  onEnd(): void;
  /** The exchange failed: before the head (`head`), or while the body streamed (`body`). */
  onError(err: Error, phase: 'head' | 'body'): void;
}

/** A started exchange. */
export interface Exchange {
  /** Abort it; `onError` follows unless it already ended. */
  abort(reason: Error): void;
}

/** What a connection needs from its pool. */
export interface ConnectionOwner {
  /** The response is complete and the connection can take another request. */
  release(conn: H1Connection, keepAliveHintSeconds: number | undefined): void;
  /** The socket closed. */
  gone(conn: H1Connection): void;
  /** A reused connection turned out to be closed before anything was read: send `ex` again on a new one. */
  resend(ex: PendingExchange): void;
}

/** How to reach the upstream. */
export interface ConnectTarget {
  readonly address: string;
  readonly port: number;
  readonly tls: boolean;
  readonly connectTimeoutMs: number;
  readonly maxHeadBytes: number;
}

// Go's http.Transport resends only these, and only without a body, when a
// reused connection fails before any response byte: the upstream may have
// closed it just as the request went out, and nothing can have been processed.
const RESENDABLE: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

// Plain-TCP upstream sockets read into this one buffer (`onread`) instead of
// a fresh 64 KiB allocation per read pushed through a Readable. The parser
// turns the head into a string and copies a partial head out; only body
// bytes are copied here, as they are handed on. Safe because a read callback
// runs to completion before the next read.
const READ_SIZE = 64 * 1024;
const READ_BUFFER = Buffer.allocUnsafe(READ_SIZE);

/**
 * A copy with memory of its own, as a socket read would have handed it.
 * Not `Buffer.from`: small copies come out of Node's shared 64 KiB pool, and a
 * pool slab stays current across several scavenges, gets promoted, and its
 * memory then waits for a mark-compact, which a steady heap may not run for
 * minutes: native memory grew ~0.35 MB/s at 25k req/s. An exact-size
 * ArrayBuffer dies young with its response.
 */
function ownCopy(view: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(view.length);
  view.copy(copy);
  return copy;
}

// Memory for body pieces lent to a sink (http1/sink.ts, LENDING), each the
// size of a read, already touched: a piece goes back here when the sink says
// nothing refers to it, which for a client socket that is keeping up is as
// soon as the write returns. One or two are in use at a time per process;
// a piece the socket still holds is left to the collector.
const spares: ArrayBuffer[] = [];
const MAX_SPARES = 8;

function borrow(view: Buffer): Buffer {
  const piece = Buffer.from(spares.pop() ?? Buffer.allocUnsafeSlow(READ_SIZE).buffer, 0, view.length);
  view.copy(piece);
  return piece;
}

/** Write (or end with) a borrowed piece; its buffer goes back to the spares only when the sink let go of it. */
function lend(sink: Writable, piece: Buffer, end: boolean): void {
  if ((sink as unknown as Lending).writeLent(piece, end) && spares.length < MAX_SPARES) spares.push(piece.buffer as ArrayBuffer);
}

function lender(sink: Writable): Lending | undefined {
  return (sink as { [LENDING]?: boolean })[LENDING] === true ? (sink as unknown as Lending) : undefined;
}

/** Body pieces up to this size go to a sink that {@link takesLatin1} as strings. */
const SMALL_PIECE = 1024;

/**
 * A sink marked with {@link TAKES_LATIN1} (PyServe's H1Response) joins a small
 * latin1 string body to its head in one write: a small piece of body is then
 * read out of READ_BUFFER as a string, instead of into a Buffer of its own
 * that the sink turns into a string again.
 */
function takesLatin1(sink: Writable): boolean {
  return (sink as { [TAKES_LATIN1]?: boolean })[TAKES_LATIN1] === true;
}

/** An exchange on its way: created by the pool, carried by one connection (two when resent). */
export class PendingExchange implements Exchange {
  readonly request: ExchangeRequest;
  readonly callbacks: ExchangeCallbacks;
  readonly head: SerializedHead;
  conn: H1Connection | undefined;
  sink: Writable | undefined;
  ended = false;
  resent = false;

  constructor(request: ExchangeRequest, callbacks: ExchangeCallbacks, head: SerializedHead) {
    this.request = request;
    this.callbacks = callbacks;
    this.head = head;
  }

  abort(reason: Error): void {
    if (this.ended) return;
    if (this.conn !== undefined) this.conn.abort(this, reason);
    else this.fail(reason);
  }

  /** End with an error, telling the caller once. */
  fail(err: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.callbacks.onError(err, this.sink === undefined ? 'head' : 'body');
  }

  get resendable(): boolean {
    return !this.resent && this.request.body === null && RESENDABLE.has(this.request.method);
  }
}

/** One upstream connection. */
export class H1Connection implements ResponseEvents {
  readonly #owner: ConnectionOwner;
  readonly #socket: Socket;
  readonly #parser: ResponseParser;
  #connectTimer: NodeJS.Timeout | undefined;
  #ex: PendingExchange | undefined;
  /** Requests started on this connection. */
  #started = 0;
  #requestSent = false;
  #complete = false;
  #paused = false;
  #dead = false;
  #error: Error | undefined;
  #keepAliveHint: number | undefined;
  #bodyCleanup: (() => void) | undefined;
  #timeoutMs = -1;
  #held: Buffer | string | undefined;
  /** #held is a borrowed spare (lent to the sink when written). */
  #heldLent = false;
  /** Plain TCP: the bytes being parsed are READ_BUFFER's, so what is kept is copied. */
  readonly #shared: boolean;
  /** This connection's place in its pool's list. */
  entry: ListEntry<H1Connection> | undefined;
  /** When the connection was last parked in its pool (ms, `performance.now()`). */
  idleSince = 0;
  /** How long it may stay parked. */
  idleMs = 0;

  constructor(owner: ConnectionOwner, target: ConnectTarget) {
    this.#owner = owner;
    this.#parser = new ResponseParser(target.maxHeadBytes);
    this.#shared = !target.tls;
    const socket = target.tls
      // Backend certificates are not verified, as ingress-nginx's default `proxy_ssl_verify off`.
      ? tlsConnect({ host: target.address, port: target.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
      : netConnect({ host: target.address, port: target.port, onread: { buffer: READ_BUFFER, callback: (n, buf) => this.#onRead(n, buf as Buffer) } });
    this.#socket = socket;
    socket.setNoDelay(true);
    if (target.connectTimeoutMs > 0) {
      this.#connectTimer = setTimeout(() => {
        socket.destroy(new UpstreamError(UPSTREAM_CODES.connectTimeout, `upstream connect timeout after ${target.connectTimeoutMs} ms`));
      }, target.connectTimeoutMs);
    }
    socket.once(target.tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(this.#connectTimer);
      this.#connectTimer = undefined;
    });
    // TLS sockets take no `onread`: their bytes come as 'data'.
    if (target.tls) socket.on('data', (data: Buffer) => this.#onData(data));
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err: Error) => {
      this.#error ??= err;
    });
    socket.on('close', () => this.#onClose());
    socket.on('timeout', () => this.#onTimeout());
  }

  /** The socket is closed or closing: never hand this connection out again. */
  get dead(): boolean {
    return this.#dead;
  }

  /** Send `ex` on this connection. */
  start(ex: PendingExchange): void {
    this.#started++;
    this.#ex = ex;
    ex.conn = this;
    this.#requestSent = false;
    this.#complete = false;
    this.#held = undefined;
    this.#heldLent = false;
    this.#keepAliveHint = undefined;
    this.#parser.begin(this, ex.request.method === 'HEAD');
    const socket = this.#socket;
    this.#setTimeout(ex.request.headersTimeout);
    const { head, framing } = ex.head;
    const body = ex.request.body;
    if (body === null || Buffer.isBuffer(body)) {
      if (body !== null && body.length > 0) {
        socket.cork();
        socket.write(head, 'latin1');
        socket.write(body);
        socket.uncork();
      } else {
        socket.write(head, 'latin1');
      }
      this.#requestSent = true;
      return;
    }
    socket.write(head, 'latin1');
    this.#pumpBody(ex, body, framing.kind === 'chunked' ? -1 : framing.kind === 'length' ? framing.length : 0);
  }

  /** Park the connection in its pool's idle list for at most `ms`. */
  idle(now: number, ms: number): void {
    this.idleSince = now;
    this.idleMs = ms;
  }

  /** Close the socket now. */
  destroy(): void {
    this.#dead = true;
    this.#socket.destroy();
  }

  /** Abort the exchange this connection carries. */
  abort(ex: PendingExchange, reason: Error): void {
    if (this.#ex !== ex) {
      ex.fail(reason);
      return;
    }
    this.#ex = undefined;
    ex.conn = undefined;
    this.#detach();
    this.destroy();
    ex.fail(reason);
  }

  onHead(head: ResponseHead): void {
    const ex = this.#ex!;
    this.#keepAliveHint = head.keepAliveHintSeconds;
    this.#setTimeout(ex.request.bodyTimeout);
    const sink = ex.callbacks.onHead(head);
    if (sink === null) {
      ex.ended = true;
      this.#ex = undefined;
      ex.conn = undefined;
      this.#detach();
      this.destroy();
      return;
    }
    ex.sink = sink;
  }

  onBody(chunk: Buffer, latin1?: string): void {
    const ex = this.#ex;
    if (ex === undefined || ex.ended || chunk.length === 0) return;
    // Out of READ_BUFFER before it is kept or written on (a string is a copy).
    let piece: Buffer | string = chunk;
    let lent = false;
    if (this.#shared) {
      const sink = ex.sink!;
      if (chunk.length <= SMALL_PIECE && takesLatin1(sink)) {
        piece = latin1 ?? chunk.toString('latin1');
      } else if (chunk.length <= READ_SIZE && lender(sink)?.lendable() === true) {
        piece = borrow(chunk);
        lent = true;
      } else {
        piece = ownCopy(chunk);
      }
    }
    // The last chunk read is held back until the parser says whether it ends
    // the response: a small response then goes out as one `end(chunk)`
    // instead of `write(chunk)` + `end()` (Node sends head and body together
    // and skips a tick).
    const held = this.#held;
    const heldLent = this.#heldLent;
    this.#held = piece;
    this.#heldLent = lent;
    if (held !== undefined) this.#write(ex, held, heldLent);
  }

  #write(ex: PendingExchange, chunk: Buffer | string, lent: boolean): void {
    const sink = ex.sink!;
    let full: boolean;
    if (lent) {
      lend(sink, chunk as Buffer, false);
      full = sink.writableNeedDrain;
    } else {
      full = !sink.write(chunk, 'latin1');
    }
    if (full && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
      this.#setTimeout(0);
      ex.sink!.once('drain', () => {
        if (!this.#paused || this.#ex !== ex) return;
        this.#paused = false;
        this.#setTimeout(ex.request.bodyTimeout);
        this.#socket.resume();
      });
    }
  }

  onComplete(): void {
    this.#complete = true;
  }

  /** `onread`'s callback; `true`: reading goes on unless `#onData` paused the socket. */
  #onRead(n: number, buf: Buffer): boolean {
    this.#onData(buf.subarray(0, n));
    return true;
  }

  #onData(data: Buffer): void {
    const ex = this.#ex;
    if (ex === undefined) {
      // Bytes nobody asked for: the connection's framing can no longer be trusted.
      this.destroy();
      return;
    }
    let used: number;
    try {
      used = this.#parser.execute(data);
    } catch (err) {
      this.#failed(ex, err as Error);
      return;
    }
    if (this.#ex !== ex) return;
    if (this.#complete) {
      this.#finish(ex, used === data.length);
    } else if (this.#held !== undefined) {
      const held = this.#held;
      this.#held = undefined;
      this.#write(ex, held, this.#heldLent);
    }
  }

  #onEnd(): void {
    const ex = this.#ex;
    if (ex === undefined) {
      this.destroy();
      return;
    }
    try {
      this.#parser.end();
    } catch (err) {
      this.#failed(ex, err as Error);
      return;
    }
    if (this.#complete && this.#ex === ex) this.#finish(ex, false);
  }

  #onClose(): void {
    this.#dead = true;
    clearTimeout(this.#connectTimer);
    const ex = this.#ex;
    if (ex !== undefined) {
      this.#failed(ex, this.#error ?? new UpstreamError(UPSTREAM_CODES.closed, 'upstream closed the connection'));
    }
    this.#owner.gone(this);
  }

  #onTimeout(): void {
    const ex = this.#ex;
    if (ex === undefined) {
      this.destroy();
      return;
    }
    const err = ex.sink === undefined
      ? new UpstreamError(UPSTREAM_CODES.headersTimeout, 'upstream response timeout')
      : new UpstreamError(UPSTREAM_CODES.bodyTimeout, 'upstream body timeout');
    this.#failed(ex, err);
  }

  // The response is complete: hand the connection back (or close it), then end the sink.
  #finish(ex: PendingExchange, exact: boolean): void {
    this.#ex = undefined;
    ex.ended = true;
    ex.conn = undefined;
    if (this.#paused) {
      this.#paused = false;
      this.#socket.resume();
    }
    const reusable = exact && this.#requestSent && this.#parser.keepAlive && !this.#dead;
    this.#detach();
    if (reusable) this.#owner.release(this, this.#keepAliveHint);
    else this.destroy();
    const held = this.#held;
    this.#held = undefined;
    if (held === undefined) ex.sink?.end();
    else if (!this.#heldLent) ex.sink!.end(held, 'latin1');
    else lend(ex.sink!, held as Buffer, true);
    ex.callbacks.onEnd();
  }

  #failed(ex: PendingExchange, err: Error): void {
    if (this.#ex !== ex) return;
    const nothingRead = !this.#parser.started;
    const reused = this.#started > 1;
    this.#ex = undefined;
    this.#held = undefined;
    ex.conn = undefined;
    this.#detach();
    this.destroy();
    if (ex.ended) return;
    const timeout = err instanceof UpstreamError && err.code !== UPSTREAM_CODES.closed;
    if (reused && nothingRead && !timeout && ex.resendable) {
      ex.resent = true;
      this.#owner.resend(ex);
      return;
    }
    ex.fail(err);
  }

  // Stream the client's body: Content-Length framed (`length` ≥ 0) or chunked (-1).
  #pumpBody(ex: PendingExchange, body: Readable, length: number): void {
    const socket = this.#socket;
    const chunked = length < 0;
    let sent = 0;
    const onDrain = (): void => {
      body.resume();
    };
    const onData = (chunk: Buffer): void => {
      if (chunk.length === 0) return;
      sent += chunk.length;
      if (!chunked && sent > length) {
        this.abort(ex, new UpstreamError(UPSTREAM_CODES.invalidRequest, 'request body longer than its Content-Length'));
        return;
      }
      if (chunked) {
        socket.cork();
        socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        socket.write(chunk);
        socket.write('\r\n', 'latin1');
        socket.uncork();
      } else {
        socket.write(chunk);
      }
      if (socket.writableNeedDrain) {
        body.pause();
        socket.once('drain', onDrain);
      }
    };
    const onEnd = (): void => {
      if (!chunked && sent !== length) {
        this.abort(ex, new UpstreamError(UPSTREAM_CODES.invalidRequest, 'request body shorter than its Content-Length'));
        return;
      }
      if (chunked) socket.write('0\r\n\r\n', 'latin1');
      this.#requestSent = true;
      cleanup();
    };
    const onError = (err: Error): void => {
      this.abort(ex, err);
    };
    const cleanup = (): void => {
      body.removeListener('data', onData);
      body.removeListener('end', onEnd);
      body.removeListener('error', onError);
      socket.removeListener('drain', onDrain);
      this.#bodyCleanup = undefined;
    };
    this.#bodyCleanup = cleanup;
    if (body.readableEnded) {
      onEnd();
      return;
    }
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
  }

  #detach(): void {
    this.#bodyCleanup?.();
  }

  #setTimeout(ms: number): void {
    if (ms === this.#timeoutMs) return;
    this.#timeoutMs = ms;
    this.#socket.setTimeout(ms);
  }
}
