// HTTP/2 through the real dataplane with real clients: curl (--http2 over TLS,
// --http2-prior-knowledge on the plain port), undici with allowH2, node:http2,
// and h2load. Backends of every protocol: HTTP/1.1, HTTPS, h2c and h2 (TLS).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { connect as http2Connect, constants as h2constants } from 'node:http2';
import type { ClientHttp2Session, IncomingHttpHeaders } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSnapshot } from '../../dataplane/snapshot/build.ts';
import type { Cluster, Route, VirtualHost } from '../../dataplane/snapshot/schema.ts';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { startH2cBackend, startH2TlsBackend, startHttpsBackend } from '../helpers/h2-backends.ts';
import type { H2Echo, TestBackend } from '../helpers/h2-backends.ts';
import { curl } from '../helpers/http.ts';
import { Flag, frame, FrameType, rawH2, rstStream } from '../helpers/h2-frames.ts';
import { applySnapshot } from '../helpers/snapshots.ts';
import { createTestPki, snapshotCertificate } from '../helpers/tls.ts';

const run = promisify(execFile);
const pki = createTestPki();
let dp: DataplaneChild;
let h1: Backend;
let h2c: TestBackend;
let h2tls: TestBackend;
let https1: TestBackend;
let resetter: TestBackend;
const sessions: ClientHttp2Session[] = [];

const route = (name: string, path: string, cluster: string): Route => ({
  name,
  match: { path: { type: 'Prefix', value: path } },
  action: { type: 'forward', backends: [{ cluster, weight: 1 }] },
});

beforeAll(async () => {
  [h1, h2c, h2tls, https1, resetter] = await Promise.all([
    startBackend('h1'),
    startH2cBackend('h2c'),
    startH2TlsBackend('h2tls', pki.issue(['backend.internal'])),
    startHttpsBackend('https1', pki.issue(['backend.internal'])),
    startH2cBackend('resetter'),
  ]);
  dp = await spawnDataplane();
  const vhosts: VirtualHost[] = [{
    name: 'app',
    hostnames: ['app.test', '127.0.0.1'],
    routes: [route('to-resetter', '/reset', 'resetter'), route('to-h2c', '/h2c', 'h2c'), route('to-h2', '/h2tls', 'h2'), route('to-https', '/https', 'https'), route('to-h1', '/', 'h1')],
    tls: { certificate: 'app', redirectHttp: false },
  }];
  const clusters: Cluster[] = [
    { name: 'h1', protocol: 'http' },
    { name: 'h2c', protocol: 'h2c' },
    { name: 'h2', protocol: 'h2' },
    { name: 'https', protocol: 'https' },
    { name: 'resetter', protocol: 'h2c' },
  ];
  await applySnapshot(dp.adminUrl, buildSnapshot(1, {
    virtualHosts: vhosts,
    clusters,
    certificates: [snapshotCertificate('app', pki.issue(['app.test']))],
  }, {
    clusters: [
      { cluster: 'h1', endpoints: [h1.endpoint()] },
      { cluster: 'h2', endpoints: [h2tls.endpoint()] },
      { cluster: 'h2c', endpoints: [h2c.endpoint()] },
      { cluster: 'https', endpoints: [https1.endpoint()] },
      { cluster: 'resetter', endpoints: [resetter.endpoint()] },
    ],
  }));
});

afterAll(async () => {
  for (const s of sessions) s.destroy();
  await dp?.stop();
  await Promise.all([h1?.close(), h2c?.close(), h2tls?.close(), https1?.close(), resetter?.close()]);
});

/** A node:http2 session to the plain port (h2c) or the TLS port (h2, verified against the test CA). */
function session(tls: boolean): ClientHttp2Session {
  const s = tls
    ? http2Connect(`https://app.test:${dp.httpsPort}`, { ca: pki.ca.certPem, servername: 'app.test', host: '127.0.0.1' } as never)
    : http2Connect(`http://127.0.0.1:${dp.trafficPort}`);
  s.on('error', () => undefined);
  sessions.push(s);
  return s;
}

interface H2Result {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  trailers: IncomingHttpHeaders | undefined;
}

function h2request(s: ClientHttp2Session, path: string, opts: { method?: string; body?: Buffer; headers?: Record<string, string> } = {}): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    const stream = s.request({ ':method': opts.method ?? 'GET', ':path': path, ':authority': 'app.test', ...opts.headers }, { endStream: opts.body === undefined });
    const chunks: Buffer[] = [];
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    stream.on('response', (h) => (headers = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks), trailers }));
    stream.on('error', reject);
    if (opts.body !== undefined) stream.end(opts.body);
  });
}

const json = <T>(r: { body: Buffer } | { text: string }): T => JSON.parse('body' in r ? r.body.toString('utf8') : r.text) as T;

describe('client side', () => {
  it('curl --http2 over TLS negotiates h2 by ALPN and verifies the SNI certificate', async () => {
    const r = await curl(`https://app.test:${dp.httpsPort}/x`, ['--http2', '--cacert', pki.caFile, '--resolve', `app.test:${dp.httpsPort}:127.0.0.1`, '-w', '\n%{http_version}']);
    expect(r.exitCode).toBe(0);
    expect(r.status).toBe(200);
    const [body, version] = r.body.split('\n');
    expect(version).toBe('2');
    const echo = JSON.parse(body!) as { headers: Record<string, string> };
    expect(echo.headers['x-forwarded-proto']).toBe('https');
    expect(echo.headers.host).toBe(`app.test:${dp.httpsPort}`);
  });

  it('curl --http2-prior-knowledge and plain HTTP/1.1 share the plain port', async () => {
    const [h2r, h1r] = await Promise.all([
      curl(`http://127.0.0.1:${dp.trafficPort}/a`, ['--http2-prior-knowledge', '-w', '\n%{http_version}']),
      curl(`http://127.0.0.1:${dp.trafficPort}/b`, ['--http1.1', '-w', '\n%{http_version}']),
    ]);
    expect([h2r.status, h2r.body.split('\n')[1]]).toEqual([200, '2']);
    expect([h1r.status, h1r.body.split('\n')[1]]).toEqual([200, '1.1']);
    expect((JSON.parse(h2r.body.split('\n')[0]!) as { headers: Record<string, string> }).headers['x-forwarded-proto']).toBe('http');
  });

  it('curl with h2c upgrade (HTTP/1.1 Upgrade: h2c) falls back to HTTP/1.1', async () => {
    // RFC 9113 deprecates the Upgrade dance; the request must still be served.
    const r = await curl(`http://127.0.0.1:${dp.trafficPort}/up`, ['--http2', '-w', '\n%{http_version}']);
    expect([r.status, r.body.split('\n')[1]]).toEqual([200, '1.1']);
  });

  it('undici with allowH2 over TLS', async () => {
    const agent = new Agent({ allowH2: true, connect: { ca: pki.ca.certPem, servername: 'app.test' } });
    try {
      const res = await request(`https://127.0.0.1:${dp.httpsPort}/undici`, { dispatcher: agent, headers: { host: 'app.test' } });
      expect(res.statusCode).toBe(200);
      const echo = (await res.body.json()) as { url: string; headers: Record<string, string> };
      expect(echo.url).toBe('/undici');
      expect(echo.headers['x-forwarded-proto']).toBe('https');
    } finally {
      await agent.close();
    }
  });

  it('offers h2 and http/1.1 by ALPN, in that order of preference', async () => {
    const negotiated = async (protocols: string[]): Promise<string | false | null> => new Promise((resolve, reject) => {
      const s = tlsConnect({ port: dp.httpsPort, host: '127.0.0.1', servername: 'app.test', ca: pki.ca.certPem, ALPNProtocols: protocols }, () => {
        resolve(s.alpnProtocol ?? null);
        s.end();
      });
      s.on('error', reject);
    });
    expect(await negotiated(['http/1.1', 'h2'])).toBe('h2');
    expect(await negotiated(['http/1.1'])).toBe('http/1.1');
    expect(await negotiated([])).toBe(false);
  });

  it('node:http2: many concurrent streams on one session, over h2c and h2', async () => {
    for (const tls of [false, true]) {
      const s = session(tls);
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => h2request(s, `/many/${i}`)));
      expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
      expect(results.map((r) => json<{ url: string }>(r).url)).toEqual(Array.from({ length: 50 }, (_, i) => `/many/${i}`));
    }
  });

  it('node:http2: a request body without content-length streams to an HTTP/1.1 backend', async () => {
    const body = Buffer.alloc(900 * 1024 + 7, 'q');
    const r = await h2request(session(false), '/upload', { method: 'POST', body });
    const echo = json<{ bodyBytes: number; bodySha256: string; headers: Record<string, string> }>(r);
    expect(echo.bodyBytes).toBe(body.length);
    expect(echo.bodySha256).toBe(createHash('sha256').update(body).digest('hex'));
    expect(echo.headers['transfer-encoding']).toBe('chunked');
  });

  it('keeps serving after a client resets a stream mid-response', async () => {
    const s = session(false);
    const stream = s.request({ ':path': '/?chunks=200&chunkSize=65536&interval=5', ':authority': 'app.test' });
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.close(h2constants.NGHTTP2_CANCEL);
    const r = await h2request(s, '/after-reset');
    expect(r.status).toBe(200);
  });
});

describe('truncation is never passed on as a complete body', () => {
  it('a client reset mid-upload reaches neither an HTTP/1.1 nor an h2c backend as a whole request', async () => {
    for (const path of ['/upload-reset', '/h2c/upload-reset']) {
      const c = await rawH2(dp.trafficPort);
      // HEADERS without END_STREAM, 10 000 body bytes, then RST_STREAM: no END_STREAM ever.
      const block = Buffer.concat([Buffer.from([0x83, 0x86]), Buffer.from([0x04, path.length]), Buffer.from(path), Buffer.from([0x01, 8]), Buffer.from('app.test')]);
      c.send(Buffer.concat([frame(FrameType.HEADERS, Flag.END_HEADERS, 1, block), frame(FrameType.DATA, 0, 1, Buffer.alloc(10_000, 'a'))]));
      await new Promise((r) => setTimeout(r, 300));
      c.send(rstStream(1));
      await new Promise((r) => setTimeout(r, 500));
      c.socket.destroy();
    }
    expect(h1.requests.filter((q) => q.url === '/upload-reset')).toEqual([]);
    expect(dp.logs.filter((l) => l.msg === 'request' && String(l.path).endsWith('/upload-reset')).map((l) => l.status)).toEqual([499, 499]);
  });
});

describe('backend side', () => {
  it('h2 client → h2c backend, trailers passed through', async () => {
    const r = await h2request(session(true), '/h2c/t?trailers=1', { method: 'POST', body: Buffer.from('hello'), headers: { te: 'trailers' } });
    expect(r.status).toBe(200);
    const echo = json<H2Echo>(r);
    expect(echo).toMatchObject({ backend: 'h2c', httpVersion: '2.0', method: 'POST', url: '/h2c/t?trailers=1', bodyBytes: 5 });
    expect(echo.headers).toMatchObject({ 'x-forwarded-proto': 'https', te: 'trailers', ':authority': 'app.test' });
    expect(r.trailers).toMatchObject({ 'x-checksum': 'abc123', 'x-backend-trailer': 'h2c' });
  });

  it('HTTP/1.1 client → h2c backend, body streamed, trailers as chunked trailers', async () => {
    const body = Buffer.alloc(900 * 1024, 'z');
    const res = await request(`http://127.0.0.1:${dp.trafficPort}/h2c/up?trailers=1`, { method: 'POST', body, headers: { host: 'app.test' } });
    expect(res.statusCode).toBe(200);
    const echo = (await res.body.json()) as H2Echo;
    expect(echo).toMatchObject({ backend: 'h2c', httpVersion: '2.0', bodyBytes: body.length });
    expect(echo.bodySha256).toBe(createHash('sha256').update(body).digest('hex'));
    expect(res.trailers).toMatchObject({ 'x-checksum': 'abc123' });
  });

  it('h2 client → h2 (TLS) backend; large download with backpressure', async () => {
    const r = await h2request(session(false), '/h2tls/echo');
    expect(json<H2Echo>(r)).toMatchObject({ backend: 'h2tls', httpVersion: '2.0' });
    const big = await h2request(session(true), `/h2tls/big?bytes=${16 * 1024 * 1024}`);
    expect(big.status).toBe(200);
    expect(big.body.length).toBe(16 * 1024 * 1024);
  });

  it('HTTP/1.1 and h2 clients → HTTPS (HTTP/1.1 over TLS) backend', async () => {
    const res = await request(`http://127.0.0.1:${dp.trafficPort}/https/one`, { headers: { host: 'app.test' } });
    expect(res.statusCode).toBe(200);
    expect((await res.body.json()) as H2Echo).toMatchObject({ backend: 'https1', httpVersion: '1.1', url: '/https/one' });
    const r = await h2request(session(true), '/https/two');
    expect(json<H2Echo>(r)).toMatchObject({ backend: 'https1', httpVersion: '1.1', url: '/https/two' });
  });

  it('an upstream that dies mid-response resets the client stream', async () => {
    const s = session(false);
    const stream = s.request({ ':path': `/reset/big?bytes=${64 * 1024 * 1024}`, ':authority': 'app.test' });
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.pause();
    const closed = new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? -1)));
    await resetter.close();
    // A paused stream holds its 'close' until what it buffered is read.
    stream.resume();
    expect(await closed).not.toBe(h2constants.NGHTTP2_NO_ERROR);
    // The session itself survives; the next request on it is served.
    expect((await h2request(s, '/after')).status).toBe(200);
  });
});

describe('load', () => {
  it('h2load: h2c and h2 over TLS, every request succeeds', async () => {
    await ensureH2load();
    const figures: string[] = [];
    for (const [label, url] of [['h2c', `http://127.0.0.1:${dp.trafficPort}/load`], ['h2', `https://127.0.0.1:${dp.httpsPort}/load`]] as const) {
      const { stdout } = await run('h2load', ['-n', '4000', '-c', '4', '-m', '16', '-H', 'host: app.test', url], { timeout: 120_000 });
      const m = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(stdout);
      expect(m, stdout).not.toBeNull();
      expect(Number(m![4])).toBe(4000);
      expect(Number(m![5]) + Number(m![6])).toBe(0);
      const rps = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(stdout)?.[1];
      figures.push(`${label}: ${rps} req/s`);
    }
    console.log(`h2load -n 4000 -c 4 -m 16 through the dataplane to an HTTP/1.1 backend: ${figures.join(', ')}`);
  }, 180_000);
});

/** h2load comes from Debian's nghttp2-client; install it when missing. */
async function ensureH2load(): Promise<void> {
  await run('bash', ['scripts/test-tools/ensure-debs.sh', 'nghttp2-client'], { timeout: 600_000 });
}

describe('shutdown', () => {
  it('an HTTP/2 session gets GOAWAY; its stream in flight completes; the process exits 0', async () => {
    const own = await spawnDataplane({ args: ['--drain-timeout-ms', '5000'] });
    try {
      await applySnapshot(own.adminUrl, buildSnapshot(1, {
        virtualHosts: [{ name: 'v', hostnames: ['*'], routes: [route('all', '/', 'h1')] }],
        clusters: [{ name: 'h1', protocol: 'http' }],
      }, { clusters: [{ cluster: 'h1', endpoints: [h1.endpoint()] }] }));
      const s = http2Connect(`http://127.0.0.1:${own.trafficPort}`);
      s.on('error', () => undefined);
      const goaway = new Promise<void>((resolve) => s.once('goaway', () => resolve()));
      const slow = h2request(s, '/?delay=800');
      await new Promise((r) => setTimeout(r, 200));
      const exited = own.stop('SIGTERM');
      await goaway;
      const r = await slow;
      expect(r.status).toBe(200);
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(own.logs.find((l) => l.msg === 'stopped')).toMatchObject({ forced: false, cut: 0 });
    } finally {
      await own.stop('SIGKILL');
    }
  });
});
