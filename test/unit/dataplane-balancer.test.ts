import { describe, expect, it } from 'vitest';
import { RoundRobin, SmoothWeighted } from '../../dataplane/upstream/balancer.ts';
import { compileEndpoints, pickEndpoint } from '../../dataplane/config/compile.ts';
import type { Endpoint } from '../../dataplane/snapshot/schema.ts';

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

describe('RoundRobin', () => {
  it('cycles in order and handles empty lists', () => {
    const rr = new RoundRobin(['x', 'y', 'z']);
    expect(Array.from({ length: 7 }, () => rr.pick())).toEqual(['x', 'y', 'z', 'x', 'y', 'z', 'x']);
    expect(new RoundRobin([]).pick()).toBeUndefined();
  });
});

describe('endpoint selection', () => {
  const ep = (port: number, ready: boolean, serving = ready, terminating = false): Endpoint => ({ address: '10.0.0.1', port, ready, serving, terminating });

  it('uses ready endpoints only while any is ready', () => {
    const compiled = compileEndpoints({ hash: 'h', clusters: [{ cluster: 'c', endpoints: [ep(1, true), ep(2, false, true, true), ep(3, true)] }] });
    const c = compiled.clusters.get('c');
    expect(Array.from({ length: 4 }, () => pickEndpoint(c)?.port)).toEqual([1, 3, 1, 3]);
    expect([...compiled.keys].sort()).toEqual(['10.0.0.1:1', '10.0.0.1:2', '10.0.0.1:3']);
  });

  it('falls back to serving (terminating) endpoints when none is ready, never to non-serving ones', () => {
    const compiled = compileEndpoints({ hash: 'h', clusters: [{ cluster: 'c', endpoints: [ep(1, false, true, true), ep(2, false, false, true)] }] });
    const c = compiled.clusters.get('c');
    expect(Array.from({ length: 3 }, () => pickEndpoint(c)?.port)).toEqual([1, 1, 1]);
    const none = compileEndpoints({ hash: 'h', clusters: [{ cluster: 'c', endpoints: [ep(2, false)] }] });
    expect(pickEndpoint(none.clusters.get('c'))).toBeUndefined();
    expect(pickEndpoint(undefined)).toBeUndefined();
  });

  it('brackets IPv6 addresses in the pool key and origin', () => {
    const compiled = compileEndpoints({ hash: 'h', clusters: [{ cluster: 'c', endpoints: [{ address: 'fd00::1', port: 80, ready: true, serving: true, terminating: false }] }] });
    expect(pickEndpoint(compiled.clusters.get('c'))).toMatchObject({ key: '[fd00::1]:80', origin: 'http://[fd00::1]:80' });
  });
});
