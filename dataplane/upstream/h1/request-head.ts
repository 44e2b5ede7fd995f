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
  readonly head: string;
  readonly framing: BodyFraming;
}

function invalid(message: string): UpstreamError {
  return new UpstreamError(UPSTREAM_CODES.invalidRequest, message);
}

/**
 * Build `METHOD target HTTP/1.1` and the fields of the flat `[name, value, …]`
 * list. Framing is the client's: its Content-Length when it gave one, else
 * chunked for a streamed body; the list's own Transfer-Encoding, Connection
 * and Content-Length fields are replaced by that. Without a Host field in the
 * list, `defaultHost` is sent (HTTP/1.1 requires one; an HTTP/1.0 client may
 * have sent none).
 */
export function serializeHead(method: string, target: string, headers: readonly string[], body: 'none' | 'buffer' | 'stream', bufferLength = 0, defaultHost?: string): SerializedHead {
  if (!TOKEN.test(method)) throw invalid('invalid request method');
  if (target.length === 0 || BAD_TARGET.test(target)) throw invalid('invalid request target');
  let head = `${method} ${target} HTTP/1.1\r\n`;
  let declared: string | undefined;
  let hasHost = false;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    if (!TOKEN.test(name)) throw invalid(`invalid header name ${JSON.stringify(name)}`);
    if (BAD_VALUE.test(value)) throw invalid(`invalid value in header ${name}`);
    const n = name.length;
    if (n === 4 && !hasHost) hasHost = name.toLowerCase() === 'host';
    if (n === 14 || n === 17 || n === 10) {
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        if (declared !== undefined && declared !== value) throw invalid('conflicting Content-Length values');
        declared = value;
        continue;
      }
      if (lower === 'transfer-encoding' || lower === 'connection') continue;
    }
    head += `${name}: ${value}\r\n`;
  }
  if (!hasHost && defaultHost !== undefined) head += `host: ${defaultHost}\r\n`;
  let framing: BodyFraming;
  if (declared !== undefined && !DIGITS.test(declared)) throw invalid('invalid Content-Length');
  if (body === 'buffer') {
    if (declared !== undefined && Number(declared) !== bufferLength) throw invalid('Content-Length does not match the body');
    framing = bufferLength > 0 || EXPECTS_BODY.has(method) ? { kind: 'length', length: bufferLength } : { kind: 'none' };
  } else if (body === 'stream') {
    framing = declared !== undefined ? { kind: 'length', length: Number(declared) } : { kind: 'chunked' };
  } else {
    framing = declared === '0' || EXPECTS_BODY.has(method) ? { kind: 'length', length: 0 } : { kind: 'none' };
  }
  if (framing.kind === 'length') head += `content-length: ${framing.length}\r\n`;
  else if (framing.kind === 'chunked') head += 'transfer-encoding: chunked\r\n';
  return { head: `${head}\r\n`, framing };
}
