// Bytes one HTTP/2 response wrote, for the access log's `bytesSent`. The
// socket under an HTTP/2 session counts every stream of the connection
// together, and Node keeps no counter per stream, so the stream's own write
// path is counted instead: every body byte handed to nghttp2 for this stream
// (DATA payloads). Header blocks are left out: HPACK encodes them against a
// table shared by the whole connection, so the bytes one stream's headers
// take on the wire depend on every stream before it.
import type { Duplex } from 'node:stream';

type Done = (err?: Error | null) => void;
type WriteImpl = (chunk: unknown, encoding: BufferEncoding, cb: Done) => void;
type WritevImpl = (chunks: { chunk: unknown; encoding: BufferEncoding }[], cb: Done) => void;

function byteLength(chunk: unknown, encoding: BufferEncoding): number {
  return typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : (chunk as ArrayBufferView).byteLength;
}

/**
 * Start counting what is written to `stream` (an `Http2Stream`); returns a
 * reader of the count. Call it before anything is written. It hooks the
 * Writable implementation methods (`_write`, `_writev`), the one funnel that
 * `write()`, `end(chunk)` and the compatibility API's response all go through.
 */
export function countWrittenBytes(stream: Duplex): () => number {
  let bytes = 0;
  const s = stream as Duplex & { _write: WriteImpl; _writev?: WritevImpl | null };
  const write = s._write;
  s._write = function (chunk, encoding, cb) {
    bytes += byteLength(chunk, encoding);
    write.call(this, chunk, encoding, cb);
  };
  const writev = s._writev;
  if (typeof writev === 'function') {
    s._writev = function (chunks, cb) {
      for (const c of chunks) bytes += byteLength(c.chunk, c.encoding);
      writev.call(this, chunks, cb);
    };
  }
  return () => bytes;
}
