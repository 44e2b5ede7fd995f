import { describe, expect, it } from 'vitest';
import { compilePathMatch } from '../../dataplane/routing/path-match.ts';
import { compileConditions } from '../../dataplane/routing/conditions.ts';
import { splitTarget } from '../../dataplane/routing/request-head.ts';
import type { RouteMatch } from '../../dataplane/snapshot/schema.ts';

describe('Exact', () => {
  it.each<[string, string, boolean]>([
    ['/foo', '/foo', true],
    ['/foo', '/foo/', false],
    ['/foo', '/Foo', false],
    ['/foo', '/foo/bar', false],
    ['/', '/', true],
    ['/', '/a', false],
  ])('%s vs %s → %s', (value, path, want) => {
    expect(compilePathMatch({ type: 'Exact', value })(path)).toBe(want);
  });
});

describe('Prefix (element-wise)', () => {
  it.each<[string, string, boolean]>([
    ['/foo', '/foo', true],
    ['/foo', '/foo/', true],
    ['/foo', '/foo/bar', true],
    ['/foo', '/foobar', false],
    ['/foo', '/fo', false],
    ['/foo', '/FOO', false],
    ['/foo/', '/foo', true],
    ['/foo/', '/foo/bar', true],
    ['/foo/', '/foobar', false],
    ['/foo//', '/foo', true],
    ['/aaa/bbb', '/aaa/bbb/ccc', true],
    ['/aaa/bbb', '/aaa/bbbxyz', false],
    ['/', '/', true],
    ['/', '/anything/at/all', true],
    ['/foo%20bar', '/foo%20bar/x', true],
    ['/foo bar', '/foo%20bar', false],
  ])('%s vs %s → %s', (value, path, want) => {
    expect(compilePathMatch({ type: 'Prefix', value })(path)).toBe(want);
  });
});

describe('RegularExpression (anchored at the start)', () => {
  it.each<[string, string, boolean]>([
    ['/api/v[0-9]+', '/api/v2', true],
    ['/api/v[0-9]+', '/api/v2/users', true],
    ['/api/v[0-9]+', '/x/api/v2', false],
    ['/api/v[0-9]+$', '/api/v2/users', false],
    ['/a|/b', '/b/c', true],
    ['/a|/b', '/x/b', false],
    ['.*\\.png', '/img/x.png', true],
    ['/Case', '/case', false],
  ])('%s vs %s → %s', (value, path, want) => {
    expect(compilePathMatch({ type: 'RegularExpression', value })(path)).toBe(want);
  });
});

describe('conditions', () => {
  const head = (method: string, headers: Record<string, string>, rawQuery = '') => ({ method, path: '/', rawQuery, headers });
  const run = (match: Omit<RouteMatch, 'path'>, h: ReturnType<typeof head>): boolean => {
    const c = compileConditions({ path: { type: 'Prefix', value: '/' }, ...match });
    return c === null ? true : c(h, { params: undefined });
  };

  it('is null when a route has only a path', () => {
    expect(compileConditions({ path: { type: 'Prefix', value: '/' } })).toBeNull();
  });

  it.each<[string, Omit<RouteMatch, 'path'>, ReturnType<typeof head>, boolean]>([
    ['method in set', { methods: ['GET', 'HEAD'] }, head('HEAD', {}), true],
    ['method not in set', { methods: ['GET'] }, head('POST', {}), false],
    ['header exact', { headers: [{ name: 'X-Env', type: 'Exact', value: 'canary' }] }, head('GET', { 'x-env': 'canary' }), true],
    ['header exact is case-sensitive in value', { headers: [{ name: 'x-env', type: 'Exact', value: 'canary' }] }, head('GET', { 'x-env': 'Canary' }), false],
    ['header absent', { headers: [{ name: 'x-env', type: 'Exact', value: '' }] }, head('GET', {}), false],
    ['header present and empty', { headers: [{ name: 'x-env', type: 'Exact', value: '' }] }, head('GET', { 'x-env': '' }), true],
    ['header regex is unanchored', { headers: [{ name: 'user-agent', type: 'RegularExpression', value: 'Mobile' }] }, head('GET', { 'user-agent': 'X Mobile Y' }), true],
    ['all headers must hold', { headers: [{ name: 'a', type: 'Exact', value: '1' }, { name: 'b', type: 'Exact', value: '2' }] }, head('GET', { a: '1', b: '3' }), false],
    ['query exact', { query: [{ name: 'v', type: 'Exact', value: '2' }] }, head('GET', {}, 'a=1&v=2'), true],
    ['query is decoded', { query: [{ name: 'q', type: 'Exact', value: 'a b' }] }, head('GET', {}, 'q=a%20b'), true],
    ['query name is case-sensitive', { query: [{ name: 'V', type: 'Exact', value: '2' }] }, head('GET', {}, 'v=2'), false],
    ['first query value decides', { query: [{ name: 'v', type: 'Exact', value: '2' }] }, head('GET', {}, 'v=1&v=2'), false],
    ['query regex', { query: [{ name: 'id', type: 'RegularExpression', value: '^[0-9]+$' }] }, head('GET', {}, 'id=123'), true],
    ['method and header together', { methods: ['POST'], headers: [{ name: 'a', type: 'Exact', value: '1' }] }, head('GET', { a: '1' }), false],
  ])('%s', (_name, match, h, want) => {
    expect(run(match, h)).toBe(want);
  });
});

describe('splitTarget', () => {
  it.each<[string, { path: string; rawQuery: string; pathAndQuery: string; authority?: string }]>([
    ['/a/b?x=1&y', { path: '/a/b', rawQuery: 'x=1&y', pathAndQuery: '/a/b?x=1&y' }],
    ['/a%2Fb', { path: '/a%2Fb', rawQuery: '', pathAndQuery: '/a%2Fb' }],
    ['/a?', { path: '/a', rawQuery: '', pathAndQuery: '/a?' }],
    ['http://Example.com:8080/p?q=1', { path: '/p', rawQuery: 'q=1', pathAndQuery: '/p?q=1', authority: 'Example.com:8080' }],
    ['http://example.com', { path: '/', rawQuery: '', pathAndQuery: '/', authority: 'example.com' }],
    ['http://example.com?x', { path: '/', rawQuery: 'x', pathAndQuery: '/?x', authority: 'example.com' }],
    ['*', { path: '*', rawQuery: '', pathAndQuery: '*' }],
  ])('%s', (target, want) => {
    expect(splitTarget(target)).toEqual(want);
  });
});
