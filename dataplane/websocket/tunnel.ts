// An established upgraded connection: bytes relayed both ways untouched, with
// backpressure, an idle timeout, and — for WebSockets — the ability to end it
// with a proper close frame put between two frames of each direction.
import type { Duplex } from 'node:stream';
import { closeFrame, FrameTracker } from './frames.ts';

/** How long peers get to finish the close handshake before the sockets are cut. */
export const CLOSE_GRACE_MS = 2_000;

/** Options of {@link Tunnel}. */
export interface TunnelOptions {
  /** The bytes are WebSocket frames (RFC 6455), so close frames can be sent. */
  readonly websocket: boolean;
  /** Close after this long without a byte in either direction; 0 for never. */
  readonly idleMs: number;
  /** Called once, when both sides are closed. */
  readonly onClosed: (tunnel: Tunnel) => void;
}

type Dir = 0 | 1; // 0: client → upstream, 1: upstream → client

/** One relayed connection between a client and an upstream. */
export class Tunnel {
  readonly #ends: readonly [Duplex, Duplex];
  readonly #trackers: readonly [FrameTracker, FrameTracker] | undefined;
  readonly #opts: TunnelOptions;
  readonly #idle: NodeJS.Timeout | undefined;
  // Per direction: a close frame is owed (waiting for a frame boundary), or was sent.
  readonly #closeOwed: [boolean, boolean] = [false, false];
  readonly #closeSent: [boolean, boolean] = [false, false];
  #close: Buffer[] = [];
  #closing = false;
  #graceTimer: NodeJS.Timeout | undefined;
  #open = 2;
  /** Bytes relayed client → upstream and upstream → client. */
  readonly bytes: [number, number] = [0, 0];
  /** Why the proxy ended the tunnel, if it did. */
  closeReason: string | undefined;

  constructor(client: Duplex, upstream: Duplex, opts: TunnelOptions) {
    this.#ends = [client, upstream];
    this.#opts = opts;
    this.#trackers = opts.websocket ? [new FrameTracker(), new FrameTracker()] : undefined;
    if (opts.idleMs > 0) {
      this.#idle = setTimeout(() => this.goAway(1001, 'idle timeout'), opts.idleMs);
      this.#idle.unref();
    }
  }

  /**
   * Start relaying. `early` holds bytes each side sent before the tunnel
   * existed (after the client's request head, after the upstream's 101).
   */
  start(earlyFromClient: Buffer, earlyFromUpstream: Buffer): void {
    const [client, upstream] = this.#ends;
    for (const s of this.#ends) {
      // Small frames (chat messages, pings) must not wait for Nagle.
      (s as Duplex & { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
      s.on('error', () => s.destroy());
      s.once('close', () => this.#onSideClosed(s));
    }
    if (earlyFromClient.length > 0) this.#onData(0, earlyFromClient);
    if (earlyFromUpstream.length > 0) this.#onData(1, earlyFromUpstream);
    client.on('data', (chunk: Buffer) => this.#onData(0, chunk));
    upstream.on('data', (chunk: Buffer) => this.#onData(1, chunk));
    // A half-close is passed on; the peers finish their own close handshake.
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.resume();
    upstream.resume();
  }

  #onData(dir: Dir, chunk: Buffer): void {
    this.#idle?.refresh();
    const src = this.#ends[dir];
    const dst = this.#ends[dir === 0 ? 1 : 0];
    if (this.#closeSent[dir]) return; // after our close frame, nothing more goes that way
    let n = chunk.length;
    if (this.#trackers !== undefined) n = this.#trackers[dir].consume(chunk, this.#closeOwed[dir]);
    if (n > 0) {
      this.bytes[dir] += n;
      const ok = dst.write(n === chunk.length ? chunk : chunk.subarray(0, n));
      if (!ok && !src.isPaused()) {
        src.pause();
        dst.once('drain', () => src.resume());
      }
    }
    if (this.#closeOwed[dir] && this.#trackers![dir].atBoundary) this.#sendClose(dir);
  }

  #sendClose(dir: Dir): void {
    this.#closeOwed[dir] = false;
    this.#closeSent[dir] = true;
    const dst = this.#ends[dir === 0 ? 1 : 0];
    // Towards the upstream the proxy speaks as a client: frames must be masked.
    if (!dst.destroyed) dst.end(this.#close[dir]);
  }

  /**
   * End the tunnel on the proxy's initiative: a WebSocket gets a close frame
   * with `code` in each direction, at the next frame boundary; any other
   * upgraded protocol is simply closed. Both sockets are cut if the peers
   * have not closed within {@link CLOSE_GRACE_MS}.
   */
  goAway(code: number, reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.closeReason = reason;
    clearTimeout(this.#idle);
    this.#graceTimer = setTimeout(() => this.destroy(), CLOSE_GRACE_MS);
    this.#graceTimer.unref();
    if (this.#trackers === undefined) {
      for (const s of this.#ends) s.end();
      return;
    }
    this.#close = [closeFrame(code, reason, true), closeFrame(code, reason, false)];
    for (const dir of [0, 1] as const) {
      if (this.#trackers[dir].atBoundary) this.#sendClose(dir);
      else this.#closeOwed[dir] = true;
      // A paused source could otherwise never reach the boundary it owes.
      this.#ends[dir].resume();
    }
  }

  /** Cut both sides now. */
  destroy(): void {
    for (const s of this.#ends) s.destroy();
  }

  #onSideClosed(side: Duplex): void {
    this.#open--;
    const other = side === this.#ends[0] ? this.#ends[1] : this.#ends[0];
    if (this.#open > 0) {
      // One side is gone: let the other flush what it has, then cut it.
      if (!other.destroyed) {
        other.end();
        if (this.#graceTimer === undefined) {
          this.#graceTimer = setTimeout(() => other.destroy(), CLOSE_GRACE_MS);
          this.#graceTimer.unref();
        }
      }
      return;
    }
    clearTimeout(this.#idle);
    clearTimeout(this.#graceTimer);
    this.#opts.onClosed(this);
  }
}
