// startDataplane() in-process, as local mode or an embedder would use it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDataplane } from '../../dataplane/start.ts';
import { createLoggers } from '../../dataplane/observability/log.ts';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { echoed, http } from '../helpers/http.ts';
import { applySnapshot, forward, prefix, snapshot, vhost } from '../helpers/snapshots.ts';

let backend: Backend;
beforeAll(async () => {
  backend = await startBackend('embedded');
});
afterAll(async () => {
  await backend?.close();
});

it('starts on free ports, serves, announces itself, and closes', async () => {
  const lines: Record<string, unknown>[] = [];
  const loggers = createLoggers('warn', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const dp = await startDataplane({ trafficHost: '127.0.0.1', trafficPort: 0, adminHost: '127.0.0.1', adminPort: 0, adminToken: 'k', loggers });
  expect(dp.trafficPort).toBeGreaterThan(0);
  expect(dp.adminPort).toBeGreaterThan(0);
  expect(lines.filter((l) => l.msg === 'listening')).toEqual([expect.objectContaining({ trafficPort: dp.trafficPort, adminPort: dp.adminPort })]);
  await applySnapshot(`http://127.0.0.1:${dp.adminPort}`, snapshot(1, [vhost('v', ['*'], [forward('r', prefix('/'), 'c')])], { c: [backend.endpoint()] }), { token: 'k' });
  const res = await http(`http://127.0.0.1:${dp.trafficPort}/x`);
  expect(echoed(res).backend).toBe('embedded');
  // The access log is written whatever the diagnostic level; diagnostics below warn are not.
  expect(lines.some((l) => l.msg === 'request' && l.route === 'r' && l.status === 200)).toBe(true);
  expect(lines.some((l) => l.msg === 'snapshot applied')).toBe(false);
  await dp.close();
  await expect(http(`http://127.0.0.1:${dp.trafficPort}/x`)).rejects.toThrow();
  await expect(http(`http://127.0.0.1:${dp.adminPort}/healthz`)).rejects.toThrow();
});

it('refuses to start without a token unless insecureAdmin', async () => {
  await expect(startDataplane({ trafficPort: 0, adminPort: 0 })).rejects.toThrow(/adminToken/);
});
