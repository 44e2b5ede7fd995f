// Bodies are streamed through the proxy in both directions, never buffered
// whole: each test would deadlock (and time out) if the proxy waited for a
// complete body before passing it on.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { curl } from '../helpers/http.ts';
import { applySnapshot, forward, prefix, snapshot, vhost } from '../helpers/snapshots.ts';

const MB = 1024 * 1024;
let dp: DataplaneChild;
let echo: Backend;
let gated: Backend;
let endless: Backend;
let agent: Agent;
let tmp: string;
// Set by tests: what the gated backend waits for between its two chunks.
let gate: Promise<void> = Promise.resolve();
let endlessWritten = 0;
let endlessClosed: Promise<void> = Promise.resolve();

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pyserve-stream-'));
  agent = new Agent();
  const gatedHandler = (_req: unknown, res: ServerResponse): boolean => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first chunk;');
    void gate.then(() => res.end('second chunk'));
    return true;
  };
  // Writes 64 MiB as fast as the proxy lets it, honouring backpressure.
  const endlessHandler = (_req: unknown, res: ServerResponse): boolean => {
    const chunk = Buffer.alloc(64 * 1024, 'z');
    endlessWritten = 0;
    endlessClosed = once(res, 'close').then(() => undefined);
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const pump = (): void => {
      while (!res.destroyed && endlessWritten < 64 * MB) {
        endlessWritten += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      if (!res.destroyed) res.end();
    };
    pump();
    return true;
  };
  [dp, echo, gated, endless] = await Promise.all([
    // Uploads here are far above the 1 MiB default body limit (limits are tested elsewhere).
    spawnDataplane({ args: ['--max-body-bytes', '0'] }),
    startBackend('echo'),
    startBackend('gated', gatedHandler),
    startBackend('endless', endlessHandler),
  ]);
  await applySnapshot(dp.adminUrl, snapshot(1, [vhost('all', ['*'], [
    forward('gated', prefix('/gated'), 'gated'),
    forward('endless', prefix('/endless'), 'endless'),
    forward('echo', prefix('/'), 'echo'),
  ])], { echo: [echo.endpoint()], gated: [gated.endpoint()], endless: [endless.endpoint()] }));
});

afterAll(async () => {
  await agent?.close();
  await dp?.stop();
  await Promise.all([echo?.close(), gated?.close(), endless?.close()]);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('request bodies', () => {
  it('streams a 20 MB chunked upload: the upstream sees bytes before the client has sent them all', async () => {
    const total = 20 * MB;
    const block = randomBytes(MB);
    const expected = createHash('sha256');
    for (let i = 0; i < 20; i++) expected.update(block);
    const head = echo.nextRequest();
    async function* body() {
      yield block;
      // Hold the rest back until the upstream has received part of the body.
      const req = await head;
      await once(req, 'data');
      for (let i = 1; i < 20; i++) yield block;
    }
    const res = await request(`${dp.trafficUrl}/upload`, { method: 'POST', body: Readable.from(body()), dispatcher: agent });
    expect(res.statusCode).toBe(200);
    const seen = (await res.body.json()) as { bodyBytes: number; bodySha256: string; headers: Record<string, string> };
    expect(seen.bodyBytes).toBe(total);
    expect(seen.bodySha256).toBe(expected.digest('hex'));
    expect(seen.headers['transfer-encoding']).toBe('chunked');
  }, 60_000);

  it('streams a 20 MB upload with Content-Length and Expect: 100-continue (curl)', async () => {
    const file = join(tmp, 'upload.bin');
    const data = randomBytes(20 * MB);
    await writeFile(file, data);
    const res = await curl(`${dp.trafficUrl}/upload-curl`, ['--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream']);
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body) as { bodyBytes: number; bodySha256: string; headers: Record<string, string> };
    expect(seen.bodyBytes).toBe(data.length);
    expect(seen.bodySha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect(seen.headers['content-length']).toBe(String(data.length));
    expect(seen.headers).not.toHaveProperty('expect');
  }, 60_000);
});

describe('response bodies', () => {
  it('passes the first chunk to the client before the upstream has finished', async () => {
    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    const res = await request(`${dp.trafficUrl}/gated`, { dispatcher: agent });
    expect(res.statusCode).toBe(200);
    const chunks: string[] = [];
    for await (const chunk of res.body) {
      chunks.push(String(chunk));
      // Only now may the upstream finish; a buffering proxy never gets here.
      if (chunks.length === 1) open();
    }
    expect(chunks.join('')).toBe('first chunk;second chunk');
  });

  it('streams a 20 MB response', async () => {
    const res = await request(`${dp.trafficUrl}/big?chunks=320&chunkSize=65536`, { dispatcher: agent });
    expect(res.statusCode).toBe(200);
    let bytes = 0;
    for await (const chunk of res.body) bytes += (chunk as Buffer).length;
    expect(bytes).toBe(20 * MB);
  });

  it('applies backpressure: a client that stops reading stops the upstream', async () => {
    const res = await request(`${dp.trafficUrl}/endless`, { dispatcher: agent, highWaterMark: 64 * 1024 });
    expect(res.statusCode).toBe(200);
    // Read nothing; the upstream can only fill the buffers in between, then must stall.
    let stalledAt = -1;
    for (let i = 0; i < 50 && endlessWritten !== stalledAt; i++) {
      stalledAt = endlessWritten;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(endlessWritten).toBe(stalledAt);
    expect(stalledAt).toBeLessThan(24 * MB);
    // A client that goes away releases the upstream request too.
    res.body.destroy();
    await endlessClosed;
    expect(endlessWritten).toBeLessThan(64 * MB);
  });
});
