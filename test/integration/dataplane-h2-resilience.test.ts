// Outlier detection and retries towards HTTP/2 (h2c) upstreams, as towards
// HTTP/1.1 ones: consecutive 5xx answers and refused connections eject the
// endpoint after exactly the configured count; a request without a body is
// retried on another endpoint after a 5xx, a refused connection or a per-try
// timeout, within its attempts, and a request with a body is not.
import { once } from 'node:events';
import { createServer } from 'node:http2';
import type { Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort } from '../helpers/backends.ts';
import { clusterSnapshot, localEndpoint, metricValue, scrape, upstreamCluster } from '../helpers/cluster-snapshots.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { startH2cBackend } from '../helpers/h2-backends.ts';
import type { TestBackend } from '../helpers/h2-backends.ts';
import { http } from '../helpers/http.ts';
import { applySnapshot, forward, prefix, vhost } from '../helpers/snapshots.ts';
import { runConcurrently, tally } from '../helpers/flaky-backends.ts';

let dp: DataplaneChild;
let good: TestBackend;
let failing: Http2Server;
let failingPort: number;
let failingRequests = 0;
let deadPort: number;
let failing2: Http2Server;
let failing2Port: number;
let failing2Requests = 0;
let hanging: Http2Server;
let hangingPort: number;
let hangingRequests = 0;

beforeAll(async () => {
  good = await startH2cBackend('good');
  // Answers every request with a 500.
  failing = createServer((_req, res) => {
    failingRequests++;
    res.writeHead(500, { 'x-backend': 'failing' });
    res.end('broken');
  });
  failing.listen(0, '127.0.0.1');
  await once(failing, 'listening');
  failingPort = (failing.address() as AddressInfo).port;
  failing2 = createServer((_req, res) => {
    failing2Requests++;
    res.writeHead(500);
    res.end('broken too');
  });
  failing2.listen(0, '127.0.0.1');
  await once(failing2, 'listening');
  failing2Port = (failing2.address() as AddressInfo).port;
  deadPort = await closedPort();
  // Takes every request and never answers.
  hanging = createServer(() => {
    hangingRequests++;
  });
  hanging.listen(0, '127.0.0.1');
  await once(hanging, 'listening');
  hangingPort = (hanging.address() as AddressInfo).port;
  dp = await spawnDataplane();
  await applySnapshot(dp.adminUrl, clusterSnapshot(1, [vhost('all', ['*'], [
    forward('five', prefix('/five'), 'five'),
    forward('dead', prefix('/dead'), 'dead'),
    { ...forward('retry-5xx', prefix('/retry-5xx'), 'retry5xx'), retry: { attempts: 2, on: ['5xx'], allowNonIdempotent: true, minRetryConcurrency: 100 } },
    { ...forward('retry-connect', prefix('/retry-connect'), 'retrydead'), retry: { attempts: 1, minRetryConcurrency: 100 } },
    { ...forward('retry-slow', prefix('/retry-slow'), 'retryslow'), retry: { attempts: 1, on: ['timeout'], perTryTimeoutMs: 300 } },
    forward('no-retry', prefix('/no-retry'), 'retry5xx'),
    { ...forward('storm', prefix('/storm'), 'storm'), retry: { attempts: 3, on: ['5xx'], budgetPercent: 0, minRetryConcurrency: 1, backoffBaseMs: 50 } },
  ])], {
    five: [good.endpoint(), localEndpoint(failingPort)],
    dead: [good.endpoint(), localEndpoint(deadPort)],
    retry5xx: [good.endpoint(), localEndpoint(failingPort)],
    retrydead: [good.endpoint(), localEndpoint(deadPort)],
    retryslow: [good.endpoint(), localEndpoint(hangingPort)],
    storm: [localEndpoint(failingPort), localEndpoint(failing2Port)],
  }, {
    storm: { protocol: 'h2c' },
    retry5xx: { protocol: 'h2c' },
    retrydead: { protocol: 'h2c' },
    retryslow: { protocol: 'h2c' },
    five: { protocol: 'h2c', outlierDetection: { consecutive5xx: 3, consecutiveConnectFailures: 0, baseEjectionMs: 60_000 }, panicThresholdPercent: 0 },
    dead: { protocol: 'h2c', outlierDetection: { consecutive5xx: 0, consecutiveConnectFailures: 2, baseEjectionMs: 60_000 }, panicThresholdPercent: 0 },
  }));
});

afterAll(async () => {
  await dp?.stop();
  await good?.close();
  failing?.close();
  hanging?.close();
  failing2?.close();
});

describe('outlier detection towards h2c upstreams', () => {
  it('ejects an endpoint after exactly consecutive5xx answers of 500', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await http(`${dp.trafficUrl}/five/${i}`)).status);
    expect(failingRequests).toBe(3);
    expect(tally(statuses)).toEqual(new Map([[200, 27], [500, 3]]));
    const c = await upstreamCluster(dp.adminUrl, 'five');
    expect(c.endpoints.find((e) => e.key === `127.0.0.1:${failingPort}`)).toMatchObject({ ejected: true, ejections: 1 });
    expect(c.endpoints.find((e) => e.key === `127.0.0.1:${good.port}`)).toMatchObject({ ejected: false });
  });

  it('ejects an endpoint after exactly consecutiveConnectFailures refused connections', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await http(`${dp.trafficUrl}/dead/${i}`)).status);
    expect(tally(statuses)).toEqual(new Map([[200, 28], [502, 2]]));
    const c = await upstreamCluster(dp.adminUrl, 'dead');
    expect(c.endpoints.find((e) => e.key === `127.0.0.1:${deadPort}`)).toMatchObject({ ejected: true, ejections: 1 });
  });
});

describe('retries towards h2c upstreams', () => {
  it('a request without a body that got a 500 is retried on the other endpoint: every answer is 200', async () => {
    const before = failingRequests;
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await http(`${dp.trafficUrl}/retry-5xx/${i}`)).status);
    expect(tally(statuses)).toEqual(new Map([[200, 20]]));
    // Round robin sent some first tries to the failing endpoint; each was retried.
    expect(failingRequests - before).toBeGreaterThan(0);
    expect(metricValue(await scrape(dp.adminUrl), 'pyserve_upstream_retries_total', { cluster: 'retry5xx' })).toBe(failingRequests - before);
  });

  it('without a retry policy, or with a request body, the 500 is passed on', async () => {
    const plain: number[] = [];
    for (let i = 0; i < 6; i++) plain.push((await http(`${dp.trafficUrl}/no-retry/${i}`)).status);
    expect(tally(plain)).toEqual(new Map([[200, 3], [500, 3]]));
    // allowNonIdempotent is set, but a streamed HTTP/2 body is read once.
    const posted: number[] = [];
    for (let i = 0; i < 6; i++) posted.push((await http(`${dp.trafficUrl}/retry-5xx/post-${i}`, { method: 'POST', body: 'payload' })).status);
    expect(tally(posted)).toEqual(new Map([[200, 3], [500, 3]]));
  });

  it('a refused connection is retried on the other endpoint (default conditions)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await http(`${dp.trafficUrl}/retry-connect/${i}`)).status);
    expect(tally(statuses)).toEqual(new Map([[200, 10]]));
  });

  it('a try without a response head within perTryTimeoutMs is cancelled and retried', async () => {
    const before = hangingRequests;
    const results: { status: number; ms: number }[] = [];
    for (let i = 0; i < 4; i++) {
      const t0 = performance.now();
      const r = await http(`${dp.trafficUrl}/retry-slow/${i}`);
      results.push({ status: r.status, ms: performance.now() - t0 });
    }
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(hangingRequests - before).toBe(2);
    // The two that met the hanging endpoint first waited out one per-try timeout.
    expect(results.filter((r) => r.ms >= 290)).toHaveLength(2);
  });

  it('a retry storm against a failing cluster is capped by the retry budget', async () => {
    const before = failingRequests + failing2Requests;
    // 40 requests, 20 at a time, each allowed 3 retries: without a budget the
    // upstreams would see 160 tries. One retry in flight at a time is allowed.
    const statuses = await runConcurrently(40, 20, async (i) => (await http(`${dp.trafficUrl}/storm/${i}`)).status);
    expect(tally(statuses)).toEqual(new Map([[500, 40]]));
    const tries = failingRequests + failing2Requests - before;
    expect(tries).toBeGreaterThanOrEqual(40);
    // Far below the 160 of an unbudgeted storm (a handful here; loose for a loaded machine).
    expect(tries).toBeLessThan(100);
    const metrics = await scrape(dp.adminUrl);
    expect(metricValue(metrics, 'pyserve_upstream_retry_budget_exhausted_total', { cluster: 'storm' })).toBeGreaterThan(0);
    expect(metricValue(metrics, 'pyserve_upstream_retries_total', { cluster: 'storm' })).toBe(tries - 40);
  });
});
