// The response half of an HTTP/1.1 exchange on PyServe's own server: the
// subset of node:http's ServerResponse the request path uses (writeHead,
// setHeader and friends, write/end with backpressure, writeContinue,
// addTrailers, destroy, 'close'), written straight to the socket. The head is
// built when the first bytes go out, so `end(body)` on an unframed response
// can still send a Content-Length instead of a chunked body, and the head
// and a small body leave in one write.
import { STATUS_CODES } from '../../node-http.ts';
import type { OutgoingHttpHeader, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
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

type Chunk = Buffer | string;
type Callback = (err?: Error | null) => void;

/** Heads and bodies this small are joined into one string for a single write. */
const JOIN_LIMIT = 1024;

/** An HTTP/1.1 response written to the connection's socket. */
export class H1Response extends Writable implements Lending {
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
  /** Writes handed to the stream, and which of them (1-based) end() gave; 0 for none. */
  #queued = 0;
  #sent = 0;
  #endIndex = 0;
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
    // Strings pass through undecoded: a small string body joins the head as it is.
    super({ decodeStrings: false });
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

  override write(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    this.#queued++;
    return super.write(chunk, encoding as BufferEncoding, cb as () => void);
  }

  override end(chunk?: unknown, encoding?: unknown, cb?: unknown): this {
    // Note which write is the last (by position: the same bytes may have been
    // written before), so it can carry the end of the body too.
    if (chunk !== undefined && chunk !== null && typeof chunk !== 'function' && !this.writableEnded) this.#endIndex = ++this.#queued;
    return super.end(chunk as Chunk, encoding as BufferEncoding, cb as () => void);
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

  override _write(chunk: Chunk, encoding: BufferEncoding, cb: Callback): void {
    this.#send(chunk, encoding, ++this.#sent === this.#endIndex, cb);
  }

  override _final(cb: Callback): void {
    if (!this.#flushed) {
      this.#send(undefined, 'latin1', true, cb);
      return;
    }
    if (this.#chunked) {
      this.#chunked = false;
      this.socket.write(`0\r\n${this.#trailers ?? ''}\r\n`, 'latin1');
    }
    if (this.#owed > 0) {
      // Fewer bytes than the Content-Length promised: the client must not take it as complete.
      cb(Object.assign(new Error(`response body ${this.#owed} bytes shorter than its Content-Length`), { code: 'ERR_HTTP_CONTENT_LENGTH_MISMATCH' }));
      return;
    }
    cb();
  }

  #send(chunk: Chunk | undefined, encoding: BufferEncoding, last: boolean, cb: Callback): void {
    const socket = this.socket;
    const size = chunk === undefined ? 0 : typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.length;
    let head = '';
    if (!this.#flushed) {
      try {
        // The whole body is known when the first write is the last: it gets a Content-Length.
        head = this.#render(last ? size : undefined);
      } catch (err) {
        cb(err as Error);
        return;
      }
      this.headersSent = true;
      this.#flushed = true;
    }
    if (this.#noBody || size === 0) {
      if (head !== '') socket.write(head, 'latin1');
      if (last && this.#chunked) {
        this.#chunked = false;
        socket.write(`0\r\n${this.#trailers ?? ''}\r\n`, 'latin1');
      }
      this.#afterWrite(cb);
      return;
    }
    if (this.#owed >= 0) {
      if (size > this.#owed) {
        cb(Object.assign(new Error('response body longer than its Content-Length'), { code: 'ERR_HTTP_CONTENT_LENGTH_MISMATCH' }));
        return;
      }
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
      socket.write(prefix + chunk + suffix, 'latin1');
    } else if (size <= JOIN_LIMIT && Buffer.isBuffer(chunk)) {
      socket.write(prefix + chunk.toString('latin1', 0, size) + suffix, 'latin1');
    } else {
      socket.cork();
      if (prefix !== '') socket.write(prefix, 'latin1');
      socket.write(chunk!, encoding);
      if (suffix !== '') socket.write(suffix, 'latin1');
      // A lender asks right after this returns whether the socket still holds the chunk.
      if (lending) socket.uncork();
      else process.nextTick(uncork, socket);
    }
    this.#afterWrite(cb);
  }

  /**
   * Plain TCP only: a TLS socket hands the bytes to OpenSSL, and whether that
   * keeps a reference was not worth finding out for the slower path.
   */
  lendable(): boolean {
    const socket = this.socket;
    return (socket as { encrypted?: boolean }).encrypted !== true && socket.writableLength === 0 && socket.writableCorked === 0 &&
      this.writableLength === 0 && this.writableCorked === 0 && !this.writableEnded && !this.destroyed;
  }

  /**
   * With nothing queued in this stream, Writable calls _write at once and
   * #send hands the chunk to the socket before returning (or refuses it).
   * The socket then holds nothing when its writableLength is 0: Writable
   * counts a chunk as written only once the handle is done with it, so the
   * write completed inside the call (libuv's try-write took it all).
   * Otherwise libuv may still read from it. Not this stream's own
   * writableLength: its callback waits for 'drain' whenever the socket's
   * write went past the high-water mark, even when that write completed.
   */
  writeLent(chunk: Buffer, end: boolean): boolean {
    const direct = this.writableLength === 0 && this.writableCorked === 0;
    lending = true;
    try {
      if (end) this.end(chunk);
      else this.write(chunk);
    } finally {
      lending = false;
    }
    return direct && this.socket.writableLength === 0;
  }

  #afterWrite(cb: Callback): void {
    if (!this.socket.writableNeedDrain) {
      cb();
      return;
    }
    // Backpressure: the caller's next write waits for the socket.
    const onDrain = (): void => {
      this.socket.off('close', onDrain);
      this.socket.off('drain', onDrain);
      cb();
    };
    this.socket.once('drain', onDrain);
    this.socket.once('close', onDrain);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#conn.responseDone(this, this.writableFinished && err === null);
    cb(err);
  }
}

Object.defineProperties(H1Response.prototype, { [TAKES_LATIN1]: { value: true }, [LENDING]: { value: true } });

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
