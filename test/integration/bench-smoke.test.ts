/**
 * The benchmark suite in smoke mode (`npm run bench -- --smoke`), so it
 * cannot rot: every peer starts and serves, every section produces rows of
 * the documented shape, and change under load loses no request. Speed is
 * never asserted here: these runs last a second each on a shared machine.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchResult } from '../../bench/lib/types.ts';
import { chartNodeFlags } from '../../bench/peers/index.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(path.join(os.tmpdir(), 'pyserve-bench-smoke-'));
const outFile = path.join(dir, 'smoke.json');
let result: BenchResult;
let stderr = '';

beforeAll(async () => {
  // The peers and load generators are Debian packages; CI runs as root and
  // installs what is missing. A failed install fails the suite, loudly.
  const install = spawnSync('bash', [path.join(ROOT, 'scripts/test-tools/ensure-debs.sh')], { encoding: 'utf8', timeout: 600_000 });
  if (install.status !== 0) {
    throw new Error(`scripts/test-tools/ensure-debs.sh failed (exit ${install.status}); the bench needs nginx, haproxy, caddy, wrk and h2load:\n${install.stderr}${install.stdout}`);
  }
  // A Node flag for the dataplanes (PYSERVE_BENCH_NODE_FLAGS): one put in the wrong place would stop them starting.
  // Two rounds, so the alternating HTTP/1.1 rounds and their medians run too.
  const child = spawn(process.execPath, [path.join(ROOT, 'bench/run.ts'), '--smoke', '--rounds', '2', '--out', outFile], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PYSERVE_BENCH_NODE_FLAGS: NODE_FLAGS },
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout.resume();
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`bench/run.ts --smoke exited ${code}:\n${stderr.slice(-6000)}`);
  result = JSON.parse(readFileSync(outFile, 'utf8')) as BenchResult;
}, 600_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NODE_FLAGS = '--max-semi-space-size=8';
const SERVERS = ['pyserve', 'nginx', 'haproxy', 'caddy'];
const SCENARIOS = ['proxy-13B', 'proxy-16KiB', 'direct', 'not-found'];
const latency = { p50: expect.any(Number), p99: expect.any(Number), p999: expect.any(Number), max: expect.any(Number) };

describe('npm run bench -- --smoke', () => {
  it('records the machine, versions and settings', () => {
    expect(result.meta.smoke).toBe(true);
    expect(result.meta.machine.cores).toBeGreaterThan(0);
    for (const tool of ['Node', 'nginx', 'HAProxy', 'Caddy', 'wrk', 'h2load']) {
      expect(result.meta.versions[tool], tool).toMatch(/\d/);
    }
    // The chart's flags first, then the environment's, which win.
    expect(result.meta.settings.dataplaneNodeFlags).toEqual([...chartNodeFlags(), NODE_FLAGS]);
    expect(result.meta.settings.dataplaneBuild).toBe('compiled');
    expect(result.meta.settings.rounds).toBe(2);
  });

  it('compares like for like: PyServe\'s access log off, as the peers\', and one row with it on', () => {
    const pyserve = result.http.filter((r) => r.kind === 'pyserve' && r.workers === 1 && r.available);
    const off = pyserve.filter((r) => r.server === 'PyServe (1 worker)');
    const on = pyserve.filter((r) => r.server === 'PyServe (1 worker, access log on)');
    expect(off.map((r) => [r.scenario, r.accessLog])).toEqual(SCENARIOS.map((s) => [s, false]));
    expect(on.map((r) => [r.scenario, r.accessLog])).toEqual(SCENARIOS.map((s) => [s, true]));
    for (const r of on) if (r.available) expect(r.vsNginx, r.scenario).toEqual({ throughput: expect.any(Number), p99: expect.any(Number) });
    expect(result.meta.notes.join('\n')).toMatch(/--access-log off/);
  });

  it('runs every server through every HTTP/1.1 scenario', () => {
    for (const kind of SERVERS) {
      for (const scenario of SCENARIOS) {
        const row = result.http.find((r) => r.kind === kind && r.workers === 1 && r.scenario === scenario);
        expect(row, `${kind} ${scenario}`).toMatchObject({ available: true, latencyMs: latency, cpuPercent: expect.any(Number), rssMiB: expect.any(Number) });
        if (row?.available !== true) continue;
        expect(row.reqPerSec, `${kind} ${scenario}`).toBeGreaterThan(0);
        // One figure per round, the row's throughput their median (of two: the mean).
        expect(row.rounds, `${kind} ${scenario}`).toHaveLength(2);
        const [a, b] = row.rounds!.map((x) => x.reqPerSec);
        expect(row.reqPerSec).toBeCloseTo((a! + b!) / 2, 0);
        expect(row.rssMiB).toBe(Math.max(...row.rounds!.map((x) => x.rssMiB)));
        expect(row.socketErrors, `${kind} ${scenario}`).toBe(0);
        if (scenario !== 'not-found') expect(row.errorStatuses, `${kind} ${scenario}`).toBe(0);
        if (kind !== 'nginx') expect(row.vsNginx).toEqual({ throughput: expect.any(Number), p99: expect.any(Number) });
      }
    }
    // The N-worker row is there, measured or with the reason it cannot be.
    const n = result.http.filter((r) => r.kind === 'pyserve' && r.workers !== 1);
    expect(n.length).toBeGreaterThan(0);
    for (const row of n) if (!row.available) expect(row.reason).not.toBe('');
  });

  it('measures TLS + HTTP/2 and WebSockets on the peers, with a reason wherever PyServe cannot yet', () => {
    for (const kind of SERVERS) {
      const h2 = result.h2.find((r) => r.kind === kind);
      const idle = result.websocket.idle.find((r) => r.kind === kind);
      const echo = result.websocket.echo.find((r) => r.kind === kind);
      for (const row of [h2, idle, echo]) {
        expect(row, kind).toBeDefined();
        if (row!.available) continue;
        expect(kind, `${kind} must run: ${row!.reason}`).toBe('pyserve');
        expect(row!.reason).not.toBe('');
      }
      if (h2?.available) expect(h2).toMatchObject({ reqPerSec: expect.any(Number), latencyMs: latency, failed: 0 });
      if (idle?.available) expect(idle).toMatchObject({ opened: idle.connections, dropped: 0 });
      if (echo?.available) expect(echo).toMatchObject({ messagesPerSec: expect.any(Number), errors: 0 });
    }
  });

  it('measures translate, snapshot apply and propagation on a real API server', () => {
    expect(result.controlPlane.translate).toEqual([expect.objectContaining({ ingresses: 100, routes: 200, medianMs: expect.any(Number), rssMiB: expect.any(Number) })]);
    expect(result.controlPlane.apply).toEqual([expect.objectContaining({ ingresses: 100, fullApplyMs: expect.any(Number), endpointsOnlyApplyMs: expect.any(Number), routingAsHashApplyMs: expect.any(Number) })]);
    const p = result.controlPlane.propagation;
    expect(p.available, p.available ? '' : p.reason).toBe(true);
    if (p.available) {
      // A first attempt that failed is retried on a fresh API server; its diagnosis goes to the log.
      for (const f of p.failedAttempts ?? []) console.warn(`propagation: an attempt failed before this one passed:\n${f}`);
      expect(p.ingressToTrafficMs).toHaveLength(1);
      expect(p.endpointsToTrafficMs).toHaveLength(1);
    }
  });

  it('loses no request while routes and endpoints change under load', () => {
    const c = result.changeUnderLoad;
    expect(c.routeEdits).toBe(20);
    expect(c.endpointChanges).toBe(50);
    expect(c.edited.requests).toBeGreaterThan(0);
    expect(c.unrelated.requests).toBeGreaterThan(0);
    expect({ edited: c.edited.non2xx, editedStatuses: c.edited.non2xxStatuses, unrelated: c.unrelated.non2xx, sockets: c.edited.socketErrors + c.unrelated.socketErrors })
      .toEqual({ edited: 0, editedStatuses: '', unrelated: 0, sockets: 0 });
    expect(c.totalFailures).toBe(0);
    if (c.websockets.available) expect(c.websockets.dropped).toBe(0);
    else expect(c.websockets.reason).not.toBe('');
  });
});

describe('node bench/ladder.ts', () => {
  it('runs every rung once and prints a median for each', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bench/ladder.ts'), '--rounds', '1', '--seconds', '1', '--warmup', '1'], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 });
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    for (const rung of ['node-canned', 'h1-canned', 'node-proxy', 'h1-proxy', 'dataplane']) {
      // Each rung served (a rung with errors fails the run), at some positive rate.
      expect(r.stdout).toMatch(new RegExp(`^  ${rung} +[1-9]\\d* `, 'm'));
    }
  }, 240_000);
});
