import { describe, expect, it } from 'vitest';
import { SmoothWeighted } from '../../dataplane/upstream/balancer.ts';
import { compileEndpoints, compileUpstreams, endpointKeysByCluster } from '../../dataplane/config/compile.ts';
import type { Cluster, Endpoint } from '../../dataplane/snapshot/schema.ts';
import type { ClusterBalancer, Member, PickInput } from '../../dataplane/upstream/cluster-balancer.ts';
import { UpstreamHealth } from '../../dataplane/upstream/health-state.ts';
import { admit, release } from '../../dataplane/upstream/admission.ts';
import { budgetAllows, compileRetry, errorCondition, methodRetryable, statusRetryable } from '../../dataplane/upstream/retry.ts';

const count = <T>(items: T[]): Map<T, number> => {
  const m = new Map<T, number>();
  for (const i of items) m.set(i, (m.get(i) ?? 0) + 1);
  return m;
};

describe('SmoothWeighted', () => {
  it('picks each item exactly weight times per cycle, interleaved', () => {
    const w = new SmoothWeighted([{ item: 'a', weight: 5 }, { item: 'b', weight: 1 }, { item: 'c', weight: 1 }]);
    const picks = Array.from({ length: 7 }, () => w.pick());
    expect(picks).toEqual(['a', 'a', 'b', 'a', 'c', 'a', 'a']);
    const more = Array.from({ length: 70 }, () => w.pick());
    expect(count(more)).toEqual(new Map([['a', 50], ['b', 10], ['c', 10]]));
  });

  it('never picks weight 0, and gives undefined when all are 0', () => {
    const w = new SmoothWeighted([{ item: 'a', weight: 0 }, { item: 'b', weight: 2 }]);
    expect(Array.from({ length: 4 }, () => w.pick())).toEqual(['b', 'b', 'b', 'b']);
    expect(w.items).toEqual(['b']);
    expect(new SmoothWeighted([{ item: 'a', weight: 0 }]).pick()).toBeUndefined();
  });
});

const ep = (port: number, ready: boolean, serving = ready, terminating = false): Endpoint => ({ address: '10.0.0.1', port, ready, serving, terminating });
const input = (headers: Record<string, string> = {}, clientAddress = '192.0.2.9', url = '/'): PickInput => ({ headers, clientAddress, rawQuery: url.includes('?') ? url.slice(url.indexOf('?') + 1) : undefined, pathAndQuery: url });

/** Balancer over ports `readyPorts` (+ serving-only `servingPorts`) with a fresh or given health state. */
function balancer(cluster: Partial<Cluster>, readyPorts: number[], servingPorts: number[] = [], health = new UpstreamHealth()): ClusterBalancer {
  const c: Cluster = { name: 'c', protocol: 'http', ...cluster };
  const compiled = compileEndpoints({ hash: 'h', clusters: [{ cluster: c.name, endpoints: [...readyPorts.map((p) => ep(p, true)), ...servingPorts.map((p) => ep(p, false, true, true))] }] });
  health.sync([c], endpointKeysByCluster(compiled));
  return compileUpstreams([c], compiled, health).get(c.name)!;
}

const port = (m: Member | undefined): number | undefined => m?.endpoint.port;

describe('endpoint selection', () => {
  it('uses ready endpoints only while any is ready, round robin', () => {
    const compiled = compileEndpoints({ hash: 'h', clusters: [{ cluster: 'c', endpoints: [ep(1, true), ep(2, false, true, true), ep(3, true)] }] });
    expect([...compiled.keys].sort()).toEqual(['10.0.0.1:1', '10.0.0.1:2', '10.0.0.1:3']);
    const b = balancer({}, [1, 3], [2]);
    expect(Array.from({ length: 4 }, () => port(b.pick(input())))).toEqual([1, 3, 1, 3]);
  });

  it('falls back to serving (terminating) endpoints when none is ready, never to non-serving ones', () => {
    const b = balancer({}, [], [1]);
    expect(Array.from({ length: 3 }, () => port(b.pick(input())))).toEqual([1, 1, 1]);
    const none = compileEndpoints({ hash: 'h', clusters: [{ cluster: 'c', endpoints: [ep(2, false)] }] });
    expect(none.clusters.get('c')).toEqual({ name: 'c', ready: [], serving: [] });
    expect(balancer({}, []).pick(input())).toBeUndefined();
  });

  it('brackets IPv6 addresses in the pool key', () => {
    const compiled = compileEndpoints({ hash: 'h', clusters: [{ cluster: 'c', endpoints: [{ address: 'fd00::1', port: 80, ready: true, serving: true, terminating: false }] }] });
    expect(compiled.clusters.get('c')!.ready[0]).toMatchObject({ key: '[fd00::1]:80' });
  });

  it('avoids excluded endpoints (a retry) while another one is left', () => {
    const b = balancer({}, [1, 2]);
    for (let i = 0; i < 10; i++) expect(port(b.pick(input(), new Set(['10.0.0.1:1'])))).toBe(2);
    expect(port(b.pick(input(), new Set(['10.0.0.1:1', '10.0.0.1:2'])))).toBeDefined();
  });
});

describe('policies', () => {
  it('Random spreads about evenly', () => {
    const b = balancer({ loadBalancer: { policy: 'Random' } }, [1, 2, 3, 4]);
    const counts = count(Array.from({ length: 8_000 }, () => port(b.pick(input()))));
    for (const p of [1, 2, 3, 4]) expect(counts.get(p)).toBeGreaterThan(1_700);
  });

  it('LeastRequest (two choices) never picks the busier of two endpoints', () => {
    const b = balancer({ loadBalancer: { policy: 'LeastRequest' } }, [1, 2]);
    b.ready[0]!.state.inFlight = 5;
    for (let i = 0; i < 50; i++) expect(port(b.pick(input()))).toBe(2);
    const three = balancer({ loadBalancer: { policy: 'LeastRequest' } }, [1, 2, 3]);
    three.ready[0]!.state.inFlight = 9;
    const counts = count(Array.from({ length: 3_000 }, () => port(three.pick(input()))));
    // The busy one wins no pair: it is only ever picked when drawn twice, which P2C never does.
    expect(counts.get(1) ?? 0).toBe(0);
  });

  it('ConsistentHash keeps a key on one endpoint and moves only the removed endpoint\'s keys', () => {
    const lb = { loadBalancer: { policy: 'ConsistentHash' as const, hashOn: { type: 'Header' as const, name: 'X-User' } } };
    const five = balancer(lb, [1, 2, 3, 4, 5]);
    const keys = Array.from({ length: 2_000 }, (_, i) => `user-${i}`);
    const before = new Map(keys.map((k) => [k, port(five.pick(input({ 'x-user': k })))]));
    for (const k of keys.slice(0, 50)) expect(port(five.pick(input({ 'x-user': k })))).toBe(before.get(k));
    const spread = count([...before.values()]);
    for (const p of [1, 2, 3, 4, 5]) expect(spread.get(p)).toBeGreaterThan(200);
    const four = balancer(lb, [1, 2, 4, 5]);
    let moved = 0;
    for (const k of keys) {
      const now = port(four.pick(input({ 'x-user': k })));
      if (before.get(k) === 3) expect(now).not.toBe(3);
      else if (now !== before.get(k)) moved++;
    }
    expect(moved).toBe(0);
  });

  it('ConsistentHash on the source IP, the query and the cookie; requests without the key are spread', () => {
    const ip = balancer({ loadBalancer: { policy: 'ConsistentHash', hashOn: { type: 'SourceIP' } } }, [1, 2, 3]);
    const a = port(ip.pick(input({}, '198.51.100.7')));
    for (let i = 0; i < 20; i++) expect(port(ip.pick(input({}, '198.51.100.7')))).toBe(a);
    const q = balancer({ loadBalancer: { policy: 'ConsistentHash', hashOn: { type: 'QueryParameter', name: 'id' } } }, [1, 2, 3]);
    const qa = port(q.pick(input({}, undefined, '/x?id=42&t=1')));
    expect(port(q.pick(input({}, undefined, '/y?t=2&id=42')))).toBe(qa);
    const c = balancer({ loadBalancer: { policy: 'ConsistentHash', hashOn: { type: 'Cookie', name: 'sid' } } }, [1, 2, 3]);
    const ca = port(c.pick(input({ cookie: 'a=1; sid=abc' })));
    expect(port(c.pick(input({ cookie: 'sid=abc' })))).toBe(ca);
    expect(new Set(Array.from({ length: 6 }, () => port(c.pick(input())))).size).toBe(3);
  });
});

describe('health', () => {
  const outlier = { outlierDetection: { consecutive5xx: 3, consecutiveConnectFailures: 2, baseEjectionMs: 60_000, maxEjectionPercent: 50 } };

  it('ejects after N consecutive 5xx, not after N spread among successes', () => {
    const health = new UpstreamHealth();
    const b = balancer(outlier, [1, 2, 3, 4], [], health);
    const [m1, m2] = b.ready;
    health.record(b.state, m1!.state, '5xx');
    health.record(b.state, m1!.state, '5xx');
    health.record(b.state, m1!.state, 'success');
    health.record(b.state, m1!.state, '5xx');
    expect(m1!.state.ejectedUntil).toBe(0);
    health.record(b.state, m1!.state, '5xx');
    health.record(b.state, m1!.state, '5xx');
    expect(m1!.state.ejectedUntil).toBeGreaterThan(Date.now());
    expect(Array.from({ length: 9 }, () => port(b.pick(input())))).not.toContain(1);
    health.record(b.state, m2!.state, 'connect-failure');
    health.record(b.state, m2!.state, 'connect-failure');
    expect(m2!.state.ejectedUntil).toBeGreaterThan(0);
    // 50% of 4: a third ejection is refused.
    const m3 = b.ready[2]!;
    for (let i = 0; i < 3; i++) health.record(b.state, m3.state, '5xx');
    expect(m3.state.ejectedUntil).toBe(0);
  });

  it('always allows one ejection, and grows the ejection time', () => {
    const health = new UpstreamHealth();
    const b = balancer({ outlierDetection: { consecutive5xx: 1, baseEjectionMs: 1_000, maxEjectionMs: 2_500, maxEjectionPercent: 0 } }, [1, 2], [], health);
    const s = b.ready[0]!.state;
    health.record(b.state, s, '5xx');
    expect(s.ejections).toBe(1);
    s.ejectedUntil = Date.now() - 1; // as if the first ejection ran out
    health.record(b.state, s, '5xx');
    expect(s.ejectedUntil - Date.now()).toBeGreaterThan(1_900);
    s.ejectedUntil = Date.now() - 1;
    health.record(b.state, s, '5xx');
    expect(s.ejectedUntil - Date.now()).toBeLessThanOrEqual(2_500);
  });

  it('panics below the threshold: all ready endpoints take traffic again', () => {
    const health = new UpstreamHealth();
    const b = balancer({ panicThresholdPercent: 50 }, [1, 2, 3], [], health);
    health.setActiveVerdicts(new Set(['c\n10.0.0.1:1']));
    expect(b.panic).toBe(false);
    expect(new Set(Array.from({ length: 6 }, () => port(b.pick(input()))))).toEqual(new Set([2, 3]));
    health.setActiveVerdicts(new Set(['c\n10.0.0.1:1', 'c\n10.0.0.1:2']));
    expect(b.panic).toBe(true);
    expect(new Set(Array.from({ length: 6 }, () => port(b.pick(input()))))).toEqual(new Set([1, 2, 3]));
    const off = balancer({ panicThresholdPercent: 0 }, [1], [], health);
    health.setActiveVerdicts(new Set(['c\n10.0.0.1:1']));
    expect(off.pick(input())).toBeUndefined();
  });

  it('keeps verdicts and ejections across a swap that keeps the endpoint, and forgets an endpoint that left', () => {
    const health = new UpstreamHealth();
    const b = balancer({ outlierDetection: { consecutive5xx: 1 } }, [1, 2], [], health);
    health.record(b.state, b.ready[0]!.state, '5xx');
    health.setActiveVerdicts(new Set(['c\n10.0.0.1:2']));
    const again = balancer({ outlierDetection: { consecutive5xx: 1 } }, [1, 2, 3], [], health);
    expect(again.ready[0]!.state.ejectedUntil).toBeGreaterThan(Date.now());
    expect(again.ready[1]!.state.activeHealthy).toBe(false);
    balancer({}, [2, 3], [], health);
    const back = balancer({}, [1, 2, 3], [], health);
    expect(back.ready[0]!.state.ejectedUntil).toBe(0);
  });

  it('applies verdicts that arrive before the endpoint does (worker cluster ordering)', () => {
    const health = new UpstreamHealth();
    health.setActiveVerdicts(new Set(['c\n10.0.0.1:7']));
    const b = balancer({}, [6, 7], [], health);
    expect(b.ready[1]!.state.activeHealthy).toBe(false);
  });
});

describe('circuit breaking and retry budget', () => {
  it('queues past maxConnections up to maxPendingRequests, then refuses; release starts the oldest waiter', () => {
    const state = new UpstreamHealth().cluster('c');
    const limits = { maxConnections: 1, maxPendingRequests: 1 };
    const started: number[] = [];
    expect(admit(state, limits, () => started.push(1), undefined).state).toBe('admitted');
    expect(admit(state, limits, () => started.push(2), undefined).state).toBe('queued');
    expect(admit(state, limits, () => started.push(3), undefined)).toEqual({ state: 'refused', limit: 'max_pending_requests' });
    expect(started).toEqual([1]);
    release(state, limits);
    expect(started).toEqual([1, 2]);
    expect(state.inFlight).toBe(1);
    expect(admit(state, { maxConnections: 1, maxPendingRequests: 0 }, () => undefined, undefined)).toEqual({ state: 'refused', limit: 'max_connections' });
    const q = admit(state, limits, () => started.push(4), undefined);
    if (q.state === 'queued') q.cancel();
    release(state, limits);
    expect(started).toEqual([1, 2]);
  });

  it('allows retries up to the budget share of requests in flight, or the minimum', () => {
    const r = compileRetry({ attempts: 3, budgetPercent: 20, minRetryConcurrency: 1 }, 1_000)!;
    const state = new UpstreamHealth().cluster('c');
    state.inFlight = 20;
    state.retriesInFlight = 3;
    expect(budgetAllows(r, state)).toBe(true);
    state.retriesInFlight = 4;
    expect(budgetAllows(r, state)).toBe(false);
    state.inFlight = 1;
    state.retriesInFlight = 0;
    expect(budgetAllows(r, state)).toBe(true);
    state.retriesInFlight = 1;
    expect(budgetAllows(r, state)).toBe(false);
  });

  it('maps conditions and methods', () => {
    const r = compileRetry({ attempts: 1, on: ['gateway-error'], statuses: [429] }, 1_000)!;
    expect([500, 502, 503, 504, 429, 404].map((s) => statusRetryable(r, s))).toEqual([false, true, true, true, true, false]);
    expect(methodRetryable(r, 'POST')).toBe(false);
    expect(methodRetryable(r, 'PUT')).toBe(true);
    expect(errorCondition(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe('connect-failure');
    expect(errorCondition(Object.assign(new Error('x'), { code: 'PYSERVE_UPSTREAM_HEADERS_TIMEOUT' }))).toBe('timeout');
    expect(errorCondition(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe('reset');
    expect(compileRetry({ attempts: 0 }, 1_000)).toBeUndefined();
  });
});
