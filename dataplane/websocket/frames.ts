// Just enough RFC 6455 framing for a proxy that otherwise passes bytes
// through untouched: find frame boundaries in a byte stream (so a close frame
// can be put between two frames, never inside one), and write a close frame.
//
// A hand-written close frame rather than `ws`'s Sender: the proxy never owns a
// WebSocket object (it relays someone else's), the close frame is 4 + reason
// bytes of fixed layout, and `ws`'s framing helpers are internal API. The
// tests read these frames with `ws` itself, which validates them.
import { randomFillSync } from 'node:crypto';

/** Close codes used by the proxy (RFC 6455 §7.4.1). */
export const CLOSE_GOING_AWAY = 1001;

/**
 * A close frame: FIN + opcode 8, a 2-byte code and a UTF-8 reason (≤ 123
 * bytes, so the payload fits a control frame's 125). Frames towards a server
 * must be masked (§5.3); frames towards a client must not be.
 */
export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  let text = Buffer.from(reason, 'utf8');
  if (text.length > 123) text = text.subarray(0, 123);
  const payload = Buffer.allocUnsafe(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  const frame = Buffer.allocUnsafe(2 + (masked ? 4 : 0) + payload.length);
  frame[0] = 0x88;
  frame[1] = (masked ? 0x80 : 0) | payload.length;
  if (!masked) {
    payload.copy(frame, 2);
    return frame;
  }
  const key = randomFillSync(Buffer.allocUnsafe(4));
  key.copy(frame, 2);
  for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i]! ^ key[i & 3]!;
  return frame;
}

/**
 * Follows frame boundaries of one direction of a WebSocket connection. It
 * reads only frame headers (2–14 bytes) and skips payloads by length, so it
 * costs nothing per payload byte and never copies data.
 */
export class FrameTracker {
  // Header bytes of the frame being read; a header can span chunks.
  #header = Buffer.alloc(14);
  #headerHave = 0;
  #headerNeed = 2;
  // Payload bytes left in the current frame.
  #payloadLeft = 0;

  /** True between two frames: a frame may be inserted here. */
  get atBoundary(): boolean {
    return this.#headerHave === 0 && this.#payloadLeft === 0;
  }

  /**
   * Account for `chunk`. With `stopAtBoundary`, stop at the first frame end
   * (or at once when already at one) and return how many bytes of `chunk`
   * belong before it; otherwise return `chunk.length`.
   */
  consume(chunk: Buffer, stopAtBoundary = false): number {
    let i = 0;
    while (i < chunk.length) {
      if (stopAtBoundary && this.atBoundary) return i;
      if (this.#payloadLeft > 0) {
        const take = Math.min(this.#payloadLeft, chunk.length - i);
        this.#payloadLeft -= take;
        i += take;
        continue;
      }
      const take = Math.min(this.#headerNeed - this.#headerHave, chunk.length - i);
      chunk.copy(this.#header, this.#headerHave, i, i + take);
      this.#headerHave += take;
      i += take;
      if (this.#headerHave < this.#headerNeed) continue;
      this.#advanceHeader();
    }
    return i;
  }

  #advanceHeader(): void {
    const h = this.#header;
    const masked = (h[1]! & 0x80) !== 0;
    const len7 = h[1]! & 0x7f;
    const extLen = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const full = 2 + extLen + (masked ? 4 : 0);
    if (this.#headerNeed < full) {
      // The first two bytes told how long the rest of the header is.
      this.#headerNeed = full;
      return;
    }
    let payload: number;
    if (len7 === 126) payload = h.readUInt16BE(2);
    else if (len7 === 127) payload = Number(h.readBigUInt64BE(2));
    else payload = len7;
    this.#headerHave = 0;
    this.#headerNeed = 2;
    this.#payloadLeft = payload;
  }
}
