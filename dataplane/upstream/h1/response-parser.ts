// Incremental parser of HTTP/1.1 responses from an upstream (RFC 9112).
// Strict where leniency would let one response be read two ways: bare LF,
// obs-fold, control characters, a malformed or conflicting Content-Length and
// a malformed chunk size are all errors (the proxy answers 502 and closes the
// connection), never guessed at. A response framed by Transfer-Encoding and
// Content-Length together is read by its Transfer-Encoding and its
// connection is not reused (§6.1). Body framing: http1/message-parser.ts.
import { MessageParser, State } from '../../http1/message-parser.ts';
import type { BodyEvents, ParseFailure } from '../../http1/message-parser.ts';
import { checkedFieldLine, commaTokens, contentLengthOf, FieldLineScan, isFieldValue, sameTokenBytes, tokenBytes } from '../../http1/syntax.ts';
import type { FieldLineFault, FieldLineParts } from '../../http1/syntax.ts';
import { UPSTREAM_CODES, UpstreamError } from './errors.ts';
import { CLIENT_RESPONSE_LEFT_OUT } from '../../server/headers.ts';

/** A final (non-1xx) response head. */
export interface ResponseHead {
  readonly status: number;
  /** Lower-case names; a repeated field is an array in arrival order. Built when first read. */
  readonly headers: Record<string, string | string[]>;
  /** The connection may carry another request once this response is read. */
  readonly keepAlive: boolean;
  /** Seconds from `Keep-Alive: timeout=N`, when the upstream sent one. */
  readonly keepAliveHintSeconds: number | undefined;
  /** The Content-Length field's value; -1 when there is none. */
  readonly contentLength: number;
  /**
   * The field lines as received, to pass them on without building `headers`
   * (server/headers.ts, clientResponseFieldLines); undefined when Connection,
   * Keep-Alive, Content-Length or Transfer-Encoding came more than once.
   */
  readonly fieldLines: FieldLines | undefined;
}

/** The field lines of a response head, every one of them checked by the parser. */
export interface FieldLines {
  /**
   * The head (latin1): status line and field lines, up to {@link end}; what
   * follows there (the empty line, maybe body bytes) is not the head's.
   */
  readonly text: string;
  /** Where the head ends in `text`: the last line's end. */
  readonly end: number;
  /**
   * Per field line, four offsets into `text`: where the name starts, its
   * colon, and where the value starts and ends (surrounding whitespace
   * excluded). A line ends 2 before the next one starts, or at `end`.
   */
  readonly offsets: readonly number[];
  /** Names the Connection field lists, lower case. */
  readonly connectionTokens: readonly string[];
  /**
   * The lines a proxy passes on to its client, as received, each ending in
   * CRLF: all but hop-by-hop fields, Content-Length and X-Request-ID (those
   * server/headers.ts clientResponseFieldLines leaves out), gathered in the
   * parse as one slice per run of kept lines. Undefined when Connection
   * lists a field name beyond those, which then has to be looked for line by line.
   */
  readonly kept: string | undefined;
  /** One of the fields is a Date field. */
  readonly hasDate: boolean;
}

// One value more for a field: a repeated field is an array in arrival order.
function also(prior: string | string[] | undefined, value: string): string | string[] {
  if (prior === undefined) return value;
  if (Array.isArray(prior)) {
    prior.push(value);
    return prior;
  }
  return [prior, value];
}

// The fields as an object, built only when something reads `headers`: the
// proxy's usual path writes the lines on as they came (clientResponseFieldLines).
function headersOf(text: string, offsets: readonly number[]): Record<string, string | string[]> {
  // A plain object is much faster to fill than a prototype-less one; own-property checks keep
  // names such as `constructor` from reading inherited members (the parser refuses `__proto__`).
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i < offsets.length; i += 4) {
    const key = text.slice(offsets[i]!, offsets[i + 1]!).toLowerCase();
    const value = text.slice(offsets[i + 2]!, offsets[i + 3]!);
    headers[key] = also(Object.hasOwn(headers, key) ? headers[key] : undefined, value);
  }
  return headers;
}

class ParsedHead implements ResponseHead, FieldLines {
  readonly status: number;
  readonly text: string;
  readonly end: number;
  /** Where the first field line starts in `text`. */
  readonly #fieldsFrom: number;
  #offsets: number[] | undefined;
  readonly connectionTokens: readonly string[];
  readonly kept: string | undefined;
  readonly hasDate: boolean;
  readonly keepAlive: boolean;
  readonly keepAliveHintSeconds: number | undefined;
  readonly contentLength: number;
  readonly fieldLines: FieldLines | undefined;
  #headers: Record<string, string | string[]> | undefined;

  constructor(status: number, text: string, end: number, fieldsFrom: number, connectionTokens: readonly string[], kept: string | undefined, hasDate: boolean, keepAlive: boolean, keepAliveHintSeconds: number | undefined, contentLength: number, linesUsable: boolean) {
    this.status = status;
    this.text = text;
    this.end = end;
    this.#fieldsFrom = fieldsFrom;
    this.connectionTokens = connectionTokens;
    this.kept = kept;
    this.hasDate = hasDate;
    this.keepAlive = keepAlive;
    this.keepAliveHintSeconds = keepAliveHintSeconds;
    this.contentLength = contentLength;
    this.fieldLines = linesUsable ? this : undefined;
  }

  // Found again only when asked for: the proxy's usual path needs `kept` alone.
  get offsets(): readonly number[] {
    if (this.#offsets === undefined) {
      const { text, end } = this;
      const offsets: number[] = [];
      for (let pos = this.#fieldsFrom; pos < end;) {
        // Every line was accepted by the parse: this finds the same parts, never throws.
        const { colon, start, stop, end: lineEnd } = lineParts(text, pos, end);
        offsets.push(pos, colon, start, stop);
        pos = lineEnd + 2;
      }
      this.#offsets = offsets;
    }
    return this.#offsets;
  }

  get headers(): Record<string, string | string[]> {
    return (this.#headers ??= headersOf(this.text, this.offsets));
  }
}

/** What the parser reports, in order: one head, body chunks, then completion. */
export interface ResponseEvents extends BodyEvents {
  onHead(head: ResponseHead): void;
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

function bad(message: string): UpstreamError {
  return new UpstreamError(UPSTREAM_CODES.badResponse, message);
}

const MESSAGES: Record<ParseFailure, string> = {
  'head-too-large': '',
  'bare-lf-head': 'bare LF in upstream response head',
  'chunk-line-too-long': 'upstream chunk line too long',
  'bare-lf-chunked': 'bare LF in upstream chunked body',
  'stray-cr-chunked': 'stray CR in upstream chunked body',
  'chunk-too-long': 'chunk data longer than its size',
  'bad-chunk-size': 'invalid upstream chunk size',
  'trailers-too-large': 'upstream trailers too large',
  'bad-trailer': 'malformed upstream trailer line',
};

/**
 * Parser of the responses on one connection, one at a time. `begin` starts a
 * response; `execute` feeds it bytes and returns how many it used (fewer than
 * given only once the response is complete); `end` tells it the upstream
 * closed the connection. Errors are thrown as {@link UpstreamError}.
 */
export class ResponseParser extends MessageParser {
  readonly #line = new FieldLineScan();
  #noBody = false;
  #keepAlive = false;

  /** Expect a new response; `noBody` for a HEAD request, whose response has no body whatever it says. */
  begin(events: ResponseEvents, noBody: boolean): void {
    this.reset(events);
    this.#noBody = noBody;
  }

  /** Whether the connection may be reused after the complete response. */
  get keepAlive(): boolean {
    return this.#keepAlive;
  }

  /** The upstream closed the connection: completes a close-delimited body, else throws. */
  end(): void {
    if (this.state === State.Close) {
      this.state = State.Done;
      this.events!.onComplete();
      return;
    }
    if (this.state !== State.Done) {
      throw new UpstreamError(UPSTREAM_CODES.closed, this.started ? 'upstream closed the connection mid-response' : 'upstream closed the connection before responding');
    }
  }

  protected override fail(failure: ParseFailure): Error {
    return bad(failure === 'head-too-large' ? `upstream response head larger than ${this.maxHeadBytes} bytes` : MESSAGES[failure]);
  }

  protected override parseHead(text: string, size: number, bytes: Uint8Array, base: number): void {
    let eol = text.indexOf('\r\n');
    if (eol < 0) eol = size;
    const status = statusOf(text, eol);
    if (status < 0) throw bad('malformed upstream status line');
    const minor = text.charCodeAt(7) === 0x31;
    // Only the fields that frame the message are read here; the rest stay
    // text until something asks (ParsedHead.offsets and .headers).
    let connection: string | string[] | undefined;
    let keepAliveField: string | string[] | undefined;
    let lengthField: string | string[] | undefined;
    let teField: string | string[] | undefined;
    let repeated = false;
    let hasDate = false;
    let closeField = false;
    // The lines a proxy passes on (FieldLines.kept), as runs of kept lines.
    let kept = '';
    let run = -1;
    let pos = eol + 2;
    const line = this.#line;
    while (pos < size) {
      const { colon, start, stop, end } = line.scan(bytes, base, pos, size) ? line : lineParts(text, pos, size);
      const n = colon - pos;
      const at = base + pos;
      let drop = true;
      if (n === 10 && sameTokenBytes(bytes, at, n, CONNECTION)) {
        repeated ||= connection !== undefined;
        connection = also(connection, text.slice(start, stop));
      } else if (n === 10 && sameTokenBytes(bytes, at, n, KEEP_ALIVE)) {
        repeated ||= keepAliveField !== undefined;
        keepAliveField = also(keepAliveField, text.slice(start, stop));
      } else if (n === 14 && sameTokenBytes(bytes, at, n, CONTENT_LENGTH)) {
        repeated ||= lengthField !== undefined;
        lengthField = also(lengthField, text.slice(start, stop));
      } else if (n === 17 && sameTokenBytes(bytes, at, n, TRANSFER_ENCODING)) {
        repeated ||= teField !== undefined;
        teField = also(teField, text.slice(start, stop));
      } else if (n === 4) {
        hasDate ||= sameTokenBytes(bytes, at, n, DATE);
        drop = false;
      } else if (n === 9 && text.charCodeAt(pos) === 0x5f && text.slice(pos, colon).toLowerCase() === '__proto__') {
        // It would set the prototype of the object `headers` builds.
        throw bad('invalid upstream header name');
      } else {
        drop = leftOut(bytes, at, n);
        if (n === 5) closeField ||= sameTokenBytes(bytes, at, n, CLOSE);
      }
      if (drop) {
        if (run >= 0) kept += text.slice(run, pos);
        run = -1;
      } else if (run < 0) {
        run = pos;
      }
      pos = end + 2;
    }
    // The last line's CRLF is not in `text` when the head was read in pieces.
    if (run >= 0) kept += text.slice(run, size) + '\r\n';
    if (status < 200) {
      // 100/102/103 are informational: wait for the final head. 101 answers an
      // Upgrade this client never asks for.
      if (status === 101) throw bad('unexpected 101 Switching Protocols');
      return;
    }
    const connectionTokens = commaTokens(connection);
    let keptLines: string | undefined = kept;
    for (const token of connectionTokens) {
      if (token === 'close' ? closeField : !CLIENT_RESPONSE_LEFT_OUT.has(token)) keptLines = undefined;
    }
    let keepAlive = minor ? !connectionTokens.includes('close') : connectionTokens.includes('keep-alive');
    const te = commaTokens(teField);
    const length = contentLengthOf(lengthField);
    if (length === -1) throw bad('invalid upstream Content-Length');
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
      this.remaining = length;
    } else {
      state = State.Close;
      keepAlive = false;
    }
    this.#keepAlive = keepAlive;
    this.state = state;
    const hint = keepAlive ? keepAliveHint(keepAliveField) : undefined;
    (this.events as ResponseEvents).onHead(new ParsedHead(status, text, size, eol + 2, connectionTokens, keptLines, hasDate, keepAlive, hint, length ?? -1, !repeated));
  }
}

// A Connection option naming a field beyond those left out anyway
// (server/headers.ts CLIENT_RESPONSE_LEFT_OUT) makes the head go line by
// line; `close` only when a field of that name is there.

// The names the parse compares, as bytes: the loop reads the head's bytes
// (http1/syntax.ts sameTokenBytes), not its string. The framing fields and
// Date, then in leftOut the rest of CLIENT_RESPONSE_LEFT_OUT.
const CONNECTION = tokenBytes('connection');
const KEEP_ALIVE = tokenBytes('keep-alive');
const CONTENT_LENGTH = tokenBytes('content-length');
const TRANSFER_ENCODING = tokenBytes('transfer-encoding');
const DATE = tokenBytes('date');
const CLOSE = tokenBytes('close');
const TE = tokenBytes('te');
const TRAILER = tokenBytes('trailer');
const UPGRADE = tokenBytes('upgrade');
const X_REQUEST_ID = tokenBytes('x-request-id');
const HTTP2_SETTINGS = tokenBytes('http2-settings');
const PROXY_CONNECTION = tokenBytes('proxy-connection');

// Whether the field named by bytes[at, at + n) is left out, for the names
// the parse loop does not already compare.
function leftOut(bytes: Uint8Array, at: number, n: number): boolean {
  switch (n) {
    case 2: return sameTokenBytes(bytes, at, n, TE);
    case 7: return sameTokenBytes(bytes, at, n, TRAILER) || sameTokenBytes(bytes, at, n, UPGRADE);
    case 12: return sameTokenBytes(bytes, at, n, X_REQUEST_ID);
    case 14: return sameTokenBytes(bytes, at, n, HTTP2_SETTINGS);
    case 16: return sameTokenBytes(bytes, at, n, PROXY_CONNECTION);
    default: return false;
  }
}

const FIELD_FAULTS: Record<FieldLineFault, string> = {
  malformed: 'malformed upstream header line',
  name: 'invalid upstream header name',
  value: 'invalid character in upstream header value',
};

const fieldFault = (fault: FieldLineFault): Error => bad(FIELD_FAULTS[fault]);

/** A field line checked piece by piece (http1/syntax.ts checkedFieldLine), with this parser's errors; the head ends at `size`. */
export function lineParts(text: string, pos: number, size = text.length): FieldLineParts {
  return checkedFieldLine(text, pos, fieldFault, size);
}

function keepAliveHint(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  for (const param of commaTokens(value)) {
    const m = /^timeout\s*=\s*(\d+)$/.exec(param);
    if (m !== null) return Number(m[1]);
  }
  return undefined;
}
