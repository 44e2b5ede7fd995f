/**
 * A snapshot whose routing hash is the one being served keeps that routing:
 * its routing section is not validated or hashed again (~200 ms of an
 * endpoints-only apply at 10k Ingresses, docs/benchmarks.md item 8), and may
 * be just `{ "hash": … }`. Its endpoints are checked as always. With workers,
 * the primary hands workers, and a worker started later, the routing it
 * validated before, never the pushed section.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { eventually } from '../helpers/logged-process.ts';
import { echoed, http } from '../helpers/http.ts';
import { applySnapshot, forward, getSnapshotState, prefix, pushSnapshot, snapshot, vhost } from '../helpers/snapshots.ts';
import type { Snapshot } from '../../dataplane/snapshot/schema.ts';

const token = 't';
let a: Backend;
let b: Backend;

beforeAll(async () => {
  [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
});

afterAll(async () => {
  await a?.close();
  await b?.close();
});

const routes = [vhost('all', ['*'], [forward('p', prefix('/'), 'c')])];
const onA = (generation: number): Snapshot => snapshot(generation, routes, { c: [a.endpoint()] });
const onB = (generation: number): Snapshot => snapshot(generation, routes, { c: [b.endpoint()] });
/** `snap` with its routing section cut down to the hash. */
const slim = (snap: Snapshot): unknown => ({ ...snap, routing: { hash: snap.routing.hash } });

/** `n` requests, each on a fresh connection; the backends that answered. */
async function backendsServing(dp: DataplaneChild, n: number): Promise<string[]> {
  const names = await Promise.all(Array.from({ length: n }, async () => {
    const res = await http(`${dp.trafficUrl}/x`, { headers: { connection: 'close' } });
    expect(res.status).toBe(200);
    return echoed(res).backend;
  }));
  return [...new Set(names)];
}

describe('one process', () => {
  let dp: DataplaneChild;
  beforeAll(async () => {
    dp = await spawnDataplane({ token });
    await applySnapshot(dp.adminUrl, onA(1), { token });
  });
  afterAll(async () => {
    await dp?.stop();
  });

  it('takes new endpoints with the routing section reduced to its hash', async () => {
    const next = onB(2);
    expect(next.routing.hash).toBe(onA(1).routing.hash);
    const res = await pushSnapshot(dp.adminUrl, JSON.stringify(slim(next)), { token });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toEqual({ generation: 2, routingHash: next.routing.hash, endpointsHash: next.endpoints.hash, applied: true });
    expect(await backendsServing(dp, 5)).toEqual(['b']);
    expect((await getSnapshotState(dp.adminUrl, { token })).json).toEqual({ generation: 2, routingHash: next.routing.hash, endpointsHash: next.endpoints.hash });
  });

  it('keeps the served routing whatever the section holds when its hash is the served one', async () => {
    const next = onA(3);
    const tampered = { ...next, routing: { ...next.routing, virtualHosts: 'not a list' } };
    const res = await pushSnapshot(dp.adminUrl, JSON.stringify(tampered), { token });
    expect(res.status, res.text).toBe(200);
    expect(await backendsServing(dp, 5)).toEqual(['a']);
  });

  it('still checks the endpoints of such a snapshot', async () => {
    const next = onB(4);
    const res = await pushSnapshot(dp.adminUrl, JSON.stringify({ ...slim(next) as object, endpoints: { ...next.endpoints, hash: 'f'.repeat(64) } }), { token });
    expect(res.status).toBe(400);
    expect(res.json?.problems).toContain('endpoints.hash: does not match the content of endpoints');
    expect(await backendsServing(dp, 3)).toEqual(['a']);
  });

  it('validates in full a routing section whose hash is not the one served', async () => {
    const other = snapshot(5, [vhost('all', ['*'], [forward('q', prefix('/'), 'c')])], { c: [b.endpoint()] });
    expect(other.routing.hash).not.toBe(onA(1).routing.hash);
    const res = await pushSnapshot(dp.adminUrl, JSON.stringify(slim(other)), { token });
    expect(res.status).toBe(400);
    expect((res.json?.problems as string[]).some((p) => p.startsWith('routing.'))).toBe(true);
    expect(await backendsServing(dp, 3)).toEqual(['a']);
  });
});

describe('--workers 2', () => {
  let dp: DataplaneChild;
  beforeAll(async () => {
    dp = await spawnDataplane({ token, args: ['--workers', '2'] });
    await applySnapshot(dp.adminUrl, onA(1), { token });
  });
  afterAll(async () => {
    await dp?.stop();
  });

  it('hands every worker, and one started later, the routing validated before', async () => {
    const next = onB(2);
    const res = await pushSnapshot(dp.adminUrl, JSON.stringify(slim(next)), { token });
    expect(res.status, res.text).toBe(200);
    expect(await backendsServing(dp, 20)).toEqual(['b']);
    const started = dp.logs.filter((l) => l.msg === 'worker started');
    expect(started.length).toBe(2);
    process.kill(started[0]!.pid as number, 'SIGKILL');
    await dp.waitForLog((l) => l.msg === 'worker started' && (l.worker as number) > 2, 30_000);
    // The replacement applied the committed snapshot; a routing of just a hash would have failed it.
    expect(dp.logs.some((l) => /refused/.test(String(l.msg)))).toBe(false);
    await eventually(async () => (await backendsServing(dp, 20)).join() === 'b', 10_000, 'every worker serving b');
  });
});
