// Graceful shutdown: on SIGTERM readiness drops at once, new connections are
// refused, requests in flight complete, and the process exits 0. Requests
// that outlive the drain timeout are cut.
import { connect } from 'node:net';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { http } from '../helpers/http.ts';
import { applySnapshot, forward, prefix, snapshot, vhost } from '../helpers/snapshots.ts';

let dp: DataplaneChild | undefined;
let backend: Backend | undefined;

afterEach(async () => {
  await dp?.stop('SIGKILL');
  await backend?.close();
  dp = undefined;
  backend = undefined;
});

async function setup(drainTimeoutMs: number): Promise<{ dp: DataplaneChild; backend: Backend }> {
  [dp, backend] = await Promise.all([spawnDataplane({ args: ['--drain-timeout-ms', String(drainTimeoutMs)] }), startBackend('slow')]);
  await applySnapshot(dp.adminUrl, snapshot(1, [vhost('all', ['*'], [forward('slow', prefix('/'), 'slow')])], { slow: [backend.endpoint()] }));
  return { dp, backend };
}

/** Resolves with the connect error code, or 'connected'. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 3_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('SIGTERM', () => {
  it('drains an in-flight request, refuses new connections, turns unready and exits 0', async () => {
    const { dp, backend } = await setup(10_000);
    const agent = new Agent();
    const idleAgent = new Agent({ keepAliveTimeout: 60_000 });
    // An idle keep-alive connection from before the signal must not hold the drain up.
    expect((await http(`${dp.trafficUrl}/warm`, { dispatcher: idleAgent })).status).toBe(200);
    const arrived = backend.nextRequest();
    const inFlight = request(`${dp.trafficUrl}/slow?delay=2500`, { dispatcher: agent });
    await arrived;
    const signalledAt = Date.now();
    dp.child.kill('SIGTERM');

    expect((await until(() => http(`${dp.adminUrl}/readyz`), (r) => r.status === 503)).status).toBe(503);
    expect(await until(() => tryConnect(dp.trafficPort), (c) => c === 'ECONNREFUSED')).toBe('ECONNREFUSED');
    expect(dp.child.exitCode).toBeNull();

    const res = await inFlight;
    expect(res.statusCode).toBe(200);
    expect(((await res.body.json()) as { backend: string }).backend).toBe('slow');
    // The drained response tells the client not to reuse the connection.
    expect(res.headers.connection).toBe('close');

    const exit = await dp.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(8_000);
    const done = await dp.waitForLog((l) => l.msg === 'stopped');
    expect(done).toMatchObject({ forced: false, cut: 0 });
    await Promise.all([agent.close(), idleAgent.close()]);
  });

  it('cuts requests still running at the drain timeout and exits 0', async () => {
    const { dp, backend } = await setup(300);
    const arrived = backend.nextRequest();
    const hanging = request(`${dp.trafficUrl}/forever?hang=1`).then((r) => r.statusCode, (err: Error) => err);
    await arrived;
    const signalledAt = Date.now();
    dp.child.kill('SIGTERM');
    expect(await dp.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(5_000);
    expect(await hanging).toBeInstanceOf(Error);
    expect(await dp.waitForLog((l) => l.msg === 'stopped')).toMatchObject({ forced: true, cut: 1 });
  });

  it('also drains on SIGINT', async () => {
    const { dp } = await setup(1_000);
    expect((await dp.stop('SIGINT')).code).toBe(0);
  });
});
