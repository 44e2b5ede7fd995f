// Incremental parser of HTTP/1.1 responses from an upstream (RFC 9112).
// Strict where leniency would let one response be read two ways: bare LF,
// obs-fold, control characters, a malformed or conflicting Content-Length and
// a malformed chunk size are all errors (the proxy answers 502 and closes the
// connection), never guessed at. A response framed by Transfer-Encoding and
// Content-Length together is read by its Transfer-Encoding and its
// connection is not reused (§6.1).
import { UPSTREAM_CODES, UpstreamError } from './errors.ts';

/** A final (non-1xx) response head. */
export interface ResponseHead {
  readonly status: number;
  /** Lower-case names; a repeated field is an array in arrival order. */
  readonly headers: Record<string, string | string[]>;
  /** The connection may carry another request once this response is read. */
  readonly keepAlive: boolean;
  /** Seconds from `Keep-Alive: timeout=N`, when the upstream sent one. */
  readonly keepAliveHintSeconds: number | undefined;
}

/** What the parser reports, in order: one head, body chunks, then completion. */
export interface ResponseEvents {
  onHead(head: ResponseHead): void;
  onBody(chunk: Buffer): void;
  onComplete(): void;
}

// tchar (RFC 9110 §5.6.2), by character code.
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

function isToken(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TCHAR[c] === 0) return false;
  }
  return true;
}

// Field values and reason phrases: HTAB, SP, visible ASCII and obs-text; no other control character.
function isFieldValue(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false;
  }
  return true;
}

const HTTP_1_PREFIX = 'HTTP/1.';

// `HTTP/1.x NNN[ reason]` → NNN, or -1 when malformed.
function statusOf(s: string, eol: number): number {
  if (eol < 12 || !s.startsWith(HTTP_1_PREFIX)) return -1;
  const minor = s.charCodeAt(7);
  if ((minor !== 0x30 && minor !== 0x31) || s.charCodeAt(8) !== 0x20) return -1;
  const d1 = s.charCodeAt(9) - 0x30;
  const d2 = s.charCodeAt(10) - 0x30;
  const d3 = s.charCodeAt(11) - 0x30;
  if (d1 < 1 || d1 > 9 || d2 < 0 || d2 > 9 || d3 < 0 || d3 > 9) return -1;
  if (eol > 12 && (s.charCodeAt(12) !== 0x20 || !isFieldValue(s, 13, eol))) return -1;
  return d1 * 100 + d2 * 10 + d3;
}
const DIGITS = /^\d{1,15}$/;
const HEX = /^[0-9a-fA-F]{1,13}$/;
const CRLF_CRLF = Buffer.from('\r\n\r\n');
/** A chunk-size line, extensions included, may not be longer than this. */
const MAX_CHUNK_LINE = 4096;

// Parser states (plain numbers: a switch over small integers stays fast).
const State = { Head: 0, Length: 1, Close: 2, ChunkSize: 3, ChunkData: 4, ChunkDataEnd: 5, Trailers: 6, Done: 7 } as const;
type State = (typeof State)[keyof typeof State];

function bad(message: string): UpstreamError {
  return new UpstreamError(UPSTREAM_CODES.badResponse, message);
}

function commaTokens(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  // The usual case, one token (`keep-alive`, `13`), without split and trim.
  if (typeof value === 'string' && value.indexOf(',') < 0) return value === '' ? [] : [value.toLowerCase()];
  const joined = Array.isArray(value) ? value.join(',') : value;
  const out: string[] = [];
  for (const t of joined.split(',')) {
    const token = t.trim().toLowerCase();
    if (token !== '') out.push(token);
  }
  return out;
}

/**
 * Parser of the responses on one connection, one at a time. `begin` starts a
 * response; `execute` feeds it bytes and returns how many it used (fewer than
 * given only once the response is complete); `end` tells it the upstream
 * closed the connection. Errors are thrown as {@link UpstreamError}.
 */
export class ResponseParser {
  readonly #maxHeadBytes: number;
  #events: ResponseEvents | undefined;
  #state: State = State.Done;
  #noBody = false;
  #head: Buffer | undefined;
  #remaining = 0;
  #line = '';
  #trailerBytes = 0;
  #keepAlive = false;

  constructor(maxHeadBytes: number) {
    this.#maxHeadBytes = maxHeadBytes;
  }

  /** Expect a new response; `noBody` for a HEAD request, whose response has no body whatever it says. */
  begin(events: ResponseEvents, noBody: boolean): void {
    this.#events = events;
    this.#noBody = noBody;
    this.#state = State.Head;
    this.#head = undefined;
    this.#line = '';
    this.#trailerBytes = 0;
  }

  /** The response is complete. */
  get done(): boolean {
    return this.#state === State.Done;
  }

  /** Bytes of the response are pending (a head or body has started). */
  get started(): boolean {
    return this.#state !== State.Head || this.#head !== undefined;
  }

  /** Whether the connection may be reused after the complete response. */
  get keepAlive(): boolean {
    return this.#keepAlive;
  }

  /** Consume bytes; returns how many belonged to the current response. */
  execute(data: Buffer): number {
    let offset = 0;
    while (offset < data.length && this.#state !== State.Done) {
      switch (this.#state) {
        case State.Head:
          offset = this.#readHead(data, offset);
          break;
        case State.Length:
          offset = this.#readCounted(data, offset, State.Done);
          break;
        case State.Close: {
          const chunk = offset === 0 ? data : data.subarray(offset);
          offset = data.length;
          this.#events!.onBody(chunk);
          break;
        }
        case State.ChunkSize:
        case State.ChunkDataEnd:
        case State.Trailers:
          offset = this.#readChunkLine(data, offset);
          break;
        case State.ChunkData:
          offset = this.#readCounted(data, offset, State.ChunkDataEnd);
          break;
      }
    }
    return offset;
  }

  // Body bytes of a known count (Content-Length, or one chunk); `after` is the state once they are all read.
  #readCounted(data: Buffer, offset: number, after: State): number {
    const n = Math.min(this.#remaining, data.length - offset);
    this.#remaining -= n;
    if (this.#remaining === 0) this.#state = after;
    this.#events!.onBody(data.subarray(offset, offset + n));
    if (this.#state === State.Done) this.#events!.onComplete();
    return offset + n;
  }

  /** The upstream closed the connection: completes a close-delimited body, else throws. */
  end(): void {
    if (this.#state === State.Close) {
      this.#state = State.Done;
      this.#events!.onComplete();
      return;
    }
    if (this.#state !== State.Done) {
      throw new UpstreamError(UPSTREAM_CODES.closed, this.started ? 'upstream closed the connection mid-response' : 'upstream closed the connection before responding');
    }
  }

  #readHead(data: Buffer, offset: number): number {
    let buf: Buffer;
    let searchFrom: number;
    if (this.#head === undefined) {
      buf = offset === 0 ? data : data.subarray(offset);
      searchFrom = 0;
    } else {
      searchFrom = Math.max(0, this.#head.length - 3);
      buf = Buffer.concat([this.#head, data.subarray(offset)]);
    }
    const end = buf.indexOf(CRLF_CRLF, searchFrom);
    if (end < 0) {
      if (buf.length > this.#maxHeadBytes) throw bad(`upstream response head larger than ${this.#maxHeadBytes} bytes`);
      // A head of bare-LF lines never shows the CRLFCRLF that ends it: refuse
      // it now rather than at the response timeout. (In a complete head, the
      // name, value and status-line checks catch a stray LF.)
      for (let lf = buf.indexOf(0x0a, searchFrom); lf >= 0; lf = buf.indexOf(0x0a, lf + 1)) {
        if (lf === 0 || buf[lf - 1] !== 0x0d) throw bad('bare LF in upstream response head');
      }
      this.#head = buf;
      return data.length;
    }
    if (end + 4 > this.#maxHeadBytes) throw bad(`upstream response head larger than ${this.#maxHeadBytes} bytes`);
    const priorBytes = this.#head === undefined ? 0 : this.#head.length;
    this.#head = undefined;
    const used = offset + end + 4 - priorBytes;
    this.#parseHead(buf.toString('latin1', 0, end));
    return used;
  }

  #parseHead(text: string): void {
    let eol = text.indexOf('\r\n');
    if (eol < 0) eol = text.length;
    const status = statusOf(text, eol);
    if (status < 0) throw bad('malformed upstream status line');
    const minor = text.charCodeAt(7) === 0x31;
    // A plain object is much faster to fill than a prototype-less one; own-property checks keep
    // names such as `constructor` from reading inherited members, and `__proto__` is refused.
    const headers: Record<string, string | string[]> = {};
    let pos = eol + 2;
    while (pos < text.length) {
      let end = text.indexOf('\r\n', pos);
      if (end < 0) end = text.length;
      const colon = text.indexOf(':', pos);
      if (colon <= pos || colon > end) throw bad('malformed upstream header line');
      if (!isToken(text, pos, colon)) throw bad('invalid upstream header name');
      let start = colon + 1;
      let stop = end;
      while (start < stop && (text.charCodeAt(start) === 0x20 || text.charCodeAt(start) === 0x09)) start++;
      while (stop > start && (text.charCodeAt(stop - 1) === 0x20 || text.charCodeAt(stop - 1) === 0x09)) stop--;
      if (!isFieldValue(text, start, stop)) throw bad('invalid character in upstream header value');
      const key = text.slice(pos, colon).toLowerCase();
      if (key === '__proto__') throw bad('invalid upstream header name');
      const value = text.slice(start, stop);
      if (!Object.hasOwn(headers, key)) headers[key] = value;
      else {
        const prior = headers[key]!;
        if (Array.isArray(prior)) prior.push(value);
        else headers[key] = [prior, value];
      }
      pos = end + 2;
    }
    if (status < 200) {
      // 100/102/103 are informational: wait for the final head. 101 answers an
      // Upgrade this client never asks for.
      if (status === 101) throw bad('unexpected 101 Switching Protocols');
      return;
    }
    this.#frame(status, minor, headers);
  }

  #frame(status: number, minor: boolean, headers: Record<string, string | string[]>): void {
    const connection = commaTokens(headers['connection']);
    let keepAlive = minor ? !connection.includes('close') : connection.includes('keep-alive');
    const te = commaTokens(headers['transfer-encoding']);
    const clValue = headers['content-length'];
    let length: number | undefined;
    if (clValue !== undefined) {
      // Repeated or listed lengths are accepted only when they all agree (RFC 9110 §8.6).
      const values = commaTokens(clValue);
      if (values.length === 0 || !values.every((v) => DIGITS.test(v) && v === values[0])) throw bad('invalid upstream Content-Length');
      length = Number(values[0]);
    }
    let state: State;
    if (this.#noBody || status === 204 || status === 304) {
      state = State.Done;
    } else if (te.length > 0) {
      if (!minor) throw bad('Transfer-Encoding in an HTTP/1.0 response');
      if (length !== undefined) keepAlive = false;
      if (te[te.length - 1] === 'chunked') {
        state = State.ChunkSize;
      } else {
        state = State.Close;
        keepAlive = false;
      }
    } else if (length !== undefined) {
      state = length === 0 ? State.Done : State.Length;
      this.#remaining = length;
    } else {
      state = State.Close;
      keepAlive = false;
    }
    this.#keepAlive = keepAlive;
    this.#state = state;
    this.#events!.onHead({ status, headers, keepAlive, keepAliveHintSeconds: keepAlive ? keepAliveHint(headers['keep-alive']) : undefined });
    if (state === State.Done) this.#events!.onComplete();
  }

  // Chunk-size lines, the CRLF after chunk data, and trailer lines: all CRLF-terminated lines.
  #readChunkLine(data: Buffer, offset: number): number {
    const lf = data.indexOf(0x0a, offset);
    const stop = lf < 0 ? data.length : lf + 1;
    this.#line += data.toString('latin1', offset, stop);
    if (lf < 0) {
      if (this.#line.length > MAX_CHUNK_LINE) throw bad('upstream chunk line too long');
      return stop;
    }
    const line = this.#line;
    this.#line = '';
    if (line.length < 2 || line.charCodeAt(line.length - 2) !== 0x0d) throw bad('bare LF in upstream chunked body');
    const content = line.slice(0, -2);
    if (content.includes('\r')) throw bad('stray CR in upstream chunked body');
    if (this.#state === State.ChunkDataEnd) {
      if (content !== '') throw bad('chunk data longer than its size');
      this.#state = State.ChunkSize;
    } else if (this.#state === State.ChunkSize) {
      if (content.length > MAX_CHUNK_LINE) throw bad('upstream chunk line too long');
      const semi = content.indexOf(';');
      let hex = semi < 0 ? content : content.slice(0, semi);
      // BWS is allowed before a chunk extension (RFC 9112 §7.1.1).
      if (semi >= 0) hex = hex.replace(/[ \t]+$/, '');
      if (!HEX.test(hex)) throw bad('invalid upstream chunk size');
      const size = parseInt(hex, 16);
      if (size === 0) {
        this.#state = State.Trailers;
      } else {
        this.#remaining = size;
        this.#state = State.ChunkData;
      }
    } else {
      // Trailers are read and dropped: HTTP/1.1 clients of a proxy rarely get them.
      this.#trailerBytes += line.length;
      if (this.#trailerBytes > this.#maxHeadBytes) throw bad('upstream trailers too large');
      if (content === '') {
        this.#state = State.Done;
        this.#events!.onComplete();
      } else if (content.indexOf(':') <= 0 || !isFieldValue(content, 0, content.length)) {
        throw bad('malformed upstream trailer line');
      }
    }
    return stop;
  }
}

function keepAliveHint(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  for (const param of commaTokens(value)) {
    const m = /^timeout\s*=\s*(\d+)$/.exec(param);
    if (m !== null) return Number(m[1]);
  }
  return undefined;
}
