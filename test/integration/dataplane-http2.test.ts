// HTTP/2 through the real dataplane with real clients: curl (--http2 over TLS,
// --http2-prior-knowledge on the plain port), undici with allowH2, node:http2,
// and h2load. Backends of every protocol: HTTP/1.1, HTTPS, h2c and h2 (TLS).
// Routes to HTTP/2 backends get the same body limits and compression as
// routes to HTTP/1.1 ones, and the access log counts bytes per stream.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { connect as http2Connect, constants as h2constants, createServer as createH2Server } from 'node:http2';
import type { ClientHttp2Session, Http2Server, IncomingHttpHeaders, ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
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
import { curl, rawExchange } from '../helpers/http.ts';
import { eventually } from '../helpers/logged-process.ts';
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

const route = (name: string, path: string, cluster: string, extra: Partial<Route> = {}): Route => ({
  name,
  match: { path: { type: 'Prefix', value: path } },
  action: { type: 'forward', backends: [{ cluster, weight: 1 }] },
  ...extra,
});

/** Body limit of the `/limited` route. */
const LIMIT = 64 * 1024;
/** A gRPC message (5-byte prefix + payload) that would compress very well. */
const GRPC_MESSAGE = Buffer.concat([Buffer.from([0, 0, 0, 0x0f, 0xa0]), Buffer.alloc(4000, 'a')]);

/** What the recording h2c backend saw of one stream. */
interface RecordedStream {
  path: string;
  /** Request body bytes received. */
  bytes: number;
  /** Whether it answered (it answers `/limited` only after the whole body). */
  answered: boolean;
  /** RST_STREAM code once the stream closed (0 = it ended cleanly). */
  rstCode: number | undefined;
  closed: Promise<void>;
}

/**
 * An h2c backend on raw node:http2 streams that records how each request
 * body ended. `/limited/*` answers with the byte count once the body ends;
 * `/zipall/grpc` answers a gRPC message and `grpc-status` trailers;
 * `/zipall/plain` 4000 bytes of text; `/limited/early` answers at once and
 * ends its response only when the body ends.
 */
async function startRecordingH2c(): Promise<{ server: Http2Server; port: number; streams: RecordedStream[]; close(): Promise<void> }> {
  const streams: RecordedStream[] = [];
  const sessions = new Set<ServerHttp2Session>();
  const server = createH2Server();
  server.on('session', (s: ServerHttp2Session) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    let closed!: () => void;
    const rec: RecordedStream = { path: String(headers[':path']), bytes: 0, answered: false, rstCode: undefined, closed: new Promise((r) => (closed = r)) };
    streams.push(rec);
    stream.on('error', () => undefined);
    stream.once('close', () => {
      rec.rstCode = stream.rstCode;
      closed();
    });
    stream.on('data', (c: Buffer) => (rec.bytes += c.length));
    if (rec.path.startsWith('/limited/early')) {
      // Answers before it has read the body, and keeps reading.
      rec.answered = true;
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.write('early answer\n');
      stream.once('end', () => stream.end());
      return;
    }
    stream.once('end', () => {
      // A reset also ends the readable side; only a clean END_STREAM is a whole body.
      if (stream.destroyed || (stream.rstCode ?? 0) !== 0) return;
      rec.answered = true;
      if (rec.path.startsWith('/zipall/grpc')) {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'OK' }));
        stream.end(GRPC_MESSAGE);
      } else if (rec.path.startsWith('/zipall/plain')) {
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.end(Buffer.alloc(4000, 'p'));
      } else {
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(JSON.stringify({ bytes: rec.bytes }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    streams,
    close: () => new Promise((resolve) => {
      for (const s of sessions) s.destroy();
      server.close(() => resolve());
    }),
  };
}

let recorder: Awaited<ReturnType<typeof startRecordingH2c>>;

/**
 * The recorder's streams for `paths` among those it saw from index `from`
 * on, once they have closed. Waited for: a stream the proxy reset while its
 * HEADERS were still queued reaches the backend after the client's answer.
 */
async function recordedStreams(from: number, paths: string[]): Promise<RecordedStream[]> {
  const { value } = await eventually(async () => {
    const seen = paths.map((p) => recorder.streams.slice(from).find((r) => r.path === p));
    return seen.every((r) => r !== undefined) ? (seen as RecordedStream[]) : undefined;
  }, 10_000, `the h2c backend to see ${paths.join(', ')}`);
  await Promise.all(value.map((r) => r.closed));
  return value;
}

beforeAll(async () => {
  [h1, h2c, h2tls, https1, resetter, recorder] = await Promise.all([
    startBackend('h1'),
    startH2cBackend('h2c'),
    startH2TlsBackend('h2tls', pki.issue(['backend.internal'])),
    startHttpsBackend('https1', pki.issue(['backend.internal'])),
    startH2cBackend('resetter'),
    startRecordingH2c(),
  ]);
  dp = await spawnDataplane();
  const vhosts: VirtualHost[] = [{
    name: 'app',
    hostnames: ['app.test', '127.0.0.1'],
    routes: [
      route('to-resetter', '/reset', 'resetter'),
      route('to-h2c', '/h2c', 'h2c'),
      route('limited', '/limited', 'rec', { limits: { maxBodyBytes: LIMIT } }),
      route('capped-h1', '/capped', 'h1', { limits: { maxBodyBytes: LIMIT } }),
      route('zip', '/zip', 'h2c', { compression: { enabled: true, contentTypes: ['application/octet-stream', 'application/json'] } }),
      route('zip-everything', '/zipall', 'rec', { compression: { enabled: true, contentTypes: ['*'] } }),
      route('to-h2', '/h2tls', 'h2'),
      route('to-https', '/https', 'https'),
      route('to-h1', '/', 'h1'),
    ],
    tls: { certificate: 'app', redirectHttp: false },
  }];
  const clusters: Cluster[] = [
    { name: 'h1', protocol: 'http' },
    { name: 'h2c', protocol: 'h2c' },
    { name: 'h2', protocol: 'h2' },
    { name: 'https', protocol: 'https' },
    { name: 'resetter', protocol: 'h2c' },
    { name: 'rec', protocol: 'h2c' },
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
      { cluster: 'rec', endpoints: [{ address: '127.0.0.1', port: recorder.port, ready: true, serving: true, terminating: false }] },
    ],
  }));
});

afterAll(async () => {
  for (const s of sessions) s.destroy();
  await dp?.stop();
  await Promise.all([h1?.close(), h2c?.close(), h2tls?.close(), https1?.close(), resetter?.close(), recorder?.close()]);
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
    const before = recorder.streams.length;
    for (const path of ['/upload-reset', '/h2c/upload-reset', '/limited/upload-reset']) {
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
    // The h2c backend got the bytes sent so far, then a reset: never END_STREAM, so it never answered.
    const seen = await recordedStreams(before, ['/limited/upload-reset']);
    expect(recorder.streams.slice(before)).toHaveLength(1);
    expect(seen.map((r) => ({ path: r.path, bytes: r.bytes, answered: r.answered, rstCode: r.rstCode }))).toEqual([
      { path: '/limited/upload-reset', bytes: 10_000, answered: false, rstCode: h2constants.NGHTTP2_CANCEL },
    ]);
    expect(dp.logs.filter((l) => l.msg === 'request' && String(l.path).endsWith('/upload-reset')).map((l) => l.status)).toEqual([499, 499, 499]);
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

/** The access log line of a request id (written when the response closes). */
const logged = (requestId: string) => dp.waitForLog((l) => l.msg === 'request' && l.requestId === requestId);

describe('route middleware towards HTTP/2 upstreams', () => {
  it('a streamed body over the route limit gets 413 from HTTP/1.1 and HTTP/2 clients; the h2c backend sees the stream cancelled', async () => {
    const before = recorder.streams.length;
    // HTTP/2 carries no length for this body, HTTP/1.1 sends it chunked: both are counted while they stream.
    const h2 = await h2request(session(false), '/limited/h2', { method: 'POST', body: Buffer.alloc(4 * LIMIT, 'b'), headers: { 'x-request-id': 'limit-h2' } });
    expect(h2.status).toBe(413);
    expect(h2.body.toString()).toContain(`request body exceeds ${LIMIT} bytes`);
    // One chunk that crosses the limit, written at once, then silence (lingering
    // close with a client still uploading: dataplane-limits.test.ts).
    const chunk = LIMIT + 1024;
    const h1res = await rawExchange(dp.trafficPort, 'POST /limited/h1 HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nX-Request-ID: limit-h1\r\n\r\n' +
      `${chunk.toString(16)}\r\n${'c'.repeat(chunk)}\r\n`);
    expect(h1res.response).toMatch(/^HTTP\/1\.1 413 /);
    expect(h1res.response.toLowerCase()).toContain('connection: close');
    expect(h1res.closedByServer).toBe(true);
    // Each reached the backend, got at most LIMIT bytes through, and was cancelled instead of ended.
    const refused = await recordedStreams(before, ['/limited/h1', '/limited/h2']);
    for (const r of refused) {
      expect(r.bytes).toBeLessThanOrEqual(LIMIT);
      expect(r.rstCode).toBe(h2constants.NGHTTP2_CANCEL);
      expect(r.answered).toBe(false);
    }
    for (const id of ['limit-h2', 'limit-h1']) expect(await logged(id)).toMatchObject({ status: 413, route: 'limited', error: `request body exceeds ${LIMIT} bytes` });
    // Under the limit the same route forwards the whole body.
    const ok = await h2request(session(false), '/limited/ok', { method: 'POST', body: Buffer.alloc(LIMIT, 'd') });
    expect([ok.status, json<{ bytes: number }>(ok).bytes]).toEqual([200, LIMIT]);
  });

  it('towards an HTTP/1.1 backend, an HTTP/2 body over the limit gets 413 and its stream closes (NO_ERROR), so it is logged and the client is not left stalled', async () => {
    const s = session(false);
    const stream = s.request({ ':method': 'POST', ':path': '/capped/h2', ':authority': 'app.test', 'x-request-id': 'capped-h2' });
    stream.on('error', () => undefined);
    const head = new Promise<IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
    const closed = new Promise<number | undefined>((resolve) => stream.once('close', () => resolve(stream.rstCode)));
    stream.resume();
    // Far more than one flow-control window: unless the server drops the rest
    // and closes the stream, this write can never finish.
    stream.end(Buffer.alloc(16 * LIMIT, 'f'));
    expect((await head)[':status']).toBe(413);
    expect(await closed).toBe(h2constants.NGHTTP2_NO_ERROR);
    expect(await logged('capped-h2')).toMatchObject({ status: 413, route: 'capped-h1', error: `request body exceeds ${LIMIT} bytes` });
    // The session carries on.
    expect((await h2request(s, '/capped/ok', { method: 'POST', body: Buffer.alloc(1024, 'g') })).status).toBe(200);
  });

  it('a body crossing the limit after the response began resets both streams instead', async () => {
    const before = recorder.streams.length;
    const s = session(false);
    const stream = s.request({ ':method': 'POST', ':path': '/limited/early', ':authority': 'app.test', 'x-request-id': 'limit-early' });
    stream.on('error', () => undefined);
    const head = new Promise<IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
    const closed = new Promise<number | undefined>((resolve) => stream.once('close', () => resolve(stream.rstCode)));
    stream.resume();
    // Under the limit until the answer has begun, then over it.
    stream.write(Buffer.alloc(LIMIT / 2, 'e'));
    expect((await head)[':status']).toBe(200);
    stream.end(Buffer.alloc(4 * LIMIT, 'e'));
    // Too late for a 413: the client's stream is reset, never ended cleanly.
    expect(await closed).toBe(h2constants.NGHTTP2_CANCEL);
    const [upstream] = await recordedStreams(before, ['/limited/early']);
    expect(upstream!.bytes).toBeLessThanOrEqual(LIMIT);
    expect(upstream!.rstCode).toBe(h2constants.NGHTTP2_CANCEL);
    expect(await logged('limit-early')).toMatchObject({ status: 200, error: `request body exceeds ${LIMIT} bytes` });
  });

  it('compresses a response from an h2c backend on a route that enables it, for HTTP/2 and HTTP/1.1 clients, trailers kept', async () => {
    const size = 1024 * 1024;
    const r = await h2request(session(true), `/zip/big?bytes=${size}`, { headers: { 'accept-encoding': 'gzip' } });
    expect(r.status).toBe(200);
    expect(r.headers['content-encoding']).toBe('gzip');
    expect(r.headers.vary).toMatch(/accept-encoding/i);
    expect(r.body.length).toBeLessThan(size / 20);
    expect(zlib.gunzipSync(r.body).equals(Buffer.alloc(size, 'y'))).toBe(true);

    const res = await request(`http://127.0.0.1:${dp.trafficPort}/zip/t?bytes=100000&trailers=1`, { headers: { host: 'app.test', 'accept-encoding': 'br', te: 'trailers' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-encoding']).toBe('br');
    const encoded = Buffer.from(await res.body.arrayBuffer());
    expect(zlib.brotliDecompressSync(encoded).equals(Buffer.alloc(100_000, 'y'))).toBe(true);
    expect(res.trailers).toMatchObject({ 'x-checksum': 'abc123' });

    // The same route without Accept-Encoding: sent as it came.
    const plain = await h2request(session(false), '/zip/plain?bytes=5000');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.length).toBe(5000);
  });

  it('never compresses gRPC, even on a route that compresses every type', async () => {
    const s = session(false);
    // The control: this route does compress what is not gRPC.
    const text = await h2request(s, '/zipall/plain', { headers: { 'accept-encoding': 'gzip' } });
    expect(text.headers['content-encoding']).toBe('gzip');
    expect(zlib.gunzipSync(text.body).toString()).toBe('p'.repeat(4000));
    const call = await h2request(s, '/zipall/grpc', {
      method: 'POST',
      body: Buffer.from([0, 0, 0, 0, 0]),
      headers: { 'content-type': 'application/grpc', te: 'trailers', 'accept-encoding': 'gzip' },
    });
    expect(call.status).toBe(200);
    expect(call.headers['content-type']).toBe('application/grpc');
    expect(call.headers['content-encoding']).toBeUndefined();
    expect(call.body.equals(GRPC_MESSAGE)).toBe(true);
    expect(call.trailers).toMatchObject({ 'grpc-status': '0' });
    // Told apart by the response too: a request that does not say gRPC still gets the message untouched.
    const answer = await h2request(s, '/zipall/grpc', { headers: { 'accept-encoding': 'gzip' } });
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.body.equals(GRPC_MESSAGE)).toBe(true);
  });
});

describe('access log over HTTP/2', () => {
  it('bytesSent counts the body bytes of each stream, not of the connection it shares', async () => {
    const s = session(false);
    const bigSize = 64 * 65536;
    // A large download stays open (paused, so flow control holds it) while a small request shares the session.
    const big = s.request({ ':path': '/bytes/big?chunks=64&chunkSize=65536', ':authority': 'app.test', 'x-request-id': 'bytes-big' });
    let bigReceived = 0;
    const bigDone = new Promise<void>((resolve, reject) => {
      big.on('end', resolve);
      big.on('error', reject);
    });
    await new Promise<void>((resolve) => big.once('data', (c: Buffer) => {
      bigReceived += c.length;
      big.pause();
      resolve();
    }));
    const small = await h2request(s, '/h2c/small', { headers: { 'x-request-id': 'bytes-small' } });
    expect(small.status).toBe(200);
    expect((await logged('bytes-small')).bytesSent).toBe(small.body.length);
    big.on('data', (c: Buffer) => (bigReceived += c.length));
    big.resume();
    await bigDone;
    expect(bigReceived).toBe(bigSize);
    expect((await logged('bytes-big')).bytesSent).toBe(bigSize);

    // Over TLS with compression: what was sent is the encoded body.
    const zipped = await h2request(session(true), '/zip/log?bytes=300000', { headers: { 'accept-encoding': 'gzip', 'x-request-id': 'bytes-zip' } });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect((await logged('bytes-zip')).bytesSent).toBe(zipped.body.length);
    // A reply the dataplane writes itself is counted the same way.
    const missing = await h2request(s, '/x', { headers: { ':authority': 'nowhere.test', 'x-request-id': 'bytes-404' } });
    expect(missing.status).toBe(404);
    expect((await logged('bytes-404')).bytesSent).toBe(missing.body.length);
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
