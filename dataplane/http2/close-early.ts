// Ending an HTTP/2 request whose body the server stopped reading. Node closes
// a finished server stream by itself only when the handler never read the
// request body; once part of it was read (a body refused mid-stream), the
// stream stays half-open, waiting for a body nobody reads, and flow control
// then stalls the client. Its 'close' also waits until what the request
// buffered is read. Either way the stream never closes, is never logged, and
// holds a drain to its deadline. RFC 9113 §8.1: after a complete response the
// server may reset the stream with NO_ERROR so the client stops sending.
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { constants } from 'node:http2';
import type { Http2ServerResponse } from 'node:http2';

/**
 * For an HTTP/2 response: drop the rest of the request body and reset the
 * stream with NO_ERROR once the response is sent. Nothing for HTTP/1.1
 * (limits/body.ts lingers and closes the connection there).
 */
export function closeStreamAfterResponse(req: Readable, res: ServerResponse): void {
  const stream = (res as unknown as Partial<Http2ServerResponse>).stream;
  if (stream === undefined) return;
  req.unpipe();
  req.resume();
  const close = (): void => {
    if (!stream.closed && !stream.destroyed) stream.close(constants.NGHTTP2_NO_ERROR);
  };
  if (res.writableFinished) close();
  else res.once('finish', close);
}
