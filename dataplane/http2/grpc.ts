// gRPC-shaped local errors. A gRPC client ignores HTTP status codes and reads
// `grpc-status` from trailers, so an error the dataplane answers itself (no
// route, no endpoints, timeouts) is sent as a "Trailers-Only" response: HTTP
// 200 and a single header block carrying grpc-status and grpc-message that
// ends the stream (gRPC over HTTP/2 protocol spec).
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { RequestContext } from '../server/context.ts';

/** gRPC status codes used by the dataplane. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/**
 * HTTP status of a local error → gRPC status. Mostly the gRPC project's own
 * HTTP-to-gRPC table; timeouts (504, 408) are DEADLINE_EXCEEDED rather than
 * UNAVAILABLE so clients can tell them apart, and 413/431 are
 * RESOURCE_EXHAUSTED, as Envoy does.
 */
export function grpcStatusFor(httpStatus: number): number {
  switch (httpStatus) {
    case 400: return GrpcStatus.INTERNAL;
    case 401: return GrpcStatus.UNAUTHENTICATED;
    case 403: return GrpcStatus.PERMISSION_DENIED;
    case 404: return GrpcStatus.UNIMPLEMENTED;
    case 408: case 504: return GrpcStatus.DEADLINE_EXCEEDED;
    case 413: case 431: return GrpcStatus.RESOURCE_EXHAUSTED;
    case 429: case 502: case 503: return GrpcStatus.UNAVAILABLE;
    case 500: return GrpcStatus.INTERNAL;
    default: return GrpcStatus.UNKNOWN;
  }
}

/** Whether a request is gRPC (or gRPC-Web, whose clients read the same header block). */
export function isGrpcRequest(headers: IncomingHttpHeaders): boolean {
  const ct = headers['content-type'];
  return ct !== undefined && ct.startsWith('application/grpc');
}

/** grpc-message is percent-encoded: bytes outside printable ASCII, and `%` itself. */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Answer a gRPC request with a Trailers-Only error. The caller has checked that no header was sent. */
export function replyGrpcError(res: ServerResponse, ctx: RequestContext, httpStatus: number, reason: string): void {
  const status = grpcStatusFor(httpStatus);
  const headers = {
    'content-type': 'application/grpc',
    'grpc-status': String(status),
    'grpc-message': encodeGrpcMessage(`${reason} (request id ${ctx.requestId})`),
    'x-request-id': ctx.requestId,
  };
  // The access log keeps the HTTP status the error stands for: a gRPC error is
  // still a 404 or 503 to whoever reads the log and the metrics.
  ctx.status = httpStatus;
  const stream = (res as unknown as Partial<Http2ServerResponse>).stream;
  if (stream !== undefined) {
    // The client may have reset the stream in the meantime; nothing to answer then.
    if (stream.destroyed || stream.closed || stream.headersSent) return;
    // The compatibility API cannot end a stream on its first header block
    // (it always waits for trailers), so respond on the stream itself.
    stream.respond({ ':status': 200, ...headers }, { endStream: true });
    return;
  }
  res.writeHead(200, { ...headers, 'content-length': 0 });
  res.end();
}
