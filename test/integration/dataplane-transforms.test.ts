// Request and response transforms through the real dataplane with real
// backends: path rewrites (prefix, full, regex with capture groups), Host
// rewrites, redirects, header edits, cookie conditions and the forced HTTPS
// redirect; over HTTP/1.1 (undici, curl, a raw socket for an upgrade) and
// HTTP/2 (h2c client, h2c upstream). The last part runs snapshots made by the
// translator from ingress-nginx annotations, so what the golden cases promise
// is what a client gets.
import { connect as http2Connect } from 'node:http2';
import type { IncomingHttpHeaders as H2Headers } from 'node:http2';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { translate } from '../../controller/translate/index.ts';
import type { ClusterState, Ingress } from '../../controller/translate/index.ts';
import { buildSnapshot } from '../../dataplane/snapshot/build.ts';
import type { Cluster, Route, Snapshot, VirtualHost } from '../../dataplane/snapshot/schema.ts';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { startH2cBackend } from '../helpers/h2-backends.ts';
import type { H2Echo, TestBackend } from '../helpers/h2-backends.ts';
import { curl, echoed, http, rawExchange } from '../helpers/http.ts';
import { applySnapshot } from '../helpers/snapshots.ts';

let dp: DataplaneChild;
let a: Backend;
let b: Backend;
let h2c: TestBackend;
let agent: Agent;

const fwd = (name: string, path: Route['match']['path'], cluster: string, extra: Partial<Route> = {}): Route => ({
  name, match: { path }, action: { type: 'forward', backends: [{ cluster, weight: 1 }] }, ...extra,
});
const prefix = (value: string) => ({ type: 'Prefix' as const, value });
const exact = (value: string) => ({ type: 'Exact' as const, value });
const regex = (value: string) => ({ type: 'RegularExpression' as const, value });

function handBuilt(): Snapshot {
  const routes: Route[] = [
    fwd('app-root', exact('/'), 'a', { action: { type: 'redirect', path: { type: 'ReplaceFullPath', value: '/app' }, query: '', status: 302 } }),
    fwd('canary-cookie', prefix('/shop'), 'b', { match: { path: prefix('/shop'), cookies: [{ name: 'canary', type: 'Exact', value: 'always' }] } }),
    fwd('shop', prefix('/shop'), 'a'),
    fwd('prefix', prefix('/api/v1'), 'a', { rewrite: { path: { type: 'ReplacePrefixMatch', value: '/' } } }),
    fwd('full', exact('/status'), 'a', { rewrite: { path: { type: 'ReplaceFullPath', value: '/healthz' }, host: 'internal.example:81' } }),
    fwd('headers', prefix('/headers'), 'a', {
      requestHeaders: {
        set: [{ name: 'X-Env', value: 'prod' }, { name: 'X-Forwarded-Proto', value: 'https' }, { name: 'X-Forwarded-Prefix', value: '/headers' }],
        add: [{ name: 'X-Tag', value: 'added' }],
        remove: ['X-Debug'],
      },
      responseHeaders: { set: [{ name: 'Cache-Control', value: 'no-store' }], add: [{ name: 'X-Served-By', value: 'pyserve' }], remove: ['X-Backend'] },
    }),
    fwd('moved', prefix('/old'), 'a', { action: { type: 'redirect', path: { type: 'ReplacePrefixMatch', value: '/new' }, status: 301 } }),
    fwd('elsewhere', prefix('/away'), 'a', { action: { type: 'redirect', scheme: 'https', hostname: 'new.example.com', path: { type: 'ReplaceFullPath', value: '/landing' }, query: 'from=old', status: 308 } }),
    fwd('h2c-up', prefix('/h2c'), 'up-h2c', {
      rewrite: { path: { type: 'ReplacePrefixMatch', value: '/echo' }, host: 'grpc.internal' },
      requestHeaders: { set: [{ name: 'X-Env', value: 'h2' }] },
      responseHeaders: { set: [{ name: 'X-Edited', value: 'yes' }] },
    }),
    fwd('regex', regex('(?i:/app(/|$)(.*))'), 'a', { rewrite: { path: { type: 'RegexReplace', pattern: '(?i:/app(/|$)(.*))', substitution: '/$2' } } }),
  ];
  const vhosts: VirtualHost[] = [
    { name: 'main', hostnames: ['main.test'], routes },
    { name: 'lb', hostnames: ['lb.test'], routes: [fwd('forced', prefix('/'), 'a', { forceRedirectHttp: true })] },
  ];
  const clusters: Cluster[] = [{ name: 'a', protocol: 'http' }, { name: 'b', protocol: 'http' }, { name: 'up-h2c', protocol: 'h2c' }];
  return buildSnapshot(1, { virtualHosts: vhosts, clusters }, {
    clusters: [{ cluster: 'a', endpoints: [a.endpoint()] }, { cluster: 'b', endpoints: [b.endpoint()] }, { cluster: 'up-h2c', endpoints: [h2c.endpoint()] }],
  });
}

beforeAll(async () => {
  [dp, a, b, h2c] = await Promise.all([spawnDataplane(), startBackend('a'), startBackend('b'), startH2cBackend('h2c')]);
  agent = new Agent({ keepAliveTimeout: 1_000 });
  await applySnapshot(dp.adminUrl, handBuilt());
});

afterAll(async () => {
  await agent?.close();
  await dp?.stop();
  await Promise.all([a?.close(), b?.close(), h2c?.close()]);
});

const get = (path: string, headers: Record<string, string> = {}, host = 'main.test') =>
  http(`${dp.trafficUrl}${path}`, { headers: { host, ...headers }, dispatcher: agent });

describe('path rewrites', () => {
  it.each([
    ['/api/v1/users?id=7', '/users?id=7'],
    ['/api/v1', '/'],
    ['/api/v1/', '/'],
    ['/api/v1/a%2Fb?x', '/a%2Fb?x'],
    ['/app/deep/page?q=1', '/deep/page?q=1'],
    ['/APP/Case', '/Case'],
    ['/app', '/'],
  ])('%s reaches the backend as %s', async (path, upstream) => {
    const res = await get(path);
    expect(res.status).toBe(200);
    expect(echoed(res).url).toBe(upstream);
  });

  it('replaces the whole path and the Host, keeping X-Forwarded-Host as the client sent it', async () => {
    const res = await get('/status?verbose=1');
    const seen = echoed(res);
    expect(seen.url).toBe('/healthz?verbose=1');
    expect(seen.headers.host).toBe('internal.example:81');
    expect(seen.headers['x-forwarded-host']).toBe('main.test');
  });

  it('the access log keeps the path as received', async () => {
    await get('/api/v1/logged');
    const line = await dp.waitForLog((l) => l.msg === 'request' && l.path === '/api/v1/logged');
    expect(line.route).toBe('prefix');
  });
});

describe('redirects', () => {
  it.each([
    ['/old/page?x=1', 301, 'http://main.test/new/page?x=1'],
    ['/old', 301, 'http://main.test/new'],
    ['/away/anything?q=2', 308, 'https://new.example.com/landing?from=old'],
    ['/?ignored=1', 302, 'http://main.test/app'],
  ])('%s → %i %s (curl)', async (path, status, location) => {
    const res = await curl(`${dp.trafficUrl}${path}`, ['-H', 'Host: main.test']);
    expect(res.status).toBe(status);
    expect(res.headers.location).toBe(location);
    expect(res.headers['x-request-id']).toBeTruthy();
  });

  it('keeps the port of the Host header when the redirect leaves scheme and port alone', async () => {
    const res = await get('/old/x', {}, 'main.test:8080');
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe('http://main.test:8080/new/x');
  });

  it('answers an upgrade request on a redirect route with the redirect', async () => {
    const { response } = await rawExchange(dp.trafficPort,
      'GET /old/ws HTTP/1.1\r\nHost: main.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    expect(response).toMatch(/^HTTP\/1\.1 301 /);
    expect(response).toMatch(/\r\nlocation: http:\/\/main\.test\/new\/ws\r\n/i);
  });

  it('force-ssl-redirect sends plain HTTP to https on a host without TLS', async () => {
    const res = await get('/path?q=1', {}, 'lb.test');
    expect(res.status).toBe(308);
    expect(res.headers.location).toMatch(/^https:\/\/lb\.test(:\d+)?\/path\?q=1$/);
  });
});

describe('header edits', () => {
  it('sets, adds and removes request headers after the forwarding headers are written', async () => {
    const res = await get('/headers', { 'x-env': 'dev', 'x-debug': 'secret', 'x-tag': 'client' });
    const seen = echoed(res);
    expect(seen.headers['x-env']).toBe('prod');
    expect(seen.headers['x-debug']).toBeUndefined();
    expect(seen.headers['x-tag']).toBe('client, added');
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.headers['x-forwarded-prefix']).toBe('/headers');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('sets, adds and removes response headers', async () => {
    const res = await curl(`${dp.trafficUrl}/headers`, ['-H', 'Host: main.test']);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-served-by']).toBe('pyserve');
    expect(res.headers['x-backend']).toBeUndefined();
    expect(res.headers['x-request-id']).toBeTruthy();
  });

  it('routes without edits pass headers through untouched', async () => {
    const res = await curl(`${dp.trafficUrl}/shop`, ['-H', 'Host: main.test', '-H', 'X-Debug: 1']);
    expect(res.headers['x-backend']).toBe('a');
    expect((JSON.parse(res.body) as { headers: Record<string, string> }).headers['x-debug']).toBe('1');
  });
});

describe('cookie conditions', () => {
  it.each([
    ['canary=always', 'b'],
    ['other=1; canary=always', 'b'],
    ['canary=never', 'a'],
    ['canary=ALWAYS', 'a'],
    [undefined, 'a'],
  ])('Cookie %s → backend %s', async (cookie, backend) => {
    const res = await get('/shop/item', cookie === undefined ? {} : { cookie });
    expect(echoed(res).backend).toBe(backend);
  });
});

describe('HTTP/2', () => {
  it('an h2c client gets the rewrite, and an h2c upstream gets the rewritten :authority, path and headers', async () => {
    const session = http2Connect(dp.trafficUrl);
    try {
      const result = await new Promise<{ headers: H2Headers; body: string }>((resolve, reject) => {
        const req = session.request({ ':path': '/h2c/items?x=1', ':authority': 'main.test', 'x-env': 'client' });
        let body = '';
        let headers: H2Headers = {};
        req.on('response', (h) => (headers = h));
        req.setEncoding('utf8').on('data', (c: string) => (body += c));
        req.on('end', () => resolve({ headers, body }));
        req.on('error', reject);
        req.end();
      });
      expect(result.headers[':status']).toBe(200);
      expect(result.headers['x-edited']).toBe('yes');
      const seen = JSON.parse(result.body) as H2Echo;
      expect(seen.httpVersion).toBe('2.0');
      expect(seen.url).toBe('/echo/items?x=1');
      expect(seen.headers[':authority']).toBe('grpc.internal');
      expect(seen.headers['x-env']).toBe('h2');
      expect(seen.headers['x-forwarded-host']).toBe('main.test');
    } finally {
      session.close();
    }
  });
});

describe('translated from ingress-nginx annotations', () => {
  const ingress = (name: string, created: string, annotations: Record<string, string>, host: string, paths: [string, string, string?][]): Ingress => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace: 'default', creationTimestamp: created, annotations },
    spec: {
      rules: [{
        host,
        http: { paths: paths.map(([path, svc, pathType]) => ({ path, pathType: pathType ?? 'ImplementationSpecific', backend: { service: { name: svc, port: { number: 80 } } } })) },
      }],
    },
  });
  const state = (): ClusterState => ({
    ingresses: [
      ingress('app', '2024-01-01T00:00:00Z', {
        'nginx.ingress.kubernetes.io/rewrite-target': '/$2',
        'nginx.ingress.kubernetes.io/x-forwarded-prefix': '/app',
        'nginx.ingress.kubernetes.io/upstream-vhost': 'app.internal',
        'nginx.ingress.kubernetes.io/app-root': '/app/home',
      }, 'nginx.test', [['/app(/|$)(.*)', 'svc-a']]),
      ingress('site', '2024-01-02T00:00:00Z', {}, 'nginx.test', [['/', 'svc-a', 'Prefix']]),
      ingress('canary', '2024-01-03T00:00:00Z', {
        'nginx.ingress.kubernetes.io/canary': 'true',
        'nginx.ingress.kubernetes.io/canary-by-header': 'X-Canary',
        'nginx.ingress.kubernetes.io/canary-by-cookie': 'beta',
      }, 'nginx.test', [['/', 'svc-b', 'Prefix']]),
      ingress('moved', '2024-01-01T00:00:00Z', {
        'nginx.ingress.kubernetes.io/permanent-redirect': 'https://www.example.com$request_uri',
        'nginx.ingress.kubernetes.io/permanent-redirect-code': '308',
      }, 'old.test', [['/', 'svc-a', 'Prefix']]),
    ],
    ingressClasses: [],
    services: ['svc-a', 'svc-b'].map((name) => ({ metadata: { name, namespace: 'default' }, spec: { ports: [{ name: 'http', port: 80 }] } })),
    endpointSlices: [['svc-a', a], ['svc-b', b]].map(([svc, backend]) => ({
      metadata: { name: `${svc as string}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': svc as string } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: (backend as Backend).port }],
      endpoints: [{ addresses: ['127.0.0.1'] }],
    })),
  });

  beforeAll(async () => {
    const result = translate(state(), { generation: 2, watchIngressWithoutClass: true });
    expect(result.failures).toEqual([]);
    await applySnapshot(dp.adminUrl, result.snapshot);
  });

  it('rewrite-target with capture groups, case-insensitive, with X-Forwarded-Prefix and upstream-vhost', async () => {
    const seen = echoed(await get('/APP/cart?id=1', {}, 'nginx.test'));
    expect(seen.url).toBe('/cart?id=1');
    expect(seen.headers.host).toBe('app.internal');
    expect(seen.headers['x-forwarded-prefix']).toBe('/app');
    expect(seen.headers['x-forwarded-host']).toBe('nginx.test');
  });

  it('paths of other Ingresses on the host become regexes too, and still route', async () => {
    const seen = echoed(await get('/about', {}, 'nginx.test'));
    expect(seen.backend).toBe('a');
    expect(seen.url).toBe('/about');
  });

  it('app-root redirects "/" only', async () => {
    const res = await get('/', {}, 'nginx.test');
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('http://nginx.test/app/home');
  });

  it.each([
    [{ 'x-canary': 'always' }, 'b'],
    [{ 'x-canary': 'never', cookie: 'beta=always' }, 'a'],
    [{ cookie: 'beta=always' }, 'b'],
    [{ 'x-canary': 'maybe', cookie: 'beta=always' }, 'b'],
    [{}, 'a'],
  ])('canary by header and cookie: %j → %s', async (headers, backend) => {
    expect(echoed(await get('/about', headers, 'nginx.test')).backend).toBe(backend);
  });

  it('permanent-redirect with $request_uri keeps the path and query', async () => {
    const res = await get('/a/b?c=d', {}, 'old.test');
    expect(res.status).toBe(308);
    expect(res.headers.location).toBe('https://www.example.com/a/b?c=d');
  });
});
