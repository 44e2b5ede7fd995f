// Response compression: gzip, deflate, brotli and zstd from node:zlib,
// negotiated per request, applied only where it is safe and worth it, and
// flushed whenever the upstream pauses so streams (SSE, chunked logs) keep
// flowing event by event instead of waiting for a full compression block.
import type { OutgoingHttpHeaders } from 'node:http';
import type { Transform } from 'node:stream';
import zlib from 'node:zlib';
import type { Coding } from './accept-encoding.ts';
import { negotiateEncoding } from './accept-encoding.ts';
import type { RequestHeadLike, ResponseHead, ResponseHook } from './types.ts';

/** Compression settings of one route, after defaults are applied. */
export interface CompressionSettings {
  /** Compress at all. */
  readonly enabled: boolean;
  /** Responses whose Content-Length is below this many bytes are sent as they are. Unknown lengths are compressed. */
  readonly minLength: number;
  /** Media types (`type/subtype` or `type/*`, lower case, no parameters) worth compressing. */
  readonly contentTypes: readonly string[];
  /** Codings offered, in the server's order of preference (ties in the client's q-values go to the first). */
  readonly algorithms: readonly Coding[];
}

/**
 * ingress-nginx's default `gzip-types`, plus `text/html`, which nginx always
 * compresses. `text/event-stream` is not in it: add it per route to compress
 * SSE (each event is flushed on its own).
 */
export const DEFAULT_COMPRESSIBLE_TYPES: readonly string[] = [
  'application/atom+xml', 'application/javascript', 'application/x-javascript', 'application/json',
  'application/rss+xml', 'application/vnd.ms-fontobject', 'application/x-font-ttf',
  'application/x-web-app-manifest+json', 'application/xhtml+xml', 'application/xml', 'font/opentype',
  'image/svg+xml', 'image/x-icon', 'text/css', 'text/html', 'text/javascript', 'text/plain', 'text/x-component',
];

/**
 * Defaults: off, as ingress-nginx's `use-gzip` (compressing secrets next to
 * attacker-controlled text invites BREACH, so it is opted into); 256 bytes,
 * as ingress-nginx's `gzip-min-length`; zstd first (fastest at a ratio at
 * least gzip's), then brotli, gzip, deflate.
 */
export const DEFAULT_COMPRESSION: CompressionSettings = {
  enabled: false,
  minLength: 256,
  contentTypes: DEFAULT_COMPRESSIBLE_TYPES,
  algorithms: ['zstd', 'br', 'gzip', 'deflate'],
};

// Levels for on-the-fly compression, where CPU per byte matters more than the
// last percent: ingress-nginx's gzip-level 1 and brotli-level 4; zstd's own
// default 3.
const GZIP_LEVEL = 1;
const BROTLI_QUALITY = 4;
const ZSTD_LEVEL = 3;

function createEncoder(coding: Coding, sizeHint: number | undefined): { stream: Transform; flush: () => void } {
  switch (coding) {
    case 'gzip':
    case 'deflate': {
      // HTTP's "deflate" is the zlib format (RFC 9110 §8.4.1.2), not raw deflate.
      const z = coding === 'gzip' ? zlib.createGzip({ level: GZIP_LEVEL }) : zlib.createDeflate({ level: GZIP_LEVEL });
      return { stream: z, flush: () => z.flush(zlib.constants.Z_SYNC_FLUSH) };
    }
    case 'br': {
      const params: Record<number, number> = { [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY };
      if (sizeHint !== undefined) params[zlib.constants.BROTLI_PARAM_SIZE_HINT] = sizeHint;
      const b = zlib.createBrotliCompress({ params });
      return { stream: b, flush: () => b.flush(zlib.constants.BROTLI_OPERATION_FLUSH) };
    }
    case 'zstd': {
      // Level 3 keeps the window at 2 MiB, inside the 8 MiB that RFC 9659
      // lets HTTP decoders (browsers) insist on.
      const s = zlib.createZstdCompress({ params: { [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } });
      return { stream: s, flush: () => s.flush(zlib.constants.ZSTD_e_flush) };
    }
  }
}

/**
 * The encoder with flush-on-pause: after each chunk it is given, a flush is
 * scheduled for the next turn of the event loop, so chunks that arrive
 * together are compressed together, and nothing is held back once the
 * upstream goes quiet. A sync flush costs a few bytes; holding an SSE event
 * until 16 KiB of output accumulate costs the stream.
 */
function flushingEncoder(coding: Coding, sizeHint: number | undefined): Transform {
  const { stream, flush } = createEncoder(coding, sizeHint);
  let scheduled = false;
  const run = (): void => {
    scheduled = false;
    if (!stream.writableEnded && !stream.destroyed) flush();
  };
  const write = stream.write.bind(stream);
  // Wrapping write (not 'data' on the source) keeps this independent of who
  // pipes into the encoder; flush() is a no-op once the stream has ended.
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    const ok = (write as (c: unknown, ...r: unknown[]) => boolean)(chunk, ...rest);
    // flush() itself writes an empty marker buffer: that must not schedule another.
    if (!scheduled && (chunk as { length?: number }).length !== 0) {
      scheduled = true;
      setImmediate(run);
    }
    return ok;
  }) as typeof stream.write;
  return stream;
}

function headerString(value: OutgoingHttpHeaders[string]): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : String(value);
}

/** `text/html; charset=utf-8` → `text/html`. */
function mediaType(contentType: string): string {
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

function typeMatcher(types: readonly string[]): (mediaType: string) => boolean {
  const exact = new Set<string>();
  const wildcards: string[] = [];
  for (const t of types) {
    if (t === '*' || t === '*/*') return () => true;
    if (t.endsWith('/*')) wildcards.push(t.slice(0, -1));
    else exact.add(t);
  }
  return (m) => exact.has(m) || wildcards.some((w) => m.startsWith(w));
}

function addVary(headers: OutgoingHttpHeaders): void {
  const vary = headerString(headers['vary']);
  if (vary === undefined || vary.trim() === '') {
    headers['vary'] = 'Accept-Encoding';
    return;
  }
  const tokens = vary.split(',').map((t) => t.trim().toLowerCase());
  if (tokens.includes('*') || tokens.includes('accept-encoding')) return;
  headers['vary'] = `${vary}, Accept-Encoding`;
}

/**
 * The response hook of a route, or null when compression is off for it. What
 * is never compressed: HEAD, 1xx/204/304 (no body), 206 and anything with
 * Content-Range (byte ranges of the original), a response that already has
 * a Content-Encoding, `Cache-Control: no-transform`, types outside the
 * allowlist, and known lengths under `minLength`.
 */
export function compressionHook(settings: CompressionSettings): ResponseHook | null {
  if (!settings.enabled || settings.algorithms.length === 0) return null;
  const compressible = typeMatcher(settings.contentTypes);
  const { minLength, algorithms } = settings;
  return (req: RequestHeadLike, head: ResponseHead): Transform | undefined => {
    const { status, headers } = head;
    if (req.method === 'HEAD' || status < 200 || status === 204 || status === 206 || status === 304) return undefined;
    const encoding = headerString(headers['content-encoding']);
    if (encoding !== undefined && encoding.trim() !== '' && encoding.trim().toLowerCase() !== 'identity') return undefined;
    if (headers['content-range'] !== undefined) return undefined;
    const contentType = headerString(headers['content-type']);
    if (contentType === undefined || !compressible(mediaType(contentType))) return undefined;
    const cacheControl = headerString(headers['cache-control']);
    if (cacheControl !== undefined && /(?:^|,)\s*no-transform\s*(?:,|$)/i.test(cacheControl)) return undefined;
    const lengthHeader = headerString(headers['content-length']);
    const length = lengthHeader === undefined ? undefined : Number(lengthHeader);
    if (length !== undefined && length < minLength) return undefined;
    // From here the answer depends on Accept-Encoding, whatever this client sent.
    addVary(headers);
    const coding = negotiateEncoding(req.headers['accept-encoding'], algorithms);
    if (coding === undefined) return undefined;
    headers['content-encoding'] = coding;
    delete headers['content-length'];
    // Byte ranges of the encoded body are not something this proxy can serve.
    delete headers['accept-ranges'];
    const etag = headerString(headers['etag']);
    // The encoded bytes differ from what the strong validator promised (RFC 9110 §8.8.1).
    if (etag !== undefined && etag.startsWith('"')) headers['etag'] = `W/${etag}`;
    return flushingEncoder(coding, length);
  };
}
