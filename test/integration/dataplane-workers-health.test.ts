// Health in a worker cluster (`--workers 2`): only the primary probes, every
// worker obeys its verdicts (a replaced worker included, before it serves),
// and `GET /v1/upstreams` merges the primary's verdicts with the workers'
// ejections and load.
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { http } from '../helpers/http.ts';
import { applySnapshot, forward, prefix, vhost } from '../helpers/snapshots.ts';
import { clusterSnapshot, scrape, metricValue, upstreamEndpoint } from '../helpers/cluster-snapshots.ts';
import { startFlakyBackend, sleep, tally } from '../helpers/flaky-backends.ts';
import type { FlakyBackend } from '../helpers/flaky-backends.ts';
import { eventually } from '../helpers/logged-process.ts';

let dp: DataplaneChild | undefined;
const backends: FlakyBackend[] = [];

afterEach(async () => {
  await dp?.stop('SIGKILL');
  await Promise.all(backends.splice(0).map((b) => b.close()));
  dp = undefined;
});

/** `n` requests, each on a fresh connection so the kernel spreads them over the workers; the answering backend of each. */
async function spread(url: string, n: number): Promise<string[]> {
  return Promise.all(Array.from({ length: n }, async () => {
    const agent = new Agent({ pipelining: 0 });
    try {
      const r = await http(url, { dispatcher: agent });
      expect(r.status).toBe(200);
      return r.headers['x-backend'] as string;
    } finally {
      await agent.close();
    }
  }));
}

const workersServing = (child: DataplaneChild, path: string): Set<number> =>
  new Set(child.logs.filter((l) => l.msg === 'request' && l.path === path).map((l) => l.worker as number));

describe('health with --workers 2', () => {
  it('the primary probes once per interval, and no worker sends traffic to an endpoint it holds unhealthy', async () => {
    const [a, b] = await Promise.all([startFlakyBackend('a'), startFlakyBackend('b')]);
    backends.push(a, b);
    dp = await spawnDataplane({ args: ['--workers', '2'] });
    await applySnapshot(dp.adminUrl, clusterSnapshot(1, [vhost('all', ['*'], [forward('r', prefix('/'), 'c')])], { c: [a.endpoint(), b.endpoint()] }, {
      c: { healthCheck: { path: '/healthz', intervalMs: 200, unhealthyThreshold: 2, healthyThreshold: 2 } },
    }));
    // Probe rate: one prober per endpoint, not one per worker (2 workers would double it).
    const probesBefore = a.probes.length;
    await sleep(2_000);
    const rate = (a.probes.length - probesBefore) / 2;
    expect(rate).toBeGreaterThan(2.5);
    expect(rate).toBeLessThan(7.5);

    b.set({ healthStatus: 503 });
    await eventually(async () => !(await upstreamEndpoint(dp!.adminUrl, 'c', b.port)).healthy, 5_000, 'b held unhealthy');
    const seen = await spread(`${dp.trafficUrl}/while-b-down`, 60);
    expect(tally(seen)).toEqual(new Map([['a', 60]]));
    await eventually(async () => dp!.logs.filter((l) => l.msg === 'request' && l.path === '/while-b-down').length === 60, 5_000, '60 access log lines');
    expect(workersServing(dp, '/while-b-down').size).toBe(2);
    const metrics = await scrape(dp.adminUrl);
    expect(metricValue(metrics, 'pyserve_upstream_endpoint_healthy', { cluster: 'c', endpoint: `127.0.0.1:${b.port}` })).toBe(0);

    // A replaced worker gets the verdicts before it serves.
    const victim = dp.logs.find((l) => l.msg === 'worker started')!;
    process.kill(victim.pid as number, 'SIGKILL');
    await dp.waitForLog((l) => l.msg === 'worker started' && (l.worker as number) > 2, 15_000);
    const afterKill = await spread(`${dp.trafficUrl}/after-kill`, 60);
    expect(tally(afterKill)).toEqual(new Map([['a', 60]]));

    b.set({ healthStatus: 200 });
    await eventually(async () => (await upstreamEndpoint(dp!.adminUrl, 'c', b.port)).healthy, 5_000, 'b healthy again');
    const back = await spread(`${dp.trafficUrl}/b-back`, 60);
    expect(tally(back).get('b')).toBeGreaterThan(10);
  });

  it('/v1/upstreams adds up the workers\' requests in flight and shows an ejection made by one worker', async () => {
    const [slow, bad] = await Promise.all([startFlakyBackend('slow', { delayMs: 1_500 }), startFlakyBackend('bad', { status: 500 })]);
    backends.push(slow, bad);
    dp = await spawnDataplane({ args: ['--workers', '2'] });
    await applySnapshot(dp.adminUrl, clusterSnapshot(1, [vhost('all', ['*'], [forward('s', prefix('/slow'), 'slow'), forward('o', prefix('/bad'), 'bad')])], {
      slow: [slow.endpoint()],
      bad: [bad.endpoint()],
    }, { bad: { outlierDetection: { consecutive5xx: 2, baseEjectionMs: 30_000 } } }));
    const pending = Array.from({ length: 8 }, async () => {
      const agent = new Agent({ pipelining: 0 });
      try {
        return (await http(`${dp!.trafficUrl}/slow`, { dispatcher: agent })).status;
      } finally {
        await agent.close();
      }
    });
    await eventually(async () => slow.inFlight === 8, 5_000, '8 requests at the slow backend');
    expect((await upstreamEndpoint(dp.adminUrl, 'slow', slow.port)).inFlight).toBe(8);
    expect(await Promise.all(pending)).toEqual(Array(8).fill(200));

    // One connection: every request lands on the same worker, which ejects after two 500s.
    const agent = new Agent({ connections: 1 });
    try {
      for (let i = 0; i < 2; i++) expect((await http(`${dp.trafficUrl}/bad`, { dispatcher: agent })).status).toBe(500);
    } finally {
      await agent.close();
    }
    const view = await upstreamEndpoint(dp.adminUrl, 'bad', bad.port);
    expect(view).toMatchObject({ ejected: true, ejections: 1, healthy: true });
    expect(Date.parse(view.ejectedUntil!)).toBeGreaterThan(Date.now() + 20_000);
  });
});
