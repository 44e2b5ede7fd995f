// Serializing a request head for an upstream. Every name and value is
// checked here, whatever produced it (client headers, header edits, rewrites),
// so nothing can split one request into two upstream (CR/LF injection);
// only fields the caller vouches for (`fieldsChecked`: made from what
// PyServe's own HTTP/1.1 parser already checked the same way) are not checked
// twice. The checks are http1/syntax.ts's, the parsers' own definitions.
import { isFieldValue, isTarget, isToken, sameToken } from '../../http1/syntax.ts';
import { UPSTREAM_CODES, UpstreamError } from './errors.ts';

const DIGITS = /^\d{1,15}$/;
// Methods whose request carries a body by definition: without one, say so with a zero length.
const EXPECTS_BODY: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);

/** How the request body is framed on the wire. */
export type BodyFraming = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' };

/** A request head ready to write, and how its body must follow. */
export interface SerializedHead {
  /** The head, latin1 (every character of the checked fields is one byte). */
  readonly head: string;
  readonly framing: BodyFraming;
}

function invalid(message: string): UpstreamError {
  return new UpstreamError(UPSTREAM_CODES.invalidRequest, message);
}

// The fields replaced by this serializer's own framing.
function isFraming(name: string): boolean {
  const n = name.length;
  return (n === 14 && sameToken(name, 0, n, 'content-length')) || (n === 17 && sameToken(name, 0, n, 'transfer-encoding')) || (n === 10 && sameToken(name, 0, n, 'connection'));
}

/**
 * Build `METHOD target HTTP/1.1` and the fields of the flat `[name, value, …]`
 * list. With `fieldsChecked`, the caller vouches that every name and value
 * already passed these same checks (ExchangeRequest.fieldsChecked); the method
 * and target are checked whatever it says. Framing is the client's: its Content-Length when it gave one, else
 * chunked for a streamed body; the list's own Transfer-Encoding, Connection
 * and Content-Length fields are replaced by that. Without a Host field in the
 * list, `defaultHost` is sent (HTTP/1.1 requires one; an HTTP/1.0 client may
 * have sent none).
 *
 * Plain string concatenation, flattened once by the socket write: measured
 * ~2× faster than assembling the head in a scratch Buffer field by field
 * (each `buf.write` a call into C++), now that its ~1 KiB of short-lived
 * strings dies young (docs/benchmarks.md, item 13).
 */
export function serializeHead(method: string, target: string, headers: readonly string[], body: 'none' | 'buffer' | 'stream', bufferLength = 0, defaultHost?: string, fieldsChecked = false): SerializedHead {
  if (method.length === 0 || !isToken(method, 0, method.length)) throw invalid('invalid request method');
  if (target.length === 0 || !isTarget(target, 0, target.length)) throw invalid('invalid request target');
  let head = `${method} ${target} HTTP/1.1\r\n`;
  let declared: string | undefined;
  let hasHost = false;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    if (!fieldsChecked) {
      if (name.length === 0 || !isToken(name, 0, name.length)) throw invalid(`invalid header name ${JSON.stringify(name)}`);
      if (!isFieldValue(value, 0, value.length)) throw invalid(`invalid value in header ${name}`);
    }
    if (!hasHost && name.length === 4) hasHost = sameToken(name, 0, 4, 'host');
    if (isFraming(name)) {
      if (name.length === 14) {
        if (declared !== undefined && declared !== value) throw invalid('conflicting Content-Length values');
        declared = value;
      }
      continue;
    }
    // Appended piece by piece: a left-leaning string, flattened faster when written (~7 % in a micro-benchmark).
    head += name;
    head += ': ';
    head += value;
    head += '\r\n';
  }
  const framing = framingOf(method, declared, body, bufferLength);
  if (!hasHost && defaultHost !== undefined) {
    if (!isFieldValue(defaultHost, 0, defaultHost.length)) throw invalid('invalid default Host');
    head += `host: ${defaultHost}\r\n`;
  }
  return { head: head + framingLines(framing), framing };
}

/**
 * A head from complete field lines made by server/headers.ts
 * forwardedFieldLines (a Host among them, no framing field, every line
 * checked by PyServe's HTTP/1.1 parser or made by PyServe), with `declared`
 * the Content-Length to frame the body with. The method and target are
 * checked as by serializeHead: a route may have rewritten the target.
 */
export function serializeFieldLines(method: string, target: string, fieldLines: string, declared: string | undefined, body: 'none' | 'buffer' | 'stream', bufferLength = 0): SerializedHead {
  if (method.length === 0 || !isToken(method, 0, method.length)) throw invalid('invalid request method');
  if (target.length === 0 || !isTarget(target, 0, target.length)) throw invalid('invalid request target');
  const framing = framingOf(method, declared, body, bufferLength);
  return { head: `${method} ${target} HTTP/1.1\r\n${fieldLines}${framingLines(framing)}`, framing };
}

function framingOf(method: string, declared: string | undefined, body: 'none' | 'buffer' | 'stream', bufferLength: number): BodyFraming {
  if (declared !== undefined && !DIGITS.test(declared)) throw invalid('invalid Content-Length');
  if (body === 'buffer') {
    if (declared !== undefined && Number(declared) !== bufferLength) throw invalid('Content-Length does not match the body');
    return bufferLength > 0 || EXPECTS_BODY.has(method) ? { kind: 'length', length: bufferLength } : NO_BODY;
  }
  if (body === 'stream') return declared !== undefined ? { kind: 'length', length: Number(declared) } : CHUNKED;
  return declared === '0' || EXPECTS_BODY.has(method) ? ZERO_LENGTH : NO_BODY;
}

/** The framing field, if any, and the empty line that ends the head. */
function framingLines(framing: BodyFraming): string {
  if (framing.kind === 'length') return `content-length: ${framing.length}\r\n\r\n`;
  return framing.kind === 'chunked' ? 'transfer-encoding: chunked\r\n\r\n' : '\r\n';
}

const NO_BODY: BodyFraming = { kind: 'none' };
const CHUNKED: BodyFraming = { kind: 'chunked' };
const ZERO_LENGTH: BodyFraming = { kind: 'length', length: 0 };
