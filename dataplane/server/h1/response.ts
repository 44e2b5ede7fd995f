// The response half of an HTTP/1.1 exchange on PyServe's own server: the
// subset of node:http's ServerResponse the request path uses (writeHead,
// setHeader and friends, write/end with backpressure, writeContinue,
// addTrailers, destroy, 'close'), written straight to the socket. The head is
// built when the first bytes go out, so `end(body)` on an unframed response
// can still send a Content-Length instead of a chunked body, and the head
// and a small body leave in one write.
//
// Not a stream.Writable, as node:http's ServerResponse is not one either: an
// EventEmitter with write/end/destroy and the events and flags stream.pipeline
// and Readable.pipe use ('drain', 'finish', 'close', 'error'; writableEnded,
// writableFinished, writableNeedDrain, destroyed). A Writable queued nothing
// here that the socket does not queue itself, and cost every response ~3
// ticks and its generic end/finish/destroy machinery; those generic
// functions, optimized for this one class under load, were then deoptimized
// whenever other streams (the sockets of a burst of closing connections)
// reached them (docs/benchmarks.md items 20 and 21).
import { STATUS_CODES } from '../../node-http.ts';
import type { OutgoingHttpHeader, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { LENDING, TAKES_LATIN1 } from '../../http1/sink.ts';
import type { Lending } from '../../http1/sink.ts';
import { isFieldValue, isToken } from '../../http1/syntax.ts';

/** What a response needs from its connection. */
export interface ResponseConnection {
  readonly socket: Socket;
  /** The client allows another request on this connection. */
  readonly keepAlive: boolean;
  /** HTTP/1.0 client: no chunked coding, Connection: keep-alive must be explicit. */
  readonly http10: boolean;
  /** The request asked `Expect: 100-continue` and its body has not arrived: without a 100, the connection must close. */
  readonly awaitingContinue: boolean;
  /** `keep-alive: timeout=N\r\n` telling clients when an idle connection closes, or ''. */
  readonly keepAliveHint: string;
  /** The response was finished (`ok`) or abandoned (destroyed before that). */
  responseDone(res: H1Response, ok: boolean): void;
}

function headersSentError(): Error {
  return Object.assign(new Error('Cannot set headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' });
}

function invalid(code: string, what: string): Error {
  return Object.assign(new TypeError(`Invalid ${what}`), { code });
}

// As node:http's setHeader: a bad name or value is refused where it is set.
function checkField(name: string, value: OutgoingHttpHeader): void {
  if (name.length === 0 || !isToken(name, 0, name.length)) throw invalid('ERR_INVALID_HTTP_TOKEN', `header name "${name}"`);
  for (const v of Array.isArray(value) ? value : [value]) {
    const s = String(v);
    if (!isFieldValue(s, 0, s.length)) throw invalid('ERR_INVALID_CHAR', `character in header content ["${name}"]`);
  }
}

function checkStatus(status: number): void {
  if (!Number.isInteger(status) || status < 100 || status > 999) throw Object.assign(new RangeError(`Invalid status code: ${status}`), { code: 'ERR_HTTP_INVALID_STATUS_CODE' });
}

// RFC 9110 §6.4.1: no content in these, whatever the handler writes.
function bodyless(status: number, head: boolean): boolean {
  return head || status === 204 || status === 304 || status < 200;
}

// The Date header, rebuilt at most once a second.
let dateSecond = -1;
let dateValue = '';
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

// Whether `headers` can be taken as they are: lower-case names, no value left undefined.
function usable(headers: OutgoingHttpHeaders): boolean {
  for (const name in headers) {
    if (headers[name] === undefined) return false;
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c >= 0x41 && c <= 0x5a) return false;
    }
  }
  return true;
}

function isEmpty(headers: OutgoingHttpHeaders): boolean {
  for (const _ in headers) return false;
  return true;
}

// writeHead's headers over those set before. The proxy hands over a fresh
// object of lower-case names and sets none before: that one is taken as it
// is instead of being copied field by field (nothing changes the headers
// once the head is fixed, and the head is rendered at once).
function merge(prior: OutgoingHttpHeaders, headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  if (isEmpty(prior) && usable(headers)) return headers;
  const merged: OutgoingHttpHeaders = { ...prior };
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined) merged[name.toLowerCase()] = value;
  }
  return merged;
}

type Chunk = Buffer | Uint8Array | string;
type Callback = (err?: Error | null) => void;

function streamError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

function callBack(cb: Callback, err?: Error): void {
  cb(err);
}

// Without a listener an 'error' would be thrown: a response's failure is its
// connection's, never the process's.
function errorNT(res: H1Response, err: Error): void {
  if (res.listenerCount('error') > 0) res.emit('error', err);
}

function errorCloseNT(res: H1Response, err: Error | undefined): void {
  if (err !== undefined) errorNT(res, err);
  res.emitClose();
}

/** Heads and bodies this small are joined into one string for a single write. */
const JOIN_LIMIT = 1024;

/** An HTTP/1.1 response written to the connection's socket: an EventEmitter (below the class). */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type -- its prototype is set below
export interface H1Response extends EventEmitter {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class H1Response implements Lending {
  // Both marks are set once on the prototype, below the class: as class
  // fields every response would define them again (with a per-response
  // flag for writeLent, ~600 instructions per response: benchmarks item 20).
  /** Small latin1 string bodies are joined to the head (#send): the upstream client may hand them so. */
  declare readonly [TAKES_LATIN1]: true;
  /** The upstream client may lend body pieces (lendable, writeLent). */
  declare readonly [LENDING]: true;
  statusCode = 200;
  statusMessage: string | undefined;
  /** The response head is fixed (writeHead was called or bytes went out), as in node:http. */
  headersSent = false;
  /** end() was called. */
  writableEnded = false;
  /** 'finish' was emitted: every byte was handed to the socket and the socket took them all. */
  writableFinished = false;
  /** A write went past the socket's buffer: 'drain' follows once it is empty. */
  writableNeedDrain = false;
  /** destroy() was called, or the response finished. */
  destroyed = false;
  /** The response is done: 'close' was emitted or is on its way. */
  closed = false;
  /**
   * Always true, as on node:http's ServerResponse: stream.finished() takes
   * a response that closes while this is true and writableFinished is not
   * as closed early (ERR_STREAM_PREMATURE_CLOSE), and not when it is false.
   */
  readonly writable = true;
  readonly socket: Socket;
  readonly #conn: ResponseConnection;
  readonly #head: boolean;
  #headers: OutgoingHttpHeaders = {};
  #flushed = false;
  #chunked = false;
  #noBody = false;
  /** Body bytes still owed by a Content-Length, or -1 when the response is not length-framed. */
  #owed = -1;
  #close = false;
  /** Listening for the socket's 'drain', while writableNeedDrain. */
  #onDrain: (() => void) | undefined;
  /** onClose's functions and their arguments, in order: `[fn, arg, fn, arg, …]`. */
  #closeHooks: unknown[] | undefined;
  #trailers: string | undefined;
  /** Status line and fields, once checked; their Content-Length (-1: none) and whether one says `close`. */
  #fields: string | undefined;
  #declaredLength = -1;
  #closeField = false;
  /** While writeCheckedHead renders: the fields are known to pass the checks. */
  #fieldsChecked = false;
  /** After writeFieldLines: builds the headers object, should anything ask for it. */
  #headersLater: (() => OutgoingHttpHeaders) | undefined;

  constructor(conn: ResponseConnection, method: string) {
    this.#conn = conn;
    this.socket = conn.socket;
    this.#head = method === 'HEAD';
  }

  /** The connection closes after this response (the client asked, or `Connection: close` was set). */
  get closesConnection(): boolean {
    return this.#close;
  }

  setHeader(name: string, value: OutgoingHttpHeader): this {
    if (this.headersSent) throw headersSentError();
    checkField(name, value);
    this.#headers[name.toLowerCase()] = value;
    return this;
  }

  appendHeader(name: string, value: OutgoingHttpHeader): this {
    if (this.headersSent) throw headersSentError();
    checkField(name, value);
    const key = name.toLowerCase();
    const prior = this.#headers[key];
    if (prior === undefined) this.#headers[key] = value;
    else this.#headers[key] = [...(Array.isArray(prior) ? prior : [String(prior)]), ...(Array.isArray(value) ? value : [String(value)])];
    return this;
  }

  getHeader(name: string): OutgoingHttpHeader | undefined {
    return this.#current()[name.toLowerCase()];
  }

  getHeaders(): OutgoingHttpHeaders {
    return { ...this.#current() };
  }

  hasHeader(name: string): boolean {
    return this.#current()[name.toLowerCase()] !== undefined;
  }

  #current(): OutgoingHttpHeaders {
    if (this.#headersLater !== undefined) {
      this.#headers = this.#headersLater();
      this.#headersLater = undefined;
    }
    return this.#headers;
  }

  removeHeader(name: string): void {
    if (this.headersSent) throw headersSentError();
    delete this.#headers[name.toLowerCase()];
  }

  /**
   * writeHead for headers whose names and values already passed
   * http1/syntax.ts's checks, which writeHead would apply again: the proxy's,
   * built from what PyServe's upstream parser accepted (headers.ts,
   * responseFieldsChecked). Headers set before with setHeader were checked then.
   */
  writeCheckedHead(status: number, headers: OutgoingHttpHeaders): this {
    this.#fieldsChecked = true;
    try {
      return this.writeHead(status, headers);
    } finally {
      this.#fieldsChecked = false;
    }
  }

  /**
   * writeHead for a proxied head passed on as it came (server/headers.ts,
   * clientResponseFieldLines): `lines` are complete `name: value\r\n` lines
   * that passed http1/syntax.ts's checks, with no framing, connection or
   * Content-Length field; `contentLength` is the upstream's (-1: none), which
   * frames this response as a Content-Length field would. `headers` gives the
   * same fields as an object, built only if something reads them. With
   * headers set before, they are merged as writeHead merges them.
   */
  writeFieldLines(status: number, lines: string, hasDate: boolean, contentLength: number, headers: () => OutgoingHttpHeaders): this {
    if (this.headersSent) throw headersSentError();
    if (!isEmpty(this.#headers)) return this.writeCheckedHead(status, headers());
    checkStatus(status);
    this.statusCode = status;
    this.#fields = `${this.#statusLine()}${lines}${hasDate ? '' : `date: ${httpDate()}\r\n`}`;
    this.#declaredLength = contentLength;
    this.#closeField = false;
    this.#headersLater = headers;
    this.headersSent = true;
    return this;
  }

  /** Fix the status and headers (merged over any set before). Nothing is written yet. */
  writeHead(status: number, reasonOrHeaders?: string | OutgoingHttpHeaders, maybeHeaders?: OutgoingHttpHeaders): this {
    if (this.headersSent) throw headersSentError();
    checkStatus(status);
    let headers = maybeHeaders;
    if (typeof reasonOrHeaders === 'string') this.statusMessage = reasonOrHeaders;
    else headers = reasonOrHeaders;
    const prior = this.#headers;
    const priorStatus = this.statusCode;
    if (headers !== undefined) this.#headers = merge(prior, headers);
    this.statusCode = status;
    try {
      // Refuse a bad head now, while the caller can still answer otherwise.
      this.#fields = this.#fieldsText();
    } catch (err) {
      this.#headers = prior;
      this.statusCode = priorStatus;
      throw err;
    }
    this.headersSent = true;
    return this;
  }

  /** `100 Continue` was sent. */
  continueSent = false;

  /** `100 Continue`, for a request that asked with `Expect: 100-continue`. */
  writeContinue(): void {
    if (this.#flushed || this.continueSent) return;
    this.continueSent = true;
    this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
  }

  /** Trailer fields, sent after a chunked body (dropped otherwise, as node:http does for unchunked bodies). */
  addTrailers(trailers: OutgoingHttpHeaders | readonly [string, string][]): void {
    let out = '';
    const add = (name: string, value: OutgoingHttpHeader): void => {
      checkField(name, value);
      for (const v of Array.isArray(value) ? value : [value]) out += `${name}: ${String(v)}\r\n`;
    };
    if (Array.isArray(trailers)) for (const [n, v] of trailers as [string, string][]) add(n, v);
    else for (const n in trailers) if ((trailers as OutgoingHttpHeaders)[n] !== undefined) add(n, (trailers as OutgoingHttpHeaders)[n]!);
    this.#trailers = (this.#trailers ?? '') + out;
  }

  /** As Writable.write: false once the socket's buffer is full ('drain' follows). */
  write(chunk: Chunk, encoding?: BufferEncoding | Callback, cb?: Callback): boolean {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    checkChunk(chunk);
    if (this.writableEnded || this.destroyed) {
      const err = this.destroyed ? streamError('ERR_STREAM_DESTROYED', 'Cannot call write after a stream was destroyed') : streamError('ERR_STREAM_WRITE_AFTER_END', 'write after end');
      // As node:http: a write after end is an 'error'; after destroy, only the callback hears of it.
      if (!this.destroyed) process.nextTick(errorNT, this, err);
      if (cb !== undefined) process.nextTick(callBack, cb, err);
      return false;
    }
    const err = this.#send(chunk, encoding ?? 'utf8', false, cb);
    if (err !== undefined) {
      if (cb !== undefined) process.nextTick(callBack, cb, err);
      this.destroy(err);
      return false;
    }
    return !this.writableNeedDrain;
  }

  /** As Writable.end: the last chunk, if any; 'finish' and 'close' follow on a later tick. */
  end(chunk?: Chunk | Callback | null, encoding?: BufferEncoding | Callback, cb?: Callback): this {
    if (typeof chunk === 'function') {
      cb = chunk;
      chunk = undefined;
    } else if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (this.writableEnded) {
      if (cb !== undefined) {
        if (this.writableFinished) process.nextTick(callBack, cb, streamError('ERR_STREAM_ALREADY_FINISHED', 'Cannot call end after a stream was finished'));
        else if (!this.destroyed) this.once('finish', cb);
      }
      return this;
    }
    if (this.destroyed) {
      if (cb !== undefined) process.nextTick(callBack, cb, streamError('ERR_STREAM_DESTROYED', 'Cannot call end after a stream was destroyed'));
      return this;
    }
    if (chunk !== undefined && chunk !== null) checkChunk(chunk);
    this.writableEnded = true;
    if (cb !== undefined) this.once('finish', cb);
    const err = this.#final(chunk ?? undefined, (encoding as BufferEncoding | undefined) ?? 'utf8');
    if (err !== undefined) {
      this.destroy(err);
      return this;
    }
    // With the socket's buffer full, 'finish' waits for its 'drain' (#afterWrite).
    if (!this.writableNeedDrain) process.nextTick(H1Response.#finishNT, this);
    return this;
  }

  static #finishNT(res: H1Response): void {
    res.#finish();
  }

  /**
   * After end(), once the socket took every byte (it may still be sending
   * them): 'finish', then the response is done and its connection may go on
   * to the next request, then 'close'.
   */
  #finish(): void {
    if (this.destroyed) return;
    this.writableFinished = true;
    this.emit('finish');
    if (this.destroyed) return;
    this.destroyed = true;
    this.closed = true;
    this.#conn.responseDone(this, true);
    this.emitClose();
  }

  /**
   * `fn` runs when the response closes, before the 'close' listeners, as a
   * once('close') listener would: the request path's own bookkeeping, which
   * as EventEmitter listeners (each with its once wrapper, removed again
   * when it runs) cost every response ~4,000 instructions (docs/benchmarks.md
   * item 21). server/response-close.ts picks this or once('close'). `fn`
   * gets `arg`, so a caller can hand over a function made once and the
   * object it works on instead of a closure per response.
   */
  onClose(fn: () => void): void;
  onClose<T>(fn: (arg: T) => void, arg: T): void;
  onClose(fn: (arg: unknown) => void, arg?: unknown): void {
    (this.#closeHooks ??= []).push(fn, arg);
  }

  /** The hooks, then the 'close' listeners. For the close ticks above; not for callers. */
  emitClose(): void {
    const hooks = this.#closeHooks;
    if (hooks !== undefined) {
      this.#closeHooks = undefined;
      for (let i = 0; i < hooks.length; i += 2) (hooks[i] as (arg: unknown) => void)(hooks[i + 1]);
    }
    this.emit('close');
  }

  /**
   * Abandon the response (a finished one is already done): its connection
   * is cut unless the response was complete. 'error' (with `err`) and
   * 'close' follow on the next tick.
   */
  destroy(err?: Error | null): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.closed = true;
    this.#stopDrainWait();
    // Destroyed from a 'finish' listener, the response was still complete.
    this.#conn.responseDone(this, this.writableFinished && (err === undefined || err === null));
    process.nextTick(errorCloseNT, this, err ?? undefined);
    return this;
  }

  #statusLine(): string {
    const reason = this.statusMessage ?? STATUS_CODES[this.statusCode] ?? 'unknown';
    if (!isFieldValue(reason, 0, reason.length)) throw invalid('ERR_INVALID_CHAR', 'character in status message');
    return `HTTP/1.1 ${this.statusCode} ${reason}\r\n`;
  }

  // The status line and the handler's fields, checked: built once, by
  // writeHead or at the first write, since nothing may change them after.
  #fieldsText(): string {
    let head = this.#statusLine();
    let length = -1;
    let close = false;
    let hasDate = false;
    const headers = this.#headers;
    const check = !this.#fieldsChecked;
    for (const name in headers) {
      const value = headers[name]!;
      if (check && (name.length === 0 || !isToken(name, 0, name.length))) throw invalid('ERR_INVALID_HTTP_TOKEN', `header name "${name}"`);
      if (name === 'content-length') {
        length = Number(value);
        if (!Number.isSafeInteger(length) || length < 0) throw invalid('ERR_HTTP_INVALID_HEADER_VALUE', 'Content-Length');
        continue;
      } else if (name === 'transfer-encoding') {
        // Framing is this server's business; a handler's value would contradict it.
        continue;
      } else if (name === 'connection') {
        if (/\bclose\b/i.test(String(value))) close = true;
        continue;
      } else if (name === 'date') {
        hasDate = true;
      }
      if (Array.isArray(value)) {
        for (const v of value) head += this.#line(name, String(v), check);
      } else {
        head += this.#line(name, typeof value === 'string' ? value : String(value), check);
      }
    }
    if (!hasDate) head += `date: ${httpDate()}\r\n`;
    this.#declaredLength = length;
    this.#closeField = close;
    return head;
  }

  // The whole head: the fields plus framing and connection management.
  // `lastBody` is the whole body's size when it is known now (end(chunk) before any write).
  #render(lastBody: number | undefined): string {
    let head = this.#fields ??= this.#fieldsText();
    const status = this.statusCode;
    let length: number | undefined = this.#declaredLength >= 0 ? this.#declaredLength : undefined;
    // Answered without `100 Continue`: the client may or may not send the body
    // now, so where the next request starts is unknown (node:http closes too).
    let close = this.#closeField || !this.#conn.keepAlive || (this.#conn.awaitingContinue && !this.continueSent);
    const noBody = bodyless(status, this.#head);
    let chunked = false;
    if (length !== undefined) {
      head += `content-length: ${length}\r\n`;
    } else if (status === 204 || status === 304 || status < 200) {
      // No framing header at all for these.
    } else if (lastBody !== undefined) {
      length = lastBody;
      if (!this.#head) head += `content-length: ${length}\r\n`;
    } else if (this.#head) {
      // A HEAD answer describes the GET one without sending it; unknown length stays unknown.
    } else if (this.#conn.http10) {
      // HTTP/1.0 has no chunked coding: the body ends when the connection does.
      close = true;
    } else {
      head += 'transfer-encoding: chunked\r\n';
      chunked = true;
    }
    if (close) head += 'connection: close\r\n';
    else head += this.#conn.http10 ? `connection: keep-alive\r\n${this.#conn.keepAliveHint}` : this.#conn.keepAliveHint;
    this.#close = close;
    this.#noBody = noBody;
    this.#chunked = chunked && !noBody;
    this.#owed = noBody || length === undefined ? -1 : length;
    return head + '\r\n';
  }

  #line(name: string, value: string, check: boolean): string {
    if (check && !isFieldValue(value, 0, value.length)) throw invalid('ERR_INVALID_CHAR', `character in header content ["${name}"]`);
    return `${name}: ${value}\r\n`;
  }

  // end()'s part: the last chunk, the head if nothing went out yet, the end of a chunked body.
  #final(chunk: Chunk | undefined, encoding: BufferEncoding): Error | undefined {
    if (chunk !== undefined || !this.#flushed) {
      const err = this.#send(chunk, encoding, true, undefined);
      if (err !== undefined) return err;
    }
    if (this.#chunked) {
      this.#chunked = false;
      this.socket.write(`0\r\n${this.#trailers ?? ''}\r\n`, 'latin1');
      this.#afterWrite();
    }
    if (this.#owed > 0) {
      // Fewer bytes than the Content-Length promised: the client must not take it as complete.
      return Object.assign(new Error(`response body ${this.#owed} bytes shorter than its Content-Length`), { code: 'ERR_HTTP_CONTENT_LENGTH_MISMATCH' });
    }
    return undefined;
  }

  // Hands the bytes to the socket; `cb` (write's) goes with the last socket
  // write, so it is called once the socket has sent them, as node:http does.
  #send(chunk: Chunk | undefined, encoding: BufferEncoding, last: boolean, cb: Callback | undefined): Error | undefined {
    const socket = this.socket;
    const size = chunk === undefined ? 0 : typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.length;
    let head = '';
    if (!this.#flushed) {
      try {
        // The whole body is known when the first write is the last: it gets a Content-Length.
        head = this.#render(last ? size : undefined);
      } catch (err) {
        return err as Error;
      }
      this.headersSent = true;
      this.#flushed = true;
    }
    if (this.#noBody || size === 0) {
      let tail = head;
      if (last && this.#chunked) {
        this.#chunked = false;
        tail += `0\r\n${this.#trailers ?? ''}\r\n`;
      }
      if (tail !== '') socket.write(tail, 'latin1', cb);
      else if (cb !== undefined) process.nextTick(callBack, cb);
      this.#afterWrite();
      return undefined;
    }
    if (this.#owed >= 0) {
      if (size > this.#owed) return Object.assign(new Error('response body longer than its Content-Length'), { code: 'ERR_HTTP_CONTENT_LENGTH_MISMATCH' });
      this.#owed -= size;
    }
    let prefix = head;
    let suffix = '';
    if (this.#chunked) {
      prefix += `${size.toString(16)}\r\n`;
      suffix = '\r\n';
      if (last) {
        suffix += `0\r\n${this.#trailers ?? ''}\r\n`;
        this.#chunked = false;
      }
    }
    if (typeof chunk === 'string' && (encoding === 'latin1' || encoding === 'binary' || encoding === 'ascii')) {
      socket.write(prefix + chunk + suffix, 'latin1', cb);
    } else if (size <= JOIN_LIMIT && Buffer.isBuffer(chunk)) {
      socket.write(prefix + chunk.toString('latin1', 0, size) + suffix, 'latin1', cb);
    } else {
      socket.cork();
      if (prefix !== '') socket.write(prefix, 'latin1');
      if (suffix !== '') {
        socket.write(chunk!, encoding);
        socket.write(suffix, 'latin1', cb);
      } else {
        socket.write(chunk!, encoding, cb);
      }
      // A lender asks right after this returns whether the socket still holds the chunk.
      if (lending) socket.uncork();
      else process.nextTick(uncork, socket);
    }
    this.#afterWrite();
    return undefined;
  }

  /**
   * Plain TCP only: a TLS socket hands the bytes to OpenSSL, and whether that
   * keeps a reference was not worth finding out for the slower path.
   */
  lendable(): boolean {
    const socket = this.socket;
    return (socket as { encrypted?: boolean }).encrypted !== true && socket.writableLength === 0 && socket.writableCorked === 0 &&
      !this.writableEnded && !this.destroyed;
  }

  /**
   * #send hands the chunk to the socket before returning (or refuses it).
   * The socket then holds nothing when its writableLength is 0: a socket
   * counts a chunk as written only once the handle is done with it, so the
   * write completed inside the call (libuv's try-write took it all).
   * Otherwise libuv may still read from it.
   */
  writeLent(chunk: Buffer, end: boolean): boolean {
    lending = true;
    try {
      if (end) this.end(chunk);
      else this.write(chunk);
    } finally {
      lending = false;
    }
    return this.socket.writableLength === 0;
  }

  // Backpressure: past the socket's high-water mark, the caller waits for 'drain' (and end() for it before 'finish').
  #afterWrite(): void {
    if (!this.socket.writableNeedDrain || this.#onDrain !== undefined) return;
    this.writableNeedDrain = true;
    const onDrain = (): void => {
      this.#stopDrainWait();
      if (this.destroyed) return;
      if (this.writableEnded) this.#finish();
      else this.emit('drain');
    };
    this.#onDrain = onDrain;
    this.socket.on('drain', onDrain);
  }

  #stopDrainWait(): void {
    const onDrain = this.#onDrain;
    if (onDrain === undefined) return;
    this.#onDrain = undefined;
    this.writableNeedDrain = false;
    this.socket.off('drain', onDrain);
  }
}

// As Writable: strings and bytes only (a number would go out as nothing useful).
function checkChunk(chunk: unknown): void {
  if (typeof chunk !== 'string' && !(chunk instanceof Uint8Array)) {
    throw Object.assign(new TypeError('The "chunk" argument must be of type string or an instance of Buffer or Uint8Array'), { code: 'ERR_INVALID_ARG_TYPE' });
  }
}

Object.defineProperties(H1Response.prototype, { [TAKES_LATIN1]: { value: true }, [LENDING]: { value: true } });
// EventEmitter's methods, without its constructor: that gives every object a
// listener table of its own, a dictionary-mode object allocated per
// response, while the request path registers no listeners on most of them
// (onClose). EventEmitter's methods create the table on the first listener
// and treat an object without one as having none, as they do for objects
// that mix them in.
Object.setPrototypeOf(H1Response.prototype, EventEmitter.prototype);

/**
 * Inside writeLent, #send uncorks the socket before returning. Not a field:
 * every response would initialize it. Writes are synchronous and nothing in
 * one reaches another response's #send (its events come on a later tick),
 * so one flag for the process is enough; were one to, that write would
 * only be uncorked sooner.
 */
let lending = false;

function uncork(socket: Socket): void {
  socket.uncork();
}
