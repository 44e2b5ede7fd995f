// Response compression through the real dataplane: every coding decoded and
// compared byte for byte (undici and curl --compressed), negotiation from
// Accept-Encoding, what is never compressed, Vary, ETags, minimum size,
// per-route and global switches.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import zlib from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { curl } from '../helpers/http.ts';
import { applySnapshot, forward, prefix, snapshot, vhost } from '../helpers/snapshots.ts';
import type { Route } from '../../dataplane/snapshot/schema.ts';

// Compressible but not trivially so: repeated words with a counter.
function text(size: number): Buffer {
  let s = '';
  for (let i = 0; s.length < size; i++) s += `line ${i}: the quick brown fox jumps over the lazy dog ${i * 7919 % 1000}\n`;
  return Buffer.from(s.slice(0, size));
}

const BIG = text(200_000);

function handler(req: IncomingMessage, res: ServerResponse): boolean {
  const url = new URL(req.url ?? '/', 'http://x');
  const p = url.pathname.replace(/^\/(on|off|gzip-only|sse-types|default)/, '');
  const size = Number(url.searchParams.get('size') ?? BIG.length);
  const body = size === BIG.length ? BIG : text(size);
  const send = (status: number, headers: Record<string, string | number>, data: Buffer | string = body): void => {
    res.writeHead(status, headers);
    res.end(req.method === 'HEAD' ? undefined : data);
  };
  switch (p) {
    case '/text': return send(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length }), true;
    case '/html': return send(200, { 'content-type': 'text/html', 'content-length': body.length }), true;
    case '/json': return send(200, { 'content-type': 'application/json' }), true;
    case '/png': return send(200, { 'content-type': 'image/png', 'content-length': body.length }), true;
    case '/no-type': return send(200, { 'content-length': body.length }), true;
    case '/encoded': {
      const gz = zlib.gzipSync(body);
      return send(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip', 'content-length': gz.length }, gz), true;
    }
    case '/no-transform': return send(200, { 'content-type': 'text/plain', 'cache-control': 'public, no-transform' }), true;
    case '/etag': return send(200, { 'content-type': 'text/plain', etag: '"v1"', 'accept-ranges': 'bytes', 'content-length': body.length }), true;
    case '/weak-etag': return send(200, { 'content-type': 'text/plain', etag: 'W/"v1"' }), true;
    case '/vary': return send(200, { 'content-type': 'text/plain', vary: 'Origin' }), true;
    case '/vary-star': return send(200, { 'content-type': 'text/plain', vary: '*' }), true;
    case '/range': return send(206, { 'content-type': 'text/plain', 'content-range': `bytes 0-999/${body.length}`, 'content-length': 1000 }, body.subarray(0, 1000)), true;
    case '/no-content': return send(204, {}, ''), true;
    case '/not-modified': return send(304, { etag: '"v1"' }, ''), true;
    case '/chunked': {
      // No length: streamed in pieces.
      res.writeHead(200, { 'content-type': 'text/plain' });
      let off = 0;
      const next = (): void => {
        if (off >= body.length) return void res.end();
        res.write(body.subarray(off, off + 7_000));
        off += 7_000;
        setImmediate(next);
      };
      next();
      return true;
    }
    default: return false;
  }
}

const ROUTES: Route[] = [
  { ...forward('off', prefix('/off'), 'b'), compression: { enabled: false } },
  { ...forward('gzip-only', prefix('/gzip-only'), 'b'), compression: { enabled: true, algorithms: ['gzip'] } },
  { ...forward('default', prefix('/default'), 'b') },
  { ...forward('on', prefix('/on'), 'b'), compression: { enabled: true, minLength: 1000 } },
];

let dp: DataplaneChild;
let globalOn: DataplaneChild;
let backend: Backend;

beforeAll(async () => {
  [dp, globalOn, backend] = await Promise.all([
    spawnDataplane(),
    spawnDataplane({ args: ['--compression', '--compression-algorithms', 'br,gzip'] }),
    startBackend('b', handler),
  ]);
  const snap = snapshot(1, [vhost('all', ['*'], ROUTES)], { b: [backend.endpoint()] });
  await Promise.all([applySnapshot(dp.adminUrl, snap), applySnapshot(globalOn.adminUrl, snap)]);
});

afterAll(async () => {
  await Promise.all([dp?.stop(), globalOn?.stop()]);
  await backend?.close();
});

async function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const res = await request(url, { method: method as 'GET', headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}

const DECODE: Record<string, (b: Buffer) => Buffer> = {
  gzip: (b) => zlib.gunzipSync(b),
  deflate: (b) => zlib.inflateSync(b),
  br: (b) => zlib.brotliDecompressSync(b),
  zstd: (b) => zlib.zstdDecompressSync(b),
};

describe('codings', () => {
  it.each(['gzip', 'deflate', 'br', 'zstd'])('%s: decodes to the same bytes, smaller, with Vary and no Content-Length', async (coding) => {
    for (const path of ['/on/text', '/on/json', '/on/chunked']) {
      const res = await get(`${dp.trafficUrl}${path}`, { 'accept-encoding': coding });
      expect(res.status).toBe(200);
      expect(res.headers['content-encoding']).toBe(coding);
      expect(res.headers['content-length']).toBeUndefined();
      expect(res.headers.vary).toBe('Accept-Encoding');
      expect(res.body.length).toBeLessThan(BIG.length / 3);
      const decoded = DECODE[coding]!(res.body);
      expect(createHash('sha256').update(decoded).digest('hex')).toBe(createHash('sha256').update(BIG).digest('hex'));
    }
  });

  it('curl --compressed gets zstd (the first of equals) and the original text', async () => {
    const res = await curl(`${dp.trafficUrl}/on/html`, ['--compressed']);
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe('zstd');
    expect(res.body).toBe(BIG.toString());
    for (const coding of ['gzip', 'deflate', 'br', 'zstd']) {
      const one = await curl(`${dp.trafficUrl}/on/text`, ['--compressed', '-H', `accept-encoding: ${coding}`]);
      expect(one.headers['content-encoding']).toBe(coding);
      expect(one.body).toBe(BIG.toString());
    }
  });
});

describe('negotiation', () => {
  it.each<[string, string | undefined]>([
    ['gzip;q=0.5, br;q=0.8', 'br'],
    ['br;q=0, gzip', 'gzip'],
    ['*', 'zstd'],
    ['*;q=0, identity', undefined],
    ['identity', undefined],
    ['gzip;q=0', undefined],
    ['gzip;q=0.5, identity', undefined],
  ])('Accept-Encoding %j → %j', async (accept, expected) => {
    const res = await get(`${dp.trafficUrl}/on/text`, { 'accept-encoding': accept });
    expect(res.headers['content-encoding']).toBe(expected);
    expect(res.headers.vary).toBe('Accept-Encoding');
    if (expected === undefined) expect(res.body.equals(BIG)).toBe(true);
  });

  it('offers only the route\'s codings', async () => {
    expect((await get(`${dp.trafficUrl}/gzip-only/text`, { 'accept-encoding': 'zstd, br, gzip' })).headers['content-encoding']).toBe('gzip');
    expect((await get(`${dp.trafficUrl}/gzip-only/text`, { 'accept-encoding': 'br' })).headers['content-encoding']).toBeUndefined();
  });

  it('sends Vary: Accept-Encoding even to a client that asked for nothing', async () => {
    const res = await get(`${dp.trafficUrl}/on/text`);
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(res.headers.vary).toBe('Accept-Encoding');
    expect(res.headers['content-length']).toBe(String(BIG.length));
  });
});

describe('what is left alone', () => {
  it.each([
    ['/on/png', 'a type outside the allowlist'],
    ['/on/no-type', 'no Content-Type'],
    ['/on/no-transform', 'Cache-Control: no-transform'],
    ['/on/range', 'a 206 range'],
    ['/on/text?size=999', 'a Content-Length under minLength'],
    ['/off/text', 'a route with compression off'],
    ['/default/text', 'a route that says nothing, with the global default off'],
  ])('%s (%s)', async (path) => {
    const res = await get(`${dp.trafficUrl}${path}`, { 'accept-encoding': 'gzip, br, zstd' });
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(res.headers.vary).toBeUndefined();
  });

  it('an already encoded response passes untouched', async () => {
    const res = await get(`${dp.trafficUrl}/on/encoded`, { 'accept-encoding': 'br, zstd, gzip' });
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(zlib.gunzipSync(res.body).equals(BIG)).toBe(true);
  });

  it('HEAD, 204 and 304 are not compressed', async () => {
    const head = await get(`${dp.trafficUrl}/on/text`, { 'accept-encoding': 'gzip' }, 'HEAD');
    expect(head.headers['content-encoding']).toBeUndefined();
    expect(head.headers['content-length']).toBe(String(BIG.length));
    expect((await get(`${dp.trafficUrl}/on/no-content`, { 'accept-encoding': 'gzip' })).status).toBe(204);
    const nm = await get(`${dp.trafficUrl}/on/not-modified`, { 'accept-encoding': 'gzip' });
    expect(nm.status).toBe(304);
    expect(nm.headers['content-encoding']).toBeUndefined();
  });

  it('a chunked response of unknown length is compressed even when small', async () => {
    const res = await get(`${dp.trafficUrl}/on/chunked?size=300`, { 'accept-encoding': 'gzip' });
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(zlib.gunzipSync(res.body).equals(text(300))).toBe(true);
  });
});

describe('headers of compressed responses', () => {
  it('weakens a strong ETag and drops Accept-Ranges; a weak ETag stays', async () => {
    const res = await get(`${dp.trafficUrl}/on/etag`, { 'accept-encoding': 'gzip' });
    expect(res.headers.etag).toBe('W/"v1"');
    expect(res.headers['accept-ranges']).toBeUndefined();
    const plain = await get(`${dp.trafficUrl}/on/etag`);
    expect(plain.headers.etag).toBe('"v1"');
    expect((await get(`${dp.trafficUrl}/on/weak-etag`, { 'accept-encoding': 'gzip' })).headers.etag).toBe('W/"v1"');
  });

  it('extends an existing Vary, and leaves Vary: * alone', async () => {
    expect((await get(`${dp.trafficUrl}/on/vary`, { 'accept-encoding': 'gzip' })).headers.vary).toBe('Origin, Accept-Encoding');
    expect((await get(`${dp.trafficUrl}/on/vary-star`, { 'accept-encoding': 'gzip' })).headers.vary).toBe('*');
  });
});

describe('global default', () => {
  it('--compression turns it on for routes that say nothing; routes can still turn it off', async () => {
    const on = await get(`${globalOn.trafficUrl}/default/text`, { 'accept-encoding': 'gzip, deflate, br, zstd' });
    // --compression-algorithms br,gzip: zstd is not offered.
    expect(on.headers['content-encoding']).toBe('br');
    expect(zlib.brotliDecompressSync(on.body).equals(BIG)).toBe(true);
    expect((await get(`${globalOn.trafficUrl}/off/text`, { 'accept-encoding': 'br' })).headers['content-encoding']).toBeUndefined();
  });
});
