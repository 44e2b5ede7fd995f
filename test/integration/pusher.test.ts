/** The pusher against real dataplane processes: every outcome, and recovery of an emptied pod. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pusher } from '../../controller/push/pusher.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { closedPort } from '../helpers/backends.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { direct, prefix, snapshot, vhost } from '../helpers/snapshots.ts';
import type { Endpoint, Snapshot } from '../../dataplane/snapshot/schema.ts';

const TOKEN = 'pusher-token';
const snap = (generation: number, body: string): Snapshot =>
  snapshot(generation, [vhost('*', ['*'], [direct('hello', prefix('/'), 200, body)])], {});

describe('Pusher', () => {
  let a: DataplaneChild;
  let b: DataplaneChild;
  let pusher: Pusher;

  beforeAll(async () => {
    [a, b] = await Promise.all([spawnDataplane({ token: TOKEN }), spawnDataplane({ token: TOKEN })]);
    pusher = new Pusher({ token: TOKEN, maxAttempts: 2, backoffMs: 20, timeoutMs: 2_000 });
    pusher.setTargets([{ id: 'a', url: a.adminUrl }, { id: 'b', url: b.adminUrl }]);
  });
  afterAll(async () => {
    await pusher?.close();
    await a?.stop();
    await b?.stop();
  });

  it('applies to every target, then reports unchanged without sending the body again', async () => {
    const s1 = snap(1, 'one');
    expect(await pusher.push(s1)).toEqual([
      { target: 'a', outcome: 'applied', generation: 1, attempts: 2 },
      { target: 'b', outcome: 'applied', generation: 1, attempts: 2 },
    ]);
    expect(await (await fetch(a.trafficUrl)).text()).toBe('one');
    const again = await pusher.push(s1);
    expect(again.map((r) => [r.outcome, r.attempts])).toEqual([['unchanged', 1], ['unchanged', 1]]);
  });

  it('reports a rejection with the dataplane\'s problems, and does not retry it', async () => {
    const bad = { ...snap(2, 'two'), routing: { ...snap(2, 'two').routing, hash: '0'.repeat(64) } };
    const [ra] = await pusher.push(bad);
    expect(ra).toMatchObject({ target: 'a', outcome: 'rejected', attempts: 2 });
    expect(ra!.problems).toEqual(expect.arrayContaining([expect.stringMatching(/routing\.hash/)]));
    expect(await (await fetch(a.trafficUrl)).text()).toBe('one');
  });

  it('reports an unreachable target after its retries while the others apply', async () => {
    const port = await closedPort();
    pusher.setTargets([{ id: 'a', url: a.adminUrl }, { id: 'gone', url: `http://127.0.0.1:${port}` }]);
    const results = await pusher.push(snap(3, 'three'));
    expect(results[0]).toMatchObject({ target: 'a', outcome: 'applied', generation: 3 });
    expect(results[1]).toMatchObject({ target: 'gone', outcome: 'unreachable', attempts: 2 });
    expect(results[1]!.error).toMatch(/ECONNREFUSED|connect/i);
  });

  it('re-pushes a target that restarted empty', async () => {
    const port = b.adminPort;
    await b.stop();
    b = await spawnDataplane({ token: TOKEN, args: ['--admin-port', String(port)] });
    pusher.setTargets([{ id: 'a', url: a.adminUrl }, { id: 'b', url: b.adminUrl }]);
    const results = await pusher.push(snap(3, 'three'));
    expect(results.map((r) => r.outcome)).toEqual(['unchanged', 'applied']);
    expect(await (await fetch(b.trafficUrl)).text()).toBe('three');
  });

  it('sends a target that serves the routing only its hash, and the whole snapshot to one that does not', async () => {
    const routes = [vhost('*', ['*'], [direct('hello', prefix('/'), 200, 'five')])];
    const ep = (port: number): Endpoint => ({ address: '127.0.0.1', port, ready: true, serving: true, terminating: false });
    pusher.setTargets([{ id: 'a', url: a.adminUrl }]);
    expect(await pusher.push(snapshot(5, routes, { c: [ep(1)] }))).toEqual([{ target: 'a', outcome: 'applied', generation: 5, attempts: 2 }]);
    pusher.setTargets([{ id: 'a', url: a.adminUrl }, { id: 'b', url: b.adminUrl }]);
    const next = snapshot(6, routes, { c: [ep(2)] });
    expect(await pusher.push(next)).toEqual([
      { target: 'a', outcome: 'applied', generation: 6, attempts: 2, routingOmitted: true },
      { target: 'b', outcome: 'applied', generation: 6, attempts: 2 },
    ]);
    for (const dp of [a, b]) {
      expect(await (await fetch(dp.trafficUrl)).text()).toBe('five');
      const state = await (await fetch(`${dp.adminUrl}/v1/snapshot`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as Record<string, unknown>;
      expect(state).toEqual({ generation: 6, routingHash: next.routing.hash, endpointsHash: next.endpoints.hash });
    }
  });

  // Stands in for a dataplane from before routing-hash-only pushes (none of
  // those runs here), or one whose routing changed after the state check:
  // it claims the routing, then refuses a body without it.
  it('sends the whole snapshot when a routing-hash-only push is refused with 400', async () => {
    const next = snap(7, 'seven');
    const bodies: { routing: Record<string, unknown> }[] = [];
    const stubOfOlderDataplane = createServer((req, res) => {
      let text = '';
      req.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.method === 'GET') {
          res.end(JSON.stringify({ generation: 6, routingHash: next.routing.hash, endpointsHash: 'x' }));
          return;
        }
        const body = JSON.parse(text) as { routing: Record<string, unknown>; generation: number };
        bodies.push(body);
        const whole = Array.isArray(body.routing.virtualHosts);
        res.statusCode = whole ? 200 : 400;
        res.end(JSON.stringify(whole ? { generation: body.generation } : { error: 'invalid snapshot', problems: ['routing.virtualHosts: expected array'] }));
      });
    });
    await new Promise<void>((r) => stubOfOlderDataplane.listen(0, '127.0.0.1', r));
    try {
      pusher.setTargets([{ id: 'old', url: `http://127.0.0.1:${(stubOfOlderDataplane.address() as AddressInfo).port}` }]);
      expect(await pusher.push(next)).toEqual([{ target: 'old', outcome: 'applied', generation: 7, attempts: 3 }]);
      expect(bodies.map((b) => Object.keys(b.routing))).toEqual([['hash'], Object.keys(next.routing)]);
    } finally {
      await new Promise((r) => stubOfOlderDataplane.close(r));
    }
  });

  it('reports a wrong token as unreachable with the 401, never applied', async () => {
    const wrong = new Pusher({ token: 'nope', maxAttempts: 1 });
    wrong.setTargets([{ id: 'a', url: a.adminUrl }]);
    const [r] = await wrong.push(snap(4, 'four'));
    await wrong.close();
    expect(r!.outcome).toBe('unreachable');
    expect(r!.error).toMatch(/401/);
    expect(await (await fetch(a.trafficUrl)).text()).toBe('five');
  });
});
