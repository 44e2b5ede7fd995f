import { describe, expect, it } from 'vitest';
import { ConfigStore } from '../../dataplane/config/store.ts';
import { CompileError, compileRouting } from '../../dataplane/config/compile.ts';
import { PoolRegistry } from '../../dataplane/upstream/pool.ts';
import { upstreamEndpoint } from '../../dataplane/upstream/endpoint.ts';
import { direct, forward, prefix, regex, snapshot, vhost } from '../helpers/snapshots.ts';
import { validateSnapshot } from '../../dataplane/snapshot/validate.ts';
import type { Endpoint } from '../../dataplane/snapshot/schema.ts';

const ep = (port: number): Endpoint => ({ address: '127.0.0.1', port, ready: true, serving: true, terminating: false });
const head = (path: string) => ({ method: 'GET', path, rawQuery: '', headers: {} });

describe('ConfigStore', () => {
  const routes = [vhost('v', ['*'], [forward('r', prefix('/'), 'c')])];

  it('rebuilds the route table only when the routing hash changes', async () => {
    const pools = new PoolRegistry();
    const store = new ConfigStore(pools);
    expect(store.current).toBeUndefined();
    expect(store.apply(snapshot(1, routes, { c: [ep(1)] }))).toEqual({ applied: true, routingRebuilt: true, endpointsRebuilt: true });
    const first = store.current!;
    expect(store.apply(snapshot(2, routes, { c: [ep(2)] }))).toEqual({ applied: true, routingRebuilt: false, endpointsRebuilt: true });
    const second = store.current!;
    expect(second).not.toBe(first);
    expect(second.routing).toBe(first.routing);
    expect(second.generation).toBe(2);
    expect(store.apply(snapshot(3, routes, { c: [ep(2)] }))).toEqual({ applied: false, routingRebuilt: false, endpointsRebuilt: false });
    expect(store.current!.endpoints).toBe(second.endpoints);
    await pools.closeAll(100);
  });

  // The multi-worker primary checks a push, then queues its commit behind
  // others: one accepted for keeping the served routing must not be compiled
  // when another push changed that routing meanwhile.
  it('refuses a snapshot accepted for keeping the served routing once that routing changed', async () => {
    const pools = new PoolRegistry();
    const store = new ConfigStore(pools);
    store.apply(snapshot(1, routes, { c: [ep(1)] }));
    const next = snapshot(2, routes, { c: [ep(2)] });
    const checked = validateSnapshot({ ...next, routing: { hash: next.routing.hash } }, { servingRoutingHash: store.current!.routing.hash });
    expect(checked.ok).toBe(true);
    store.apply(snapshot(3, [vhost('v', ['*'], [direct('d', prefix('/'), 200, 'x')])], { c: [ep(1)] }));
    expect(() => store.apply((checked as { snapshot: typeof next }).snapshot)).toThrow(CompileError);
    expect(store.current!.generation).toBe(3);
    await pools.closeAll(100);
  });

  it('closes pools of endpoints that left, keeps the others', async () => {
    const pools = new PoolRegistry();
    const store = new ConfigStore(pools);
    store.apply(snapshot(1, routes, { c: [ep(1), ep(2)] }));
    const p1 = pools.get(upstreamEndpoint('127.0.0.1', 1), 5_000);
    const p2 = pools.get(upstreamEndpoint('127.0.0.1', 2), 5_000);
    expect(pools.size).toBe(2);
    store.apply(snapshot(2, routes, { c: [ep(2)] }));
    expect(pools.size).toBe(1);
    expect(p1.closed).toBe(true);
    expect(p2.closed).toBe(false);
    expect(pools.get(upstreamEndpoint('127.0.0.1', 2), 5_000)).toBe(p2);
    // A stale request picking a departed endpoint gets a pool that closes behind it.
    const stale = pools.get(upstreamEndpoint('127.0.0.1', 1), 5_000);
    expect(stale).not.toBe(p1);
    expect(pools.size).toBe(1);
    await Promise.resolve();
    expect(stale.closed).toBe(true);
    await pools.closeAll(100);
    expect(p2.closed).toBe(true);
  });

  it('keeps the current config when a snapshot does not compile', () => {
    const store = new ConfigStore(new PoolRegistry());
    store.apply(snapshot(1, routes, { c: [ep(1)] }));
    const before = store.current;
    // A value that is a valid regex alone but not inside the anchoring group.
    const bad = snapshot(2, [vhost('v', ['*'], [direct('d', regex('a)|(b'), 200)])], {});
    expect(() => store.apply(bad)).toThrow(CompileError);
    expect(store.current).toBe(before);
  });
});

describe('compiled route table', () => {
  it('matches the first route in snapshot order', () => {
    const compiled = compileRouting(snapshot(1, [vhost('v', ['*'], [
      direct('broad', prefix('/'), 200),
      direct('narrow', prefix('/api'), 200),
    ])], {}).routing);
    expect(compiled.table.match('x', head('/api/x'))?.name).toBe('broad');
  });

  it('applies timeout defaults and collects connect timeouts', () => {
    const compiled = compileRouting(snapshot(1, [vhost('v', ['*'], [
      forward('a', prefix('/a'), 'c'),
      forward('b', prefix('/b'), 'c', { upstreamConnectMs: 250, requestMs: 1000, websocketIdleMs: 30_000 }),
    ])], { c: [] }).routing);
    expect(compiled.table.match('h', head('/a'))?.timeouts).toEqual({ connectMs: 5_000, responseMs: 60_000, requestMs: 0, websocketIdleMs: 3_600_000 });
    expect(compiled.table.match('h', head('/b'))?.timeouts).toEqual({ connectMs: 250, responseMs: 60_000, requestMs: 1000, websocketIdleMs: 30_000 });
    expect([...compiled.connectTimeouts].sort()).toEqual([250, 5_000]);
  });
});
