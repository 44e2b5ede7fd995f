// Upstream health through the real dataplane with backends that fail, hang,
// stop listening and recover: active HTTP checks (thresholds, timeout,
// expected statuses), outlier ejection after exactly N failures with growing
// and capped ejection times and a maximum ejected share, the panic
// threshold, health state surviving snapshot swaps, and what the admin API
// (`GET /v1/upstreams`) and the metrics say about it all.
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Endpoint, HealthCheck, Route } from '../../dataplane/snapshot/schema.ts';
import { closedPort } from '../helpers/backends.ts';
import { clusterSnapshot, counter, fetchUpstreams, localEndpoint, metricValue, scrape, upstreamCluster, upstreamEndpoint, upstreams } from '../helpers/cluster-snapshots.ts';
import type { ClusterOptions } from '../helpers/cluster-snapshots.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { sleep, startFlakyBackend, tally } from '../helpers/flaky-backends.ts';
import type { FlakyBackend } from '../helpers/flaky-backends.ts';
import { eventually } from '../helpers/logged-process.ts';
import { applySnapshot, direct, forward, prefix, vhost } from '../helpers/snapshots.ts';

let dp: DataplaneChild;
let agent: Agent;
let deadPort: number;

const names = {
  hc: ['hc1', 'hc2', 'hc3'],
  expect: ['ex1', 'ex2'],
  od: ['od1', 'od2', 'od3', 'od4'],
  connect: ['cf1', 'cf2'],
  cap: ['cap1', 'cap2', 'cap3', 'cap4'],
  cap0: ['bad0', 'good0'],
  panic: ['p1', 'p2', 'p3'],
  nopanic: ['q1', 'q2'],
  keep: ['k1', 'k2', 'k3', 'k4', 'k5'],
  admin: ['al1', 'al2'],
} as const;
const be: Record<string, FlakyBackend> = {};
const eps = (list: readonly string[]): Endpoint[] => list.map((n) => be[n]!.endpoint());

/** Fast checks: a verdict within a few hundred ms. */
const FAST_HC: HealthCheck = { path: '/healthz', intervalMs: 100, timeoutMs: 500, unhealthyThreshold: 3, healthyThreshold: 2 };
const OD = { consecutive5xx: 3, baseEjectionMs: 600, maxEjectionMs: 1_500 };

/** What the swap tests change. */
const config = { generation: 0, extraRoute: false, keepHasK5: false };

async function push(): Promise<void> {
  const routes: Route[] = [
    ...(config.extraRoute ? [direct('extra', prefix('/extra'), 200, 'extra')] : []),
    ...Object.keys(names).map((cluster) => forward(cluster, prefix(`/${cluster}`), cluster)),
  ];
  const clusters: Record<string, ClusterOptions> = {
    hc: { healthCheck: FAST_HC },
    expect: { healthCheck: { ...FAST_HC, expectedStatuses: [418] } },
    od: { outlierDetection: OD },
    connect: { outlierDetection: { consecutiveConnectFailures: 2, consecutive5xx: 0, baseEjectionMs: 60_000 } },
    cap: { outlierDetection: { consecutive5xx: 2, baseEjectionMs: 60_000, maxEjectionPercent: 50 }, panicThresholdPercent: 0 },
    cap0: { outlierDetection: { consecutive5xx: 2, baseEjectionMs: 60_000, maxEjectionPercent: 0 }, panicThresholdPercent: 0 },
    panic: { healthCheck: { ...FAST_HC, unhealthyThreshold: 2 } },
    nopanic: { healthCheck: { ...FAST_HC, unhealthyThreshold: 2 }, panicThresholdPercent: 0 },
    keep: { healthCheck: { ...FAST_HC, intervalMs: 200, unhealthyThreshold: 2 }, outlierDetection: { consecutive5xx: 2, baseEjectionMs: 60_000 }, panicThresholdPercent: 0 },
    admin: { loadBalancer: { policy: 'LeastRequest' } },
  };
  await applySnapshot(dp.adminUrl, clusterSnapshot(++config.generation, [vhost('main', ['*'], routes)], {
    hc: eps(names.hc),
    expect: eps(names.expect),
    od: eps(names.od),
    connect: [...eps(names.connect), localEndpoint(deadPort)],
    cap: eps(names.cap),
    cap0: eps(names.cap0),
    panic: eps(names.panic),
    nopanic: eps(names.nopanic),
    keep: eps(config.keepHasK5 ? names.keep : names.keep.slice(0, 4)),
    // One ready endpoint and one that is terminating (serving, not ready).
    admin: [be.al1!.endpoint(), be.al2!.endpoint({ ready: false, serving: true, terminating: true })],
  }, clusters));
}

beforeAll(async () => {
  const all = Object.values(names).flat();
  const started = await Promise.all(all.map((n) => startFlakyBackend(n)));
  for (const f of started) be[f.name] = f;
  be.ex1!.set({ healthStatus: 418 });
  for (const n of names.cap) be[n]!.set({ status: 500 });
  be.bad0!.set({ status: 500 });
  [dp, deadPort] = await Promise.all([spawnDataplane(), closedPort()]);
  agent = new Agent({ keepAliveTimeout: 10_000 });
  await push();
});

afterAll(async () => {
  await agent?.close();
  await dp?.stop();
  await Promise.all(Object.values(be).map((f) => f.close()));
});

interface Hit { status: number; backend: string | undefined }

async function hit(path: string): Promise<Hit> {
  const res = await request(`${dp.trafficUrl}${path}`, { dispatcher: agent });
  await res.body.dump();
  return { status: res.statusCode, backend: res.headers['x-backend'] as string | undefined };
}

/** `n` sequential requests; which backend answered each (undefined for a local reply). */
async function spread(cluster: string, n: number): Promise<Map<string | undefined, number>> {
  const seen: (string | undefined)[] = [];
  for (let i = 0; i < n; i++) seen.push((await hit(`/${cluster}`)).backend);
  return tally(seen);
}

const endpointOf = (cluster: string, backend: string) => upstreamEndpoint(dp.adminUrl, cluster, be[backend]!.port);

/** Wait until the admin API says `backend`'s active verdict in `cluster` is `healthy`. */
async function untilHealthy(cluster: string, backend: string, healthy: boolean, timeoutMs = 8_000): Promise<void> {
  await eventually(async () => (await endpointOf(cluster, backend)).healthy === healthy, timeoutMs, `${cluster}/${backend} healthy=${healthy}`);
}

/** The admin API's verdicts on an endpoint, polled every 20 ms until `done()`. */
async function verdictsUntil(cluster: string, backend: string, done: () => boolean, timeoutMs = 8_000): Promise<boolean[]> {
  const seen: boolean[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out watching ${cluster}/${backend}`);
    seen.push((await endpointOf(cluster, backend)).healthy);
    await sleep(20);
  }
  return seen;
}

/** `pyserve_upstream_endpoint_healthy` of one endpoint. */
async function healthyMetric(cluster: string, backend: string): Promise<number | undefined> {
  return metricValue(await scrape(dp.adminUrl), 'pyserve_upstream_endpoint_healthy', { cluster, endpoint: `127.0.0.1:${be[backend]!.port}` });
}

describe('active health checks', () => {
  it('probes every endpoint with GET of the path, about every intervalMs', async () => {
    const from = Object.fromEntries(names.hc.map((n) => [n, be[n]!.probes.length]));
    await sleep(1_500);
    for (const n of names.hc) {
      const probes = be[n]!.probes.slice(from[n]);
      // ~15 at 100 ms; generous bounds for a loaded machine.
      expect(probes.length, `${n} probes in 1.5 s`).toBeGreaterThanOrEqual(5);
      expect(probes.length, `${n} probes in 1.5 s`).toBeLessThanOrEqual(30);
      for (const p of probes) {
        expect(p.method).toBe('GET');
        expect(p.url).toBe('/healthz');
      }
    }
    // Probes are not traffic.
    expect(names.hc.every((n) => be[n]!.requests.length === 0)).toBe(true);
  });

  it('an endpoint failing unhealthyThreshold probes in a row takes no traffic; healthyThreshold passes bring it back', async () => {
    expect(await spread('hc', 30)).toEqual(new Map([['hc1', 10], ['hc2', 10], ['hc3', 10]]));
    expect(await healthyMetric('hc', 'hc1')).toBe(1);

    const hc1 = be.hc1!;
    const failFrom = hc1.probes.length;
    hc1.set({ healthStatus: 503 });
    await untilHealthy('hc', 'hc1', false);
    const failed = hc1.probes.slice(failFrom).filter((p) => p.status === 503).length;
    expect(failed, 'failing probes before the verdict').toBeGreaterThanOrEqual(3);
    const off = await spread('hc', 40);
    expect(off.get('hc1') ?? 0).toBe(0);
    expect(off).toEqual(new Map([['hc2', 20], ['hc3', 20]]));
    expect(await healthyMetric('hc', 'hc1')).toBe(0);
    expect(await healthyMetric('hc', 'hc2')).toBe(1);

    const passFrom = hc1.probes.length;
    hc1.set({ healthStatus: 200 });
    await untilHealthy('hc', 'hc1', true);
    const passed = hc1.probes.slice(passFrom).filter((p) => p.status === 200).length;
    expect(passed, 'passing probes before the verdict').toBeGreaterThanOrEqual(2);
    expect(await spread('hc', 30)).toEqual(new Map([['hc1', 10], ['hc2', 10], ['hc3', 10]]));
    expect(await healthyMetric('hc', 'hc1')).toBe(1);
  });

  it('fewer failures in a row than unhealthyThreshold, or fewer passes than healthyThreshold, change nothing', async () => {
    const hc2 = be.hc2!;
    // Two failures, then passes: threshold 3 is never reached.
    let from = hc2.probes.length;
    hc2.queueProbeStatuses(503, 503);
    let verdicts = await verdictsUntil('hc', 'hc2', () => hc2.probes.length >= from + 6);
    expect(hc2.probes.slice(from, from + 3).map((p) => p.status)).toEqual([503, 503, 200]);
    expect(verdicts.filter((h) => !h), 'two failing probes (threshold 3) made hc2 unhealthy').toEqual([]);
    expect((await spread('hc', 30)).get('hc2')).toBe(10);

    // Unhealthy, then one pass between failures: threshold 2 is never reached.
    hc2.set({ healthStatus: 503 });
    await untilHealthy('hc', 'hc2', false);
    from = hc2.probes.length;
    hc2.queueProbeStatuses(200);
    verdicts = await verdictsUntil('hc', 'hc2', () => hc2.probes.length >= from + 5);
    expect(hc2.probes.slice(from, from + 2).map((p) => p.status)).toEqual([200, 503]);
    expect(verdicts.filter((h) => h), 'a single passing probe (threshold 2) made hc2 healthy').toEqual([]);
    expect((await spread('hc', 20)).get('hc2') ?? 0).toBe(0);
    hc2.set({ healthStatus: 200 });
    await untilHealthy('hc', 'hc2', true);
  });

  it('a probe not answered within timeoutMs fails', async () => {
    const hc3 = be.hc3!;
    hc3.set({ healthDelayMs: 2_000 });
    await untilHealthy('hc', 'hc3', false);
    expect((await spread('hc', 20)).get('hc3') ?? 0).toBe(0);
    hc3.set({ healthDelayMs: 0 });
    await untilHealthy('hc', 'hc3', true);
    expect((await spread('hc', 30)).get('hc3')).toBe(10);
  });

  it('a refused connection fails the probe, and the endpoint returns when it listens again', async () => {
    const hc3 = be.hc3!;
    await hc3.stop();
    try {
      await untilHealthy('hc', 'hc3', false);
      // No request is sent to the dead endpoint any more.
      const seen = await spread('hc', 20);
      expect(seen).toEqual(new Map([['hc1', 10], ['hc2', 10]]));
    } finally {
      await hc3.restart();
    }
    await untilHealthy('hc', 'hc3', true);
    expect((await spread('hc', 30)).get('hc3')).toBe(10);
  });

  it('statuses 200–399 pass by default; others fail', async () => {
    const hc1 = be.hc1!;
    const from = hc1.probes.length;
    hc1.set({ healthStatus: 302 });
    await eventually(async () => hc1.probes.length >= from + 6, 8_000, 'six probes answered 302');
    expect((await endpointOf('hc', 'hc1')).healthy).toBe(true);
    hc1.set({ healthStatus: 399 });
    await eventually(async () => hc1.probes.length >= from + 12, 8_000, 'six probes answered 399');
    expect((await endpointOf('hc', 'hc1')).healthy).toBe(true);
    hc1.set({ healthStatus: 404 });
    await untilHealthy('hc', 'hc1', false);
    hc1.set({ healthStatus: 200 });
    await untilHealthy('hc', 'hc1', true);
  });

  it('expectedStatuses replaces the default: only the listed statuses pass', async () => {
    // ex1 answers 418 (listed), ex2 answers 200 (not listed).
    await untilHealthy('expect', 'ex2', false);
    expect((await endpointOf('expect', 'ex1')).healthy).toBe(true);
    expect(await spread('expect', 20)).toEqual(new Map([['ex1', 20]]));
  });
});

describe('outlier detection', () => {
  it('ejects after exactly consecutive5xx failures, for base × times ejected (capped), and takes the endpoint back', async () => {
    const od1 = be.od1!;
    od1.set({ status: 500 });
    const before = await counter(dp.adminUrl, 'pyserve_upstream_ejections_total', { cluster: 'od' });
    const expected = [OD.baseEjectionMs, 2 * OD.baseEjectionMs, OD.maxEjectionMs];
    const windows: { trigger: number; until: number }[] = [];
    let sent = 0;
    for (let k = 0; k < expected.length; k++) {
      const had = od1.requests.length;
      // Exactly three failures: the third ejects, and the endpoint gets nothing more while ejected.
      while (od1.requests.length < had + 3) {
        await hit('/od');
        if (++sent > 400) throw new Error('od1 never received its failing requests');
      }
      // The third failure's lifetime: od1 got it at `trigger`, the client had its
      // answer by `answered`; the ejection started in between. Bounding it by
      // both (not by a fixed slack) keeps this exact on a loaded machine.
      const trigger = od1.requests.at(-1)!.at;
      const answered = Date.now();
      const view = await endpointOf('od', 'od1');
      expect(view.ejected, `ejection ${k + 1}`).toBe(true);
      expect(view.ejections).toBe(k + 1);
      expect(view.ejectedUntil).not.toBeNull();
      const until = Date.parse(view.ejectedUntil!);
      const started = until - expected[k]!;
      expect(started, `ejection ${k + 1} starts when the failure is seen (length ${expected[k]} ms)`).toBeGreaterThanOrEqual(trigger - 5);
      expect(started, `ejection ${k + 1} starts when the failure is seen (length ${expected[k]} ms)`).toBeLessThanOrEqual(answered + 5);
      windows.push({ trigger, until });
      // Keep traffic flowing through the ejection; only the other three answer, all 200.
      while (Date.now() < until - 20) {
        const r = await hit('/od');
        expect(r.backend).not.toBe('od1');
        expect(r.status).toBe(200);
      }
    }
    // Nothing reached od1 inside an ejection window.
    for (const w of windows) {
      const inside = od1.requests.filter((r) => r.at > w.trigger && r.at < w.until - 5);
      expect(inside, 'requests that reached od1 while it was ejected').toEqual([]);
    }
    expect(await counter(dp.adminUrl, 'pyserve_upstream_ejections_total', { cluster: 'od' })).toBe(before + 3);

    // Recovery: traffic returns once the ejection ends.
    od1.set({ status: 200 });
    const last = windows.at(-1)!.until;
    await sleep(Math.max(0, last - Date.now() + 50));
    const back = await spread('od', 40);
    expect(back.get('od1')).toBe(10);
    expect((await endpointOf('od', 'od1')).ejected).toBe(false);
    expect(await healthyMetric('od', 'od1')).toBe(1);
  });

  it('ejects an endpoint after exactly consecutiveConnectFailures refused connections', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await hit('/connect')).status);
    // The dead endpoint answered with a 502 exactly twice, then was ejected.
    expect(statuses.filter((s) => s === 502)).toHaveLength(2);
    expect(statuses.filter((s) => s === 200)).toHaveLength(28);
    const c = await upstreamCluster(dp.adminUrl, 'connect');
    const dead = c.endpoints.find((e) => e.key === `127.0.0.1:${deadPort}`);
    expect(dead).toMatchObject({ ejected: true, ejections: 1 });
    expect(await counter(dp.adminUrl, 'pyserve_upstream_ejections_total', { cluster: 'connect' })).toBe(1);
    expect(metricValue(await scrape(dp.adminUrl), 'pyserve_upstream_endpoint_healthy', { cluster: 'connect', endpoint: `127.0.0.1:${deadPort}` })).toBe(0);
  });

  it('ejects at most maxEjectionPercent of the cluster at once', async () => {
    // All four fail; 50% means two ejected at most, the other two keep taking traffic.
    let maxEjected = 0;
    for (let i = 0; i < 40; i++) {
      expect((await hit('/cap')).status).toBe(500);
      const ejected = (await upstreamCluster(dp.adminUrl, 'cap')).endpoints.filter((e) => e.ejected).length;
      maxEjected = Math.max(maxEjected, ejected);
    }
    expect(maxEjected).toBe(2);
    const c = await upstreamCluster(dp.adminUrl, 'cap');
    const ejected = c.endpoints.filter((e) => e.ejected).map((e) => e.key);
    expect(ejected).toHaveLength(2);
    // Each ejected endpoint received exactly its two failures; the others all the rest.
    for (const n of names.cap) {
      const key = `127.0.0.1:${be[n]!.port}`;
      if (ejected.includes(key)) expect(be[n]!.requests.length, n).toBe(2);
      else expect(be[n]!.requests.length, n).toBeGreaterThan(10);
    }
  });

  it('one endpoint can always be ejected, even with maxEjectionPercent 0', async () => {
    const seen = await spread('cap0', 20);
    expect(seen.get('bad0')).toBe(2);
    expect(seen.get('good0')).toBe(18);
    expect((await endpointOf('cap0', 'bad0')).ejected).toBe(true);
  });
});

describe('panic threshold', () => {
  it('with fewer than 50% healthy (the default), every ready endpoint takes traffic', async () => {
    const [p1, p2] = [be.p1!, be.p2!];
    p1.set({ healthStatus: 500 });
    await untilHealthy('panic', 'p1', false);
    // Two of three healthy: no panic, p1 is skipped.
    expect((await upstreamCluster(dp.adminUrl, 'panic')).panic).toBe(false);
    expect(await spread('panic', 30)).toEqual(new Map([['p2', 15], ['p3', 15]]));
    p2.set({ healthStatus: 500 });
    try {
      await untilHealthy('panic', 'p2', false);
      // One of three healthy: panic, all three take traffic.
      expect((await upstreamCluster(dp.adminUrl, 'panic')).panic).toBe(true);
      expect(await spread('panic', 30)).toEqual(new Map([['p1', 10], ['p2', 10], ['p3', 10]]));
      // Panic ignores health; it does not call the endpoints healthy.
      expect(await healthyMetric('panic', 'p1')).toBe(0);
      expect((await endpointOf('panic', 'p2')).healthy).toBe(false);
    } finally {
      p1.set({ healthStatus: 200 });
      p2.set({ healthStatus: 200 });
    }
    await untilHealthy('panic', 'p1', true);
    await untilHealthy('panic', 'p2', true);
    expect((await upstreamCluster(dp.adminUrl, 'panic')).panic).toBe(false);
  });

  it('with panicThresholdPercent 0 and no healthy endpoint, requests get 503', async () => {
    const [q1, q2] = [be.q1!, be.q2!];
    q1.set({ healthStatus: 500 });
    try {
      await untilHealthy('nopanic', 'q1', false);
      expect(await spread('nopanic', 10)).toEqual(new Map([['q2', 10]]));
      q2.set({ healthStatus: 500 });
      await untilHealthy('nopanic', 'q2', false);
      const had = q1.requests.length + q2.requests.length;
      for (let i = 0; i < 10; i++) {
        const r = await hit('/nopanic');
        expect(r.status).toBe(503);
        expect(r.backend).toBeUndefined();
      }
      expect(q1.requests.length + q2.requests.length).toBe(had);
      expect((await upstreamCluster(dp.adminUrl, 'nopanic')).panic).toBe(false);
    } finally {
      q1.set({ healthStatus: 200 });
      q2.set({ healthStatus: 200 });
    }
    await untilHealthy('nopanic', 'q1', true);
    expect((await hit('/nopanic')).status).toBe(200);
  });
});

describe('health state across snapshot swaps', () => {
  it('an unhealthy and an ejected endpoint stay so right after swaps that keep them', async () => {
    const [k1, k2] = [be.k1!, be.k2!];
    k1.set({ healthStatus: 503 });
    k2.set({ status: 500 });
    await untilHealthy('keep', 'k1', false);
    // Two 5xx from k2 eject it (round robin over k2, k3, k4 now).
    for (let i = 0; i < 20 && k2.requests.length < 2; i++) await hit('/keep');
    const ejected = await endpointOf('keep', 'k2');
    expect(ejected.ejected).toBe(true);

    const check = async (label: string, others: string[]): Promise<void> => {
      const v1 = await endpointOf('keep', 'k1');
      const v2 = await endpointOf('keep', 'k2');
      expect(v1.healthy, `${label}: k1 healthy`).toBe(false);
      expect(v2.ejected, `${label}: k2 ejected`).toBe(true);
      expect(v2.ejectedUntil, `${label}: k2 ejected until`).toBe(ejected.ejectedUntil);
      expect(v2.ejections).toBe(1);
      const seen = await spread('keep', others.length * 10);
      expect(seen, label).toEqual(new Map(others.map((o) => [o, 10])));
    };

    // A routing change that touches no cluster.
    config.extraRoute = true;
    await push();
    expect((await hit('/extra')).status).toBe(200);
    await check('after a routing swap', ['k3', 'k4']);

    // An endpoint change in the same cluster: k5 joins, healthy.
    config.keepHasK5 = true;
    await push();
    await check('after an endpoints swap', ['k3', 'k4', 'k5']);
    expect((await endpointOf('keep', 'k5')).healthy).toBe(true);

    k1.set({ healthStatus: 200 });
    k2.set({ status: 200 });
  });
});

describe('admin API and metrics', () => {
  it('GET /v1/upstreams needs the admin bearer token', async () => {
    expect((await fetchUpstreams(dp.adminUrl, null)).status).toBe(401);
    expect((await fetchUpstreams(dp.adminUrl, 'wrong')).status).toBe(401);
    expect((await fetchUpstreams(dp.adminUrl, 't')).status).toBe(200);
  });

  it('reports every cluster with its policy, panic flag and endpoints', async () => {
    const all = await upstreams(dp.adminUrl);
    expect(all.map((c) => c.name).sort()).toEqual(Object.keys(names).sort());
    for (const c of all) {
      expect(typeof c.panic).toBe('boolean');
      expect(['RoundRobin', 'LeastRequest', 'Random', 'ConsistentHash']).toContain(c.policy);
      for (const e of c.endpoints) {
        expect(e.key).toMatch(/^127\.0\.0\.1:\d+$/);
        expect(typeof e.ready).toBe('boolean');
        expect(typeof e.healthy).toBe('boolean');
        expect(typeof e.ejected).toBe('boolean');
        expect(typeof e.ejections).toBe('number');
        expect(typeof e.inFlight).toBe('number');
        if (e.ejected) expect(new Date(e.ejectedUntil!).toISOString()).toBe(e.ejectedUntil);
        else expect(e.ejectedUntil).toBeNull();
      }
    }
    const hc = all.find((c) => c.name === 'hc')!;
    expect(hc.policy).toBe('RoundRobin');
    expect(hc.endpoints.map((e) => e.key).sort()).toEqual(names.hc.map((n) => `127.0.0.1:${be[n]!.port}`).sort());
    const admin = all.find((c) => c.name === 'admin')!;
    expect(admin.policy).toBe('LeastRequest');
    expect(admin.endpoints.find((e) => e.key === `127.0.0.1:${be.al1!.port}`)).toMatchObject({ ready: true, healthy: true, ejected: false, ejectedUntil: null, ejections: 0 });
    expect(admin.endpoints.find((e) => e.key === `127.0.0.1:${be.al2!.port}`)).toMatchObject({ ready: false });
  });

  it('inFlight counts the requests in flight to an endpoint', async () => {
    const al1 = be.al1!;
    al1.set({ delayMs: 1_500 });
    try {
      const pending = Promise.all([hit('/admin'), hit('/admin')]);
      await eventually(async () => (await endpointOf('admin', 'al1')).inFlight === 2, 5_000, 'two requests in flight');
      const done = await pending;
      expect(done.map((r) => r.status)).toEqual([200, 200]);
      await eventually(async () => (await endpointOf('admin', 'al1')).inFlight === 0, 5_000, 'nothing in flight');
    } finally {
      al1.set({ delayMs: 0 });
    }
  });

  it('exports pyserve_upstream_endpoint_healthy for every endpoint', async () => {
    const samples = await scrape(dp.adminUrl);
    for (const n of names.hc) {
      expect(metricValue(samples, 'pyserve_upstream_endpoint_healthy', { cluster: 'hc', endpoint: `127.0.0.1:${be[n]!.port}` }), n).toBe(1);
    }
    expect(metricValue(samples, 'pyserve_upstream_endpoint_healthy', { cluster: 'expect', endpoint: `127.0.0.1:${be.ex2!.port}` })).toBe(0);
  });
});
