// gRPC through the real dataplane: @grpc/grpc-js client → dataplane (h2c on the
// plain port, h2 over TLS) → @grpc/grpc-js server (cluster protocols grpc and
// grpcs). Unary, server streaming and client streaming; metadata and trailers
// pass through; deadlines cancel the upstream call; errors the dataplane
// answers itself are gRPC statuses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSnapshot } from '../../dataplane/snapshot/build.ts';
import type { Cluster, Route, VirtualHost } from '../../dataplane/snapshot/schema.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { echoClient, grpc, startGrpcBackend, unary } from '../helpers/grpc.ts';
import type { EchoClientT, GrpcBackend, Msg } from '../helpers/grpc.ts';
import { applySnapshot } from '../helpers/snapshots.ts';
import { createTestPki, snapshotCertificate } from '../helpers/tls.ts';

const pki = createTestPki();
let dp: DataplaneChild;
let plainBackend: GrpcBackend;
let tlsBackend: GrpcBackend;
const clients: EchoClientT[] = [];

const route = (name: string, cluster: string, timeouts?: Route['timeouts']): Route => ({
  name,
  match: { path: { type: 'Prefix', value: '/pyserve.test.Echo/' } },
  action: { type: 'forward', backends: [{ cluster, weight: 1 }] },
  ...(timeouts && { timeouts }),
});

function client(target: string, tls?: { caPem: string; serverName?: string }): EchoClientT {
  const c = echoClient(target, tls);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  plainBackend = await startGrpcBackend('plain');
  tlsBackend = await startGrpcBackend('secure', pki.issue(['backend.internal']));
  dp = await spawnDataplane();
  const vhosts: VirtualHost[] = [
    { name: 'grpc', hostnames: ['grpc.test'], routes: [route('to-grpc', 'g')], tls: { certificate: 'grpc', redirectHttp: false } },
    { name: 'grpcs', hostnames: ['grpcs.test'], routes: [route('to-grpcs', 'gs')] },
    { name: 'slow', hostnames: ['slow.test'], routes: [route('slow', 'g', { upstreamResponseMs: 300 })] },
    { name: 'empty', hostnames: ['empty.test'], routes: [route('no-endpoints', 'none')] },
    { name: 'down', hostnames: ['down.test'], routes: [route('refused', 'down')] },
  ];
  const clusters: Cluster[] = [
    { name: 'g', protocol: 'grpc' },
    { name: 'gs', protocol: 'grpcs' },
    { name: 'none', protocol: 'grpc' },
    { name: 'down', protocol: 'grpc' },
  ];
  const ep = (port: number) => ({ address: '127.0.0.1', port, ready: true, serving: true, terminating: false });
  await applySnapshot(dp.adminUrl, buildSnapshot(1, {
    virtualHosts: vhosts,
    clusters,
    certificates: [snapshotCertificate('grpc', pki.issue(['grpc.test']))],
  }, {
    clusters: [
      { cluster: 'down', endpoints: [ep(1)] },
      { cluster: 'g', endpoints: [ep(plainBackend.port)] },
      { cluster: 'gs', endpoints: [ep(tlsBackend.port)] },
      { cluster: 'none', endpoints: [] },
    ],
  }));
});

afterAll(async () => {
  for (const c of clients) c.close();
  await dp?.stop();
  await plainBackend?.close();
  await tlsBackend?.close();
});

/** A client to the plain port that says `host` as its authority (h2c, prior knowledge). */
const h2c = (host: string): EchoClientT => {
  const c = new (echoClient(`127.0.0.1:${dp.trafficPort}`).constructor as new (t: string, cr: grpc.ChannelCredentials, o: grpc.ChannelOptions) => EchoClientT)(
    `127.0.0.1:${dp.trafficPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': host },
  );
  clients.push(c);
  return c;
};

describe('gRPC over h2c (plain port, prior knowledge)', () => {
  it('proxies a unary call with request metadata and response trailers', async () => {
    const r = await unary(h2c('grpc.test'), { text: 'hi' }, { metadata: { 'x-client': 'yes' } });
    expect(r.err).toBeUndefined();
    expect(r.res).toMatchObject({ text: 'hi', backend: 'plain' });
    expect(r.res!.metadata).toMatchObject({ 'x-client': 'yes', 'x-forwarded-proto': 'http' });
    expect(r.res!.metadata!['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    expect(r.trailers?.get('x-trailer')).toEqual(['from-plain']);
  });

  it('passes an upstream error status through (Trailers-Only)', async () => {
    const r = await unary(h2c('grpc.test'), { failCode: grpc.status.NOT_FOUND });
    expect(r.err?.code).toBe(grpc.status.NOT_FOUND);
    expect(r.err?.details).toContain('failing as asked (5) from plain');
  });

  it('streams server messages one by one, then trailers', async () => {
    const call = h2c('grpc.test').serverStream({ count: 5, delayMs: 50, text: 's' });
    const arrivals: number[] = [];
    const started = Date.now();
    const got: Msg[] = [];
    let headers: grpc.Metadata | undefined;
    call.on('metadata', (md: grpc.Metadata) => (headers = md));
    call.on('data', (m: Msg) => {
      got.push(m);
      arrivals.push(Date.now() - started);
    });
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    expect(status.code).toBe(grpc.status.OK);
    expect(got.map((m) => m.index)).toEqual([0, 1, 2, 3, 4]);
    expect(headers?.get('x-header')).toEqual(['early']);
    expect(status.metadata.get('x-trailer')).toEqual(['streamed-5']);
    // Not buffered: the first message arrives long before the last is sent.
    expect(arrivals[4]! - arrivals[0]!).toBeGreaterThan(150);
  });

  it('streams client messages to the backend', async () => {
    const res = await new Promise<Msg>((resolve, reject) => {
      const call = h2c('grpc.test').clientStream(new grpc.Metadata(), {}, (err, r) => (err ? reject(err) : resolve(r!)));
      for (const t of ['a', 'b', 'c']) call.write({ text: t });
      call.end();
    });
    expect(res).toMatchObject({ text: 'a,b,c', count: 3, backend: 'plain' });
  });

  it('a client deadline cancels the call upstream', async () => {
    const before = plainBackend.cancelled.length;
    const r = await unary(h2c('grpc.test'), { delayMs: 2_000 }, { deadlineMs: 200 });
    expect(r.err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    // The client's RST_STREAM(CANCEL) reached the backend through the dataplane.
    await expect.poll(() => plainBackend.cancelled.length, { timeout: 3_000 }).toBe(before + 1);
  });

  it('a route timeout is DEADLINE_EXCEEDED from the dataplane', async () => {
    const r = await unary(h2c('slow.test'), { delayMs: 2_000 });
    expect(r.err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(r.err?.details).toMatch(/upstream response timeout \(request id [0-9a-f-]+\)/);
  });

  it('no route is UNIMPLEMENTED', async () => {
    const r = await unary(h2c('nothing.test'), { text: 'x' });
    expect(r.err?.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(r.err?.details).toContain('no route');
  });

  it('no endpoints is UNAVAILABLE', async () => {
    const r = await unary(h2c('empty.test'), { text: 'x' });
    expect(r.err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.err?.details).toContain('no ready endpoints');
  });

  it('a refused upstream connection is UNAVAILABLE', async () => {
    const r = await unary(h2c('down.test'), { text: 'x' });
    expect(r.err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.err?.details).toContain('upstream connect failed');
  });

  it('logs gRPC errors with the HTTP status they stand for', async () => {
    const line = await dp.waitForLog((l) => l.msg === 'request' && l.route === 'no-endpoints');
    expect(line.status).toBe(503);
  });
});

describe('gRPC over TLS (ALPN h2, SNI) to a TLS backend (grpcs)', () => {
  it('verifies the certificate for the SNI name and proxies to a grpcs backend', async () => {
    const c = client(`127.0.0.1:${dp.httpsPort}`, { caPem: pki.ca.certPem, serverName: 'grpcs.test' });
    // grpcs.test has no certificate of its own: the default one is self-signed, so this must fail...
    const refused = await unary(c, { text: 'x' }, { deadlineMs: 3_000 });
    expect(refused.err?.code).toBe(grpc.status.UNAVAILABLE);
    // ...while grpc.test presents the CA-signed certificate from the snapshot.
    const ok = await unary(client(`127.0.0.1:${dp.httpsPort}`, { caPem: pki.ca.certPem, serverName: 'grpc.test' }), { text: 'tls' });
    expect(ok.err).toBeUndefined();
    expect(ok.res).toMatchObject({ text: 'tls', backend: 'plain' });
    expect(ok.res!.metadata).toMatchObject({ 'x-forwarded-proto': 'https' });
  });

  it('reaches a grpcs backend (TLS upstream, certificate not verified)', async () => {
    const r = await unary(h2c('grpcs.test'), { text: 'to-tls' });
    expect(r.err).toBeUndefined();
    expect(r.res).toMatchObject({ text: 'to-tls', backend: 'secure' });
    expect(r.trailers?.get('x-trailer')).toEqual(['from-secure']);
  });

  it('server streaming over TLS end to end', async () => {
    const c = client(`127.0.0.1:${dp.httpsPort}`, { caPem: pki.ca.certPem, serverName: 'grpc.test' });
    const call = c.serverStream({ count: 20 });
    const got: Msg[] = [];
    call.on('data', (m: Msg) => got.push(m));
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    expect(status.code).toBe(grpc.status.OK);
    expect(got).toHaveLength(20);
  });
});
