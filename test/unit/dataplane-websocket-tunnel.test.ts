import { duplexPair } from 'node:stream';
import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { closeFrame } from '../../dataplane/websocket/frames.ts';
import { Tunnel } from '../../dataplane/websocket/tunnel.ts';

function binaryFrame(payload: Buffer, masked: boolean): Buffer {
  const head = payload.length < 126
    ? Buffer.from([0x82, (masked ? 0x80 : 0) | payload.length])
    : Buffer.from([0x82, (masked ? 0x80 : 0) | 126, payload.length >> 8, payload.length & 0xff]);
  // A zero mask key leaves the payload as it is, which keeps expectations readable.
  return Buffer.concat([head, masked ? Buffer.alloc(4) : Buffer.alloc(0), payload]);
}

function collect(s: Duplex): { bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return { bytes: () => Buffer.concat(chunks) };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

describe('Tunnel', () => {
  it('relays both ways, and on goAway puts the close frame after the frame in flight, never inside it', async () => {
    const [client, clientPeer] = duplexPair();
    const [upstream, upstreamPeer] = duplexPair();
    let closedWith: Tunnel | undefined;
    const t = new Tunnel(client, upstream, { websocket: true, idleMs: 0, onClosed: (x) => (closedWith = x) });
    const toClient = collect(clientPeer);
    const toUpstream = collect(upstreamPeer);
    t.start(Buffer.alloc(0), Buffer.alloc(0));

    const fromUpstream = binaryFrame(Buffer.alloc(1000, 1), false);
    const fromClient = binaryFrame(Buffer.alloc(300, 2), true);
    // Half of each frame is on its way when the proxy decides to close.
    upstreamPeer.write(fromUpstream.subarray(0, 500));
    clientPeer.write(fromClient.subarray(0, 100));
    await tick();
    t.goAway(1001, 'server shutting down');
    await tick();
    expect(toClient.bytes().equals(fromUpstream.subarray(0, 500))).toBe(true);
    // The rest of the frames arrive, then the close frames follow; anything after is dropped.
    upstreamPeer.write(Buffer.concat([fromUpstream.subarray(500), binaryFrame(Buffer.from('late'), false)]));
    clientPeer.write(Buffer.concat([fromClient.subarray(100), binaryFrame(Buffer.from('late'), true)]));
    await tick();
    const gotClient = toClient.bytes();
    expect(gotClient.equals(Buffer.concat([fromUpstream, closeFrame(1001, 'server shutting down', false)]))).toBe(true);
    const gotUpstream = toUpstream.bytes();
    expect(gotUpstream.subarray(0, fromClient.length).equals(fromClient)).toBe(true);
    // Masked with a random key: check the header and the length only.
    expect(gotUpstream.subarray(fromClient.length, fromClient.length + 2)).toEqual(Buffer.from([0x88, 0x80 | 22]));
    expect(gotUpstream.length).toBe(fromClient.length + 2 + 4 + 22);
    expect(t.closeReason).toBe('server shutting down');
    clientPeer.destroy();
    upstreamPeer.destroy();
    await tick();
    expect(closedWith).toBe(t);
  });

  it('closes an idle tunnel with 1001 and counts bytes both ways', async () => {
    const [client, clientPeer] = duplexPair();
    const [upstream, upstreamPeer] = duplexPair();
    const t = new Tunnel(client, upstream, { websocket: true, idleMs: 100, onClosed: () => undefined });
    const toClient = collect(clientPeer);
    t.start(binaryFrame(Buffer.from('early'), true), Buffer.alloc(0));
    upstreamPeer.write(binaryFrame(Buffer.from('hi'), false));
    await new Promise((r) => setTimeout(r, 250));
    expect(t.closeReason).toBe('idle timeout');
    expect(toClient.bytes().subarray(4).equals(closeFrame(1001, 'idle timeout', false))).toBe(true);
    expect(t.bytes).toEqual([2 + 4 + 5, 4]);
    t.destroy();
  });
});
