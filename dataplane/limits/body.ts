// Request body limits enforced while the body streams to the upstream: the
// size limit counts bytes as they pass (chunked bodies have no length up
// front), and the idle timeout measures the client's silence only.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import type { RequestContext } from '../server/context.ts';
import { replyError } from '../server/local-reply.ts';
import { closeStreamAfterResponse } from '../http2/close-early.ts';

/** Why a request body was refused mid-stream. */
export class BodyLimitError extends Error {
  /** 413 (too large) or 408 (client too slow). */
  readonly status: 413 | 408;

  constructor(status: 413 | 408, message: string) {
    super(message);
    this.name = 'BodyLimitError';
    this.status = status;
  }
}

/** A declared Content-Length over `maxBytes` (0 = no limit). */
export function declaredBodyTooLarge(req: { readonly headers: IncomingHttpHeaders }, maxBytes: number): boolean {
  if (maxBytes <= 0) return false;
  const cl = req.headers['content-length'];
  // Node's parser has already refused malformed and conflicting lengths.
  return cl !== undefined && Number(cl) > maxBytes;
}

class BodyLimiter extends Transform {
  readonly #max: number;
  readonly #idleMs: number;
  readonly #source: Readable;
  #seen = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(source: Readable, maxBytes: number, idleMs: number) {
    super();
    this.#source = source;
    this.#max = maxBytes;
    this.#idleMs = idleMs;
    if (idleMs > 0) {
      this.#timer = setTimeout(() => this.#onIdle(), idleMs);
      this.#timer.unref();
    }
  }

  #onIdle(): void {
    // Silence while the proxy is not reading (the upstream is slow and the
    // pipe paused the client) is not the client's fault.
    if (this.#source.isPaused() || this.writableNeedDrain || this.readableLength >= this.readableHighWaterMark) {
      this.#timer!.refresh();
      return;
    }
    this.destroy(new BodyLimitError(408, `no request body data for ${this.#idleMs} ms`));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#max > 0 && this.#seen > this.#max) {
      cb(new BodyLimitError(413, `request body exceeds ${this.#max} bytes`));
      return;
    }
    this.#timer?.refresh();
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    clearTimeout(this.#timer);
    cb();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    clearTimeout(this.#timer);
    cb(err);
  }
}

/**
 * The body to hand to the upstream client: `req` itself when there is
 * nothing to enforce, otherwise `req` piped through a counting stream that
 * fails with {@link BodyLimitError}. Backpressure passes through unchanged.
 */
export function limitRequestBody(req: Readable, maxBytes: number, idleMs: number): Readable {
  if (maxBytes <= 0 && idleMs <= 0) return req;
  const limiter = new BodyLimiter(req, maxBytes, idleMs);
  req.on('error', (err) => limiter.destroy(err));
  req.pipe(limiter);
  return limiter;
}

/**
 * Answer 413/408 for a body that was refused while streaming, and close the
 * connection: the rest of the body was never read, so the next request on it
 * cannot be found. The HTTP/1.1 server lingers before the close (it reads and
 * drops what the client still sends), so a client still uploading reads the
 * answer instead of a reset (server/h1/connection.ts).
 */
export function replyBodyRefused(req: Readable, res: ServerResponse, ctx: RequestContext, status: number, reason: string): void {
  // HTTP/2 ends just the stream, reset with NO_ERROR once the answer is
  // sent; the connection, shared by other streams, stays.
  const http1 = (req as Readable & { stream?: unknown }).stream === undefined;
  if (!http1) {
    replyError(res, ctx, status, reason);
    closeStreamAfterResponse(req, res);
    return;
  }
  if (!res.headersSent) res.setHeader('connection', 'close');
  replyError(res, ctx, status, reason);
}
