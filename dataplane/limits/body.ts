// Request body limits enforced while the body streams to the upstream: the
// size limit counts bytes as they pass (chunked bodies have no length up
// front), and the idle timeout measures the client's silence only.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
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

// After refusing a body, keep discarding what the client still sends for this
// long so it can read the answer (nginx's lingering close), then cut.
const LINGER_MS = 2_000;

/**
 * Answer 413/408 for a body that was refused while streaming, and close the
 * connection: the rest of the body was never read, so the next request on it
 * cannot be found. Until then the body is read and dropped, so a client
 * still sending does not see a reset before it has read the answer.
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
  const complete = (req as Readable & { complete?: boolean }).complete;
  const socket = (req as Readable & { socket?: Socket | null }).socket;
  // Before the answer goes out: Node closes the socket as soon as it is sent.
  if (complete !== true && socket) lingerAfterResponse(req, socket);
  replyError(res, ctx, status, reason);
}

/**
 * Lingering close. Node's HTTP server destroys a `Connection: close` socket
 * once the response is written (`destroySoon`), with the unread rest of the
 * body still arriving: the kernel answers that with a reset, and a client
 * still uploading gets EPIPE or ECONNRESET, often before it read the 413.
 * Instead: send FIN after the response, read and drop the rest of the body,
 * and close when it ends, when the client closes, or after LINGER_MS.
 */
function lingerAfterResponse(req: Readable, socket: Socket): void {
  req.unpipe();
  req.resume();
  const close = (): void => {
    clearTimeout(cut);
    socket.destroy();
  };
  const cut = setTimeout(close, LINGER_MS);
  cut.unref();
  // The HTTP server's sockets are half-open capable, so end() only sends FIN.
  (socket as Socket & { destroySoon?: () => void }).destroySoon = () => {
    socket.end();
    // Nothing is left unread once the body ended: closing now resets nothing.
    if (req.readableEnded) close();
  };
  req.once('end', () => {
    if (socket.writableEnded) close();
  });
  socket.once('end', close);
  socket.once('close', () => clearTimeout(cut));
}
