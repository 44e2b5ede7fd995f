// The failures of PyServe's HTTP/1.1 upstream client, as error codes the
// proxy maps to 502/503/504 (upstream/errors.ts) and to retry conditions
// (upstream/retry.ts). Socket errors (ECONNREFUSED, ECONNRESET, …) reach the
// proxy unchanged.

/** Codes of {@link UpstreamError}. */
export const UPSTREAM_CODES = {
  /** The TCP (or TLS) connection was not up within the connect timeout. */
  connectTimeout: 'PYSERVE_UPSTREAM_CONNECT_TIMEOUT',
  /** No response head within the response timeout after the request was sent. */
  headersTimeout: 'PYSERVE_UPSTREAM_HEADERS_TIMEOUT',
  /** The response body stalled for longer than the response timeout. */
  bodyTimeout: 'PYSERVE_UPSTREAM_BODY_TIMEOUT',
  /** The upstream closed the connection before the response was complete. */
  closed: 'PYSERVE_UPSTREAM_CLOSED',
  /** The response is not valid HTTP/1.1 (head, framing or chunk syntax). */
  badResponse: 'PYSERVE_UPSTREAM_BAD_RESPONSE',
  /** The request cannot be written as valid HTTP/1.1 (a header value with CR/LF, a length mismatch). */
  invalidRequest: 'PYSERVE_UPSTREAM_INVALID_REQUEST',
  /** The endpoint's pool was closed (the endpoint left the snapshot, or shutdown). */
  poolClosed: 'PYSERVE_UPSTREAM_POOL_CLOSED',
} as const;

export type UpstreamErrorCode = (typeof UPSTREAM_CODES)[keyof typeof UPSTREAM_CODES];

/** A failure of one upstream exchange, with a stable `code`. */
export class UpstreamError extends Error {
  readonly code: UpstreamErrorCode;

  constructor(code: UpstreamErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UpstreamError';
    this.code = code;
  }
}
