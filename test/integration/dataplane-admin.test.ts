// The admin API: authentication, snapshot validation and limits, probes and
// metrics, and the token requirement at startup. Traffic must keep flowing
// on the last good snapshot through every refused push.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { runDataplaneToExit, spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { curl, echoed, http } from '../helpers/http.ts';
import { applySnapshot, forward, getSnapshotState, prefix, pushSnapshot, snapshot, vhost } from '../helpers/snapshots.ts';
import type { Snapshot } from '../../dataplane/snapshot/schema.ts';

const LIMIT = 1024 * 1024;
let dp: DataplaneChild;
let backend: Backend;
let good: Snapshot;

const trafficWorks = async (): Promise<void> => {
  const res = await http(`${dp.trafficUrl}/ok`);
  expect(res.status).toBe(200);
  expect(echoed(res).backend).toBe('ok');
};

beforeAll(async () => {
  [dp, backend] = await Promise.all([
    spawnDataplane({ token: 'correct-horse', args: ['--max-snapshot-bytes', String(LIMIT)] }),
    startBackend('ok'),
  ]);
  good = snapshot(7, [vhost('all', ['*'], [forward('ok', prefix('/'), 'ok')])], { ok: [backend.endpoint()] });
});

afterAll(async () => {
  await dp?.stop();
  await backend?.close();
});

const token = 'correct-horse';

describe('before the first snapshot', () => {
  it('is alive but not ready, has no snapshot, and answers traffic with 503', async () => {
    expect((await http(`${dp.adminUrl}/healthz`)).status).toBe(200);
    const ready = await http(`${dp.adminUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect((await getSnapshotState(dp.adminUrl, { token })).status).toBe(404);
    expect((await http(`${dp.trafficUrl}/ok`)).status).toBe(503);
    expect((await http(`${dp.adminUrl}/metrics`)).text).toMatch(/^pyserve_snapshot_generation -1$/m);
  });
});

describe('accepting snapshots', () => {
  it('applies a valid snapshot, then reports it unchanged', async () => {
    const res = await pushSnapshot(dp.adminUrl, good, { token });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ generation: 7, routingHash: good.routing.hash, endpointsHash: good.endpoints.hash, applied: true });
    expect((await http(`${dp.adminUrl}/readyz`)).status).toBe(200);
    const state = await getSnapshotState(dp.adminUrl, { token });
    expect(state.json).toEqual({ generation: 7, routingHash: good.routing.hash, endpointsHash: good.endpoints.hash });
    await trafficWorks();
    const again = await pushSnapshot(dp.adminUrl, good, { token });
    expect(again.status).toBe(200);
    expect(again.json?.applied).toBe(false);
  });
});

describe('refusing snapshots', () => {
  const clone = (): Record<string, unknown> => structuredClone(good) as unknown as Record<string, unknown>;

  it.each<[string, () => string | Buffer, number, RegExp]>([
    ['bad JSON', () => '{"schemaVersion": 1, "generation":', 400, /JSON/],
    ['wrong types', () => JSON.stringify({ ...clone(), generation: 'seven' }), 400, /generation/],
    // A routing section whose hash is the one served is kept without being
    // read (dataplane-same-routing.test.ts): these carry another hash.
    ['an unknown field', () => {
      const s = clone();
      (s.routing as { virtualHosts: Record<string, unknown>[] }).virtualHosts[0]!.surprise = true;
      (s.routing as { hash: string }).hash = '1'.repeat(64);
      return JSON.stringify(s);
    }, 400, /surprise|unrecognized/i],
    ['a routing hash that does not match', () => {
      const s = clone();
      (s.routing as { virtualHosts: { hostnames: string[] }[] }).virtualHosts[0]!.hostnames = ['changed.example'];
      (s.routing as { hash: string }).hash = '1'.repeat(64);
      return JSON.stringify(s);
    }, 400, /routing\.hash/],
    ['a reference to an unknown cluster', () => JSON.stringify(snapshot(8, [vhost('all', ['*'], [forward('x', prefix('/'), 'missing')])], {})), 400, /unknown cluster "missing"/],
    ['an empty body', () => '', 400, /JSON/],
  ])('refuses %s with %i', async (_what, body, status, problem) => {
    const res = await pushSnapshot(dp.adminUrl, body(), { token });
    expect(res.status).toBe(status);
    expect(res.json?.error).toEqual(expect.any(String));
    const problems = res.json?.problems as string[];
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.join('\n')).toMatch(problem);
    await trafficWorks();
  });

  it('refuses a 5 MB garbage body over the limit with 413 (declared length, undici)', async () => {
    const res = await pushSnapshot(dp.adminUrl, randomBytes(5 * LIMIT), { token });
    expect(res.status).toBe(413);
    expect(res.json?.error).toMatch(/too large/);
    await trafficWorks();
  });

  it('refuses an oversized chunked body with 413 as soon as the limit is crossed', async () => {
    let answered!: () => void;
    const responded = new Promise<void>((resolve) => (answered = resolve));
    async function* body() {
      const block = Buffer.alloc(256 * 1024, 'g');
      for (let i = 0; i < 5; i++) yield block;
      // The body goes on until the server has answered: a server that read to
      // the end before judging would never answer.
      await responded;
    }
    const res = await request(`${dp.adminUrl}/v1/snapshot`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: Readable.from(body()) });
    answered();
    expect(res.statusCode).toBe(413);
    await res.body.text();
    await trafficWorks();
  });

  it('refuses an oversized body with 413 before it is sent when the client asks first (curl, Expect: 100-continue)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pyserve-admin-'));
    try {
      const file = join(dir, 'garbage.bin');
      await writeFile(file, randomBytes(5 * LIMIT));
      const res = await curl(`${dp.adminUrl}/v1/snapshot`, ['-X', 'PUT', '-H', `Authorization: Bearer ${token}`, '--data-binary', `@${file}`]);
      expect(res.status).toBe(413);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await trafficWorks();
  });

  it.each<[string, string | null]>([
    ['no token', null],
    ['a wrong token', 'correct-horsf'],
    ['a token prefix', 'correct'],
  ])('refuses %s with 401, before reading the body', async (_what, presented) => {
    const valid = await pushSnapshot(dp.adminUrl, snapshot(9, [], {}), { token: presented });
    expect(valid.status).toBe(401);
    const huge = await pushSnapshot(dp.adminUrl, randomBytes(5 * LIMIT), { token: presented });
    expect(huge.status).toBe(401);
    expect((await getSnapshotState(dp.adminUrl, { token: presented })).status).toBe(401);
    await trafficWorks();
  });

  it('refuses a malformed Authorization header with 401', async () => {
    const res = await pushSnapshot(dp.adminUrl, good, { headers: { authorization: token } });
    expect(res.status).toBe(401);
  });

  it('answers 401 without waiting for the body', async () => {
    let answered!: () => void;
    const responded = new Promise<void>((resolve) => (answered = resolve));
    async function* body() {
      yield Buffer.from('{"schemaVersion":');
      await responded;
    }
    const res = await request(`${dp.adminUrl}/v1/snapshot`, { method: 'PUT', headers: { authorization: 'Bearer nope' }, body: Readable.from(body()) });
    answered();
    expect(res.statusCode).toBe(401);
    await res.body.text();
  });

  it('still serves the last good snapshot and counts the refusals', async () => {
    const state = await getSnapshotState(dp.adminUrl, { token });
    expect(state.json?.generation).toBe(7);
    const metrics = (await http(`${dp.adminUrl}/metrics`)).text;
    expect(metrics).toMatch(/^pyserve_snapshot_rejected_total\{reason="bad_json"\} 2$/m);
    expect(metrics).toMatch(/^pyserve_snapshot_rejected_total\{reason="invalid"\} 4$/m);
    expect(metrics).toMatch(/^pyserve_snapshot_rejected_total\{reason="too_large"\} 3$/m);
    expect(metrics).toMatch(/^pyserve_snapshot_generation 7$/m);
    expect(metrics).toMatch(/^pyserve_snapshot_apply_seconds_count 2$/m);
    expect(metrics).toMatch(/^pyserve_requests_total\{route="ok",code="200"\} \d+$/m);
    // A good snapshot after all that is applied.
    const next = snapshot(10, [vhost('all', ['*'], [forward('ok', prefix('/'), 'ok')])], { ok: [backend.endpoint()], spare: [] });
    const res = await applySnapshot(dp.adminUrl, next, { token });
    expect(res.json?.applied).toBe(true);
    await trafficWorks();
  });

  it('rejects other methods and paths', async () => {
    expect((await http(`${dp.adminUrl}/v1/snapshot`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })).status).toBe(405);
    expect((await http(`${dp.adminUrl}/nope`)).status).toBe(404);
  });
});

describe('process metrics', () => {
  it("has Node's process metrics, and the GC histogram only with --gc-metrics on", async () => {
    const metrics = (await http(`${dp.adminUrl}/metrics`)).text;
    expect(metrics).toMatch(/^nodejs_heap_size_used_bytes \d+$/m);
    expect(metrics).toMatch(/^process_resident_memory_bytes \d+$/m);
    expect(metrics).not.toMatch(/nodejs_gc_duration_seconds/);
    const withGc = await spawnDataplane({ token, args: ['--gc-metrics', 'on'] });
    try {
      expect((await http(`${withGc.adminUrl}/metrics`)).text).toMatch(/^# TYPE nodejs_gc_duration_seconds histogram$/m);
    } finally {
      await withGc.stop();
    }
  });
});

describe('startup', () => {
  it('refuses to start without an admin token', async () => {
    const res = await runDataplaneToExit(['--traffic-port', '0', '--admin-port', '0']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/admin token is required/);
  });

  it('refuses unknown flags and bad values', async () => {
    expect((await runDataplaneToExit(['--bogus'])).code).toBe(2);
    expect((await runDataplaneToExit(['--admin-token', 'x', '--traffic-port', 'eighty'])).code).toBe(2);
  });

  it('starts with --insecure-admin and accepts pushes without a token', async () => {
    const open = await spawnDataplane({ token: null, args: ['--insecure-admin'] });
    try {
      expect(open.logs.some((l) => l.level === 40 && String(l.msg).includes('WITHOUT a token'))).toBe(true);
      const res = await pushSnapshot(open.adminUrl, good, { token: null });
      expect(res.status).toBe(200);
    } finally {
      expect((await open.stop()).code).toBe(0);
    }
  });

  it('reads the token from a file, or from PYSERVE_ADMIN_TOKEN', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pyserve-token-'));
    try {
      const file = join(dir, 'token');
      await writeFile(file, 'from-a-file\n');
      const fromFile = await spawnDataplane({ token: null, args: ['--admin-token-file', file] });
      const fromEnv = await spawnDataplane({ token: null, env: { PYSERVE_ADMIN_TOKEN: 'from-env' } });
      try {
        expect((await pushSnapshot(fromFile.adminUrl, good, { token: 'from-a-file' })).status).toBe(200);
        expect((await pushSnapshot(fromFile.adminUrl, good, { token: 'from-env' })).status).toBe(401);
        expect((await pushSnapshot(fromEnv.adminUrl, good, { token: 'from-env' })).status).toBe(200);
      } finally {
        await Promise.all([fromFile.stop(), fromEnv.stop()]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
