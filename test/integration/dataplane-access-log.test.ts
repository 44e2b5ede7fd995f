// The access log is buffered (dataplane/observability/log.ts): lines are
// written in batches, yet none is lost on a graceful shutdown, a lone line
// still shows up promptly, the lines of several workers sharing one stdout
// pipe never interleave, and `--access-log off` writes no request line while
// the `listening` line still comes.
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { http } from '../helpers/http.ts';
import { applySnapshot, direct, prefix, snapshot, vhost } from '../helpers/snapshots.ts';

let dp: DataplaneChild | undefined;

afterEach(async () => {
  await dp?.stop('SIGKILL');
  dp = undefined;
});

const SNAPSHOT = snapshot(1, [vhost('all', ['*'], [direct('r', prefix('/'), 200, 'ok')])], {});

/** `n` requests over `connections` keep-alive connections, each with request id `<tag>-<i>`. */
async function load(url: string, tag: string, n: number, connections = 8): Promise<void> {
  const agent = new Agent({ connections, pipelining: 1 });
  let next = 0;
  try {
    await Promise.all(Array.from({ length: connections }, async () => {
      while (next < n) {
        const i = next++;
        const res = await http(`${url}/${tag}/${i}`, { dispatcher: agent, headers: { 'x-request-id': `${tag}-${i}` } });
        expect(res.status).toBe(200);
      }
    }));
  } finally {
    await agent.close();
  }
}

const requestLines = (child: DataplaneChild, tag: string) => child.logs.filter((l) => l.msg === 'request' && String(l.requestId).startsWith(`${tag}-`));

/** After exit, stdout may still be in the pipe: wait (briefly) for `n` lines or give up and return what came. */
async function settle(child: DataplaneChild, tag: string, n: number): Promise<ReturnType<typeof requestLines>> {
  const deadline = Date.now() + 3_000;
  while (requestLines(child, tag).length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return requestLines(child, tag);
}

describe('buffered access log', () => {
  it('a lone request\'s line appears well within a second', async () => {
    dp = await spawnDataplane();
    await applySnapshot(dp.adminUrl, SNAPSHOT);
    const sent = Date.now();
    expect((await http(`${dp.trafficUrl}/lone`, { headers: { 'x-request-id': 'lone-1' } })).status).toBe(200);
    const line = await dp.waitForLog((l) => l.requestId === 'lone-1', 1_000);
    expect(line).toMatchObject({ msg: 'request', path: '/lone', status: 200 });
    expect(Date.now() - sent).toBeLessThan(1_000);
  });

  it('SIGTERM right after a burst: every request has its line, each exactly once', async () => {
    // At warn, no diagnostic line (`draining`, `stopped`) is written on the way out, which
    // would push the buffered lines out with it: only the shutdown flush can.
    dp = await spawnDataplane({ args: ['--log-level', 'warn'] });
    await applySnapshot(dp.adminUrl, SNAPSHOT);
    const n = 400;
    await load(dp.trafficUrl, 'burst', n);
    // No pause: the last batch is still in the buffer when the signal arrives.
    dp.child.kill('SIGTERM');
    expect(await dp.exited).toEqual({ code: 0, signal: null });
    const lines = await settle(dp, 'burst', n);
    expect(lines).toHaveLength(n);
    expect(new Set(lines.map((l) => l.requestId)).size).toBe(n);
    expect(dp.logs.filter((l) => l.msg === '(not json)')).toEqual([]);
  });

  it('with --workers 2, lines of both workers on one pipe stay whole, and none is lost on SIGTERM', async () => {
    dp = await spawnDataplane({ args: ['--workers', '2', '--log-level', 'warn'] });
    await applySnapshot(dp.adminUrl, SNAPSHOT);
    const n = 1_000;
    // Many connections, so the kernel spreads them over both workers.
    await load(dp.trafficUrl, 'pair', n, 32);
    dp.child.kill('SIGTERM');
    expect(await dp.exited).toEqual({ code: 0, signal: null });
    const lines = await settle(dp, 'pair', n);
    expect(dp.logs.filter((l) => l.msg === '(not json)')).toEqual([]);
    expect(lines).toHaveLength(n);
    expect(new Set(lines.map((l) => l.requestId)).size).toBe(n);
    expect(new Set(lines.map((l) => l.worker)).size).toBe(2);
  });
});

describe('--access-log off', () => {
  it('writes no request line, but the listening line and diagnostics still come', async () => {
    dp = await spawnDataplane({ args: ['--access-log', 'off'] });
    expect(dp.logs.filter((l) => l.msg === 'listening')).toHaveLength(1);
    await applySnapshot(dp.adminUrl, SNAPSHOT);
    await load(dp.trafficUrl, 'quiet', 50);
    dp.child.kill('SIGTERM');
    expect(await dp.exited).toEqual({ code: 0, signal: null });
    await dp.waitForLog((l) => l.msg === 'stopped', 3_000);
    expect(dp.logs.filter((l) => l.msg === 'request')).toEqual([]);
  });

  it('also in every worker (PYSERVE_ACCESS_LOG=off), with the primary\'s listening line', async () => {
    dp = await spawnDataplane({ args: ['--workers', '2'], env: { PYSERVE_ACCESS_LOG: 'off' } });
    expect(dp.logs.filter((l) => l.msg === 'listening')).toHaveLength(1);
    await applySnapshot(dp.adminUrl, SNAPSHOT);
    await load(dp.trafficUrl, 'quiet', 100, 16);
    // /metrics still counts them: only the log is off.
    expect((await http(`${dp.adminUrl}/metrics`)).text).toMatch(/^pyserve_requests_total\{route="r",code="200"\} 100$/m);
    dp.child.kill('SIGTERM');
    expect(await dp.exited).toEqual({ code: 0, signal: null });
    await dp.waitForLog((l) => l.msg === 'stopped' && l.worker === undefined, 3_000);
    expect(dp.logs.filter((l) => l.msg === 'request')).toEqual([]);
  });
});
