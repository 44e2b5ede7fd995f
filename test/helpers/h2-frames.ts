/**
 * Raw HTTP/2 frames for tests that must misbehave in ways no client library
 * will (rapid reset, CONTINUATION floods). Header blocks use HPACK literals
 * without Huffman coding or indexing, so no encoder state is needed.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';

/** The client connection preface (RFC 9113 §3.4). */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
export const ErrorCode = { NO_ERROR: 0, PROTOCOL_ERROR: 1, CANCEL: 8, ENHANCE_YOUR_CALM: 11 } as const;

/** One frame. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1');
  if (bytes.length >= 127) {
    // 7-bit prefix integer: 127, then the rest in 7-bit groups.
    const rest: number[] = [];
    let v = bytes.length - 127;
    while (v >= 128) {
      rest.push((v & 0x7f) | 0x80);
      v >>= 7;
    }
    rest.push(v);
    return Buffer.concat([Buffer.from([0x7f, ...rest]), bytes]);
  }
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

/** A literal header field without indexing, new name (RFC 7541 §6.2.2). */
export function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00]), hpackString(name), hpackString(value)]);
}

/** Header block of a GET: static-table :method GET, :scheme http, plus :path and :authority literals. */
export function getRequestBlock(path: string, authority: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x82, 0x86]), // :method GET, :scheme http
    Buffer.concat([Buffer.from([0x04]), hpackString(path)]), // :path, name indexed (4)
    Buffer.concat([Buffer.from([0x01]), hpackString(authority)]), // :authority, name indexed (1)
  ]);
}

/** A RST_STREAM frame. */
export function rstStream(streamId: number, code: number = ErrorCode.CANCEL): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FrameType.RST_STREAM, 0, streamId, p);
}

/** What a raw connection has seen from the server. */
export interface RawConnection {
  readonly socket: Socket;
  /** GOAWAY error codes received, in order. */
  readonly goaways: number[];
  /** RST_STREAM codes received by stream. */
  readonly resets: Map<number, number>;
  /** Streams that got a HEADERS frame from the server. */
  readonly responses: Set<number>;
  /** Resolves when the server closes the connection (or it errors). */
  readonly closed: Promise<void>;
  /** Write without waiting; false once the socket cannot take more. */
  send(data: Buffer): boolean;
  /** Write and wait for the socket to drain, or for it to close. */
  sendDrained(data: Buffer): Promise<boolean>;
}

/** Open a prior-knowledge HTTP/2 connection: preface and an empty SETTINGS, ACKing the server's SETTINGS. */
export function rawH2(port: number, host = '127.0.0.1'): Promise<RawConnection> {
  const socket = connect(port, host);
  const goaways: number[] = [];
  const resets = new Map<number, number>();
  const responses = new Set<number>();
  let buf = Buffer.alloc(0);
  let isClosed = false;
  const closed = new Promise<void>((resolve) => {
    socket.once('close', () => {
      isClosed = true;
      resolve();
    });
  });
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      const type = buf[3]!;
      const flags = buf[4]!;
      const stream = buf.readUInt32BE(5) & 0x7fffffff;
      const payload = buf.subarray(9, 9 + len);
      buf = buf.subarray(9 + len);
      if (type === FrameType.SETTINGS && (flags & Flag.ACK) === 0) socket.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
      else if (type === FrameType.GOAWAY) goaways.push(payload.readUInt32BE(4));
      else if (type === FrameType.RST_STREAM) resets.set(stream, payload.readUInt32BE(0));
      else if (type === FrameType.HEADERS) responses.add(stream);
    }
  });
  const conn: RawConnection = {
    socket,
    goaways,
    resets,
    responses,
    closed,
    send: (data) => !isClosed && !socket.destroyed && socket.write(data),
    sendDrained: (data) => {
      if (isClosed || socket.destroyed) return Promise.resolve(false);
      if (socket.write(data)) return Promise.resolve(true);
      return new Promise((resolve) => {
        const done = (ok: boolean) => () => {
          socket.off('drain', onDrain);
          socket.off('close', onClose);
          resolve(ok);
        };
        const onDrain = done(true);
        const onClose = done(false);
        socket.once('drain', onDrain);
        socket.once('close', onClose);
      });
    },
  };
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      socket.write(Buffer.concat([PREFACE, frame(FrameType.SETTINGS, 0, 0)]));
      resolve(conn);
    });
    socket.once('error', reject);
  });
}
