// Killing a worker under load (`--workers 2`): only the requests that worker
// had in flight are lost. Clients keep a steady load of requests, each on a
// new connection (so the kernel spreads them over both workers' sockets), to
// a backend that holds every request for a while, so each worker always has
// several in flight. One worker is SIGKILLed mid-load; the load goes on
// until its replacement serves.
//
// Which requests the dead worker had cannot be asked of it, so the test
// works it out from what survives it:
//
//   A  in flight at the kill: started before the dead worker's sockets were
//      gone (its process reaped), and not finished before the kill signal;
//   S  served by a surviving worker: the survivors log every request they
//      answer, failed or not (access log `worker`);
//   V  = A minus S: in flight on the killed worker.
//
// The assertions: every failed request is in V (none failed on a survivor,
// none outside the kill window); every request started after the sockets
// were gone succeeds; and, independently of the access log, every request
// the backend saw cut off (its upstream connection closed before it
// answered: those went through the dead worker) failed at the client, and
// there is at least one, so the kill really hit requests in flight.
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { eventually } from '../helpers/logged-process.ts';
import { applySnapshot, forward, prefix, snapshot, vhost } from '../helpers/snapshots.ts';

/** How long the backend holds each request: long enough that both workers always have several in flight. */
const BACKEND_DELAY_MS = 200;
/** Client loops, each one request at a time on a new connection. */
const CLIENTS = 16;

let dp: DataplaneChild | undefined;
let backend: Backend | undefined;

afterEach(async () => {
  await dp?.stop('SIGKILL');
  await backend?.close();
  dp = undefined;
  backend = undefined;
});

/** What a client saw of one request. */
interface Outcome {
  readonly path: string;
  /** performance.now() before the connection was opened, and once the answer was read or the request failed. */
  readonly startedAt: number;
  readonly endedAt: number;
  readonly ok: boolean;
  /** Status and body, or the error code. */
  readonly detail: string;
}

/** One GET on a connection of its own; never rejects. */
function getOnNewConnection(port: number, path: string): Promise<Outcome> {
  const startedAt = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const settle = (ok: boolean, detail: string): void => {
      if (settled) return;
      settled = true;
      resolve({ path, startedAt, endedAt: performance.now(), ok, detail });
    };
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => settle(res.statusCode === 200 && body === `ok ${path}`, `${res.statusCode} ${body.slice(0, 80)}`));
      res.on('error', (err: NodeJS.ErrnoException) => settle(false, `response: ${err.code ?? err.message}`));
      res.on('aborted', () => settle(false, 'response aborted'));
    });
    // A request lost without a trace must fail the test, not hang it.
    req.setTimeout(30_000, () => req.destroy(Object.assign(new Error('no answer in 30 s'), { code: 'TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => settle(false, err.code ?? err.message));
    req.end();
  });
}

/** Whether a process is gone: reaped by its parent, so its sockets are closed. */
function reaped(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

describe('--workers 2, one worker SIGKILLed under load', () => {
  it('loses only the requests the killed worker had in flight', async () => {
    const openAtBackend = new Set<string>();
    const cutAtBackend = new Set<string>();
    backend = await startBackend('slow', (req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      openAtBackend.add(path);
      const timer = setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`ok ${path}`);
      }, BACKEND_DELAY_MS);
      res.once('close', () => {
        openAtBackend.delete(path);
        if (res.writableFinished) return;
        // The dataplane's upstream connection went away before the answer: its worker died.
        clearTimeout(timer);
        cutAtBackend.add(path);
      });
      return true;
    });
    dp = await spawnDataplane({ args: ['--workers', '2'] });
    const child = dp;
    await applySnapshot(child.adminUrl, snapshot(1, [vhost('all', ['*'], [forward('slow', prefix('/'), 'slow')])], { slow: [backend.endpoint()] }));
    const started = child.logs.filter((l) => l.msg === 'worker started');
    expect(started).toHaveLength(2);
    const victim = started[0]!;
    const survivor = started[1]!;
    const victimWorker = victim.worker as number;

    const outcomes: Outcome[] = [];
    let next = 0;
    let stop = false;
    const loops = Array.from({ length: CLIENTS }, async () => {
      while (!stop) outcomes.push(await getOnNewConnection(child.trafficPort, `/k/${next++}`));
    });
    const servedBy = (worker: number): boolean => child.logs.some((l) => l.msg === 'request' && l.worker === worker && String(l.path).startsWith('/k/'));

    // Steady state: both workers answer, and the backend holds requests from them.
    await eventually(async () => servedBy(victimWorker) && servedBy(survivor.worker as number), 30_000, 'both workers to serve');
    await eventually(async () => openAtBackend.size >= CLIENTS / 2, 30_000, `${CLIENTS / 2} requests open at the backend`);

    const killAt = performance.now();
    process.kill(victim.pid as number, 'SIGKILL');
    const { ms: reapMs } = await eventually(async () => reaped(victim.pid as number), 10_000, 'the killed worker to be reaped', 2);
    const goneAt = performance.now();

    const replacement = await child.waitForLog((l) => l.msg === 'worker started' && (l.worker as number) > 2, 30_000);
    // The load goes on until the replacement has answered a request started after the kill.
    const afterGone = (o: Outcome): boolean => o.startedAt > goneAt;
    const { ms: replacedMs } = await eventually(async () => {
      const paths = new Set(outcomes.filter(afterGone).map((o) => o.path));
      return child.logs.some((l) => l.msg === 'request' && l.worker === replacement.worker && paths.has(String(l.path)));
    }, 30_000, 'the replacement to serve a request started after the kill');
    stop = true;
    await Promise.all(loops);

    // The survivors' access lines are buffered (up to 100 ms); a line from each
    // live worker for a request started after everything above means all
    // their earlier lines are out.
    const live = [survivor.worker as number, replacement.worker as number];
    let sentinel = 0;
    await eventually(async () => {
      await Promise.all(Array.from({ length: 8 }, () => getOnNewConnection(child.trafficPort, `/sentinel/${sentinel++}`)));
      return live.every((w) => child.logs.some((l) => l.msg === 'request' && l.worker === w && String(l.path).startsWith('/sentinel/')));
    }, 30_000, 'a logged request from each live worker', 0);

    const byPath = new Map(outcomes.map((o) => [o.path, o]));
    const inFlightAtKill = outcomes.filter((o) => o.startedAt < goneAt && o.endedAt > killAt);
    const servedBySurvivors = new Set(child.logs.filter((l) => l.msg === 'request' && l.worker !== undefined && l.worker !== victimWorker).map((l) => String(l.path)));
    const onVictim = new Set(inFlightAtKill.filter((o) => !servedBySurvivors.has(o.path)).map((o) => o.path));
    const failed = outcomes.filter((o) => !o.ok);
    const after = outcomes.filter(afterGone);

    console.log(
      `worker kill under load: ${outcomes.length} requests from ${CLIENTS} clients; ` +
      `${inFlightAtKill.length} in flight at the kill, ${onVictim.size} of them on the killed worker ` +
      `(${cutAtBackend.size} already at the backend); ${failed.length} failed ` +
      `(${[...new Set(failed.map((o) => o.detail))].join(', ')}); ` +
      `reaped ${reapMs.toFixed(0)} ms after SIGKILL, replacement served ${replacedMs.toFixed(0)} ms after that; ` +
      `${after.length} requests started after the sockets were gone, ${after.filter((o) => !o.ok).length} failed`,
    );

    // The kill hit requests in flight: the backend saw the dead worker's ones cut off, and each failed.
    expect(cutAtBackend.size).toBeGreaterThan(0);
    expect([...cutAtBackend].filter((p) => byPath.get(p)?.ok !== false)).toEqual([]);
    // Every failure was a request in flight on the killed worker: none on a survivor, none outside the kill window.
    expect(failed.filter((o) => !onVictim.has(o.path)).map((o) => `${o.path}: ${o.detail}`)).toEqual([]);
    expect(failed.length).toBeLessThanOrEqual(onVictim.size);
    // Once its sockets were gone, every request succeeded, some of them on the replacement.
    expect(after.length).toBeGreaterThanOrEqual(CLIENTS);
    expect(after.filter((o) => !o.ok).map((o) => `${o.path}: ${o.detail}`)).toEqual([]);
    expect(child.logs.some((l) => l.msg === 'worker exited: replacing it' && l.worker === victimWorker)).toBe(true);
  }, 180_000);
});
