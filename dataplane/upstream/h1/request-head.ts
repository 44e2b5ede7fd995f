// Serializing a request head for an upstream. Every name and value is
// checked here, whatever produced it (client headers, header edits, rewrites),
// so nothing can split one request into two upstream (CR/LF injection).
import { UPSTREAM_CODES, UpstreamError } from './errors.ts';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Same set as Node's own header check: HTAB, visible ASCII, SP and obs-text.
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const BAD_TARGET = /[^\x21-\x7e\x80-\xff]/;
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

// `name` equals `lower` (a lower-case token) ignoring ASCII case, without
// building a lower-cased copy: this runs for every field of every request.
function sameToken(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < name.length; i++) if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

// The fields replaced by this serializer's own framing.
function isFraming(name: string): boolean {
  const n = name.length;
  return (n === 14 && sameToken(name, 'content-length')) || (n === 17 && sameToken(name, 'transfer-encoding')) || (n === 10 && sameToken(name, 'connection'));
}

/**
 * Build `METHOD target HTTP/1.1` and the fields of the flat `[name, value, …]`
 * list. Framing is the client's: its Content-Length when it gave one, else
 * chunked for a streamed body; the list's own Transfer-Encoding, Connection
 * and Content-Length fields are replaced by that. Without a Host field in the
 * list, `defaultHost` is sent (HTTP/1.1 requires one; an HTTP/1.0 client may
 * have sent none).
 *
 * The head is assembled in one scratch Buffer, sized in a first pass, and
 * read out as one flat string: built by concatenation, it was a few
 * intermediate strings per field, flattened again by the socket write (about
 * 1 KiB of garbage per request). A Buffer per head would cost less heap but
 * counts as external memory, which made V8 run full collections several
 * times as often.
 */
export function serializeHead(method: string, target: string, headers: readonly string[], body: 'none' | 'buffer' | 'stream', bufferLength = 0, defaultHost?: string): SerializedHead {
  if (!TOKEN.test(method)) throw invalid('invalid request method');
  if (target.length === 0 || BAD_TARGET.test(target)) throw invalid('invalid request target');
  // `METHOD SP target SP HTTP/1.1 CRLF`, and the CRLF that ends the head.
  let size = method.length + target.length + 14;
  let declared: string | undefined;
  let hasHost = false;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    if (!TOKEN.test(name)) throw invalid(`invalid header name ${JSON.stringify(name)}`);
    if (BAD_VALUE.test(value)) throw invalid(`invalid value in header ${name}`);
    if (!hasHost && name.length === 4) hasHost = sameToken(name, 'host');
    if (isFraming(name)) {
      if (name.length === 14) {
        if (declared !== undefined && declared !== value) throw invalid('conflicting Content-Length values');
        declared = value;
      }
      continue;
    }
    size += name.length + value.length + 4;
  }
  let framing: BodyFraming;
  if (declared !== undefined && !DIGITS.test(declared)) throw invalid('invalid Content-Length');
  if (body === 'buffer') {
    if (declared !== undefined && Number(declared) !== bufferLength) throw invalid('Content-Length does not match the body');
    framing = bufferLength > 0 || EXPECTS_BODY.has(method) ? { kind: 'length', length: bufferLength } : NO_BODY;
  } else if (body === 'stream') {
    framing = declared !== undefined ? { kind: 'length', length: Number(declared) } : CHUNKED;
  } else {
    framing = declared === '0' || EXPECTS_BODY.has(method) ? ZERO_LENGTH : NO_BODY;
  }
  const addHost = !hasHost && defaultHost !== undefined;
  if (addHost && BAD_VALUE.test(defaultHost)) throw invalid('invalid default Host');
  let extra = addHost ? `host: ${defaultHost}\r\n` : '';
  if (framing.kind === 'length') extra += `content-length: ${framing.length}\r\n`;
  else if (framing.kind === 'chunked') extra += 'transfer-encoding: chunked\r\n';
  size += extra.length;

  if (scratch.length < size) scratch = Buffer.allocUnsafe(Math.max(size, scratch.length * 2));
  const head = scratch;
  let at = head.write(method, 0, 'latin1');
  head[at++] = 0x20;
  at += head.write(target, at, 'latin1');
  at += head.write(' HTTP/1.1\r\n', at, 'latin1');
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    if (isFraming(name)) continue;
    at += head.write(name, at, 'latin1');
    head[at++] = 0x3a;
    head[at++] = 0x20;
    at += head.write(headers[i + 1]!, at, 'latin1');
    head[at++] = 0x0d;
    head[at++] = 0x0a;
  }
  if (extra !== '') at += head.write(extra, at, 'latin1');
  head[at++] = 0x0d;
  head[at++] = 0x0a;
  return { head: head.toString('latin1', 0, at), framing };
}

// Only used inside serializeHead, which never yields: one for the process will do.
let scratch = Buffer.allocUnsafe(4096);

const NO_BODY: BodyFraming = { kind: 'none' };
const CHUNKED: BodyFraming = { kind: 'chunked' };
const ZERO_LENGTH: BodyFraming = { kind: 'length', length: 0 };
