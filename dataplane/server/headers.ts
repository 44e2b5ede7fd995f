// Header rewriting between client and upstream. Hop-by-hop headers describe
// one connection and must never be forwarded (RFC 9110 §7.6.1), in either
// direction, nor may any header the Connection header names.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { commaTokens, sameToken } from '../http1/syntax.ts';
import type { FieldLines } from '../upstream/h1/response-parser.ts';
import { editFlatHeaders, editHeaderObject } from '../transforms/headers.ts';
import type { HeaderEdits } from '../transforms/headers.ts';

const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  // Connection-specific in HTTP/2 (RFC 9113 §8.2.2), and refused by Node's http2 if forwarded.
  'http2-settings',
]);

// Set by the proxy itself; whatever the client sent under these names is
// replaced (x-forwarded-for is extended, not replaced). `expect` is answered
// by this server, not the upstream.
const REWRITTEN: ReadonlySet<string> = new Set([
  'host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'x-request-id',
  'expect', 'content-length',
]);

/**
 * Whether a client request field (lower-case name) never reaches the upstream
 * as sent: hop-by-hop, or one the proxy sets itself. Fields named in the
 * request's Connection header are left out too; that is for the caller.
 */
export function notForwarded(lowerName: string): boolean {
  return NOT_FORWARDED.has(lowerName);
}

// One lookup per field line of every request, not two.
const NOT_FORWARDED: ReadonlySet<string> = new Set([...HOP_BY_HOP, ...REWRITTEN]);

/** Names listed in a Connection header, lower case; `undefined` when there are none. */
export function connectionTokens(value: string | string[] | undefined): readonly string[] | undefined {
  // An array, not a Set: it holds one or two names, and is built per message.
  const tokens = commaTokens(value);
  return tokens.length > 0 ? tokens : undefined;
}

/** What the proxy adds to a forwarded request. */
export interface ForwardingInfo {
  /** The Host header as received (absolute-form authority when present). */
  host: string | undefined;
  /** Peer address of the client connection. */
  clientAddress: string;
  /** Local port the request arrived on. */
  listenerPort: number;
  requestId: string;
  /** Content-Length to send, only when a body is forwarded with a known length. */
  contentLength: string | undefined;
  /** Scheme the client used, for X-Forwarded-Proto. Default `http`. */
  proto?: 'http' | 'https';
  /** Host sent upstream instead of `host` (route `rewrite.host`); X-Forwarded-Host keeps the client's. */
  upstreamHost?: string | undefined;
  /** The route's request header edits, applied last so they can replace forwarding headers too. */
  edits?: HeaderEdits | null;
}

/**
 * Request headers for the upstream as a flat `[name, value, …]` list built
 * from the raw headers, so order, case and repeated fields are preserved.
 */
export function upstreamRequestHeaders(
  rawHeaders: readonly string[],
  parsed: IncomingHttpHeaders,
  info: ForwardingInfo,
): string[] {
  const listed = connectionTokens(parsed.connection);
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (notForwarded(lower)) continue;
    if (listed?.includes(lower)) continue;
    // HTTP/2 pseudo-headers (:method, :authority, …) are part of the request line, not fields.
    if (lower.charCodeAt(0) === 0x3a) continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  // Preserve the client's Host, as ingress-nginx does by default, unless the route rewrites it.
  const host = info.upstreamHost ?? info.host;
  if (host !== undefined) out.push('host', host);
  if (info.contentLength !== undefined) out.push('content-length', info.contentLength);
  const prior = parsed['x-forwarded-for'];
  out.push('x-forwarded-for', prior ? `${prior}, ${info.clientAddress}` : info.clientAddress);
  out.push('x-forwarded-proto', info.proto ?? 'http');
  if (info.host !== undefined) out.push('x-forwarded-host', info.host);
  out.push('x-forwarded-port', String(info.listenerPort));
  out.push('x-real-ip', info.clientAddress);
  out.push('x-request-id', info.requestId);
  return info.edits ? editFlatHeaders(out, info.edits) : out;
}

// Constant pieces of the fields forwardedFieldLines adds, per listener port:
// what follows X-Forwarded-For for http and for https, and what follows
// X-Forwarded-Host.
const FORWARDED_PIECES = new Map<number, readonly [http: string, https: string, port: string]>();

function forwardedPieces(port: number): readonly [string, string, string] {
  let pieces = FORWARDED_PIECES.get(port);
  if (pieces === undefined) {
    const proto = (p: string): string => `\r\nx-forwarded-proto: ${p}\r\nx-forwarded-host: `;
    pieces = [proto('http'), proto('https'), `\r\nx-forwarded-port: ${port}\r\nx-real-ip: `];
    // Listener ports are few; the bound only keeps an odd caller from growing it.
    if (FORWARDED_PIECES.size < 64) FORWARDED_PIECES.set(port, pieces);
  }
  return pieces;
}

/**
 * The field lines of {@link upstreamRequestHeaders} as text, for the usual
 * request: one read by PyServe's HTTP/1.1 parser with a Host, forwarded
 * without a host rewrite or header edits. `clientLines` are the request's
 * own lines that go upstream unchanged, as received (RequestHead.forwardLines),
 * so the head is built from one slice per run of them and a few pieces for
 * the proxy's fields, not four pieces per field (docs/benchmarks.md item 23).
 * Same fields in the same order as upstreamRequestHeaders, Content-Length
 * left to the head's framing; test/unit/dataplane-headers.test.ts compares
 * the two on mutated requests.
 */
export function forwardedFieldLines(clientLines: string, priorForwardedFor: string | string[] | undefined, info: Omit<ForwardingInfo, 'contentLength' | 'upstreamHost' | 'edits'> & { host: string }): string {
  const { host, clientAddress } = info;
  const xff = priorForwardedFor ? `${String(priorForwardedFor)}, ${clientAddress}` : clientAddress;
  const pieces = forwardedPieces(info.listenerPort);
  return `${clientLines}host: ${host}\r\nx-forwarded-for: ${xff}${pieces[info.proto === 'https' ? 1 : 0]}${host}${pieces[2]}${clientAddress}\r\nx-request-id: ${info.requestId}\r\n`;
}

/**
 * Whether every field {@link upstreamRequestHeaders} builds from a request
 * passes the HTTP/1.1 field checks of http1/syntax.ts without checking it
 * again: true when the request came through PyServe's HTTP/1.1 parser, which
 * applies those checks to every name and value (and reads its bytes as
 * latin1), and no route configuration went into the fields (a host rewrite
 * or header edits). The other fields are made from the request's own (Host,
 * X-Forwarded-For) or by PyServe: an IP address, a port number, `http` or
 * `https`, a request id of printable ASCII (request-id.ts). test/unit/
 * dataplane-headers.test.ts checks this on mutated requests. HTTP/2 requests
 * come through nghttp2, which checks less (other control characters pass).
 */
export function forwardedFieldsChecked(parsedByOwnHttp1Server: boolean, info: Pick<ForwardingInfo, 'upstreamHost' | 'edits'>): boolean {
  return parsedByOwnHttp1Server && info.upstreamHost === undefined && (info.edits === undefined || info.edits === null);
}

/**
 * Whether the headers {@link clientResponseHeaders} builds for a response pass
 * the HTTP/1.1 field checks without checking them again: true for a response
 * head read by PyServe's HTTP/1.1 upstream parser (which applies those checks
 * to every name and value, reading latin1), when no route configuration went
 * in (response header edits, an affinity cookie) and no response hook (such
 * as compression) edited them. The request id it adds is printable ASCII.
 * test/unit/dataplane-headers.test.ts checks this on mutated responses.
 */
export function responseFieldsChecked(parsedByOwnHttp1Client: boolean, opts: { edits: HeaderEdits | null; cookieAdded: boolean; responseHooks: boolean }): boolean {
  return parsedByOwnHttp1Client && opts.edits === null && !opts.cookieAdded && !opts.responseHooks;
}

/**
 * Upstream response headers for the client: hop-by-hop and Connection-listed
 * names removed, then the route's response header edits applied (before any
 * response hook such as compression sees them). Names are lower case, as
 * every upstream parser here (HTTP/1.1, node:http2, node:http) gives them.
 */
export function clientResponseHeaders(
  upstream: IncomingHttpHeaders | Record<string, string | string[] | undefined>,
  requestId: string,
  edits: HeaderEdits | null = null,
): OutgoingHttpHeaders {
  const listed = connectionTokens(upstream.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name of Object.keys(upstream)) {
    const value = upstream[name];
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || listed?.includes(name)) continue;
    out[name] = value;
  }
  if (edits !== null) editHeaderObject(out, edits);
  out['x-request-id'] = requestId;
  return out;
}

/**
 * What clientResponseFieldLines leaves out of a response head: hop-by-hop
 * fields, Content-Length (the response writes its own framing) and
 * X-Request-ID (replaced by this request's). The upstream parser, which
 * gathers the kept lines as it reads (FieldLines.kept), compares the same
 * names in its loop.
 */
export const CLIENT_RESPONSE_LEFT_OUT: ReadonlySet<string> = new Set([...HOP_BY_HOP, 'content-length', 'x-request-id']);

// The same, by name length.
const DROPPED_BY_LENGTH: readonly (readonly string[])[] = (() => {
  const table: string[][] = [];
  for (const name of CLIENT_RESPONSE_LEFT_OUT) (table[name.length] ??= []).push(name);
  return table;
})();

function droppedField(text: string, start: number, end: number, listed: readonly string[]): boolean {
  const n = end - start;
  const names = DROPPED_BY_LENGTH[n];
  if (names !== undefined) for (const name of names) if (sameToken(text, start, end, name)) return true;
  // Listed names may hold any token character: compared whole, and only at equal length.
  for (const name of listed) if (name.length === n && text.slice(start, end).toLowerCase() === name) return true;
  return false;
}

/** Field lines ready to write, from {@link clientResponseFieldLines}. */
export interface ClientFieldLines {
  /** Complete `name: value\r\n` lines. */
  readonly text: string;
  /** One of them is a Date field. */
  readonly hasDate: boolean;
}

/**
 * The fields {@link clientResponseHeaders} gives for a head without edits, as
 * HTTP/1.1 lines copied from the upstream's head as received (runs of kept
 * lines in one piece, in their order and spelling): hop-by-hop and
 * Connection-listed fields and any X-Request-ID are left out, and this
 * request's X-Request-ID is added. Content-Length is left out too: the
 * response writes its own framing from the parsed length
 * (H1Response.writeFieldLines). Every line passed the upstream parser's
 * checks, the same as responseFieldsChecked relies on.
 */
export function clientResponseFieldLines(lines: FieldLines, requestId: string): ClientFieldLines {
  // Usually gathered by the parser already, in the same pass as the framing fields.
  if (lines.kept !== undefined) return { text: `${lines.kept}x-request-id: ${requestId}\r\n`, hasDate: lines.hasDate };
  const { text, end, offsets, connectionTokens } = lines;
  let out = '';
  let hasDate = false;
  // Start of the run of kept lines being gathered, or -1.
  let run = -1;
  for (let i = 0; i < offsets.length; i += 4) {
    const start = offsets[i]!;
    const colon = offsets[i + 1]!;
    if (droppedField(text, start, colon, connectionTokens)) {
      // Up to this line's start: the run's lines with their CRLFs.
      if (run >= 0) out += text.slice(run, start);
      run = -1;
      continue;
    }
    if (!hasDate && colon - start === 4) hasDate = sameToken(text, start, colon, 'date');
    if (run < 0) run = start;
  }
  // The last line of the head has no CRLF of its own in `text`.
  if (run >= 0) out += text.slice(run, end) + '\r\n';
  return { text: `${out}x-request-id: ${requestId}\r\n`, hasDate };
}

/**
 * How many Host fields a request's raw `[name, value, …]` list holds (more
 * than one is answered 400). Compared in place: lower-casing each 4-letter
 * name made a new string per request.
 */
export function hostFieldCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && sameToken(name, 0, 4, 'host')) n++;
  }
  return n;
}

/** Strip the IPv4-mapped IPv6 prefix so logs and X-Forwarded-For show `1.2.3.4`. */
export function clientAddressOf(remote: string | undefined): string {
  if (remote === undefined) return '';
  return remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
}
