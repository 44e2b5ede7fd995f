// The public entry points: accepted input shapes, option handling, and the
// invariants that must hold for any input (valid snapshot, determinism).
import { describe, expect, it } from 'vitest';
import type { V1EndpointSlice, V1Ingress, V1IngressClass, V1Service } from '@kubernetes/client-node';
import { DEFAULT_CONTROLLER_NAME, translate, translateEndpoints } from '../../controller/translate/index.ts';
import type { ClusterState, Ingress, TranslateOptions } from '../../controller/translate/index.ts';
import { validateSnapshot } from '../../dataplane/snapshot/validate.ts';

describe('translate with @kubernetes/client-node objects', () => {
  // These annotations are the compile-time check: client-node models must be
  // assignable to the translator's structural types.
  const ingressClass: V1IngressClass = { metadata: { name: 'pyserve' }, spec: { controller: DEFAULT_CONTROLLER_NAME } };
  const ingress: V1Ingress = {
    metadata: { name: 'web', namespace: 'prod', creationTimestamp: new Date('2024-01-01T00:00:00Z') },
    spec: {
      ingressClassName: 'pyserve',
      rules: [{ host: 'web.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { name: 'http' } } } }] } }],
    },
  };
  const service: V1Service = { metadata: { name: 'web', namespace: 'prod' }, spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }] } };
  const slice: V1EndpointSlice = {
    metadata: { name: 'web-1', namespace: 'prod', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true } }],
  };
  const state: ClusterState = { ingresses: [ingress], ingressClasses: [ingressClass], services: [service], endpointSlices: [slice] };

  it('translates them', () => {
    const r = translate(state, { generation: 3 });
    expect(r.failures).toEqual([]);
    expect(r.statuses).toEqual([{ kind: 'Ingress', namespace: 'prod', name: 'web', accepted: true, reason: 'Accepted', message: '1 route programmed' }]);
    expect(r.snapshot.generation).toBe(3);
    expect(r.snapshot.routing.clusters).toEqual([{ name: 'prod/web/80', service: { namespace: 'prod', name: 'web', port: 80 }, protocol: 'http' }]);
    expect(r.snapshot.endpoints.clusters).toEqual([
      { cluster: 'prod/web/80', endpoints: [{ address: '10.0.0.1', port: 8080, ready: true, serving: true, terminating: false }] },
    ]);
    expect(validateSnapshot(r.snapshot).ok).toBe(true);
  });

  it('translateEndpoints reproduces the endpoints section of translate', () => {
    const r = translate(state, { generation: 1 });
    const { hash: _hash, ...endpoints } = r.snapshot.endpoints;
    expect(translateEndpoints(r.snapshot.routing.clusters, state)).toEqual(endpoints);
  });

  it('uses the default controller name unless told otherwise', () => {
    expect(translate(state, { generation: 1 }).statuses).toHaveLength(1);
    expect(translate(state, { generation: 1, controllerName: 'example.com/other' }).statuses).toHaveLength(0);
  });

  it('rejects a generation that is not a non-negative integer', () => {
    for (const generation of [-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) {
      expect(() => translate(state, { generation })).toThrow(RangeError);
    }
    expect(translate(state, { generation: 0 }).snapshot.generation).toBe(0);
  });
});

describe('translate invariants on generated input', () => {
  // Small pools so that generated objects collide: same hosts, same paths,
  // missing services, bad values, duplicates.
  const HOSTS = ['a.example.com', 'A.example.com', '*.example.com', 'b.example.com', '', undefined, '*', 'bad_host', '1.2.3.4'];
  const PATHS = ['/', '/a', '/a/', '/a/b', '', 'rel', '/x//y', undefined, '/a?b'];
  const TYPES = ['Exact', 'Prefix', 'ImplementationSpecific', undefined, 'Regex'];
  const SERVICES = ['web', 'api', 'missing', 'ext'];
  const PORTS: ({ number?: number; name?: string } | undefined)[] = [{ number: 80 }, { name: 'http' }, { number: 81 }, { name: 'nope' }, undefined, { number: 80, name: 'http' }];

  function generate(random: () => number): { state: ClusterState; opts: TranslateOptions } {
    const pick = <T>(l: readonly T[]): T => l[Math.floor(random() * l.length)] as T;
    const backend = () => (random() < 0.05
      ? { resource: { kind: 'Bucket', name: 'b' } }
      : { service: { name: pick(SERVICES), port: pick(PORTS) } });
    const ingresses: Ingress[] = [];
    const n = 1 + Math.floor(random() * 6);
    for (let i = 0; i < n; i++) {
      const rules = Array.from({ length: Math.floor(random() * 4) }, () => ({
        host: pick(HOSTS),
        ...(random() < 0.9 ? { http: { paths: Array.from({ length: Math.floor(random() * 4) }, () => ({ path: pick(PATHS), pathType: pick(TYPES), backend: backend() })) } } : {}),
      }));
      ingresses.push({
        metadata: {
          name: `ing-${Math.floor(random() * 5)}`,
          namespace: pick(['default', 'other']),
          ...(random() < 0.8 ? { creationTimestamp: `2024-01-0${1 + Math.floor(random() * 3)}T00:00:00Z` } : {}),
        },
        spec: { rules, ...(random() < 0.3 ? { defaultBackend: backend() } : {}) },
      });
    }
    const services = ['default', 'other'].flatMap((namespace) => [
      { metadata: { name: 'web', namespace }, spec: { ports: [{ name: 'http', port: 80 }, { port: 81 }] } },
      { metadata: { name: 'api', namespace }, spec: { ports: [{ name: 'http', port: 80 }] } },
      { metadata: { name: 'ext', namespace }, spec: { type: 'ExternalName', ports: [{ port: 80 }] } },
    ]);
    const endpointSlices = ['default', 'other'].flatMap((namespace) => ['web', 'api'].map((svc, k) => ({
      metadata: { name: `${svc}-${k}`, namespace, labels: { 'kubernetes.io/service-name': svc } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080 }, { name: '', port: 8081 }],
      endpoints: [{ addresses: [`10.0.0.${k + 1}`], conditions: { ready: random() < 0.7, terminating: random() < 0.2 } }],
    })));
    const opts: TranslateOptions = {
      generation: 1,
      watchIngressWithoutClass: true,
      ...(random() < 0.5 ? { defaultBackend: { namespace: 'default', name: pick(SERVICES), port: pick([80, 'http', '81']) } } : {}),
    };
    return { state: { ingresses, ingressClasses: [], services, endpointSlices }, opts };
  }

  it('always yields a valid snapshot, sorted failures, and the same output for any input order', () => {
    const random = mulberry32(20240101);
    for (let round = 0; round < 300; round++) {
      const { state, opts } = generate(random);
      const r = translate(state, opts);
      const v = validateSnapshot(r.snapshot);
      expect(v.ok ? [] : v.problems, `round ${round}`).toEqual([]);
      const again = translate({ ...state, ingresses: [...state.ingresses].reverse(), services: [...state.services].reverse() }, opts);
      expect(JSON.stringify(again), `round ${round}`).toBe(JSON.stringify(r));
      // Every route forwards to a cluster that has an endpoints entry.
      const withEndpoints = new Set(r.snapshot.endpoints.clusters.map((c) => c.cluster));
      for (const c of r.snapshot.routing.clusters) expect(withEndpoints.has(c.name)).toBe(true);
      // Each owned, uniquely named Ingress has exactly one status.
      const ids = r.statuses.map((s) => `${s.namespace}/${s.name}`);
      expect(new Set(ids).size).toBe(ids.length);
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
