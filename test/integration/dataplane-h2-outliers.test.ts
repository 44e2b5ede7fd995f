// Outlier detection towards HTTP/2 (h2c) upstreams, as towards HTTP/1.1 ones:
// consecutive 5xx answers and refused connections eject the endpoint after
// exactly the configured count, and traffic goes to the others.
import { once } from 'node:events';
import { createServer } from 'node:http2';
import type { Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort } from '../helpers/backends.ts';
import { clusterSnapshot, localEndpoint, upstreamCluster } from '../helpers/cluster-snapshots.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { startH2cBackend } from '../helpers/h2-backends.ts';
import type { TestBackend } from '../helpers/h2-backends.ts';
import { http } from '../helpers/http.ts';
import { applySnapshot, forward, prefix, vhost } from '../helpers/snapshots.ts';
import { tally } from '../helpers/flaky-backends.ts';

let dp: DataplaneChild;
let good: TestBackend;
let failing: Http2Server;
let failingPort: number;
let failingRequests = 0;
let deadPort: number;

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
  deadPort = await closedPort();
  dp = await spawnDataplane();
  await applySnapshot(dp.adminUrl, clusterSnapshot(1, [vhost('all', ['*'], [
    forward('five', prefix('/five'), 'five'),
    forward('dead', prefix('/dead'), 'dead'),
  ])], {
    five: [good.endpoint(), localEndpoint(failingPort)],
    dead: [good.endpoint(), localEndpoint(deadPort)],
  }, {
    five: { protocol: 'h2c', outlierDetection: { consecutive5xx: 3, consecutiveConnectFailures: 0, baseEjectionMs: 60_000 }, panicThresholdPercent: 0 },
    dead: { protocol: 'h2c', outlierDetection: { consecutive5xx: 0, consecutiveConnectFailures: 2, baseEjectionMs: 60_000 }, panicThresholdPercent: 0 },
  }));
});

afterAll(async () => {
  await dp?.stop();
  await good?.close();
  failing?.close();
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
