// Backpressure both ways with 1 GiB bodies: a paused client downloading, and a
// paused (then slow) upstream reading an upload. The dataplane's resident
// memory, sampled from its own /metrics (process_resident_memory_bytes), must
// stay flat while the far side is stalled and while the bytes flow.
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { applySnapshot, forward, prefix, snapshot, vhost } from '../helpers/snapshots.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const CHUNK = Buffer.alloc(64 * 1024, 'p');
// Memory the dataplane may gain while a 1 GiB body crosses it.
const BOUND = 64 * MiB;
// While bytes flow at full speed, garbage (spent chunk buffers) waits for the
// collector, so more is allowed, still a small fraction of the 1 GiB.
const FLOWING_BOUND = 128 * MiB;

let dp: DataplaneChild;
let backend: Backend;
let downloadWritten = 0;
let uploadReceived = 0;
let uploadGate: Promise<void> = Promise.resolve();

function handler(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.url === '/download') {
    downloadWritten = 0;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': GiB });
    const pump = (): void => {
      while (!res.destroyed && downloadWritten < GiB) {
        downloadWritten += CHUNK.length;
        if (!res.write(CHUNK)) return void res.once('drain', pump);
      }
      if (!res.destroyed) res.end();
    };
    pump();
    return true;
  }
  return false;
}

async function rss(): Promise<number> {
  const res = await request(`${dp.adminUrl}/metrics`);
  const text = await res.body.text();
  const m = /^process_resident_memory_bytes (\d+)/m.exec(text);
  if (m === null) throw new Error('no process_resident_memory_bytes in /metrics');
  return Number(m[1]);
}

/** Sample RSS every `everyMs` until `until` resolves; returns the samples. */
async function sampleWhile(until: Promise<unknown>, everyMs = 200): Promise<number[]> {
  const samples: number[] = [];
  let done = false;
  void until.finally(() => (done = true));
  while (!done) {
    samples.push(await rss());
    await Promise.race([until, new Promise((r) => setTimeout(r, everyMs))]).catch(() => undefined);
  }
  samples.push(await rss());
  return samples;
}

async function stalled(read: () => number, quietMs = 600, maxMs = 15_000): Promise<number> {
  const deadline = Date.now() + maxMs;
  let last = -1;
  while (Date.now() < deadline) {
    const now = read();
    if (now === last) return now;
    last = now;
    await new Promise((r) => setTimeout(r, quietMs));
  }
  throw new Error('the transfer never stalled');
}

beforeAll(async () => {
  // The upload backend reads only when the test lets it.
  const uploads = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    uploadReceived = 0;
    req.pause();
    await uploadGate;
    req.on('data', (c: Buffer) => (uploadReceived += c.length));
    req.resume();
    await once(req, 'end');
    const body = String(uploadReceived);
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  };
  [dp, backend] = await Promise.all([
    spawnDataplane({ args: ['--max-body-bytes', '0'] }),
    startBackend('big', handler),
  ]);
  // The helper's handler runs after the body is read; uploads need one that
  // runs before, so this backend's request listener is replaced.
  backend.server.removeAllListeners('request');
  backend.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/upload') return void uploads(req, res);
    if (!handler(req, res)) {
      res.writeHead(404);
      res.end();
    }
  });
  await applySnapshot(dp.adminUrl, snapshot(1, [vhost('all', ['*'], [forward('big', prefix('/'), 'big')])], { big: [backend.endpoint()] }));
  // Warm up so the baseline includes the code paths of a proxied request.
  for (let i = 0; i < 20; i++) await (await request(`${dp.trafficUrl}/missing`)).body.dump();
});

afterAll(async () => {
  await dp?.stop();
  await backend?.close();
});

function rawRequest(head: string): Socket {
  const socket = connect(dp.trafficPort, '127.0.0.1');
  socket.write(head);
  return socket;
}

describe('1 GiB through the dataplane', () => {
  it('a paused client downloading stalls the upstream and the dataplane does not grow', async () => {
    const baseline = await rss();
    const socket = rawRequest('GET /download HTTP/1.1\r\nHost: x\r\n\r\n');
    let received = 0;
    let reading = true;
    socket.on('data', (c: Buffer) => {
      received += c.length;
      // Read a little, then stop reading entirely.
      if (reading && received > 4 * MiB) {
        reading = false;
        socket.pause();
      }
    });
    const writtenWhenStalled = await stalled(() => downloadWritten);
    const paused = [] as number[];
    for (let i = 0; i < 5; i++) {
      paused.push(await rss());
      await new Promise((r) => setTimeout(r, 200));
    }
    // Only what the socket buffers on the way hold: nowhere near the 1 GiB.
    expect(writtenWhenStalled).toBeLessThan(96 * MiB);
    expect(Math.max(...paused) - baseline).toBeLessThan(BOUND);

    // Now read it all, at full speed, and keep sampling.
    const ended = new Promise<void>((resolve) => socket.on('data', () => {
      if (received >= GiB) resolve();
    }));
    socket.resume();
    const flowing = await sampleWhile(ended);
    socket.destroy();
    console.log(`download: baseline RSS ${(baseline / MiB).toFixed(1)} MiB; paused client: max +${((Math.max(...paused) - baseline) / MiB).toFixed(1)} MiB ` +
      `(upstream stalled after ${(writtenWhenStalled / MiB).toFixed(1)} MiB); flowing: max +${((Math.max(...flowing) - baseline) / MiB).toFixed(1)} MiB`);
    expect(received).toBeGreaterThan(GiB);
    expect(downloadWritten).toBe(GiB);
    expect(Math.max(...flowing) - baseline).toBeLessThan(FLOWING_BOUND);
  }, 120_000);

  it('a paused upstream reading a 1 GiB upload stalls the client and the dataplane does not grow', async () => {
    let open!: () => void;
    uploadGate = new Promise((resolve) => (open = resolve));
    const baseline = await rss();
    const socket = rawRequest(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${GiB}\r\n\r\n`);
    let sent = 0;
    let response = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (response += c));
    const pump = (): void => {
      while (sent < GiB) {
        sent += CHUNK.length;
        if (!socket.write(CHUNK)) return void socket.once('drain', pump);
      }
    };
    pump();
    const sentWhenStalled = await stalled(() => sent);
    const paused = [] as number[];
    for (let i = 0; i < 5; i++) {
      paused.push(await rss());
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(sentWhenStalled).toBeLessThan(96 * MiB);
    expect(uploadReceived).toBe(0);
    expect(Math.max(...paused) - baseline).toBeLessThan(BOUND);

    open();
    const answered = new Promise<void>((resolve) => socket.on('data', () => {
      if (response.includes('\r\n\r\n') && response.endsWith(String(GiB))) resolve();
    }));
    const flowing = await sampleWhile(answered);
    socket.destroy();
    console.log(`upload: baseline RSS ${(baseline / MiB).toFixed(1)} MiB; paused upstream: max +${((Math.max(...paused) - baseline) / MiB).toFixed(1)} MiB ` +
      `(client stalled after ${(sentWhenStalled / MiB).toFixed(1)} MiB); flowing: max +${((Math.max(...flowing) - baseline) / MiB).toFixed(1)} MiB`);
    expect(response).toMatch(/^HTTP\/1\.1 200 /);
    expect(uploadReceived).toBe(GiB);
    expect(Math.max(...flowing) - baseline).toBeLessThan(FLOWING_BOUND);
  }, 120_000);
});
