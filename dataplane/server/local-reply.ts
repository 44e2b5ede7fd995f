// Responses the dataplane writes itself: errors and direct-response routes.
import { STATUS_CODES } from '../node-http.ts';
import type { ServerResponse } from 'node:http';
import type { DirectReply } from '../config/compile.ts';
import type { RequestContext } from './context.ts';
import { replyGrpcError } from '../http2/grpc.ts';

/** Answer with a short text error naming the request id, so users can quote it. */
export function replyError(res: ServerResponse, ctx: RequestContext, status: number, reason: string): void {
  ctx.error ??= reason;
  if (res.headersSent) {
    // Too late to change the status: the only honest signal left is a broken connection.
    res.destroy();
    return;
  }
  if (ctx.grpc) {
    replyGrpcError(res, ctx, status, reason);
    return;
  }
  const body = `${status} ${STATUS_CODES[status] ?? ''}: ${reason}\nrequest id: ${ctx.requestId}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-request-id': ctx.requestId,
    'cache-control': 'no-store',
  });
  res.end(body);
}

/** Answer a direct-response route. */
export function replyDirect(res: ServerResponse, ctx: RequestContext, reply: DirectReply): void {
  res.writeHead(reply.status, {
    'content-type': reply.contentType,
    'content-length': reply.body.length,
    'x-request-id': ctx.requestId,
  });
  res.end(reply.body);
}
