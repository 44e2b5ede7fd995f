// Incremental parser of client HTTP/1.1 requests (RFC 9112), for the traffic
// server. As strict as the upstream response parser: a request that could be
// read two ways (bare LF, obs-fold, a space before the colon, conflicting
// lengths, Transfer-Encoding with Content-Length) is refused with 400 and the
// connection closed, since the next request's start is then unknown
// (request smuggling, RFC 9112 §11.2). Body framing: http1/message-parser.ts.
import type { IncomingHttpHeaders } from 'node:http';
import { MessageParser, State } from '../../http1/message-parser.ts';
import type { BodyEvents, ParseFailure } from '../../http1/message-parser.ts';
import { checkedFieldLine, commaTokens, contentLengthOf, FieldLineScan, isTarget, isToken } from '../../http1/syntax.ts';
import type { FieldLineFault, FieldLineParts } from '../../http1/syntax.ts';
import { knownName } from '../../http1/known-names.ts';
import { notForwarded } from '../headers.ts';

/** A request the parser refused, with the status to answer before closing. */
export class RequestError extends Error {
  readonly status: 400 | 405 | 408 | 413 | 414 | 417 | 431 | 501 | 505;

  constructor(status: RequestError['status'], message: string) {
    super(message);
    this.name = 'RequestError';
    this.status = status;
  }
}

/** A parsed request head. */
export interface RequestHead {
  readonly method: string;
  /** The request target as sent (origin-, absolute-, authority- or asterisk-form). */
  readonly url: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minor: 0 | 1;
  /** Node's shape: lower-case names; repeats joined with `, ` (`; ` for cookie), `set-cookie` an array, single-valued fields keep the first. */
  readonly headers: IncomingHttpHeaders;
  /** Names and values as received, alternating. */
  readonly rawHeaders: string[];
  /** The client allows the connection to carry another request. */
  readonly keepAlive: boolean;
  /** A body follows (Content-Length above 0, or chunked). */
  readonly hasBody: boolean;
  /**
   * The field lines a proxy passes on unchanged, as received, each ending in
   * CRLF: all but hop-by-hop ones and those the proxy sets itself
   * (headers.ts notForwarded). Undefined when the Connection header names a
   * field that is present, which the line text cannot leave out by itself.
   */
  readonly forwardLines: string | undefined;
}

/** What the parser reports, in order: one head, body chunks, then completion. */
export interface RequestEvents extends BodyEvents {
  onHead(head: RequestHead): void;
}

// Fields Node keeps only the first of (duplicates are dropped), so handlers
// see the same `headers` object they would from node:http.
const SINGLE = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host',
  'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards',
  'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent',
]);

const MESSAGES: Record<Exclude<ParseFailure, 'head-too-large'>, [RequestError['status'], string]> = {
  'bare-lf-head': [400, 'bare LF in request head'],
  'chunk-line-too-long': [413, 'chunk line too long'],
  'bare-lf-chunked': [400, 'bare LF in chunked body'],
  'stray-cr-chunked': [400, 'stray CR in chunked body'],
  'chunk-too-long': [400, 'chunk data longer than its size'],
  'bad-chunk-size': [400, 'invalid chunk size'],
  'trailers-too-large': [431, 'trailers too large'],
  'bad-trailer': [400, 'malformed trailer line'],
};

/** Parser of the requests on one client connection, one at a time. */
export class RequestParser extends MessageParser {
  readonly #maxUriBytes: number;
  readonly #line = new FieldLineScan();
  /** A CR before the request line, waiting for its LF. */
  #cr = false;

  /** `maxHeadBytes` bounds the request line and fields together; a longer request line alone gets 414. */
  constructor(maxHeadBytes: number, maxUriBytes: number) {
    super(maxHeadBytes);
    this.#maxUriBytes = maxUriBytes;
  }

  protected override readHead(data: Buffer, offset: number): number {
    // RFC 9112 §2.2: empty lines before a request line are ignored (some
    // clients send a CRLF after a POST body). A CR must be followed by LF,
    // possibly in the next piece.
    if (!this.started) {
      while (offset < data.length) {
        const c = data[offset]!;
        if (this.#cr) {
          if (c !== 0x0a) throw new RequestError(400, 'stray CR before the request line');
          this.#cr = false;
        } else if (c === 0x0d) {
          this.#cr = true;
        } else if (c !== 0x0a) {
          break;
        }
        offset++;
      }
      if (offset === data.length) return offset;
    }
    return super.readHead(data, offset);
  }

  /** Expect a new request. */
  begin(events: RequestEvents): void {
    this.reset(events);
    this.#cr = false;
  }

  protected override checkPartialHead(buf: Buffer): void {
    // No line break yet and the target already past the URI limit: refuse
    // now rather than buffer up to the head limit.
    if (buf.indexOf(0x0a) >= 0) return;
    const sp1 = buf.indexOf(0x20);
    if (sp1 < 0) return;
    const sp2 = buf.indexOf(0x20, sp1 + 1);
    const target = (sp2 < 0 ? buf.length : sp2) - sp1 - 1;
    if (target > this.#maxUriBytes) throw new RequestError(414, `request target longer than ${this.#maxUriBytes} bytes`);
  }

  protected override fail(failure: ParseFailure, buffered?: Buffer): Error {
    if (failure === 'head-too-large') {
      const eol = buffered === undefined ? -1 : buffered.indexOf(0x0a);
      if (buffered !== undefined && (eol < 0 ? buffered.length : eol) > this.#maxUriBytes) return new RequestError(414, `request line longer than ${this.#maxUriBytes} bytes`);
      return new RequestError(431, `request head larger than ${this.maxHeadBytes} bytes`);
    }
    const [status, message] = MESSAGES[failure];
    return new RequestError(status, message);
  }

  protected override parseHead(text: string, size: number, bytes: Uint8Array, base: number): void {
    let eol = text.indexOf('\r\n');
    if (eol < 0) eol = size;
    const sp1 = text.indexOf(' ');
    const sp2 = sp1 < 0 ? -1 : text.indexOf(' ', sp1 + 1);
    if (sp1 <= 0 || sp2 < 0 || sp2 > eol || !isToken(text, 0, sp1)) throw new RequestError(400, 'malformed request line');
    if (sp2 === sp1 + 1 || !isTarget(text, sp1 + 1, sp2)) throw new RequestError(400, 'malformed request target');
    if (sp2 - sp1 - 1 > this.#maxUriBytes) throw new RequestError(414, `request target longer than ${this.#maxUriBytes} bytes`);
    const version = text.slice(sp2 + 1, eol);
    let minor: 0 | 1;
    if (version === 'HTTP/1.1') minor = 1;
    else if (version === 'HTTP/1.0') minor = 0;
    else if (/^HTTP\/[2-9]\.\d$/.test(version)) throw new RequestError(505, `${version} is not supported on this connection`);
    else throw new RequestError(400, 'malformed request line');
    const method = text.slice(0, sp1);
    const url = text.slice(sp1 + 1, sp2);

    const headers: IncomingHttpHeaders = {};
    const raw: string[] = [];
    let pos = eol + 2;
    const line = this.#line;
    // The forwarded lines, gathered as runs of kept lines: one slice per run.
    let forward = '';
    let run = -1;
    while (pos < size) {
      const { colon, start, stop, end } = line.scan(bytes, base, pos, size) ? line : lineParts(text, pos, size);
      const name = text.slice(pos, colon);
      const value = text.slice(start, stop);
      raw.push(name, value);
      const key = knownName(bytes, base + pos, colon - pos) ?? name.toLowerCase();
      if (notForwarded(key)) {
        if (run >= 0) forward += text.slice(run, pos);
        run = -1;
      } else if (run < 0) {
        run = pos;
      }
      // Own properties only: `constructor` and friends are plain field names here.
      const prior = Object.hasOwn(headers, key) ? headers[key] : undefined;
      if (prior === undefined) {
        // `__proto__` as a key would set the prototype: kept in rawHeaders only.
        if (key === '__proto__') throw new RequestError(400, 'invalid header name');
        headers[key] = key === 'set-cookie' ? [value] : value;
      } else if (key === 'set-cookie') {
        (prior as string[]).push(value);
      } else if (key === 'content-length') {
        // Kept as a list so that conflicting lengths are refused below.
        headers[key] = `${prior as string}, ${value}`;
      } else if (!SINGLE.has(key)) {
        headers[key] = `${prior as string}${key === 'cookie' ? '; ' : ', '}${value}`;
      }
      pos = end + 2;
    }
    // The last line's CRLF is not in `text` when the head was read in pieces.
    if (run >= 0) forward += text.slice(run, size) + '\r\n';
    this.#frame(method, url, minor, headers, raw, forward);
  }

  #frame(method: string, url: string, minor: 0 | 1, headers: IncomingHttpHeaders, rawHeaders: string[], forward: string): void {
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is answered 400.
    if (minor === 1 && headers.host === undefined) throw new RequestError(400, 'no Host header');
    const connection = commaTokens(headers.connection);
    let forwardLines: string | undefined = forward;
    for (const name of connection) if (!notForwarded(name) && Object.hasOwn(headers, name)) forwardLines = undefined;
    const keepAlive = minor === 1 ? !connection.includes('close') : connection.includes('keep-alive');
    const length = contentLengthOf(headers['content-length']);
    if (length === -1) throw new RequestError(400, 'invalid Content-Length');
    if (length !== undefined) headers['content-length'] = String(length);
    const teValue = headers['transfer-encoding'];
    let state: State = State.Done;
    if (teValue !== undefined) {
      // RFC 9112 §6.1: Transfer-Encoding with Content-Length is how requests
      // are smuggled past a proxy; refusing it is allowed and safest.
      if (length !== undefined) throw new RequestError(400, 'both Transfer-Encoding and Content-Length');
      if (minor === 0) throw new RequestError(400, 'Transfer-Encoding in an HTTP/1.0 request');
      const te = commaTokens(teValue);
      if (te[te.length - 1] !== 'chunked') throw new RequestError(400, 'request body framing is not chunked');
      // Other codings would reach the upstream undecoded and unlabelled.
      if (te.length > 1) throw new RequestError(501, `transfer coding ${te.slice(0, -1).join(', ')} is not supported`);
      state = State.ChunkSize;
    } else if (length !== undefined && length > 0) {
      state = State.Length;
      this.remaining = length;
    }
    this.state = state;
    (this.events as RequestEvents).onHead({ method, url, minor, headers, rawHeaders, keepAlive, hasBody: state !== State.Done, forwardLines });
  }
}

const FIELD_FAULTS: Record<FieldLineFault, string> = {
  malformed: 'malformed header line',
  name: 'invalid header name',
  value: 'invalid character in header value',
};

const fieldFault = (fault: FieldLineFault): Error => new RequestError(400, FIELD_FAULTS[fault]);

/** A field line checked piece by piece (http1/syntax.ts checkedFieldLine), with this parser's errors; the head ends at `size`. */
export function lineParts(text: string, pos: number, size = text.length): FieldLineParts {
  return checkedFieldLine(text, pos, fieldFault, size);
}
