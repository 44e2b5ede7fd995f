// Route translation pieces (durations, ordering, ownership) and invariants
// over generated mixes of Ingresses and Routes.
import { describe, expect, it } from 'vitest';
import type { RouteObject as ApiRouteObject } from '../../controller/api/route.ts';
import { parseDuration, translateTimeouts } from '../../controller/translate/durations.ts';
import { compareRoutes } from '../../controller/translate/sort.ts';
import type { SortableRoute } from '../../controller/translate/sort.ts';
import { classSelector } from '../../controller/translate/ingress-class.ts';
import { translate } from '../../controller/translate/index.ts';
import type { ClusterState, Ingress, RouteObject, TranslateOptions } from '../../controller/translate/index.ts';
import { validateSnapshot } from '../../dataplane/snapshot/validate.ts';
import { compileRouting } from '../../dataplane/config/compile.ts';

describe('parseDuration', () => {
  it.each<[string, number | undefined]>([
    ['500ms', 500],
    ['10s', 10_000],
    ['1m', 60_000],
    ['1m30s', 90_000],
    ['1h30m30s500ms', 5_430_500],
    ['01h', 3_600_000],
    ['1ms', 1],
    ['1m1ms', 60_001],
    ['1s1s', 2_000],
    ['0s', 0],
    ['99999h', 99_999 * 3_600_000],
    ['', undefined],
    ['10', undefined],
    ['1.5s', undefined],
    ['-1s', undefined],
    ['1d', undefined],
    ['1us', undefined],
    ['100000s', undefined],
    ['1h1m1s1ms1h', undefined],
  ])('%j → %j', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
});

describe('translateTimeouts', () => {
  it('maps each field and leaves out what is not set', () => {
    expect(translateTimeouts(undefined)).toEqual({ ok: true, timeouts: undefined });
    expect(translateTimeouts({})).toEqual({ ok: true, timeouts: undefined });
    expect(translateTimeouts({ request: '24h', backendRequest: '24h', connect: '1h' }))
      .toEqual({ ok: true, timeouts: { requestMs: 86_400_000, upstreamResponseMs: 86_400_000, upstreamConnectMs: 3_600_000 } });
  });

  it('allows a backendRequest longer than a disabled (0s) request timeout', () => {
    expect(translateTimeouts({ request: '0s', backendRequest: '5m' })).toEqual({ ok: true, timeouts: { requestMs: 0, upstreamResponseMs: 300_000 } });
  });

  it('reports every unusable value and keeps none', () => {
    const r = translateTimeouts({ request: '24h1ms', backendRequest: '0s', connect: '0ms' });
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.problems.map((p) => p.field)).toEqual(['request', 'backendRequest', 'connect']);
    expect(translateTimeouts({ connect: '1h1ms' }).ok).toBe(false);
    expect(translateTimeouts({ request: '1s', backendRequest: '1001ms' }).ok).toBe(false);
    expect(translateTimeouts({ request: '1s', backendRequest: '1000ms' }).ok).toBe(true);
    // Syntax the CRD schema would have refused is reported too, not trusted.
    expect(translateTimeouts({ request: '1.5s' }).ok).toBe(false);
  });
});

describe('compareRoutes with Route matches', () => {
  const r = (over: Partial<SortableRoute>): SortableRoute => ({
    priority: 0, type: 'Prefix', value: '/a', hasMethod: false, headers: 0, query: 0, createdMs: 0,
    namespace: 'default', name: 'r', kind: 'Route', rule: 0, path: 0, ...over,
  });
  const label = (x: SortableRoute) => `${x.type} ${x.value} m${Number(x.hasMethod)} h${x.headers} q${x.query} ${x.kind}:${x.name}@${String(x.createdMs)}`;

  it('orders Exact, longest Prefix, regex; then method, headers, query; then age', () => {
    const routes = [
      r({ type: 'RegularExpression', value: '/a.*' }),
      r({ type: 'RegularExpression', value: '/a/b.*' }),
      r({ kind: 'Ingress', name: 'ing', createdMs: -1 }),
      r({ query: 2 }),
      r({ headers: 1, query: 5 }),
      r({ headers: 2 }),
      r({ hasMethod: true }),
      r({ hasMethod: true, headers: 1 }),
      r({ value: '/a/b' }),
      r({ type: 'Exact', value: '/a' }),
      r({ priority: 1, value: '/' }),
    ];
    expect(routes.sort(compareRoutes).map(label)).toEqual([
      'Exact /a m0 h0 q0 Route:r@0',
      'Prefix /a/b m0 h0 q0 Route:r@0',
      'Prefix /a m1 h1 q0 Route:r@0',
      'Prefix /a m1 h0 q0 Route:r@0',
      'Prefix /a m0 h2 q0 Route:r@0',
      'Prefix /a m0 h1 q5 Route:r@0',
      'Prefix /a m0 h0 q2 Route:r@0',
      'Prefix /a m0 h0 q0 Ingress:ing@-1',
      'RegularExpression /a/b.* m0 h0 q0 Route:r@0',
      'RegularExpression /a.* m0 h0 q0 Route:r@0',
      'Prefix / m0 h0 q0 Route:r@0',
    ]);
  });

  it('orders regexes of one length by age before pattern, since they can overlap', () => {
    const sorted = [r({ type: 'RegularExpression', value: '/a.', createdMs: 5 }), r({ type: 'RegularExpression', value: '/b.', createdMs: 1 })].sort(compareRoutes);
    expect(sorted.map((x) => x.value)).toEqual(['/b.', '/a.']);
  });

  it('tells an Ingress and a Route of one name and age apart', () => {
    const sorted = [r({ kind: 'Route' }), r({ kind: 'Ingress' })].sort(compareRoutes);
    expect(sorted.map((x) => x.kind)).toEqual(['Ingress', 'Route']);
  });
});

describe('Route ownership', () => {
  const ME = 'pyserve.io/ingress-controller';
  const ours = { metadata: { name: 'pyserve' }, spec: { controller: ME } };
  const route = (spec: unknown): RouteObject => ({ metadata: { name: 'r' }, spec });

  it.each<[string, unknown, boolean, boolean]>([
    ['names our class', { ingressClassName: 'pyserve' }, false, true],
    ['names another class', { ingressClassName: 'nginx' }, true, false],
    ['no class, no default', {}, false, false],
    ['no class, watchIngressWithoutClass', {}, true, true],
    ['empty class is no class', { ingressClassName: '' }, true, true],
    ['a class that is not a string is no class', { ingressClassName: 7 }, true, true],
    ['a class that is not a string, no default', { ingressClassName: 7 }, false, false],
    ['no spec at all', undefined, true, true],
    ['a spec that is not an object', 'nonsense', true, true],
  ])('%s', (_title, spec, watchIngressWithoutClass, expected) => {
    expect(classSelector([ours], { controllerName: ME, watchIngressWithoutClass }).ownsRoute(route(spec))).toBe(expected);
  });

  it('ignores the legacy Ingress class annotation', () => {
    const r: RouteObject = { metadata: { name: 'r', annotations: { 'kubernetes.io/ingress.class': 'pyserve' } }, spec: {} };
    expect(classSelector([ours], { controllerName: ME }).ownsRoute(r)).toBe(false);
  });
});

describe('translate with Routes', () => {
  it('accepts Route objects typed by controller/api/route.ts', () => {
    // Compile-time check: the CRD module's RouteObject fits ClusterState.routes.
    const route: ApiRouteObject = {
      apiVersion: 'pyserve.io/v1alpha1',
      kind: 'Route',
      metadata: { name: 'r', namespace: 'ns', generation: 4, creationTimestamp: new Date('2024-01-01T00:00:00Z') },
      spec: { rules: [{ backends: [{ name: 'web', port: 80 }] }] },
      status: { observedGeneration: 3 },
    };
    const state: ClusterState = {
      ingresses: [], ingressClasses: [], endpointSlices: [], routes: [route],
      services: [{ metadata: { name: 'web', namespace: 'ns' }, spec: { ports: [{ port: 80 }] } }],
    };
    const r = translate(state, { generation: 1, watchIngressWithoutClass: true });
    expect(r.failures).toEqual([]);
    expect(r.routeStatuses).toEqual([{
      namespace: 'ns', name: 'r', generation: 4,
      conditions: [
        { type: 'Accepted', status: 'True', reason: 'Accepted', message: '1 route programmed' },
        { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'all backend references resolved' },
      ],
    }]);
  });

  it('gives no route statuses when there are no Routes', () => {
    const r = translate({ ingresses: [], ingressClasses: [], services: [], endpointSlices: [] }, { generation: 1 });
    expect(r.routeStatuses).toEqual([]);
  });

  it('reads a missing or malformed generation as 0', () => {
    const routes: RouteObject[] = [
      { metadata: { name: 'a', generation: -1 }, spec: { rules: [{ backends: [{ name: 'x', port: 1 }] }] } },
      { metadata: { name: 'b', generation: 1.5 }, spec: { rules: [{ backends: [{ name: 'x', port: 1 }] }] } },
    ];
    const r = translate({ ingresses: [], ingressClasses: [], services: [], endpointSlices: [], routes }, { generation: 1, watchIngressWithoutClass: true });
    expect(r.routeStatuses.map((s) => s.generation)).toEqual([0, 0]);
  });

  it('caps the failures of a garbage spec', () => {
    const backends = Array.from({ length: 16 }, () => ({ name: 1, port: 'x' }));
    const routes: RouteObject[] = [{ metadata: { name: 'g' }, spec: { rules: [{ backends }] } }];
    const r = translate({ ingresses: [], ingressClasses: [], services: [], endpointSlices: [], routes }, { generation: 1, watchIngressWithoutClass: true });
    expect(r.failures).toHaveLength(11);
    expect(r.failures.every((f) => f.reason === 'InvalidRouteSpec')).toBe(true);
    expect(r.failures.find((f) => f.field === 'spec')?.message).toBe('22 more schema problems not listed; the Route is not accepted');
  });
});

describe('translate invariants on generated Ingresses and Routes', () => {
  // Small pools so that generated objects collide: same hosts, same paths
  // and conditions, missing services, bad regexes and timeouts, duplicates.
  const HOSTS = ['a.example.com', '*.example.com', 'b.example.com', '10.0.0.1', 'Bad_Host'];
  const PATHS = ['/', '/a', '/a/', '/a/b', 'rel', '/x//y', '/a?b'];
  const REGEXES = ['/a.*', '/[0-9]+', '(', 'a)|(b', '.*'];
  const METHODS = ['GET', 'POST', 'get'];
  const SERVICES = ['web', 'api', 'missing', 'ext'];
  const PORTS = [80, 81, 8080];
  const DURATIONS = ['0s', '500ms', '1m30s', '2h', '10', '0ms'];

  function generate(random: () => number): { state: ClusterState; opts: TranslateOptions } {
    const pick = <T>(l: readonly T[]): T => l[Math.floor(random() * l.length)] as T;
    const maybe = <T>(p: number, f: () => T): T | undefined => (random() < p ? f() : undefined);
    const values = () => Array.from({ length: Math.floor(random() * 3) }, () => ({
      name: pick(['x-a', 'X-A', 'x-b', 'q']),
      ...(random() < 0.3 ? { type: 'RegularExpression', value: pick(REGEXES) } : { value: pick(['1', '2']) }),
    }));
    const match = () => ({
      ...(random() < 0.9 ? { path: random() < 0.25 ? { type: 'RegularExpression', value: pick(REGEXES) } : { type: pick(['Exact', 'PathPrefix', undefined]), value: pick(PATHS) } } : {}),
      ...(random() < 0.3 ? { method: pick(METHODS) } : {}),
      ...(random() < 0.3 ? { headers: values() } : {}),
      ...(random() < 0.2 ? { queryParams: values() } : {}),
    });
    const routes: RouteObject[] = [];
    for (let i = 0, n = Math.floor(random() * 5); i < n; i++) {
      const hostnames = maybe(0.7, () => Array.from({ length: Math.floor(random() * 3) }, () => pick(HOSTS)));
      const rules = Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({
        ...(random() < 0.8 ? { matches: Array.from({ length: Math.floor(random() * 3) }, match) } : {}),
        backends: Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({
          name: pick(SERVICES), port: pick(PORTS), ...(random() < 0.5 ? { weight: pick([0, 1, 5]) } : {}),
        })),
        ...(random() < 0.3 ? { timeouts: { request: pick(DURATIONS), ...(random() < 0.5 ? { backendRequest: pick(DURATIONS) } : {}) } } : {}),
      }));
      routes.push({
        metadata: {
          name: `route-${Math.floor(random() * 4)}`,
          namespace: pick(['default', 'other']),
          ...(random() < 0.8 ? { creationTimestamp: `2024-01-0${1 + Math.floor(random() * 3)}T00:00:00Z` } : {}),
        },
        spec: { ...(hostnames ? { hostnames } : {}), rules, ...(random() < 0.05 ? { extra: true } : {}) },
      });
    }
    const ingresses: Ingress[] = [];
    for (let i = 0, n = Math.floor(random() * 3); i < n; i++) {
      ingresses.push({
        metadata: { name: pick(['ing', 'route-0']), namespace: pick(['default', 'other']), creationTimestamp: `2024-01-0${1 + Math.floor(random() * 3)}T00:00:00Z` },
        spec: {
          rules: [{
            host: pick(['a.example.com', '*.example.com', '']),
            http: { paths: [{ path: pick(['/', '/a', '/a/b']), pathType: pick(['Prefix', 'Exact']), backend: { service: { name: pick(SERVICES), port: { number: 80 } } } }] },
          }],
          ...(random() < 0.3 ? { defaultBackend: { service: { name: 'web', port: { number: 80 } } } } : {}),
        },
      });
    }
    const services = ['default', 'other'].flatMap((namespace) => [
      { metadata: { name: 'web', namespace }, spec: { ports: [{ name: 'http', port: 80 }, { port: 81 }] } },
      { metadata: { name: 'api', namespace }, spec: { ports: [{ port: 8080 }] } },
      { metadata: { name: 'ext', namespace }, spec: { type: 'ExternalName', ports: [{ port: 80 }] } },
    ]);
    const opts: TranslateOptions = {
      generation: 1,
      watchIngressWithoutClass: true,
      ...(random() < 0.5 ? { defaultBackend: { namespace: 'default', name: 'web', port: 80 } } : {}),
    };
    return { state: { ingresses, ingressClasses: [], services, endpointSlices: [], routes }, opts };
  }

  it('always yields a snapshot the dataplane validates and compiles, in any input order', () => {
    const random = mulberry32(20240607);
    for (let round = 0; round < 400; round++) {
      const { state, opts } = generate(random);
      const r = translate(state, opts);
      const v = validateSnapshot(r.snapshot);
      expect(v.ok ? [] : v.problems, `round ${round}`).toEqual([]);
      expect(() => compileRouting(r.snapshot.routing), `round ${round}`).not.toThrow();
      const again = translate({ ...state, routes: [...(state.routes ?? [])].reverse(), ingresses: [...state.ingresses].reverse() }, opts);
      expect(JSON.stringify(again), `round ${round}`).toBe(JSON.stringify(r));
      // One status per owned, uniquely named Route, each with Accepted then ResolvedRefs.
      const ids = r.routeStatuses.map((s) => `${s.namespace}/${s.name}`);
      expect(new Set(ids).size).toBe(ids.length);
      for (const s of r.routeStatuses) expect(s.conditions.map((c) => c.type)).toEqual(['Accepted', 'ResolvedRefs']);
      // Accepted is True exactly when some route of the Route is in the snapshot.
      const programmed = new Set(r.snapshot.routing.virtualHosts.flatMap((vh) => vh.routes)
        .filter((x) => x.source?.kind === 'Route').map((x) => `${x.source?.namespace}/${x.source?.name}`));
      for (const s of r.routeStatuses) expect(s.conditions[0].status === 'True', `round ${round} ${s.namespace}/${s.name}`).toBe(programmed.has(`${s.namespace}/${s.name}`));
    }
  });
});

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
