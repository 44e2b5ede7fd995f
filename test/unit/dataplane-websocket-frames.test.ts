import { describe, expect, it } from 'vitest';
import * as wsModule from 'ws';
import { closeFrame, FrameTracker } from '../../dataplane/websocket/frames.ts';

// ws exports its framing classes (named exports of its ESM entry); @types/ws does not declare them.
interface ReceiverLike { write(b: Buffer): void; on(e: 'conclude', f: (code: number, reason: Buffer) => void): void }
const { Receiver, Sender } = wsModule as unknown as {
  Receiver: new (opts: { isServer: boolean }) => ReceiverLike;
  Sender: { frame(data: Buffer, opts: { fin: boolean; mask: boolean; opcode: number; readOnly: boolean; rsv1: boolean }): Buffer[] };
};

// Frames as `ws` itself writes them, so the tracker is checked against a real implementation.
function frames(...payloads: [Buffer, boolean][]): Buffer[] {
  return payloads.map(([data, mask]) => Buffer.concat(Sender.frame(data, { fin: true, mask, opcode: 2, readOnly: false, rsv1: false })));
}

describe('FrameTracker', () => {
  it('finds every boundary, whatever the chunking, for all three length forms, masked or not', () => {
    const stream = Buffer.concat(frames(
      [Buffer.alloc(0), false], [Buffer.alloc(5, 1), true], [Buffer.alloc(125, 2), false],
      [Buffer.alloc(126, 3), true], [Buffer.alloc(70_000, 4), false], [Buffer.alloc(3, 5), true],
    ));
    const ends = new Set<number>();
    let pos = 0;
    for (const f of frames([Buffer.alloc(0), false], [Buffer.alloc(5, 1), true], [Buffer.alloc(125, 2), false],
      [Buffer.alloc(126, 3), true], [Buffer.alloc(70_000, 4), false], [Buffer.alloc(3, 5), true])) {
      pos += f.length;
      ends.add(pos);
    }
    for (const size of [1, 2, 3, 7, 64, 1000, stream.length]) {
      const t = new FrameTracker();
      const seen: number[] = [];
      for (let off = 0; off < stream.length; off += size) {
        const chunk = stream.subarray(off, off + size);
        // Byte by byte inside the chunk, so every boundary position is observed.
        for (let i = 0; i < chunk.length; i++) {
          t.consume(chunk.subarray(i, i + 1));
          if (t.atBoundary) seen.push(off + i + 1);
        }
      }
      expect(new Set(seen)).toEqual(ends);
    }
  });

  it('stops at the next boundary when asked', () => {
    const [a, b] = frames([Buffer.alloc(300, 1), false], [Buffer.alloc(10, 2), false]);
    const t = new FrameTracker();
    expect(t.consume(a!.subarray(0, 100))).toBe(100);
    expect(t.atBoundary).toBe(false);
    const rest = Buffer.concat([a!.subarray(100), b!]);
    expect(t.consume(rest, true)).toBe(a!.length - 100);
    expect(t.atBoundary).toBe(true);
    expect(t.consume(b!, true)).toBe(0);
  });
});

describe('closeFrame', () => {
  it.each([true, false])('is a valid close frame for ws (masked %s)', async (masked) => {
    // A receiver on the server side expects masked frames; on the client side, unmasked.
    const receiver = new Receiver({ isServer: masked });
    const got = new Promise<[number, string]>((resolve) => receiver.on('conclude', (code: number, reason: Buffer) => resolve([code, String(reason)])));
    receiver.write(closeFrame(1001, 'server shutting down', masked));
    expect(await got).toEqual([1001, 'server shutting down']);
  });

  it('truncates a reason to fit a control frame', () => {
    const f = closeFrame(1001, 'x'.repeat(500), false);
    expect(f.length).toBe(2 + 125);
  });
});
