// Bounded request body reading for the admin API: the limit is enforced while
// reading, so an oversized push never sits in memory whole.
import type { IncomingMessage } from 'node:http';

/** Result of {@link readBounded}. */
export type BoundedBody = { ok: true; body: Buffer } | { ok: false; reason: 'too_large' | 'aborted' };

/** True when a declared Content-Length already exceeds `limit`. */
export function declaredTooLarge(req: IncomingMessage, limit: number): boolean {
  const cl = req.headers['content-length'];
  return cl !== undefined && Number(cl) > limit;
}

/** Read the whole body unless it exceeds `limit` bytes; then stop collecting and say so. */
export function readBounded(req: IncomingMessage, limit: number): Promise<BoundedBody> {
  if (declaredTooLarge(req, limit)) return Promise.resolve({ ok: false, reason: 'too_large' });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        chunks.length = 0;
        resolve({ ok: false, reason: 'too_large' });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve({ ok: true, body: Buffer.concat(chunks, size) });
    };
    const onAbort = (): void => {
      cleanup();
      resolve({ ok: false, reason: 'aborted' });
    };
    const onClose = (): void => {
      if (!req.complete) onAbort();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onClose);
  });
}
