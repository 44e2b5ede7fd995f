// Workers (node:cluster): the real dataplane with `--workers 2`. Traffic is
// served by both workers; a push is acknowledged only once both applied it;
// a killed worker is replaced and the replacement serves the current
// snapshot; /metrics sums the workers; SIGTERM drains every worker.
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { http } from '../helpers/http.ts';
import { applySnapshot, direct, forward, prefix, pushSnapshot, snapshot, vhost } from '../helpers/snapshots.ts';

let dp: DataplaneChild | undefined;
let backend: Backend | undefined;

afterEach(async () => {
  await dp?.stop('SIGKILL');
  await backend?.close();
  dp = undefined;
  backend = undefined;
});

const WORKERS = ['--workers', '2'];

/** Generation `g`: every path answers `v<g>` directly (no backend). */
const versioned = (g: number) => snapshot(g, [vhost('all', ['*'], [direct(`r${g}`, prefix('/'), 200, `v${g}`)])], {});

/**
 * Generation `g` padded with `extra` virtual hosts, so that sending and
 * compiling it takes each worker a while: an acknowledgement that did not wait
 * for the workers would be seen early.
 */
const heavy = (g: number, extra: number) => snapshot(g, [
  vhost('all', ['*'], [direct(`r${g}`, prefix('/'), 200, `v${g}`)]),
  ...Array.from({ length: extra }, (_, i) => vhost(`pad${i}`, [`pad${i}-g${g}.test`], Array.from({ length: 5 }, (_, j) => direct(`pad${i}-${j}`, prefix(`/p${j}/${g}`), 200, `pad ${g}`)))),
], {});

/** `n` requests in parallel, each on a fresh connection (so the kernel spreads them over the workers). */
async function fresh(url: string, n: number): Promise<{ status: number; text: string }[]> {
  return Promise.all(Array.from({ length: n }, async () => {
    const agent = new Agent({ pipelining: 0 });
    try {
      return await http(url, { dispatcher: agent });
    } finally {
      await agent.close();
    }
  }));
}

/** Wait until `n` access log lines of `path` arrived (workers write them after the response). */
async function accessLogged(child: DataplaneChild, path: string, n: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (child.logs.filter((l) => l.msg === 'request' && l.path === path).length < n) {
    if (Date.now() > deadline) throw new Error(`only ${child.logs.filter((l) => l.msg === 'request' && l.path === path).length} of ${n} access log lines for ${path}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Workers named by the access log lines of path `path`. */
function workersServing(child: DataplaneChild, path: string): Set<number> {
  return new Set(child.logs.filter((l) => l.msg === 'request' && l.path === path).map((l) => l.worker as number));
}

describe('--workers 2', () => {
  it('serves traffic from both workers, with one listening line from the primary', async () => {
    dp = await spawnDataplane({ args: WORKERS });
    expect(dp.logs.filter((l) => l.msg === 'listening')).toHaveLength(1);
    const started = dp.logs.filter((l) => l.msg === 'worker started');
    expect(started).toHaveLength(2);
    expect(new Set(started.map((l) => l.pid)).size).toBe(2);
    expect((await http(`${dp.adminUrl}/readyz`)).status).toBe(503);
    await applySnapshot(dp.adminUrl, versioned(1));
    expect((await http(`${dp.adminUrl}/readyz`)).status).toBe(200);
    const results = await fresh(`${dp.trafficUrl}/spread`, 60);
    expect(results.every((r) => r.status === 200 && r.text === 'v1')).toBe(true);
    await accessLogged(dp, '/spread', 60);
    expect(workersServing(dp, '/spread')).toEqual(new Set(started.map((l) => l.worker as number)));
  });

  it('acknowledges a push only after every worker applied it', async () => {
    dp = await spawnDataplane({ args: WORKERS });
    for (let g = 1; g <= 6; g++) {
      const res = await pushSnapshot(dp.adminUrl, heavy(g, 4_000), { token: 't' });
      expect(res.status).toBe(200);
      // Right after the 200: every fresh connection, whichever worker takes it, sees generation g.
      const results = await fresh(`${dp.trafficUrl}/g${g}`, 30);
      expect(results.map((r) => r.text)).toEqual(Array(30).fill(`v${g}`));
    }
    const state = await http(`${dp.adminUrl}/v1/snapshot`, { headers: { authorization: 'Bearer t' } });
    expect(JSON.parse(state.text)).toMatchObject({ generation: 6 });
    // A snapshot that does not compile is refused once, by the primary; every worker keeps the old one.
    const bad = snapshot(7, [vhost('a', ['x.test'], [direct('a', prefix('/'), 200, 'a')]), vhost('b', ['x.test'], [direct('b', prefix('/'), 200, 'b')])], {});
    expect((await pushSnapshot(dp.adminUrl, bad, { token: 't' })).status).toBe(400);
    expect((await fresh(`${dp.trafficUrl}/after-bad`, 20)).map((r) => r.text)).toEqual(Array(20).fill('v6'));
  });

  it('replaces a killed worker, which serves the current snapshot before it takes traffic', async () => {
    dp = await spawnDataplane({ args: WORKERS });
    await applySnapshot(dp.adminUrl, versioned(1));
    await applySnapshot(dp.adminUrl, versioned(2));
    const started = dp.logs.filter((l) => l.msg === 'worker started');
    const victim = started[0]!;
    process.kill(victim.pid as number, 'SIGKILL');
    const replacement = await dp.waitForLog((l) => l.msg === 'worker started' && (l.worker as number) > 2, 15_000);
    expect(replacement.generation).toBe(2);
    expect(dp.logs.some((l) => l.msg === 'worker exited: replacing it' && l.worker === victim.worker)).toBe(true);
    const results = await fresh(`${dp.trafficUrl}/after-kill`, 60);
    expect(results.map((r) => `${r.status} ${r.text}`)).toEqual(Array(60).fill('200 v2'));
    await accessLogged(dp, '/after-kill', 60);
    expect(workersServing(dp, '/after-kill').has(replacement.worker as number)).toBe(true);
    // The next push reaches the replacement too.
    await applySnapshot(dp.adminUrl, versioned(3));
    expect((await fresh(`${dp.trafficUrl}/g3`, 30)).map((r) => r.text)).toEqual(Array(30).fill('v3'));
    expect((await http(`${dp.adminUrl}/readyz`)).status).toBe(200);
  });

  it('/metrics aggregates the workers\' request counters', async () => {
    dp = await spawnDataplane({ args: WORKERS });
    await applySnapshot(dp.adminUrl, versioned(4));
    await fresh(`${dp.trafficUrl}/m`, 40);
    await accessLogged(dp, '/m', 40);
    expect(workersServing(dp, '/m').size).toBe(2);
    const body = (await http(`${dp.adminUrl}/metrics`)).text;
    const lines = body.split('\n').filter((l) => l.startsWith('pyserve_requests_total{'));
    expect(lines).toEqual(['pyserve_requests_total{route="r4",code="200"} 40']);
    expect(body).toMatch(/^pyserve_snapshot_generation 4$/m);
    expect(body).toMatch(/^pyserve_request_duration_seconds_count\{route="r4"\} 40$/m);
    expect(body.match(/^# TYPE pyserve_requests_total counter$/gm)).toHaveLength(1);
  });

  it('SIGTERM drains an in-flight request on a worker and exits 0', async () => {
    [dp, backend] = await Promise.all([spawnDataplane({ args: [...WORKERS, '--drain-timeout-ms', '10000'] }), startBackend('slow')]);
    await applySnapshot(dp.adminUrl, snapshot(1, [vhost('all', ['*'], [forward('slow', prefix('/'), 'slow')])], { slow: [backend.endpoint()] }));
    const agent = new Agent();
    const arrived = backend.nextRequest();
    const inFlight = request(`${dp.trafficUrl}/slow?delay=2000`, { dispatcher: agent });
    await arrived;
    dp.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect((await http(`${dp.adminUrl}/readyz`)).status).toBe(503);
    const res = await inFlight;
    expect(res.statusCode).toBe(200);
    expect(((await res.body.json()) as { backend: string }).backend).toBe('slow');
    expect(await dp.exited).toEqual({ code: 0, signal: null });
    // Each worker and the primary logged its stop; no worker was replaced during the drain.
    const stopped = dp.logs.filter((l) => l.msg === 'stopped');
    expect(stopped.filter((l) => l.worker !== undefined)).toHaveLength(2);
    expect(stopped.filter((l) => l.worker === undefined)).toHaveLength(1);
    expect(dp.logs.some((l) => l.msg === 'worker exited: replacing it')).toBe(false);
    await agent.close();
  });
});
