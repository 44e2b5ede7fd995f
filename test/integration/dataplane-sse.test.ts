// Server-sent events and other chunked responses flow through the dataplane
// event by event. Most checks are gated: the upstream writes event k+1 only
// after the client has received (and, compressed, decoded) event k, so any
// buffering on the way deadlocks the test instead of merely slowing it.
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { applySnapshot, direct, exact, forward, prefix, snapshot, vhost } from '../helpers/snapshots.ts';
import type { Route } from '../../dataplane/snapshot/schema.ts';

let dp: DataplaneChild;
let backend: Backend;
// The gate of the current gated stream: the test opens it once per received event.
let release: (() => void) | undefined;
let backendEndedAt = 0;

function sseHandler(req: IncomingMessage, res: ServerResponse): boolean {
  const url = new URL(req.url ?? '/', 'http://x');
  const count = Number(url.searchParams.get('events') ?? 5);
  const type = url.searchParams.get('type') ?? 'text/event-stream';
  res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' });
  res.flushHeaders();
  let i = 0;
  const send = (): void => {
    if (res.destroyed) return;
    if (i === count) {
      backendEndedAt = performance.now();
      res.end();
      return;
    }
    res.write(type === 'text/event-stream' ? `id: ${i}\nevent: tick\ndata: event ${i}\n\n` : `{"n":${i}}\n`);
    i++;
    if (url.searchParams.has('gated')) release = send;
    else setTimeout(send, Number(url.searchParams.get('interval') ?? 100));
  };
  send();
  return true;
}

const ROUTES = (extra: Route[] = []): Route[] => [
  ...extra,
  { ...forward('sse-compressed', prefix('/compressed'), 'sse'), compression: { enabled: true, contentTypes: ['text/event-stream', 'application/x-ndjson'] } },
  forward('sse', prefix('/'), 'sse'),
];

beforeAll(async () => {
  [dp, backend] = await Promise.all([spawnDataplane(), startBackend('sse', sseHandler)]);
  await applySnapshot(dp.adminUrl, snapshot(1, [vhost('all', ['*'], ROUTES())], { sse: [backend.endpoint()] }));
});

afterAll(async () => {
  await dp?.stop();
  await backend?.close();
});

/** Read `n` events from a (decoded) stream, opening the backend's gate after each. */
async function gatedEvents(body: Readable, n: number, separator: string, onEvent?: (i: number) => Promise<void>): Promise<string[]> {
  const events: string[] = [];
  let buffered = '';
  for await (const chunk of body) {
    buffered += String(chunk);
    let end: number;
    while ((end = buffered.indexOf(separator)) !== -1) {
      events.push(buffered.slice(0, end));
      buffered = buffered.slice(end + separator.length);
      await onEvent?.(events.length - 1);
      release?.();
    }
    if (events.length === n) break;
  }
  return events;
}

describe('SSE', () => {
  it('measures time to first event, which arrives long before the stream ends', async () => {
    const timeToFirstEvent = async (origin: string): Promise<number> => {
      const started = performance.now();
      const res = await request(`${origin}/events?events=5&interval=100`);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/event-stream');
      let firstAt = 0;
      let text = '';
      for await (const chunk of res.body) {
        text += String(chunk);
        if (firstAt === 0 && text.includes('\n\n')) firstAt = performance.now();
      }
      expect(text.split('\n\n').filter((e) => e !== '')).toHaveLength(5);
      // The first event must not wait for the rest (the stream takes 400 ms to finish).
      expect(firstAt).toBeLessThan(backendEndedAt);
      return firstAt - started;
    };
    const proxied: number[] = [];
    const directly: number[] = [];
    for (let run = 0; run < 10; run++) {
      proxied.push(await timeToFirstEvent(dp.trafficUrl));
      directly.push(await timeToFirstEvent(`http://127.0.0.1:${backend.port}`));
    }
    const median = (xs: number[]): string => [...xs].sort((a, b) => a - b)[5]!.toFixed(2);
    // A figure to report, not a bound to assert: timing on a shared CI machine varies.
    console.log(`SSE time to first event: median ${median(proxied)} ms through the dataplane, ${median(directly)} ms straight to the upstream (10 runs each)`);
  });

  it('delivers each event before the upstream writes the next', async () => {
    const res = await request(`${dp.trafficUrl}/events?events=20&gated`);
    const events = await gatedEvents(res.body, 20, '\n\n');
    expect(events).toEqual(Array.from({ length: 20 }, (_, i) => `id: ${i}\nevent: tick\ndata: event ${i}`));
  });

  it('keeps an SSE stream flowing through 20 snapshot swaps', async () => {
    const res = await request(`${dp.trafficUrl}/events?events=21&gated`);
    let generation = 1;
    const events = await gatedEvents(res.body, 21, '\n\n', async (i) => {
      if (i === 20) return;
      generation++;
      // Routing changes every other swap, endpoints (a spare endpoint) on the others.
      const extra = generation % 2 === 0 ? [direct(`swap-${generation}`, exact(`/swap-${generation}`), 204)] : [];
      const endpoints = { sse: [backend.endpoint()], spare: generation % 4 === 1 ? [backend.endpoint()] : [] };
      const applied = await applySnapshot(dp.adminUrl, snapshot(generation, [vhost('all', ['*'], ROUTES(extra))], endpoints));
      expect(applied.json?.applied).toBe(true);
    });
    expect(events).toHaveLength(21);
    expect(events[20]).toContain('data: event 20');
  });
});

const DECODERS: Record<string, () => zlib.Gzip | zlib.BrotliDecompress | zlib.Inflate | zlib.ZstdDecompress> = {
  gzip: () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
  zstd: () => zlib.createZstdDecompress(),
};

describe('compressed streams flush per event', () => {
  it.each(['gzip', 'deflate', 'br', 'zstd'])('%s: each SSE event decodes before the next is written', async (coding) => {
    const res = await request(`${dp.trafficUrl}/compressed/events?events=10&gated`, { headers: { 'accept-encoding': coding } });
    expect(res.headers['content-encoding']).toBe(coding);
    const decoded = res.body.pipe(DECODERS[coding]!());
    const events = await gatedEvents(decoded, 10, '\n\n');
    expect(events).toEqual(Array.from({ length: 10 }, (_, i) => `id: ${i}\nevent: tick\ndata: event ${i}`));
    decoded.destroy();
  });

  it('a chunked NDJSON stream, compressed, flows line by line', async () => {
    const res = await request(`${dp.trafficUrl}/compressed/ndjson?events=10&gated&type=application/x-ndjson`, { headers: { 'accept-encoding': 'gzip' } });
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(res.headers['transfer-encoding']).toBe('chunked');
    const lines = await gatedEvents(res.body.pipe(zlib.createGunzip()), 10, '\n');
    expect(lines).toEqual(Array.from({ length: 10 }, (_, i) => `{"n":${i}}`));
  });

  it('an uncompressed chunked stream flows chunk by chunk (plain text, no SSE)', async () => {
    const res = await request(`${dp.trafficUrl}/lines?events=10&gated&type=text/plain`);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    const lines = await gatedEvents(res.body, 10, '\n');
    expect(lines).toHaveLength(10);
    await once(res.body, 'close').catch(() => undefined);
  });
});
