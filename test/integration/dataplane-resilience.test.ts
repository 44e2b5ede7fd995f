// Resilience through the real dataplane with backends that fail, reset,
// hang and slow down: retries (conditions, extra statuses, per-try timeout,
// another endpoint per try, the idempotency rule, body replay, what the
// client gets when tries run out), a retry storm capped by the budget,
// circuit breaking (per-endpoint, connections and pending queue, each shed
// request a 503 naming its limit) and request mirroring (exact copies,
// sampling, and a mirror that hangs or fails never touching the client).
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Endpoint, Route, RetryPolicy } from '../../dataplane/snapshot/schema.ts';
import { closedPort } from '../helpers/backends.ts';
import { clusterSnapshot, counter, localEndpoint } from '../helpers/cluster-snapshots.ts';
import type { ClusterOptions } from '../helpers/cluster-snapshots.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { runConcurrently, sleep, startFlakyBackend, tally } from '../helpers/flaky-backends.ts';
import type { FlakyBackend, SeenRequest } from '../helpers/flaky-backends.ts';
import { eventually } from '../helpers/logged-process.ts';
import { applySnapshot, forward, prefix, vhost } from '../helpers/snapshots.ts';

let dp: DataplaneChild;
let agent: Agent;
let dead: number[];

const STORM_DELAY_MS = 100;
const CB_DELAY_MS = 800;
const MAIN_DELAY_MS = 50;

/** Backends by name, with their initial behaviour. */
const backends: Record<string, Parameters<typeof startFlakyBackend>[1]> = {
  bad5: { status: 500 }, good5: {},
  g503: { status: 503 }, gok1: {},
  g500: { status: 500 }, gok2: {},
  s429: { status: 429 }, sok: {},
  cfok: {},
  resetter: { reset: true }, rok: {},
  hang1: { hang: true }, tok: {},
  x503a: { status: 503 }, x503b: { status: 503 },
  pbad: { status: 500 }, pgood: {},
  pbad2: { status: 500 }, pgood2: {},
  st1: { status: 503, delayMs: STORM_DELAY_MS }, st2: { status: 503, delayMs: STORM_DELAY_MS },
  sf1: { status: 503, delayMs: STORM_DELAY_MS }, sf2: { status: 503, delayMs: STORM_DELAY_MS },
  l1: { status: 503 }, l2: { status: 503 },
  lr1: { reset: true }, lr2: { reset: true },
  cbe: { delayMs: CB_DELAY_MS },
  cbc: { delayMs: CB_DELAY_MS },
  mm: {}, mc: {},
  mm2: { delayMs: MAIN_DELAY_MS }, mh: { hang: true }, m5: { status: 500 },
  mhb: {},
};
const be: Record<string, FlakyBackend> = {};
const eps = (...list: string[]): Endpoint[] => list.map((n) => be[n]!.endpoint());

function routes(): Route[] {
  const r = (name: string, cluster: string, retry?: RetryPolicy, extra: Partial<Route> = {}): Route => ({
    ...forward(name, prefix(`/${name}`), cluster), ...(retry && { retry }), ...extra,
  });
  return [
    r('r5', 'r5', { attempts: 2, on: ['5xx'] }),
    r('r5-default-on', 'r5', { attempts: 2 }),
    r('r5-statuses', 'r5', { attempts: 2, on: [], statuses: [429] }),
    r('gw503', 'gw503', { attempts: 2, on: ['gateway-error'] }),
    r('gw500', 'gw500', { attempts: 2, on: ['gateway-error'] }),
    r('st429', 'st429', { attempts: 1, on: [], statuses: [429] }),
    r('rcf', 'rcf', { attempts: 1 }),
    r('rcf-off', 'rcf'),
    r('rreset', 'rreset', { attempts: 1 }),
    r('rreset-cf', 'rreset', { attempts: 1, on: ['connect-failure'] }),
    r('rto', 'rto', { attempts: 1, on: ['timeout'], perTryTimeoutMs: 300 }, { timeouts: { upstreamResponseMs: 10_000 } }),
    r('exhaust', 'exhaust', { attempts: 3, on: ['5xx'], backoffBaseMs: 1 }),
    r('alldead', 'alldead', { attempts: 2, backoffBaseMs: 1 }),
    r('post', 'post', { attempts: 1, on: ['5xx'] }),
    r('post-ok', 'post-ok', { attempts: 1, on: ['5xx'], allowNonIdempotent: true }),
    r('storm', 'storm', { attempts: 3, on: ['5xx'], budgetPercent: 20, minRetryConcurrency: 0, backoffBaseMs: 1 }),
    r('storm-free', 'storm-free', { attempts: 3, on: ['5xx'], budgetPercent: 0, minRetryConcurrency: 1_000, backoffBaseMs: 1 }),
    r('lone', 'lone', { attempts: 3, on: ['5xx'], budgetPercent: 0, minRetryConcurrency: 1, backoffBaseMs: 1 }),
    r('lone-reset', 'lone-reset', { attempts: 3, on: ['reset'], budgetPercent: 0, minRetryConcurrency: 1, backoffBaseMs: 1 }),
    r('cb-ep', 'cb-ep'),
    r('cb-conn', 'cb-conn'),
    r('mirror', 'mmain', undefined, { mirrors: [{ cluster: 'mcopy', percent: 100 }] }),
    r('mirror-hang', 'mmain2', undefined, { mirrors: [{ cluster: 'mhang', percent: 100 }], timeouts: { upstreamResponseMs: 5_000 } }),
    r('mirror-500', 'mmain2', undefined, { mirrors: [{ cluster: 'm500', percent: 100 }] }),
    r('mirror-dead', 'mmain2', undefined, { mirrors: [{ cluster: 'mdead', percent: 100 }] }),
    r('no-mirror', 'mmain2'),
    r('mirror-half', 'mmain', undefined, { mirrors: [{ cluster: 'mhalf', percent: 50 }] }),
  ];
}

beforeAll(async () => {
  const started = await Promise.all(Object.entries(backends).map(([n, b]) => startFlakyBackend(n, b)));
  for (const f of started) be[f.name] = f;
  [dp, ...dead] = await Promise.all([spawnDataplane(), closedPort(), closedPort(), closedPort(), closedPort()]) as [DataplaneChild, ...number[]];
  agent = new Agent({ keepAliveTimeout: 10_000, connections: 128 });
  const cb: Record<string, ClusterOptions> = {
    'cb-ep': { circuitBreaker: { maxRequestsPerEndpoint: 2 } },
    'cb-conn': { circuitBreaker: { maxConnections: 2, maxPendingRequests: 2 } },
  };
  await applySnapshot(dp.adminUrl, clusterSnapshot(1, [vhost('main', ['*'], routes())], {
    r5: eps('bad5', 'good5'),
    gw503: eps('g503', 'gok1'),
    gw500: eps('g500', 'gok2'),
    st429: eps('s429', 'sok'),
    rcf: [localEndpoint(dead[0]!), be.cfok!.endpoint()],
    rreset: eps('resetter', 'rok'),
    rto: eps('hang1', 'tok'),
    exhaust: eps('x503a', 'x503b'),
    alldead: [localEndpoint(dead[1]!), localEndpoint(dead[2]!)],
    post: eps('pbad', 'pgood'),
    'post-ok': eps('pbad2', 'pgood2'),
    storm: eps('st1', 'st2'),
    'storm-free': eps('sf1', 'sf2'),
    lone: eps('l1', 'l2'),
    'lone-reset': eps('lr1', 'lr2'),
    'cb-ep': eps('cbe'),
    'cb-conn': eps('cbc'),
    mmain: eps('mm'),
    mcopy: eps('mc'),
    mmain2: eps('mm2'),
    mhang: eps('mh'),
    m500: eps('m5'),
    mdead: [localEndpoint(dead[3]!)],
    mhalf: eps('mhb'),
  }, cb));
});

afterAll(async () => {
  await agent?.close();
  await dp?.stop();
  await Promise.all(Object.values(be).map((f) => f.close()));
});

interface Hit {
  status: number;
  backend: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  ms: number;
}

async function hit(path: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | Readable } = {}): Promise<Hit> {
  const started = performance.now();
  const res = await request(`${dp.trafficUrl}${path}`, { method: (opts.method ?? 'GET') as 'GET', headers: opts.headers, body: opts.body, dispatcher: agent });
  const text = await res.body.text();
  return { status: res.statusCode, backend: res.headers['x-backend'] as string | undefined, headers: res.headers, text, ms: performance.now() - started };
}

type HitOptions = Parameters<typeof hit>[1];

/** `n` sequential requests; `opts` may be a function, for a fresh (streamed) body per request. */
async function many(n: number, path: string, opts?: HitOptions | (() => HitOptions)): Promise<Hit[]> {
  const out: Hit[] = [];
  for (let i = 0; i < n; i++) out.push(await hit(path, typeof opts === 'function' ? opts() : opts));
  return out;
}

const statuses = (hits: Hit[]): Map<number, number> => tally(hits.map((h) => h.status));
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const since = (b: FlakyBackend, from: number): SeenRequest[] => b.requests.slice(from);
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

describe('retries', () => {
  it('5xx: a failed try is retried on the other endpoint, so every request succeeds', async () => {
    const [bad, good] = [be.bad5!, be.good5!];
    const from = [bad.requests.length, good.requests.length];
    const retriesBefore = await counter(dp.adminUrl, 'pyserve_upstream_retries_total', { cluster: 'r5' });
    const hits = await many(20, '/r5');
    expect(statuses(hits)).toEqual(new Map([[200, 20]]));
    expect(hits.every((h) => h.backend === 'good5')).toBe(true);
    const badSeen = since(bad, from[0]!);
    expect(badSeen.length).toBeGreaterThanOrEqual(5);
    // Never the same endpoint twice for one request.
    expect(new Set(badSeen.map((r) => r.headers['x-request-id'])).size).toBe(badSeen.length);
    expect(since(good, from[1]!)).toHaveLength(20);
    expect(await counter(dp.adminUrl, 'pyserve_upstream_retries_total', { cluster: 'r5' })).toBe(retriesBefore + badSeen.length);
  });

  it('without 5xx in the conditions (default connect-failure, reset; or only statuses) a 500 is passed through', async () => {
    for (const path of ['/r5-default-on', '/r5-statuses']) {
      const from = be.bad5!.requests.length;
      const hits = await many(10, path);
      const fails = since(be.bad5!, from).length;
      expect(fails, path).toBeGreaterThanOrEqual(4);
      expect(statuses(hits), path).toEqual(new Map([[200, 10 - fails], [500, fails]]));
    }
  });

  it('gateway-error retries 502/503/504 but not 500', async () => {
    expect(statuses(await many(10, '/gw503'))).toEqual(new Map([[200, 10]]));
    expect(be.g503!.requests.length).toBeGreaterThanOrEqual(4);
    const hits = await many(10, '/gw500');
    expect(hits.filter((h) => h.status === 500)).toHaveLength(be.g500!.requests.length);
    expect(be.g500!.requests.length).toBeGreaterThanOrEqual(4);
  });

  it('extra statuses (429) are retried', async () => {
    expect(statuses(await many(10, '/st429'))).toEqual(new Map([[200, 10]]));
    expect(be.s429!.requests.length).toBeGreaterThanOrEqual(4);
  });

  it('connect-failure: a refused connection is retried on another endpoint (and is a 502 without retries)', async () => {
    expect(statuses(await many(10, '/rcf'))).toEqual(new Map([[200, 10]]));
    const off = statuses(await many(10, '/rcf-off'));
    expect(off.get(502)).toBeGreaterThanOrEqual(4);
  });

  it('reset: a connection closed before the response head is retried, unless only connect-failure is allowed', async () => {
    let from = be.resetter!.requests.length;
    expect(statuses(await many(10, '/rreset'))).toEqual(new Map([[200, 10]]));
    expect(be.resetter!.requests.length - from).toBeGreaterThanOrEqual(4);
    from = be.resetter!.requests.length;
    const hits = await many(10, '/rreset-cf');
    const resets = be.resetter!.requests.length - from;
    expect(resets).toBeGreaterThanOrEqual(4);
    expect(hits.filter((h) => h.status === 502)).toHaveLength(resets);
  });

  it('timeout: a try without a response head within perTryTimeoutMs is retried elsewhere, long before the route timeout', async () => {
    const from = be.hang1!.requests.length;
    const hits = await many(6, '/rto');
    expect(statuses(hits)).toEqual(new Map([[200, 6]]));
    const hung = be.hang1!.requests.length - from;
    expect(hung).toBeGreaterThanOrEqual(2);
    const slow = hits.filter((h) => h.ms >= 250);
    // The requests that met the hanging endpoint waited one per-try timeout (300 ms), not the 10 s route timeout.
    expect(slow.length).toBe(hung);
    for (const h of slow) expect(h.ms).toBeLessThan(3_000);
  });

  it('when the tries run out, the last upstream response is returned as it is', async () => {
    const from = be.x503a!.requests.length + be.x503b!.requests.length;
    const res = await hit('/exhaust');
    expect(res.status).toBe(503);
    // The upstream's own response (echo body, x-backend), not a local error.
    expect(['x503a', 'x503b']).toContain(res.backend);
    expect((JSON.parse(res.text) as { backend: string }).backend).toBe(res.backend);
    // 1 + attempts (3) tries.
    expect(be.x503a!.requests.length + be.x503b!.requests.length - from).toBe(4);
  });

  it('when the tries run out on errors, the error status is returned', async () => {
    const res = await hit('/alldead');
    expect(res.status).toBe(502);
  });

  describe('methods and bodies', () => {
    const small = randomBytes(10 * 1024);
    const large = randomBytes(100 * 1024);

    it('POST is not retried by default', async () => {
      const from = [be.pbad!.requests.length, be.pgood!.requests.length];
      const hits = await many(6, '/post', { method: 'POST', body: small, headers: { 'content-type': 'application/octet-stream' } });
      const bad = since(be.pbad!, from[0]!).length;
      expect(bad).toBeGreaterThanOrEqual(2);
      expect(statuses(hits)).toEqual(new Map([[200, 6 - bad], [500, bad]]));
      expect(since(be.pgood!, from[1]!)).toHaveLength(6 - bad);
    });

    it('POST is retried with allowNonIdempotent, its body replayed intact', async () => {
      const from = [be.pbad2!.requests.length, be.pgood2!.requests.length];
      const hits = await many(6, '/post-ok', { method: 'POST', body: small });
      expect(statuses(hits)).toEqual(new Map([[200, 6]]));
      expect(since(be.pbad2!, from[0]!).length).toBeGreaterThanOrEqual(2);
      const good = since(be.pgood2!, from[1]!);
      expect(good).toHaveLength(6);
      for (const r of good) expect({ method: r.method, bytes: r.bodyBytes, sha: r.bodySha256 }).toEqual({ method: 'POST', bytes: small.length, sha: sha256(small) });
    });

    it.each(['PUT', 'DELETE'])('%s with a small body (Content-Length) is retried, its body replayed intact', async (method) => {
      const from = [be.pbad!.requests.length, be.pgood!.requests.length];
      const hits = await many(6, '/post', { method, body: small });
      expect(statuses(hits)).toEqual(new Map([[200, 6]]));
      expect(since(be.pbad!, from[0]!).length).toBeGreaterThanOrEqual(2);
      for (const r of since(be.pgood!, from[1]!)) expect({ method: r.method, bytes: r.bodyBytes, sha: r.bodySha256 }).toEqual({ method, bytes: small.length, sha: sha256(small) });
    });

    it('a body over 64 KiB, or a chunked one, is not retried', async () => {
      for (const [label, body] of [['100 KiB', () => large], ['chunked', () => Readable.from([small.subarray(0, 1000), small.subarray(1000)])]] as const) {
        const from = [be.pbad!.requests.length, be.pgood!.requests.length];
        const hits = await many(6, '/post', () => ({ method: 'PUT', body: body() }));
        const bad = since(be.pbad!, from[0]!).length;
        expect(bad, label).toBeGreaterThanOrEqual(2);
        expect(statuses(hits), label).toEqual(new Map([[200, 6 - bad], [500, bad]]));
        // What did get through arrived whole.
        const expected = label === 'chunked' ? small.length : large.length;
        for (const r of since(be.pgood!, from[1]!)) expect(r.bodyBytes, label).toBe(expected);
      }
    });
  });

  it('the retry budget caps a retry storm: 50 concurrent requests to an always-503 cluster stay far below 200 tries', async () => {
    const tries = (): number => be.st1!.requests.length + be.st2!.requests.length;
    const exhaustedBefore = await counter(dp.adminUrl, 'pyserve_upstream_retry_budget_exhausted_total', { cluster: 'storm' });
    const retriesBefore = await counter(dp.adminUrl, 'pyserve_upstream_retries_total', { cluster: 'storm' });
    const from = tries();
    const hits = await Promise.all(Array.from({ length: 50 }, () => hit('/storm')));
    expect(statuses(hits)).toEqual(new Map([[503, 50]]));
    const made = tries() - from;
    // Without a budget: 50 × (1 + 3) = 200. With 20% of ~50 in flight: about 50 + 10.
    expect(made, `tries reaching the backends`).toBeGreaterThanOrEqual(50);
    expect(made, `tries reaching the backends`).toBeLessThan(100);
    const retries = await counter(dp.adminUrl, 'pyserve_upstream_retries_total', { cluster: 'storm' }) - retriesBefore;
    expect(retries).toBe(made - 50);
    const exhausted = await counter(dp.adminUrl, 'pyserve_upstream_retry_budget_exhausted_total', { cluster: 'storm' }) - exhaustedBefore;
    expect(exhausted).toBeGreaterThanOrEqual(25);
  });

  it('control: the same storm with a budget that always allows makes every try (so the cap above is the budget\'s doing)', async () => {
    const tries = (): number => be.sf1!.requests.length + be.sf2!.requests.length;
    const from = tries();
    const hits = await Promise.all(Array.from({ length: 50 }, () => hit('/storm-free')));
    expect(statuses(hits)).toEqual(new Map([[503, 50]]));
    expect(tries() - from).toBe(200);
  });

  it.each([
    ['a 503', '/lone', ['l1', 'l2'], 503],
    ['a reset', '/lone-reset', ['lr1', 'lr2'], 502],
  ])('minRetryConcurrency 1 lets a lone request use all its attempts after %s (one retry in flight at a time)', async (_what, path, names, status) => {
    const tries = (): number => names.reduce((n, x) => n + be[x]!.requests.length, 0);
    const from = tries();
    const res = await hit(path);
    expect(res.status).toBe(status);
    expect(tries() - from, 'tries of one request with attempts 3').toBe(4);
  });
});

describe('circuit breaking', () => {
  it('maxRequestsPerEndpoint: requests beyond it get 503 with x-pyserve-overloaded: max-requests-per-endpoint', async () => {
    const before = await counter(dp.adminUrl, 'pyserve_upstream_overflow_total', { cluster: 'cb-ep', limit: 'max_requests_per_endpoint' });
    const from = be.cbe!.requests.length;
    const hits = await Promise.all(Array.from({ length: 5 }, () => hit('/cb-ep')));
    expect(statuses(hits)).toEqual(new Map([[200, 2], [503, 3]]));
    for (const h of hits.filter((x) => x.status === 503)) {
      expect(h.headers['x-pyserve-overloaded']).toBe('max-requests-per-endpoint');
      // Shed at once, not after waiting.
      expect(h.ms).toBeLessThan(CB_DELAY_MS);
    }
    expect(be.cbe!.requests.length - from).toBe(2);
    expect(be.cbe!.maxInFlight).toBeLessThanOrEqual(2);
    expect(await counter(dp.adminUrl, 'pyserve_upstream_overflow_total', { cluster: 'cb-ep', limit: 'max_requests_per_endpoint' })).toBe(before + 3);
    // Slots come back: later requests go through.
    expect(statuses(await Promise.all([hit('/cb-ep'), hit('/cb-ep')]))).toEqual(new Map([[200, 2]]));
  });

  it('maxConnections with maxPendingRequests: two in flight, two queued (they proceed when a slot frees), the rest 503 max-pending-requests', async () => {
    const before = await counter(dp.adminUrl, 'pyserve_upstream_overflow_total', { cluster: 'cb-conn', limit: 'max_pending_requests' });
    const from = be.cbc!.requests.length;
    const hits = await Promise.all(Array.from({ length: 6 }, () => hit('/cb-conn')));
    expect(statuses(hits)).toEqual(new Map([[200, 4], [503, 2]]));
    for (const h of hits.filter((x) => x.status === 503)) {
      expect(h.headers['x-pyserve-overloaded']).toBe('max-pending-requests');
      expect(h.ms).toBeLessThan(CB_DELAY_MS);
    }
    // Never more than two at the backend; the queued two waited for a slot.
    expect(be.cbc!.maxInFlight).toBeLessThanOrEqual(2);
    expect(be.cbc!.requests.length - from).toBe(4);
    const waited = hits.filter((h) => h.status === 200 && h.ms >= CB_DELAY_MS * 1.6);
    expect(waited.length).toBe(2);
    expect(await counter(dp.adminUrl, 'pyserve_upstream_overflow_total', { cluster: 'cb-conn', limit: 'max_pending_requests' })).toBe(before + 2);
    // Nothing leaked: two at once still fit.
    be.cbc!.set({ delayMs: 0 });
    try {
      for (let i = 0; i < 3; i++) expect(statuses(await Promise.all([hit('/cb-conn'), hit('/cb-conn')]))).toEqual(new Map([[200, 2]]));
    } finally {
      be.cbc!.set({ delayMs: CB_DELAY_MS });
    }
  });
});

describe('mirroring', () => {
  it('at 100% the mirror gets an exact copy of each request: method, path, headers, body', async () => {
    const mc = be.mc!;
    const from = mc.requests.length;
    const res = await hit('/mirror/a/b?x=1&y=2', { headers: { 'x-test': 'copy-me' } });
    expect(res.status).toBe(200);
    expect(res.backend).toBe('mm');
    const body = randomBytes(4096);
    const post = await hit('/mirror/upload', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream', 'x-test': 'with-body' } });
    expect(post.status).toBe(200);
    await eventually(async () => mc.requests.length >= from + 2, 5_000, 'two mirrored requests');
    const [get, copy] = since(mc, from).sort((x, y) => (x.method < y.method ? -1 : 1));
    expect(get).toMatchObject({ method: 'GET', url: '/mirror/a/b?x=1&y=2', bodyBytes: 0 });
    expect(get!.headers['x-test']).toBe('copy-me');
    expect(get!.headers['x-request-id']).toBe(res.headers['x-request-id']);
    expect(copy).toMatchObject({ method: 'POST', url: '/mirror/upload', bodyBytes: body.length, bodySha256: sha256(body) });
    expect(copy!.headers['x-test']).toBe('with-body');
    expect(copy!.headers['content-type']).toBe('application/octet-stream');
    expect(copy!.headers['x-request-id']).toBe(post.headers['x-request-id']);
    // The main backend got the body too.
    expect(be.mm!.requests.at(-1)).toMatchObject({ method: 'POST', bodySha256: sha256(body) });

    const sentBefore = await counter(dp.adminUrl, 'pyserve_upstream_mirrors_total', { cluster: 'mcopy', outcome: 'sent' });
    const batchFrom = mc.requests.length;
    await many(20, '/mirror/batch');
    await eventually(async () => mc.requests.length >= batchFrom + 20, 5_000, 'twenty mirrored requests');
    await sleep(200);
    expect(mc.requests.length - batchFrom).toBe(20);
    await eventually(async () => await counter(dp.adminUrl, 'pyserve_upstream_mirrors_total', { cluster: 'mcopy', outcome: 'sent' }) >= sentBefore + 20, 5_000, 'sent counted');
  });

  it('a mirror that hangs does not slow the client: latency stays that of the main backend', async () => {
    // Baseline: the same main backend without a mirror.
    const base = await many(10, '/no-mirror');
    const from = be.mh!.requests.length;
    const mirrored = await many(20, '/mirror-hang');
    expect(statuses(mirrored)).toEqual(new Map([[200, 20]]));
    expect(mirrored.every((h) => h.backend === 'mm2')).toBe(true);
    await eventually(async () => be.mh!.requests.length >= from + 20, 5_000, 'the hanging mirror received its copies');
    const baseMs = median(base.map((h) => h.ms));
    const mirroredMs = median(mirrored.map((h) => h.ms));
    expect(mirroredMs, `median ${mirroredMs.toFixed(0)} ms with a hanging mirror vs ${baseMs.toFixed(0)} ms without`).toBeLessThan(baseMs + 150);
    for (const h of mirrored) expect(h.ms).toBeLessThan(MAIN_DELAY_MS + 1_500);
  });

  it('a mirror that returns 500 or refuses connections changes nothing for the client', async () => {
    const failedBefore = await counter(dp.adminUrl, 'pyserve_upstream_mirrors_total', { cluster: 'mdead', outcome: 'failed' });
    for (const path of ['/mirror-500', '/mirror-dead']) {
      const hits = await many(10, path);
      expect(statuses(hits), path).toEqual(new Map([[200, 10]]));
      for (const h of hits) {
        expect(h.backend).toBe('mm2');
        expect((JSON.parse(h.text) as { backend: string }).backend).toBe('mm2');
      }
    }
    await eventually(async () => be.m5!.requests.length >= 10, 5_000, 'the 500 mirror received its copies');
    await eventually(async () => await counter(dp.adminUrl, 'pyserve_upstream_mirrors_total', { cluster: 'mdead', outcome: 'failed' }) >= failedBefore + 10, 5_000, 'failed mirrors counted');
  });

  it('a body that is not kept (over 64 KiB, or chunked) is never mirrored truncated; the copy is skipped', async () => {
    const mc = be.mc!;
    const skippedBefore = await counter(dp.adminUrl, 'pyserve_upstream_mirrors_total', { cluster: 'mcopy', outcome: 'skipped' });
    const from = mc.requests.length;
    const large = randomBytes(100 * 1024);
    const res = await hit('/mirror/large', { method: 'POST', body: large });
    expect(res.status).toBe(200);
    expect(be.mm!.requests.at(-1)).toMatchObject({ url: '/mirror/large', bodyBytes: large.length, bodySha256: sha256(large) });
    const chunked = await hit('/mirror/chunked', { method: 'POST', body: Readable.from([large.subarray(0, 10), large.subarray(10, 20)]) });
    expect(chunked.status).toBe(200);
    await sleep(300);
    const copies = since(mc, from);
    for (const r of copies) {
      if (r.url === '/mirror/large') expect(r.bodySha256, 'a copy of the large body').toBe(sha256(large));
      if (r.url === '/mirror/chunked') expect(r.bodySha256, 'a copy of the chunked body').toBe(sha256(large.subarray(0, 20)));
    }
    // Each of the two was either copied whole or counted as skipped.
    const skipped = await counter(dp.adminUrl, 'pyserve_upstream_mirrors_total', { cluster: 'mcopy', outcome: 'skipped' }) - skippedBefore;
    expect(skipped + copies.length).toBe(2);
  });

  it('at 50%, the mirror gets 50% ± 5% of 2,000 requests', async () => {
    const mhb = be.mhb!;
    const from = mhb.requests.length;
    const hits = await runConcurrently(2_000, 10, () => hit('/mirror-half'));
    expect(hits.every((h) => h.status === 200)).toBe(true);
    // Wait until the copies stop arriving.
    let last = -1;
    await eventually(async () => {
      const now = mhb.requests.length;
      const stable = now === last;
      last = now;
      return stable;
    }, 10_000, 'mirrored copies to settle', 300);
    const got = mhb.requests.length - from;
    expect(got).toBeGreaterThanOrEqual(900);
    expect(got).toBeLessThanOrEqual(1_100);
  });
});
