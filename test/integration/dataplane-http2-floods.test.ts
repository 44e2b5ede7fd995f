// HTTP/2 abuse is bounded: rapid reset (CVE-2023-44487), CONTINUATION floods
// (CVE-2024-27316 class), and streams beyond the concurrency limit. Each
// attack runs on raw frames against the real dataplane while well-behaved
// HTTP/2 and HTTP/1.1 clients keep sending requests; the attacker's
// connection must be closed quickly, the work it causes must stay small, and
// every other client must keep being served.
import { connect as http2Connect } from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { ErrorCode, Flag, frame, FrameType, getRequestBlock, literal, rawH2, rstStream } from '../helpers/h2-frames.ts';
import { applySnapshot, forward, prefix, snapshot, vhost } from '../helpers/snapshots.ts';

let dp: DataplaneChild;
let backend: Backend;

beforeAll(async () => {
  backend = await startBackend('b');
  dp = await spawnDataplane();
  await applySnapshot(dp.adminUrl, snapshot(1, [vhost('v', ['*'], [forward('r', prefix('/'), 'c')])], { c: [backend.endpoint()] }));
});

afterAll(async () => {
  await dp?.stop();
  await backend?.close();
});

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${dp.adminUrl}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1]);
}

const rss = (): Promise<number> => metric('process_resident_memory_bytes');

/** Well-behaved clients (one HTTP/2 session, one HTTP/1.1 pool) requesting in a loop until stopped. */
function victims(): { stop(): Promise<{ ok: number; failed: number; maxMs: number }> } {
  let running = true;
  let ok = 0;
  let failed = 0;
  let maxMs = 0;
  const session: ClientHttp2Session = http2Connect(`http://127.0.0.1:${dp.trafficPort}`);
  session.on('error', () => undefined);
  const timed = async (f: () => Promise<number>): Promise<void> => {
    const t0 = performance.now();
    try {
      const status = await f();
      if (status === 200) ok++;
      else failed++;
    } catch {
      failed++;
    }
    maxMs = Math.max(maxMs, performance.now() - t0);
  };
  const h2 = (): Promise<number> => new Promise((resolve, reject) => {
    const s = session.request({ ':path': '/victim-h2', ':authority': 'victim' });
    s.on('response', (h) => {
      s.resume();
      s.on('end', () => resolve(Number(h[':status'])));
    });
    s.on('error', reject);
  });
  const h1 = async (): Promise<number> => {
    const res = await request(`http://127.0.0.1:${dp.trafficPort}/victim-h1`);
    await res.body.dump();
    return res.statusCode;
  };
  const loops = [h2, h1].map(async (f) => {
    while (running) {
      await timed(f);
      await new Promise((r) => setTimeout(r, 5));
    }
  });
  return {
    async stop() {
      // Keep them going a little past the attack, so "still served" means something.
      await new Promise((r) => setTimeout(r, 500));
      running = false;
      await Promise.all(loops);
      session.close();
      return { ok, failed, maxMs };
    },
  };
}

const within = <T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> => Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);
const requestLines = (path: string): number => dp.logs.filter((l) => l.msg === 'request' && l.path === path).length;

describe('HTTP/2 floods are bounded', () => {
  it('rapid reset: HEADERS + RST_STREAM pairs close the session after a small burst', async () => {
    const before = await rss();
    const v = victims();
    const c = await rawH2(dp.trafficPort);
    const block = getRequestBlock('/rapid-reset?delay=1000', 'attacker');
    let pairs = 0;
    const started = performance.now();
    for (let batch = 0; batch < 200; batch++) {
      const frames: Buffer[] = [];
      for (let i = 0; i < 100; i++) {
        const id = 1 + 2 * pairs++;
        frames.push(frame(FrameType.HEADERS, Flag.END_STREAM | Flag.END_HEADERS, id, block), rstStream(id, ErrorCode.CANCEL));
      }
      if (!(await c.sendDrained(Buffer.concat(frames)))) break;
    }
    expect(await within(c.closed, 5_000)).not.toBe('timeout');
    const closedAfterMs = performance.now() - started;
    const result = await v.stop();
    // 20,000 streams were attempted; the handler saw a bounded handful before the GOAWAY.
    const handled = requestLines('/rapid-reset');
    console.log(`rapid reset: ${pairs} pairs sent, session closed after ${Math.round(closedAfterMs)} ms, ` +
      `${handled} requests reached the handler, GOAWAY codes ${JSON.stringify(c.goaways)}; victims ${result.ok} ok, ${result.failed} failed, max ${Math.round(result.maxMs)} ms`);
    // Resets that arrive in the same read as their HEADERS close the stream before it starts.
    expect(handled).toBeLessThan(200);
    expect(backend.requests.filter((r) => r.url.startsWith('/rapid-reset')).length).toBeLessThan(200);
    expect(await metric('pyserve_http2_streams_reset_before_start_total')).toBeGreaterThan(100);
    expect(result.failed).toBe(0);
    expect(result.ok).toBeGreaterThan(4);
    expect(result.maxMs).toBeLessThan(2_000);
    expect((await rss()) - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('rapid reset, dripped in small packets: nghttp2\'s reset rate limit closes the session', async () => {
    const v = victims();
    const c = await rawH2(dp.trafficPort);
    const block = getRequestBlock('/rapid-reset-drip?delay=1000', 'attacker');
    let pairs = 0;
    const started = performance.now();
    while (pairs < 5_000 && performance.now() - started < 10_000) {
      const frames: Buffer[] = [];
      for (let i = 0; i < 5; i++) {
        const id = 1 + 2 * pairs++;
        frames.push(frame(FrameType.HEADERS, Flag.END_STREAM | Flag.END_HEADERS, id, block), rstStream(id, ErrorCode.CANCEL));
      }
      if (!(await c.sendDrained(Buffer.concat(frames)))) break;
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(await within(c.closed, 5_000)).not.toBe('timeout');
    const result = await v.stop();
    const handled = requestLines('/rapid-reset-drip');
    console.log(`rapid reset (5 pairs per packet): ${pairs} pairs sent before the session closed after ${Math.round(performance.now() - started)} ms, ` +
      `${handled} requests reached the handler; victims ${result.ok} ok, ${result.failed} failed, max ${Math.round(result.maxMs)} ms`);
    // streamResetBurst (100) plus streamResetRate (33/s) over the attack's short life.
    expect(pairs).toBeLessThan(5_000);
    expect(handled).toBeLessThan(600);
    expect(result.failed).toBe(0);
  });

  it('CONTINUATION flood (growing header block) is cut at the header list limit', async () => {
    const before = await rss();
    const v = victims();
    const c = await rawH2(dp.trafficPort);
    c.send(frame(FrameType.HEADERS, 0, 1, getRequestBlock('/continuation', 'attacker')));
    const field = literal('x-flood', 'a'.repeat(1_000));
    let sent = 0;
    // Up to 10 MB of header block; the server must give up long before.
    while (sent < 10_000 && (await c.sendDrained(frame(FrameType.CONTINUATION, 0, 1, field)))) sent++;
    expect(await within(c.closed, 5_000)).not.toBe('timeout');
    const result = await v.stop();
    console.log(`CONTINUATION flood (1 KB frames): connection closed after ${sent} frames written, GOAWAY codes ${JSON.stringify(c.goaways)}; victims ${result.ok} ok, ${result.failed} failed`);
    expect(sent).toBeLessThan(10_000);
    expect(requestLines('/continuation')).toBe(0);
    expect(result.failed).toBe(0);
    expect((await rss()) - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('CONTINUATION flood (empty frames) is cut after a few frames', async () => {
    const v = victims();
    const c = await rawH2(dp.trafficPort);
    c.send(frame(FrameType.HEADERS, 0, 1, getRequestBlock('/continuation-empty', 'attacker')));
    let sent = 0;
    while (sent < 100_000 && (await c.sendDrained(frame(FrameType.CONTINUATION, 0, 1)))) sent++;
    expect(await within(c.closed, 5_000)).not.toBe('timeout');
    const result = await v.stop();
    console.log(`CONTINUATION flood (empty frames): connection closed after ${sent} frames written; victims ${result.ok} ok, ${result.failed} failed`);
    expect(sent).toBeLessThan(100_000);
    expect(result.failed).toBe(0);
  });

  it('streams beyond SETTINGS_MAX_CONCURRENT_STREAMS are refused, then the session is closed', async () => {
    const v = victims();
    const c = await rawH2(dp.trafficPort);
    // Open streams that never end (no END_STREAM), far past the limit of 128.
    const frames: Buffer[] = [];
    for (let i = 0; i < 1_000; i++) frames.push(frame(FrameType.HEADERS, Flag.END_HEADERS, 1 + 2 * i, getRequestBlock('/hold', 'attacker')));
    await c.sendDrained(Buffer.concat(frames));
    expect(await within(c.closed, 5_000)).not.toBe('timeout');
    const result = await v.stop();
    const refused = [...c.resets.values()].filter((code) => code === 7).length;
    console.log(`stream flood: ${refused} streams refused (REFUSED_STREAM) before the session closed; victims ${result.ok} ok, ${result.failed} failed`);
    expect(refused).toBeGreaterThan(0);
    expect(requestLines('/hold')).toBeLessThanOrEqual(128);
    expect(result.failed).toBe(0);
  });
});
