// Mapping of upstream client and socket failures to what the client is told.
// Connect timeouts are 504 like nginx's "upstream timed out while connecting".
import type { UpstreamErrorKind } from '../observability/metrics.ts';
import { UPSTREAM_CODES, UpstreamError } from './h1/errors.ts';

/** How an upstream failure is reported. */
export interface UpstreamFailure {
  status: 502 | 504;
  kind: UpstreamErrorKind;
  reason: string;
}

const CONNECT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EHOSTDOWN', 'ENETDOWN', 'ETIMEDOUT',
]);

/** Classify an error of an upstream exchange. */
export function classifyUpstreamError(err: unknown): UpstreamFailure {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case UPSTREAM_CODES.connectTimeout:
      return { status: 504, kind: 'timeout', reason: 'upstream connect timeout' };
    case UPSTREAM_CODES.headersTimeout:
      return { status: 504, kind: 'timeout', reason: 'upstream response timeout' };
    case UPSTREAM_CODES.bodyTimeout:
      return { status: 504, kind: 'timeout', reason: 'upstream body timeout' };
  }
  if (typeof code === 'string' && CONNECT_CODES.has(code)) {
    return { status: 502, kind: 'connect', reason: `upstream connect failed (${code})` };
  }
  if (err instanceof AggregateError && err.errors.length > 0) {
    // Happy-eyeballs connects report every attempt; the first tells the story.
    return classifyUpstreamError(err.errors[0]);
  }
  // Our own client's failures say what was wrong; a socket error is named by its code.
  const detail = err instanceof UpstreamError ? err.message : typeof code === 'string' ? code : (err as Error | null)?.name ?? 'error';
  return { status: 502, kind: 'bad_response', reason: `bad upstream response (${detail})` };
}
