// Snapshot swaps under load: a request never fails because the config
// changed, and upstream connection pools outlive swaps that keep their
// endpoint.
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { echoed, http } from '../helpers/http.ts';
import { applySnapshot, direct, forward, prefix, pushSnapshot, snapshot, vhost } from '../helpers/snapshots.ts';
import type { Endpoint } from '../../dataplane/snapshot/schema.ts';

let dp: DataplaneChild;
let a: Backend;
let b: Backend;
let c: Backend;

beforeAll(async () => {
  [dp, a, b, c] = await Promise.all([spawnDataplane(), startBackend('a'), startBackend('b'), startBackend('c')]);
});

afterAll(async () => {
  await dp?.stop();
  await Promise.all([a?.close(), b?.close(), c?.close()]);
});

/** Steady vhost stays identical; the other vhost's route and the endpoints vary with the arguments. */
function build(generation: number, otherVersion: number, steady: Endpoint[], other: Endpoint[]) {
  return snapshot(generation, [
    vhost('steady', ['steady.test'], [forward('steady', prefix('/'), 'steady')]),
    vhost('other', ['other.test'], [
      direct(`other-v${otherVersion}`, prefix('/version'), 200, `v${otherVersion}`),
      forward('other', prefix('/'), 'other'),
    ]),
  ], { steady, other });
}

describe('snapshot swaps', () => {
  it('swaps 20 times under steady traffic without failing a request', async () => {
    const agent = new Agent({ connections: 8 });
    await applySnapshot(dp.adminUrl, build(1, 0, [a.endpoint()], [c.endpoint()]));
    let stop = false;
    const statuses: number[] = [];
    const backends = new Set<string>();
    const client = async (): Promise<void> => {
      while (!stop) {
        try {
          const res = await http(`${dp.trafficUrl}/work`, { headers: { host: 'steady.test' }, dispatcher: agent });
          statuses.push(res.status);
          if (res.status === 200) backends.add(echoed(res).backend);
        } catch (err) {
          statuses.push(-1);
          throw err;
        }
      }
    };
    const clients = Array.from({ length: 4 }, client);
    let otherVersion = 0;
    for (let i = 0; i < 20; i++) {
      const generation = i + 2;
      // Even swaps change routing (another vhost); odd swaps change endpoints,
      // including adding and removing an endpoint of the steady cluster.
      if (i % 2 === 0) otherVersion++;
      const steadyEndpoints = i % 4 < 2 ? [a.endpoint()] : [a.endpoint(), b.endpoint()];
      const res = await applySnapshot(dp.adminUrl, build(generation, otherVersion, steadyEndpoints, i % 3 === 0 ? [] : [c.endpoint()]));
      expect(res.json?.generation).toBe(generation);
      const version = await http(`${dp.trafficUrl}/version`, { headers: { host: 'other.test' }, dispatcher: agent });
      expect(version.text).toBe(`v${otherVersion}`);
      await new Promise((r) => setTimeout(r, 30));
    }
    stop = true;
    await Promise.all(clients);
    await agent.close();
    expect(statuses.length).toBeGreaterThan(40);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // Endpoint changes did reach the steady cluster while traffic ran.
    expect([...backends].sort()).toEqual(['a', 'b']);
  }, 60_000);

  it('keeps upstream keep-alive connections when routing is unchanged, and across routing changes', async () => {
    const agent = new Agent();
    const remotePort = async (): Promise<{ backend: string; port: number }> => {
      const res = await http(`${dp.trafficUrl}/reuse`, { headers: { host: 'steady.test' }, dispatcher: agent });
      expect(res.status).toBe(200);
      const seen = echoed(res);
      return { backend: seen.backend, port: seen.remotePort };
    };
    // Start from a new steady endpoint set so this test owns its pools.
    await applySnapshot(dp.adminUrl, build(100, 50, [b.endpoint()], [c.endpoint()]));
    await applySnapshot(dp.adminUrl, build(101, 50, [a.endpoint()], [c.endpoint()]));
    const first = await remotePort();
    expect(first.backend).toBe('a');
    expect(await remotePort()).toEqual(first);

    // Endpoints change elsewhere, routing identical: the route table is not rebuilt and the pool stays.
    const endpointsOnly = await applySnapshot(dp.adminUrl, build(102, 50, [a.endpoint()], []));
    expect(endpointsOnly.json?.applied).toBe(true);
    const log = await dp.waitForLog((l) => l.msg === 'snapshot applied' && l.generation === 102);
    expect(log).toMatchObject({ routingRebuilt: false, endpointsRebuilt: true });
    expect(await remotePort()).toEqual(first);

    // The same snapshot again is a no-op.
    const again = await pushSnapshot(dp.adminUrl, build(102, 50, [a.endpoint()], []));
    expect(again.status).toBe(200);
    expect(again.json?.applied).toBe(false);

    // Routing changes on another vhost: new table, same pools.
    const routingOnly = await applySnapshot(dp.adminUrl, build(103, 51, [a.endpoint()], []));
    expect(routingOnly.json?.applied).toBe(true);
    expect(await dp.waitForLog((l) => l.msg === 'snapshot applied' && l.generation === 103)).toMatchObject({ routingRebuilt: true, endpointsRebuilt: false });
    expect(await remotePort()).toEqual(first);

    // The endpoint leaves and comes back: its pool was closed, so a new connection is made.
    await applySnapshot(dp.adminUrl, build(104, 51, [b.endpoint()], []));
    expect((await remotePort()).backend).toBe('b');
    await applySnapshot(dp.adminUrl, build(105, 51, [a.endpoint()], []));
    const after = await remotePort();
    expect(after.backend).toBe('a');
    expect(after.port).not.toBe(first.port);
    await agent.close();
  });
});
