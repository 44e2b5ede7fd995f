// Routing, local replies, proxy headers, balancing and upstream failures,
// against the real dataplane process with real backends and two clients
// (undici and curl).
import { connect, createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { curl, echoed, http, rawExchange } from '../helpers/http.ts';
import { applySnapshot, direct, exact, forward, prefix, regex, snapshot, vhost } from '../helpers/snapshots.ts';

let dp: DataplaneChild;
let a: Backend;
let b: Backend;
let garbage: NetServer;
let agent: Agent;

const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
  http(`${dp.trafficUrl}${path}`, { headers: { 'user-agent': 'pyserve-test', ...headers }, method, dispatcher: agent });

beforeAll(async () => {
  [dp, a, b] = await Promise.all([spawnDataplane(), startBackend('a'), startBackend('b')]);
  // A "backend" that answers with something that is not HTTP.
  garbage = createNetServer((socket) => {
    socket.once('data', () => socket.end('THIS IS NOT HTTP\r\n\r\n'));
  });
  await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', () => resolve()));
  agent = new Agent({ keepAliveTimeout: 1_000 });
  const dead = await closedPort();
  const main = vhost('main', ['*'], [
    direct('exact-path', exact('/exact'), 200, 'exact-path'),
    direct('prefix-foo', prefix('/foo/'), 200, 'prefix-foo'),
    direct('regex-items', regex('/items/[0-9]+|/things/[a-z]+'), 200, 'regex-items'),
    direct('method-post', { path: prefix('/m'), methods: ['POST', 'PUT'] }, 200, 'method-post'),
    direct('method-any', prefix('/m'), 200, 'method-any'),
    direct('header-exact', { path: prefix('/h'), headers: [{ name: 'X-Variant', type: 'Exact', value: 'beta' }] }, 200, 'header-exact'),
    direct('header-regex', { path: prefix('/h'), headers: [{ name: 'user-agent', type: 'RegularExpression', value: '^curl/' }] }, 200, 'header-regex'),
    direct('query', { path: prefix('/q'), query: [{ name: 'v', type: 'Exact', value: '2' }] }, 200, 'query'),
    direct('teapot', exact('/teapot'), 418, 'short and stout', 'text/x-teapot'),
    forward('echo', prefix('/echo'), 'a'),
    forward('rr', prefix('/rr'), 'pair'),
    forward('weighted', prefix('/weighted'), [['wa', 3], ['wb', 1], ['off', 0]]),
    forward('empty', prefix('/empty'), 'none-ready'),
    forward('refused', prefix('/refused'), 'dead'),
    forward('garbage', prefix('/garbage'), 'garbage'),
    forward('slow', prefix('/slow'), 'a', { upstreamResponseMs: 300 }),
    forward('deadline', prefix('/deadline'), 'a', { requestMs: 300 }),
  ]);
  await applySnapshot(dp.adminUrl, snapshot(1, [
    vhost('exact-host', ['www.example.com'], [direct('exact-host', prefix('/'), 200, 'exact-host')]),
    vhost('wild-host', ['*.example.com'], [direct('wild-host', prefix('/'), 200, 'wild-host')]),
    main,
  ], {
    a: [a.endpoint()],
    pair: [a.endpoint(), b.endpoint()],
    wa: [a.endpoint()],
    wb: [b.endpoint()],
    off: [b.endpoint()],
    'none-ready': [a.endpoint({ ready: false, serving: false, terminating: true })],
    dead: [{ address: '127.0.0.1', port: dead, ready: true, serving: true, terminating: false }],
    garbage: [{ address: '127.0.0.1', port: (garbage.address() as AddressInfo).port, ready: true, serving: true, terminating: false }],
  }));
});

afterAll(async () => {
  await agent?.close();
  await dp?.stop();
  await Promise.all([a?.close(), b?.close(), new Promise((r) => garbage?.close(r))]);
});

describe('host matching', () => {
  it.each([
    ['www.example.com', '/', 'exact-host'],
    ['WWW.Example.COM:8080', '/anything', 'exact-host'],
    ['www.example.com.', '/', 'exact-host'],
    ['a.example.com', '/', 'wild-host'],
    ['b.a.example.com', '/exact', 'exact-path'],
    ['example.com', '/exact', 'exact-path'],
    ['[::1]:8080', '/exact', 'exact-path'],
    ['10.0.0.1', '/exact', 'exact-path'],
  ])('Host %s %s → %s', async (host, path, route) => {
    const res = await get(path, { host });
    expect(res.status).toBe(200);
    expect(res.text).toBe(route);
  });

  it('takes the host from an absolute-form request target', async () => {
    const { response } = await rawExchange(dp.trafficPort, 'GET http://www.example.com/x HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n');
    expect(response).toMatch(/^HTTP\/1\.1 200 /);
    expect(response.endsWith('exact-host')).toBe(true);
  });
});

describe('path and condition matching', () => {
  it.each([
    ['/exact', 200, 'exact-path'],
    ['/exact/', 404, ''],
    ['/exact?x=1', 200, 'exact-path'],
    ['/foo', 200, 'prefix-foo'],
    ['/foo/', 200, 'prefix-foo'],
    ['/foo/bar/baz', 200, 'prefix-foo'],
    ['/foobar', 404, ''],
    ['/fo%6F', 404, ''],
    ['/items/42', 200, 'regex-items'],
    ['/items/42/more', 200, 'regex-items'],
    ['/things/abc', 200, 'regex-items'],
    ['/x/items/42', 404, ''],
    ['/items/abc', 404, ''],
    ['/q?v=2', 200, 'query'],
    ['/q?a=1&v=2', 200, 'query'],
    ['/q?v=3', 404, ''],
    ['/m', 200, 'method-any'],
  ])('GET %s → %i %s', async (path, status, body) => {
    const res = await get(path);
    expect(res.status).toBe(status);
    if (status === 200) expect(res.text).toBe(body);
    else expect(res.text).toContain('no route');
  });

  it('matches methods', async () => {
    expect((await get('/m', {}, 'POST')).text).toBe('method-post');
    expect((await get('/m', {}, 'PUT')).text).toBe('method-post');
    expect((await get('/m', {}, 'DELETE')).text).toBe('method-any');
  });

  it('matches headers exactly (name case-insensitive) and by regex', async () => {
    expect((await get('/h', { 'x-variant': 'beta' })).text).toBe('header-exact');
    expect((await get('/h', { 'X-VARIANT': 'beta' })).text).toBe('header-exact');
    expect((await get('/h', { 'x-variant': 'beta2' })).status).toBe(404);
    expect((await get('/h')).status).toBe(404);
    const c = await curl(`${dp.trafficUrl}/h`);
    expect(c.status).toBe(200);
    expect(c.body).toBe('header-regex');
  });
});

describe('local replies', () => {
  it('answers a direct response with its status, body and content type', async () => {
    const res = await get('/teapot');
    expect(res.status).toBe(418);
    expect(res.text).toBe('short and stout');
    expect(res.headers['content-type']).toBe('text/x-teapot');
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
  });

  it('answers 404 with the request id in header and body', async () => {
    const res = await get('/nothing-here');
    expect(res.status).toBe(404);
    const id = res.headers['x-request-id'] as string;
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(res.text).toContain(id);
  });

  it('answers 503 when the cluster has no ready endpoint', async () => {
    const res = await get('/empty');
    expect(res.status).toBe(503);
    expect(res.text).toContain('none-ready');
    expect(res.text).toContain(res.headers['x-request-id'] as string);
  });

  it('answers 400 with Connection: close to a malformed request and keeps serving', async () => {
    const { response, closedByServer } = await rawExchange(dp.trafficPort, 'BLAH /\x01 HTTP/9.9\r\n\r\n');
    expect(response).toMatch(/^HTTP\/1\.1 400 /);
    expect(response.toLowerCase()).toContain('connection: close');
    expect(closedByServer).toBe(true);
    const dup = await rawExchange(dp.trafficPort, 'GET /exact HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n');
    expect(dup.response).toMatch(/^HTTP\/1\.1 400 /);
    // Both framings at once is the classic request smuggling vector.
    const smuggle = await rawExchange(dp.trafficPort, 'POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    expect(smuggle.response).toMatch(/^HTTP\/1\.1 400 /);
    expect(smuggle.closedByServer).toBe(true);
    expect((await get('/exact')).status).toBe(200);
  });

  // The handler adds no 'error' listener to PyServe's own HTTP/1.1 requests
  // (they emit none that nobody hears): a client leaving mid-body must not
  // take the process down, whether the route reads the body or not.
  it('keeps serving when clients leave mid-body, on a direct route (body unread) and a proxied one', async () => {
    for (const path of ['/m', '/echo']) {
      const socket = connect(dp.trafficPort, '127.0.0.1');
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(`POST ${path} HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(5000)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      socket.resetAndDestroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(dp.child.exitCode).toBeNull();
    expect((await get('/exact')).status).toBe(200);
    expect((await get('/echo/after')).status).toBe(200);
  });
});

describe('proxying', () => {
  it('generates a request id, sends it upstream and returns it', async () => {
    const res = await get('/echo/id');
    expect(res.status).toBe(200);
    const id = res.headers['x-request-id'] as string;
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(echoed(res).headers['x-request-id']).toBe(id);
  });

  it('keeps a client request id', async () => {
    const res = await get('/echo/id', { 'x-request-id': 'client-chosen-42' });
    expect(res.headers['x-request-id']).toBe('client-chosen-42');
    expect(echoed(res).headers['x-request-id']).toBe('client-chosen-42');
  });

  it('preserves Host and sets X-Forwarded-* (undici)', async () => {
    const res = await get('/echo/fwd?x=1', { host: 'shop.test:1234', 'x-forwarded-for': '10.1.2.3', 'x-forwarded-proto': 'https' });
    const seen = echoed(res);
    expect(seen.url).toBe('/echo/fwd?x=1');
    expect(seen.headers.host).toBe('shop.test:1234');
    expect(seen.headers['x-forwarded-for']).toBe('10.1.2.3, 127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe('shop.test:1234');
    expect(seen.headers['x-forwarded-port']).toBe(String(dp.trafficPort));
    expect(seen.headers['x-real-ip']).toBe('127.0.0.1');
  });

  it('sends the endpoint as Host for an HTTP/1.0 request that has none (raw socket)', async () => {
    const r = await rawExchange(dp.trafficPort, 'GET /echo/no-host HTTP/1.0\r\n\r\n');
    expect(r.response).toMatch(/^HTTP\/1\.1 200 /);
    const body = JSON.parse(r.response.slice(r.response.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> };
    expect(body.headers.host).toBe(`127.0.0.1:${a.port}`);
    expect(body.headers['x-forwarded-host']).toBeUndefined();
  });

  it('removes hop-by-hop request headers, including those named by Connection (curl)', async () => {
    const res = await curl(`${dp.trafficUrl}/echo/hop`, [
      '-H', 'Connection: keep-alive, X-Secret-Hop',
      '-H', 'X-Secret-Hop: 1',
      '-H', 'Keep-Alive: timeout=99',
      '-H', 'TE: trailers',
      '-H', 'Proxy-Connection: keep-alive',
      '-H', 'X-Kept: yes',
    ]);
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body) as { headers: Record<string, string>; rawHeaders: string[] };
    expect(seen.headers['x-kept']).toBe('yes');
    for (const name of ['x-secret-hop', 'keep-alive', 'te', 'proxy-connection']) expect(seen.headers).not.toHaveProperty(name);
    // The upstream connection header is the proxy's own, not the client's list.
    expect(seen.headers.connection ?? '').not.toMatch(/secret/i);
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(res.headers['x-request-id']).toBe(seen.headers['x-request-id']);
  });

  it('passes the client\'s own lines on as they came, with the proxy\'s fields and one Content-Length (raw socket)', async () => {
    const r = await rawExchange(dp.trafficPort, [
      'POST /echo/lines HTTP/1.1',
      'X-First:first',
      'Host: shop.test',
      'X-Real-IP: 203.0.113.9',
      'x-MiXeD-cAsE:   spaced  value \t',
      'Content-Length: 5',
      'X-Forwarded-Host: spoofed.test',
      'X-Tab:\ta\tb',
      'Connection: close',
      'X-Last: last',
      '', 'hello',
    ].join('\r\n'));
    expect(r.response).toMatch(/^HTTP\/1\.1 200 /);
    const seen = JSON.parse(r.response.slice(r.response.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string>; rawHeaders: string[] };
    const pairs: string[] = [];
    for (let i = 0; i < seen.rawHeaders.length; i += 2) pairs.push(`${seen.rawHeaders[i]}=${seen.rawHeaders[i + 1]}`);
    // The client's kept lines first, in order and spelling; then the proxy's.
    expect(pairs.slice(0, 4)).toEqual(['X-First=first', 'x-MiXeD-cAsE=spaced  value', 'X-Tab=a\tb', 'X-Last=last']);
    expect(seen.headers.host).toBe('shop.test');
    expect(seen.headers['x-real-ip']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-host']).toBe('shop.test');
    expect(seen.headers['content-length']).toBe('5');
    expect(seen.rawHeaders.filter((n, i) => i % 2 === 0 && /^(content-length|host|x-real-ip|x-forwarded-host)$/i.test(n))).toHaveLength(4);
  });

  it('removes hop-by-hop response headers', async () => {
    const res = await get('/echo/hop?hop=1');
    expect(res.status).toBe(200);
    expect(res.headers['x-upstream-public']).toBe('visible');
    expect(res.headers).not.toHaveProperty('x-upstream-private');
    expect(res.headers).not.toHaveProperty('proxy-connection');
    // Node adds its own keep-alive header for the client connection; the upstream's must not leak.
    expect(res.headers['keep-alive']).not.toBe('timeout=30');
  });

  it('round-robins across the endpoints of a cluster', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push(echoed(await get('/rr')).backend);
    expect(seen.filter((s) => s === 'a')).toHaveLength(3);
    expect(seen.filter((s) => s === 'b')).toHaveLength(3);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).not.toBe(seen[i - 1]);
  });

  it('splits by backend weight (3:1, weight 0 never)', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 8; i++) seen.push(echoed(await get('/weighted')).backend);
    expect(seen.filter((s) => s === 'a')).toHaveLength(6);
    expect(seen.filter((s) => s === 'b')).toHaveLength(2);
  });

  it('answers 502 when the upstream refuses the connection', async () => {
    const res = await get('/refused');
    expect(res.status).toBe(502);
    expect(res.text).toContain(res.headers['x-request-id'] as string);
  });

  it('answers 502 to a response that is not HTTP', async () => {
    const res = await get('/garbage');
    expect(res.status).toBe(502);
  });

  it('answers 504 when the upstream does not answer within upstreamResponseMs', async () => {
    const started = Date.now();
    const res = await get('/slow?hang=1');
    expect(res.status).toBe(504);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(res.text).toContain(res.headers['x-request-id'] as string);
  });

  it('answers 504 when the whole request exceeds requestMs', async () => {
    const res = await get('/deadline?delay=3000');
    expect(res.status).toBe(504);
    expect(res.text).toContain('request timeout');
  });

  it('cuts the connection when requestMs expires after the response started', async () => {
    await expect(get('/deadline?chunks=20&chunkSize=10&interval=50')).rejects.toThrow();
  });

  it('proxies through curl too', async () => {
    const res = await curl(`${dp.trafficUrl}/echo/curl?y=2`, ['-H', 'Host: curl.test']);
    expect(res.status).toBe(200);
    expect(res.headers['x-backend']).toBe('a');
    const seen = JSON.parse(res.body) as { url: string; headers: Record<string, string> };
    expect(seen.url).toBe('/echo/curl?y=2');
    expect(seen.headers.host).toBe('curl.test');
  });
});

describe('observability', () => {
  it('writes one access log line per request', async () => {
    const res = await get('/echo/logged', { 'x-request-id': 'log-me-1' });
    expect(res.status).toBe(200);
    const line = await dp.waitForLog((l) => l.requestId === 'log-me-1');
    expect(line).toMatchObject({
      msg: 'request',
      route: 'echo',
      cluster: 'a',
      upstream: `127.0.0.1:${a.port}`,
      method: 'GET',
      path: '/echo/logged',
      status: 200,
      clientAddress: '127.0.0.1',
    });
    expect(line.bytesSent).toBeGreaterThan(res.text.length);
    expect(typeof line.durationMs).toBe('number');
    expect(dp.logs.filter((l) => l.requestId === 'log-me-1')).toHaveLength(1);
  });

  it('counts requests and upstream errors with route and cluster labels', async () => {
    const res = await http(`${dp.adminUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/^pyserve_requests_total\{route="teapot",code="418"\} [1-9]/m);
    expect(res.text).toMatch(/^pyserve_requests_total\{route="\(none\)",code="404"\} [1-9]/m);
    expect(res.text).toMatch(/^pyserve_request_duration_seconds_count\{route="echo"\} [1-9]/m);
    expect(res.text).toMatch(/^pyserve_upstream_errors_total\{cluster="dead",kind="connect"\} 1$/m);
    expect(res.text).toMatch(/^pyserve_upstream_errors_total\{cluster="a",kind="timeout"\} 1$/m);
    expect(res.text).toMatch(/^pyserve_upstream_errors_total\{cluster="garbage",kind="bad_response"\} 1$/m);
    expect(res.text).toMatch(/^pyserve_snapshot_generation 1$/m);
    expect(res.text).toMatch(/^process_cpu_user_seconds_total /m);
  });
});
