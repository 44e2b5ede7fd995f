// Response bodies through the dataplane, byte for byte, while its upstream
// client lends body pieces to the client response (http1/sink.ts LENDING):
// the same few buffers are filled again as soon as a client socket's write
// completes inside the call, and must never be while a socket still holds
// one. Slow clients that pipeline many requests and stop reading make the
// socket writes partial; fast ones keep the lending path busy beside them.
// Made to fail: with H1Response.writeLent always answering true, bodies
// arrive with other responses' bytes in them.
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { applySnapshot, forward, prefix, snapshot, vhost } from '../helpers/snapshots.ts';

// Sizes around the 1 KiB string cut-off, the bench's 16 KiB, and bodies that
// take several 64 KiB reads.
const SIZES = [1025, 4096, 16 * 1024, 16 * 1024 + 3, 40_000, 64 * 1024, 64 * 1024 + 1, 200_000, 700_000];
const bodies = SIZES.map((n) => randomBytes(n));

let dp: DataplaneChild;
let backend: Backend;

beforeAll(async () => {
  const handler = (req: IncomingMessage, res: ServerResponse): boolean => {
    const body = bodies[Number(req.url!.slice(3))];
    if (!req.url!.startsWith('/b/') || body === undefined) return false;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
    return true;
  };
  [dp, backend] = await Promise.all([spawnDataplane(), startBackend('bodies', handler)]);
  await applySnapshot(dp.adminUrl, snapshot(1, [vhost('all', ['*'], [forward('bodies', prefix('/'), 'bodies')])], { bodies: [backend.endpoint()] }));
});

afterAll(async () => {
  await dp?.stop();
  await backend?.close();
});

interface ClientResult {
  responses: number;
  wrong: string[];
}

/**
 * One keep-alive connection that sends `count` pipelined GETs at once and
 * reads the responses. A slow one reads nothing for `stallMs`, so the
 * kernel's buffers fill, then stops for `pauseMs` after every `readBytes`
 * bytes: each time it reads, the dataplane's next write finds a little room
 * and completes only in part.
 */
function client(want: number[], slow: { stallMs: number; readBytes: number; pauseMs: number } | undefined): Promise<ClientResult> {
  const count = want.length;
  const socket = connect(dp.trafficPort, '127.0.0.1');
  socket.write(want.map((k) => `GET /b/${k} HTTP/1.1\r\nHost: bodies.test\r\n\r\n`).join(''));
  const result: ClientResult = { responses: 0, wrong: [] };
  let buf = Buffer.alloc(0);
  let sincePause = 0;
  if (slow !== undefined) {
    socket.pause();
    setTimeout(() => socket.resume(), slow.stallMs);
  }
  return new Promise((resolve, reject) => {
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = buf.toString('latin1', 0, end);
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? NaN);
        if (!head.startsWith('HTTP/1.1 200 ') || !Number.isInteger(length)) {
          reject(new Error(`unexpected response head: ${head}`));
          socket.destroy();
          return;
        }
        if (buf.length < end + 4 + length) break;
        const k = want[result.responses]!;
        if (!buf.subarray(end + 4, end + 4 + length).equals(bodies[k]!)) result.wrong.push(`response ${result.responses} (/b/${k}, ${bodies[k]!.length} bytes)`);
        buf = buf.subarray(end + 4 + length);
        if (++result.responses === count) {
          socket.end();
          resolve(result);
          return;
        }
      }
      if (slow !== undefined && (sincePause += d.length) >= slow.readBytes) {
        sincePause = 0;
        socket.pause();
        setTimeout(() => socket.resume(), slow.pauseMs);
      }
    });
    socket.on('close', () => reject(new Error(`connection closed after ${result.responses} of ${count} responses`)));
  });
}

describe('lent body pieces', () => {
  it('every body arrives byte for byte to slow pipelining clients and fast ones side by side', async () => {
    const every = (first: number, count: number): number[] => Array.from({ length: count }, (_, i) => (first + i) % bodies.length);
    const big = bodies.length - 1;
    const runs: Promise<ClientResult>[] = [];
    // ~8 MB each, read at ~6 MB/s: more than the kernel buffers between them and the dataplane.
    for (let c = 0; c < 3; c++) runs.push(client([...every(c, 9), ...Array(10).fill(big)], { stallMs: 300, readBytes: 32 * 1024, pauseMs: 5 }));
    for (let c = 0; c < 8; c++) runs.push(client(every(c + 3, 60), undefined));
    const results = await Promise.all(runs);
    expect(results.map((r) => r.responses)).toEqual([...Array(3).fill(19), ...Array(8).fill(60)]);
    expect(results.flatMap((r) => r.wrong)).toEqual([]);
  }, 60_000);
});
