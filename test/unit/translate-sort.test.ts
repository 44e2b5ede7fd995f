import { describe, expect, it } from 'vitest';
import {
  compareHostnames, compareNatural, compareOptionalAge, compareRoutes, compareStrings,
} from '../../controller/translate/sort.ts';
import type { SortableRoute } from '../../controller/translate/sort.ts';
import { compareAge, creationMs, objectKey } from '../../controller/translate/meta.ts';

const route = (over: Partial<SortableRoute>): SortableRoute => ({
  priority: 0, type: 'Prefix', value: '/', hasMethod: false, headers: 0, query: 0, createdMs: 0, namespace: 'default', name: 'a', kind: 'Ingress', rule: 0, path: 0, ...over,
});
const label = (r: SortableRoute) => `${r.priority}:${r.type}:${r.value}:${r.namespace}/${r.name}:${r.rule}/${r.path}`;

describe('compareStrings', () => {
  it('orders by code unit, not locale', () => {
    expect(['b', 'B', 'a', 'A', '_', 'ä'].sort(compareStrings)).toEqual(['A', 'B', '_', 'a', 'b', 'ä']);
  });
});

describe('compareNatural', () => {
  it.each([
    ['spec.rules[2]', 'spec.rules[10]', -1],
    ['spec.rules[10].host', 'spec.rules[9].host', 1],
    ['a', 'a', 0],
    ['a1', 'a01', -1],
    ['paths[1].path', 'paths[1].pathType', -1],
    ['x99999999999999999999', 'x100000000000000000000', -1],
    ['abc', 'abd', -1],
    ['a', 'a0', -1],
  ])('%j vs %j → %i', (a, b, sign) => {
    expect(Math.sign(compareNatural(a, b))).toBe(sign);
    expect(Math.sign(compareNatural(b, a))).toBe(sign === 0 ? 0 : -sign);
  });
});

describe('compareRoutes', () => {
  it('puts Exact before Prefix, longer prefixes first, default backends last', () => {
    const routes = [
      route({ priority: 2, value: '/' }),
      route({ priority: 1, value: '/' }),
      route({ value: '/' }),
      route({ value: '/a' }),
      route({ value: '/a/b' }),
      route({ type: 'Exact', value: '/' }),
      route({ type: 'Exact', value: '/a/b/c' }),
      route({ value: '/b' }),
    ];
    expect(routes.sort(compareRoutes).map(label)).toEqual([
      '0:Exact:/a/b/c:default/a:0/0',
      '0:Exact:/:default/a:0/0',
      '0:Prefix:/a/b:default/a:0/0',
      '0:Prefix:/a:default/a:0/0',
      '0:Prefix:/b:default/a:0/0',
      '0:Prefix:/:default/a:0/0',
      '1:Prefix:/:default/a:0/0',
      '2:Prefix:/:default/a:0/0',
    ]);
  });

  it('keeps an element-wise prefix after every path it is a prefix of', () => {
    const values = ['/', '/a', '/a/b', '/a/bc', '/ab', '/a/b/c', '/b'];
    const sorted = values.map((value) => route({ value })).sort(compareRoutes).map((r) => r.value);
    sorted.forEach((v, i) => {
      for (const later of sorted.slice(i + 1)) {
        const isPrefix = v === '/' || later === v || later.startsWith(v + '/');
        expect(isPrefix, `${later} must not come after its prefix ${v}`).toBe(false);
      }
    });
  });

  it('breaks ties by age, namespace, name, then position, so the order is total', () => {
    const tied = [
      route({ createdMs: undefined, name: 'a' }),
      route({ createdMs: 5, name: 'z' }),
      route({ createdMs: 5, namespace: 'a', name: 'z' }),
      route({ createdMs: 5, name: 'y', rule: 1 }),
      route({ createdMs: 5, name: 'y', rule: 0, path: 3 }),
      route({ createdMs: 1, name: 'q' }),
    ];
    expect(tied.sort(compareRoutes).map((r) => `${r.createdMs}:${r.namespace}/${r.name}:${r.rule}/${r.path}`)).toEqual([
      '1:default/q:0/0',
      '5:a/z:0/0',
      '5:default/y:0/3',
      '5:default/y:1/0',
      '5:default/z:0/0',
      'undefined:default/a:0/0',
    ]);
  });
});

describe('compareHostnames', () => {
  it('lists exact names, then wildcards, then the catch-all', () => {
    expect(['*', '*.b.com', 'z.com', '*.a.com', 'a.com'].sort(compareHostnames)).toEqual(['a.com', 'z.com', '*.a.com', '*.b.com', '*']);
  });
});

describe('creation time and age', () => {
  it('reads ISO strings and Dates alike, and ignores garbage', () => {
    expect(creationMs('2024-01-01T00:00:00Z')).toBe(Date.UTC(2024, 0, 1));
    expect(creationMs(new Date('2024-01-01T00:00:00Z'))).toBe(Date.UTC(2024, 0, 1));
    expect(creationMs('yesterday')).toBeUndefined();
    expect(creationMs(new Date('nope'))).toBeUndefined();
    expect(creationMs(null)).toBeUndefined();
    expect(creationMs(undefined)).toBeUndefined();
  });

  it('sorts oldest first, unknown age last, then namespace and name', () => {
    const keys = [
      objectKey({ name: 'x', namespace: 'b', creationTimestamp: '2024-01-01T00:00:00Z' }),
      objectKey({ name: 'old', creationTimestamp: new Date('2020-01-01T00:00:00Z') }),
      objectKey({ name: 'x', namespace: 'a', creationTimestamp: '2024-01-01T00:00:00Z' }),
      objectKey({ name: 'a-unknown' }),
    ].map((k) => k!);
    expect(keys.sort(compareAge).map((k) => `${k.namespace}/${k.name}`)).toEqual(['default/old', 'a/x', 'b/x', 'default/a-unknown']);
    expect(compareOptionalAge(undefined, undefined)).toBe(0);
  });

  it('skips objects without a name and defaults the namespace', () => {
    expect(objectKey({ namespace: 'x' })).toBeUndefined();
    expect(objectKey(undefined)).toBeUndefined();
    expect(objectKey({ name: 'n' })).toEqual({ namespace: 'default', name: 'n', createdMs: undefined });
  });
});
