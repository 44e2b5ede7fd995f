// Running a function when a response closes, whatever the protocol.
import type { ServerResponse } from 'node:http';
import { H1Response } from './h1/response.ts';

/**
 * As `res.once('close', fn)`. PyServe's HTTP/1.1 responses take `fn` as a
 * plain hook (H1Response.onClose) instead of an EventEmitter listener: the
 * request path registers three per request.
 */
export function onResponseClose(res: ServerResponse, fn: () => void): void;
/** As `res.once('close', () => fn(arg))`, without a closure for HTTP/1.1 responses. */
export function onResponseClose<T>(res: ServerResponse, fn: (arg: T) => void, arg: T): void;
export function onResponseClose(res: ServerResponse, fn: (arg: unknown) => void, arg?: unknown): void {
  if ((res as unknown) instanceof H1Response) (res as unknown as H1Response).onClose(fn, arg);
  else res.once('close', () => fn(arg));
}
