// The body-size limit as middleware: a declared Content-Length over the limit
// is refused before anything is read or sent upstream; a body without one is
// counted while it streams (dataplane/limits/body.ts).
import { declaredBodyTooLarge, limitRequestBody } from '../limits/body.ts';
import type { RequestBodyHook, RequestHook } from './types.ts';

/** Refuse a declared length over `maxBytes` with 413; null when there is no limit. */
export function declaredLengthHook(maxBytes: number): RequestHook | null {
  if (maxBytes <= 0) return null;
  const reply = { status: 413, reason: `request body exceeds ${maxBytes} bytes`, close: true } as const;
  return (req) => (declaredBodyTooLarge(req, maxBytes) ? reply : undefined);
}

/** Count the streamed body against `maxBytes` and time the client's silences; null when neither applies. */
export function streamedBodyHook(maxBytes: number, idleMs: number): RequestBodyHook | null {
  if (maxBytes <= 0 && idleMs <= 0) return null;
  return (_req, body) => limitRequestBody(body, maxBytes, idleMs);
}
