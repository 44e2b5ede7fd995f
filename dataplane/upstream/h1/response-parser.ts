// Incremental parser of HTTP/1.1 responses from an upstream (RFC 9112).
// Strict where leniency would let one response be read two ways: bare LF,
// obs-fold, control characters, a malformed or conflicting Content-Length and
// a malformed chunk size are all errors (the proxy answers 502 and closes the
// connection), never guessed at. A response framed by Transfer-Encoding and
// Content-Length together is read by its Transfer-Encoding and its
// connection is not reused (§6.1). Body framing: http1/message-parser.ts.
import { MessageParser, State } from '../../http1/message-parser.ts';
import type { BodyEvents, ParseFailure } from '../../http1/message-parser.ts';
import { commaTokens, contentLengthOf, isFieldValue, isToken } from '../../http1/syntax.ts';
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

  protected override parseHead(text: string): void {
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
    const length = contentLengthOf(headers['content-length']);
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
    (this.events as ResponseEvents).onHead({ status, headers, keepAlive, keepAliveHintSeconds: keepAlive ? keepAliveHint(headers['keep-alive']) : undefined });
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
