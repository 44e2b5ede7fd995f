// Load balancing through the real dataplane with real backends, checked
// statistically: round robin, random, least-request (a slow endpoint gets
// clearly fewer requests under concurrency), consistent hashing on every key
// type (stable while the endpoint set is, only the removed endpoint's keys
// move), canary by weight (10% ± 2% of 10,000), header and cookie, and
// cookie session affinity across 1,000 requests, a swap, an endpoint leaving
// and a garbage cookie.
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Route, VirtualHost } from '../../dataplane/snapshot/schema.ts';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { clusterSnapshot } from '../helpers/cluster-snapshots.ts';
import type { ClusterOptions } from '../helpers/cluster-snapshots.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { runConcurrently, startFlakyBackend, tally } from '../helpers/flaky-backends.ts';
import type { FlakyBackend } from '../helpers/flaky-backends.ts';
import { applySnapshot, direct, forward, prefix, vhost } from '../helpers/snapshots.ts';

let dp: DataplaneChild;
let a: Backend;
let b: Backend;
let c: Backend;
let d: Backend;
let slow: FlakyBackend;
let agent: Agent;
let tlsAgent: Agent;

const SLOW_MS = 300;

/** What the tests change between pushes; everything else is fixed. */
const config = {
  generation: 0,
  /** Backends of the `sticky` cluster. */
  sticky: [] as (Backend | FlakyBackend)[],
  /** Backends of the `hash-header` cluster. */
  hashHeader: [] as (Backend | FlakyBackend)[],
  /** An extra, unrelated direct route (a routing change that touches no cluster). */
  extraRoute: false,
};

function routes(): Route[] {
  const sticky: Route = { ...forward('sticky', prefix('/sticky'), 'sticky'), sessionAffinity: { cookie: { name: 'pyserve-aff', ttlSeconds: 3600, sameSite: 'Lax' } } };
  const stickyAttrs: Route = {
    ...forward('sticky-attrs', prefix('/sticky-attrs'), 'sticky'),
    sessionAffinity: { cookie: { name: 'aff2', path: '/sticky-attrs', domain: 'example.com', secure: true } },
  };
  return [
    ...(config.extraRoute ? [direct('extra', prefix('/extra'), 200, 'extra')] : []),
    forward('rr', prefix('/rr'), 'rr'),
    forward('random', prefix('/random'), 'random'),
    forward('lr', prefix('/lr'), 'lr'),
    forward('lr-control', prefix('/lrc'), 'lr-control'),
    forward('hash-header', prefix('/hh'), 'hash-header'),
    forward('hash-cookie', prefix('/hc'), 'hash-cookie'),
    forward('hash-query', prefix('/hq'), 'hash-query'),
    forward('hash-ip', prefix('/hip'), 'hash-ip'),
    forward('hash-uri', prefix('/huri'), 'hash-uri'),
    forward('canary', prefix('/canary'), [['stable', 90], ['canary', 10]]),
    forward('canary-header', { path: prefix('/ch'), headers: [{ name: 'x-canary', type: 'Exact', value: 'always' }] }, 'canary'),
    forward('canary-header-stable', prefix('/ch'), 'stable'),
    forward('canary-cookie', { path: prefix('/cc'), cookies: [{ name: 'canary', type: 'Exact', value: 'always' }] }, 'canary'),
    forward('canary-cookie-stable', prefix('/cc'), 'stable'),
    sticky,
    stickyAttrs,
  ];
}

async function push(): Promise<void> {
  const abc = [a.endpoint(), b.endpoint(), c.endpoint()];
  const hosts: VirtualHost[] = [vhost('main', ['*'], routes())];
  const hash = (hashOn: NonNullable<ClusterOptions['loadBalancer']>['hashOn']): ClusterOptions => ({ loadBalancer: { policy: 'ConsistentHash', hashOn } });
  await applySnapshot(dp.adminUrl, clusterSnapshot(++config.generation, hosts, {
    rr: abc,
    random: abc,
    lr: [slow.endpoint(), a.endpoint(), b.endpoint()],
    'lr-control': [slow.endpoint(), a.endpoint(), b.endpoint()],
    'hash-header': config.hashHeader.map((x) => x.endpoint()),
    'hash-cookie': abc,
    'hash-query': abc,
    'hash-ip': abc,
    'hash-uri': abc,
    stable: [a.endpoint()],
    canary: [b.endpoint()],
    sticky: config.sticky.map((x) => x.endpoint()),
  }, {
    random: { loadBalancer: { policy: 'Random' } },
    lr: { loadBalancer: { policy: 'LeastRequest' } },
    'lr-control': { loadBalancer: { policy: 'RoundRobin' } },
    'hash-header': hash({ type: 'Header', name: 'X-User' }),
    'hash-cookie': hash({ type: 'Cookie', name: 'session' }),
    'hash-query': hash({ type: 'QueryParameter', name: 'u' }),
    'hash-ip': hash({ type: 'SourceIP' }),
    'hash-uri': hash({ type: 'RequestURI' }),
  }));
}

beforeAll(async () => {
  [dp, a, b, c, d, slow] = await Promise.all([
    spawnDataplane(),
    startBackend('a'), startBackend('b'), startBackend('c'), startBackend('d'),
    startFlakyBackend('slow', { delayMs: SLOW_MS }),
  ]);
  agent = new Agent({ keepAliveTimeout: 10_000, connections: 64 });
  tlsAgent = new Agent({ connect: { rejectUnauthorized: false } });
  config.sticky = [a, b, c];
  config.hashHeader = [a, b, c];
  await push();
});

afterAll(async () => {
  await agent?.close();
  await tlsAgent?.close();
  await dp?.stop();
  await Promise.all([a?.close(), b?.close(), c?.close(), d?.close(), slow?.close()]);
});

interface Hit {
  status: number;
  /** Which backend answered (its `x-backend` header). */
  backend: string | undefined;
  setCookie: string[];
}

async function hit(path: string, headers: Record<string, string> = {}, dispatcher: Dispatcher = agent, base = dp.trafficUrl): Promise<Hit> {
  const res = await request(`${base}${path}`, { headers, dispatcher });
  await res.body.dump();
  const sc = res.headers['set-cookie'];
  return { status: res.statusCode, backend: res.headers['x-backend'] as string | undefined, setCookie: sc === undefined ? [] : Array.isArray(sc) ? sc : [sc] };
}

/** Backend that answered each of `n` sequential requests. */
async function sequence(n: number, path: string | ((i: number) => string), headers: (i: number) => Record<string, string> = () => ({})): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await hit(typeof path === 'string' ? path : path(i), headers(i));
    expect(r.status).toBe(200);
    seen.push(r.backend!);
  }
  return seen;
}

describe('policies', () => {
  it('RoundRobin (the default) cycles the endpoints evenly', async () => {
    const seen = await sequence(300, '/rr');
    expect(tally(seen)).toEqual(new Map([['a', 100], ['b', 100], ['c', 100]]));
    // Each window of three consecutive requests covers all three endpoints.
    for (let i = 2; i < seen.length; i++) expect(new Set(seen.slice(i - 2, i + 1)).size).toBe(3);
  });

  it('Random spreads uniformly and not in a fixed cycle', async () => {
    const n = 1_200;
    const seen = await sequence(n, '/random');
    const counts = tally(seen);
    expect([...counts.keys()].sort()).toEqual(['a', 'b', 'c']);
    // Expected 400 each, standard deviation ~16: ±80 is five of them.
    for (const [, k] of counts) {
      expect(k).toBeGreaterThan(320);
      expect(k).toBeLessThan(480);
    }
    // Independent picks repeat the previous endpoint a third of the time (~400); round robin never does.
    let repeats = 0;
    for (let i = 1; i < n; i++) if (seen[i] === seen[i - 1]) repeats++;
    expect(repeats).toBeGreaterThan(250);
    expect(repeats).toBeLessThan(550);
  });

  it('LeastRequest sends clearly fewer requests to a slow endpoint under concurrency than round robin does', async () => {
    const total = 120;
    const run = async (path: string): Promise<Map<string, number>> => {
      const seen = await runConcurrently(total, 12, async () => {
        const r = await hit(path);
        expect(r.status).toBe(200);
        return r.backend!;
      });
      return tally(seen);
    };
    // Control: round robin over the same endpoints gives the slow one exactly a third.
    const control = await run('/lrc');
    expect(control.get('slow')).toBe(total / 3);
    const lr = await run('/lr');
    const slowShare = (lr.get('slow') ?? 0) / total;
    expect(slowShare, `LeastRequest gave the slow endpoint ${lr.get('slow') ?? 0} of ${total}: ${JSON.stringify([...lr])}`).toBeLessThan(0.2);
    // The fast endpoints share the rest.
    expect(lr.get('a') ?? 0).toBeGreaterThan(total * 0.25);
    expect(lr.get('b') ?? 0).toBeGreaterThan(total * 0.25);
  });
});

describe('consistent hashing', () => {
  const keys = Array.from({ length: 60 }, (_, i) => `key-${i}-${(i * 7919) % 1000}`);

  /** Endpoint per key, checking that three requests with the key agree. */
  async function mapping(keyList: string[], send: (key: string) => Promise<Hit>): Promise<Map<string, string>> {
    const m = new Map<string, string>();
    for (const key of keyList) {
      const seen = new Set<string>();
      for (let i = 0; i < 3; i++) {
        const r = await send(key);
        expect(r.status).toBe(200);
        seen.add(r.backend!);
      }
      expect([...seen], `key ${key} reached more than one endpoint`).toHaveLength(1);
      m.set(key, [...seen][0]!);
    }
    return m;
  }

  const senders: [string, (key: string) => Promise<Hit>, () => Promise<Hit>][] = [
    ['Header', (k) => hit('/hh', { 'x-user': k }), () => hit('/hh')],
    ['Cookie', (k) => hit('/hc', { cookie: `theme=dark; session=${k}; other=1` }), () => hit('/hc', { cookie: 'theme=dark' })],
    ['QueryParameter', (k) => hit(`/hq?x=1&u=${encodeURIComponent(k)}`), () => hit('/hq?x=1')],
    ['RequestURI', (k) => hit(`/huri/${encodeURIComponent(k)}?q=1`), () => hit('/huri')],
  ];

  it.each(senders)('%s: the same key always reaches the same endpoint, and keys spread', async (_type, send) => {
    const m = await mapping(keys, send);
    // 60 keys over 3 endpoints: each gets some (missing one has probability ~1e-10).
    expect(new Set(m.values()).size).toBe(3);
    // Not one endpoint taking nearly everything either.
    for (const [, n] of tally(m.values())) expect(n).toBeLessThan(45);
  });

  it.each(senders.filter(([t]) => t !== 'RequestURI'))('%s: requests without the key fall back to round robin', async (_type, _send, keyless) => {
    const seen: string[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await keyless();
      expect(r.status).toBe(200);
      seen.push(r.backend!);
    }
    expect(tally(seen)).toEqual(new Map([['a', 10], ['b', 10], ['c', 10]]));
  });

  it('SourceIP: each client address keeps its endpoint, and addresses spread', async () => {
    const m = new Map<string, string>();
    for (let i = 2; i < 22; i++) {
      const local = new Agent({ localAddress: `127.0.0.${i}` });
      try {
        const seen = new Set<string>();
        for (let j = 0; j < 4; j++) {
          const r = await hit('/hip', {}, local);
          expect(r.status).toBe(200);
          seen.add(r.backend!);
        }
        expect([...seen], `127.0.0.${i} reached more than one endpoint`).toHaveLength(1);
        m.set(`127.0.0.${i}`, [...seen][0]!);
      } finally {
        await local.close();
      }
    }
    expect(new Set(m.values()).size).toBeGreaterThanOrEqual(2);
  });

  it('when one of three endpoints leaves, only its keys move; when it returns, they return', async () => {
    const many = Array.from({ length: 200 }, (_, i) => `user-${i}`);
    const send = (k: string): Promise<Hit> => hit('/hh', { 'x-user': k });
    const before = await mapping(many, send);
    expect(new Set(before.values()).size).toBe(3);
    try {
      config.hashHeader = [a, b];
      await push();
      const after = await mapping(many, send);
      const moved = many.filter((k) => before.get(k) !== after.get(k));
      for (const k of many) {
        if (before.get(k) === 'c') expect(['a', 'b']).toContain(after.get(k));
        else expect(after.get(k), `key ${k} was on ${before.get(k)}, which stayed`).toBe(before.get(k));
      }
      expect(moved.length).toBe(many.filter((k) => before.get(k) === 'c').length);

      // A fourth endpoint takes about a quarter of the keys, and only from the others.
      config.hashHeader = [a, b, c, d];
      await push();
      const added = await mapping(many, send);
      const movedToD = many.filter((k) => added.get(k) === 'd').length;
      for (const k of many) if (added.get(k) !== 'd') expect(added.get(k), `key ${k} moved between endpoints that both stayed`).toBe(before.get(k));
      expect(movedToD).toBeGreaterThan(20);
      expect(movedToD).toBeLessThan(90);
    } finally {
      config.hashHeader = [a, b, c];
      await push();
    }
    // The same endpoint set gives the same mapping again.
    expect(await mapping(many, send)).toEqual(before);
  });
});

describe('weighted backends (canary)', () => {
  it('a canary at weight 10 (vs 90) gets 10% ± 2% of 10,000 requests', async () => {
    const total = 10_000;
    const seen = await runConcurrently(total, 16, async () => {
      const r = await hit('/canary');
      if (r.status !== 200) throw new Error(`status ${r.status}`);
      return r.backend!;
    });
    const counts = tally(seen);
    expect((counts.get('a') ?? 0) + (counts.get('b') ?? 0)).toBe(total);
    const canary = counts.get('b') ?? 0;
    expect(canary).toBeGreaterThanOrEqual(800);
    expect(canary).toBeLessThanOrEqual(1_200);
  });

  it('a canary by header gets exactly the requests with the header value', async () => {
    for (let i = 0; i < 20; i++) {
      expect((await hit('/ch', { 'x-canary': 'always' })).backend).toBe('b');
      expect((await hit('/ch')).backend).toBe('a');
      expect((await hit('/ch', { 'x-canary': 'never' })).backend).toBe('a');
    }
  });

  it('a canary by cookie gets exactly the requests with the cookie value', async () => {
    for (let i = 0; i < 20; i++) {
      expect((await hit('/cc', { cookie: 'x=1; canary=always' })).backend).toBe('b');
      expect((await hit('/cc', { cookie: 'canary=never' })).backend).toBe('a');
      expect((await hit('/cc')).backend).toBe('a');
    }
  });
});

/** A Set-Cookie value split into name, value and attributes (names lower-cased). */
function parseSetCookie(header: string): { name: string; value: string; attrs: Map<string, string> } {
  const [pair = '', ...rest] = header.split(';').map((s) => s.trim());
  const eq = pair.indexOf('=');
  const attrs = new Map<string, string>();
  for (const p of rest) {
    if (p === '') continue;
    const i = p.indexOf('=');
    attrs.set((i < 0 ? p : p.slice(0, i)).toLowerCase(), i < 0 ? '' : p.slice(i + 1));
  }
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attrs };
}

/** The affinity cookie of a response, if it set one. */
function affinityCookie(r: Hit, name = 'pyserve-aff'): ReturnType<typeof parseSetCookie> | undefined {
  return r.setCookie.map(parseSetCookie).find((x) => x.name === name);
}

describe('session affinity', () => {
  /** A client: its cookie value and the endpoint it is pinned to. */
  interface Client { cookie: string; backend: string }

  /** New clients (no cookie), one per distinct endpoint, until `n` distinct ones. */
  async function newClients(n: number): Promise<Client[]> {
    const clients = new Map<string, Client>();
    for (let i = 0; i < n * 10 && clients.size < n; i++) {
      const r = await hit('/sticky');
      expect(r.status).toBe(200);
      const cookie = affinityCookie(r);
      expect(cookie, 'first response sets the affinity cookie').toBeDefined();
      clients.set(r.backend!, { cookie: cookie!.value, backend: r.backend! });
    }
    expect(clients.size).toBe(n);
    return [...clients.values()];
  }

  /** Send `n` requests round the clients; each must stay on its endpoint and not be re-pinned. */
  async function stays(clients: Client[], n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const cl = clients[i % clients.length]!;
      const r = await hit('/sticky', { cookie: `other=x; pyserve-aff=${cl.cookie}` });
      expect(r.status).toBe(200);
      expect(r.backend, `request ${i} of a client pinned to ${cl.backend}`).toBe(cl.backend);
      const again = affinityCookie(r);
      if (again !== undefined) expect(again.value).toBe(cl.cookie);
    }
  }

  it('the first response sets an opaque cookie with Path=/, HttpOnly, Max-Age and SameSite, and no Secure over plain HTTP', async () => {
    const r = await hit('/sticky');
    expect(r.status).toBe(200);
    const cookie = affinityCookie(r);
    expect(cookie, `Set-Cookie: ${JSON.stringify(r.setCookie)}`).toBeDefined();
    expect(cookie!.value).toMatch(/^[!#-+\--:<-[\]-~]+$/);
    expect(cookie!.value).not.toContain('127.0.0.1');
    expect(cookie!.attrs.get('path')).toBe('/');
    expect(cookie!.attrs.has('httponly')).toBe(true);
    expect(cookie!.attrs.get('max-age')).toBe('3600');
    expect(cookie!.attrs.get('samesite')?.toLowerCase()).toBe('lax');
    expect(cookie!.attrs.has('secure')).toBe(false);
    expect(cookie!.attrs.has('domain')).toBe(false);
  });

  it('the cookie carries the configured Domain, Path and Secure, and no Max-Age without a TTL', async () => {
    const r = await hit('/sticky-attrs');
    const cookie = affinityCookie(r, 'aff2');
    expect(cookie, `Set-Cookie: ${JSON.stringify(r.setCookie)}`).toBeDefined();
    expect(cookie!.attrs.get('domain')).toMatch(/^\.?example\.com$/);
    expect(cookie!.attrs.get('path')).toBe('/sticky-attrs');
    expect(cookie!.attrs.has('secure')).toBe(true);
    expect(cookie!.attrs.has('httponly')).toBe(true);
    expect(cookie!.attrs.has('max-age')).toBe(false);
    expect(cookie!.attrs.has('samesite')).toBe(false);
  });

  it('the cookie is Secure when the request came over TLS', async () => {
    const r = await hit('/sticky', {}, tlsAgent, `https://127.0.0.1:${dp.httpsPort}`);
    expect(r.status).toBe(200);
    const cookie = affinityCookie(r);
    expect(cookie, `Set-Cookie: ${JSON.stringify(r.setCookie)}`).toBeDefined();
    expect(cookie!.attrs.has('secure')).toBe(true);
  });

  it('keeps three clients on their endpoints across 1,000 requests and a swap that adds an endpoint and changes an unrelated route', async () => {
    const clients = await newClients(3);
    expect(new Set(clients.map((x) => x.backend))).toEqual(new Set(['a', 'b', 'c']));
    await stays(clients, 1_000);
    try {
      config.sticky = [a, b, c, d];
      config.extraRoute = true;
      await push();
      expect((await hit('/extra')).status).toBe(200);
      await stays(clients, 300);
      // New clients do reach the new endpoint.
      const seen = new Set<string>();
      for (let i = 0; i < 8; i++) seen.add((await hit('/sticky')).backend!);
      expect(seen).toContain('d');
    } finally {
      config.sticky = [a, b, c];
      config.extraRoute = false;
      await push();
    }
  });

  it('when the cookie\'s endpoint leaves, another one is picked and the cookie is set again', async () => {
    const clients = await newClients(3);
    const leaving = clients.find((x) => x.backend === 'a')!;
    try {
      config.sticky = [b, c];
      await push();
      const r = await hit('/sticky', { cookie: `pyserve-aff=${leaving.cookie}` });
      expect(r.status).toBe(200);
      expect(['b', 'c']).toContain(r.backend);
      const renewed = affinityCookie(r);
      expect(renewed, 'the cookie is set again').toBeDefined();
      expect(renewed!.value).not.toBe(leaving.cookie);
      // The new cookie sticks, and the other clients never moved.
      await stays([{ cookie: renewed!.value, backend: r.backend! }, ...clients.filter((x) => x !== leaving)], 60);
    } finally {
      config.sticky = [a, b, c];
      await push();
    }
  });

  it('a garbage cookie value gets a normal pick and a new cookie', async () => {
    for (const garbage of ['garbage', 'AAAAAAAAAAAAAAAAAAAAAA', '%00%ff', '']) {
      const r = await hit('/sticky', { cookie: `pyserve-aff=${garbage}` });
      expect(r.status).toBe(200);
      expect(['a', 'b', 'c']).toContain(r.backend);
      const fresh = affinityCookie(r);
      expect(fresh, `garbage ${JSON.stringify(garbage)} gets a new cookie`).toBeDefined();
      expect(fresh!.value).not.toBe(garbage);
      await stays([{ cookie: fresh!.value, backend: r.backend! }], 10);
    }
  });
});
