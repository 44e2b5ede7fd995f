import { describe, expect, it } from 'vitest';
import { translateEndpoints, withConditions } from '../../controller/translate/endpoints.ts';
import type { Cluster } from '../../dataplane/snapshot/schema.ts';
import type { EndpointSlice, Service } from '../../controller/translate/types.ts';

describe('withConditions', () => {
  it.each([
    // conditions → ready, serving, terminating
    [undefined, true, true, false],
    [{}, true, true, false],
    [{ ready: true }, true, true, false],
    [{ ready: false }, false, false, false],
    [{ ready: false, serving: true }, false, true, false],
    [{ ready: false, serving: true, terminating: true }, false, true, true],
    [{ ready: false, serving: false, terminating: true }, false, false, true],
    [{ ready: true, terminating: true }, false, true, true],
    [{ ready: null, serving: null, terminating: null }, true, true, false],
  ])('%j → ready=%s serving=%s terminating=%s', (conditions, ready, serving, terminating) => {
    expect(withConditions('10.0.0.1', 80, conditions)).toEqual({ address: '10.0.0.1', port: 80, ready, serving, terminating });
  });
});

describe('translateEndpoints', () => {
  const svc: Service = { metadata: { name: 'web', namespace: 'ns' }, spec: { ports: [{ name: 'http', port: 80 }, { name: 'grpc', port: 81 }] } };
  const slice = (name: string, endpoints: EndpointSlice['endpoints'], ports: EndpointSlice['ports'] = [{ name: 'http', port: 8080 }, { name: 'grpc', port: 9090 }]): EndpointSlice => ({
    metadata: { name, namespace: 'ns', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports,
    endpoints,
  });
  const cluster = (name: string, port?: number | string): Cluster => ({
    name, protocol: 'http', ...(port !== undefined ? { service: { namespace: 'ns', name: 'web', port } } : {}),
  });

  it('gives one entry per cluster name, sorted, and none for clusters without a service', () => {
    const out = translateEndpoints(
      [cluster('z', 80), cluster('a'), cluster('z', 80), cluster('m', 81)],
      { services: [svc], endpointSlices: [slice('s1', [{ addresses: ['10.0.0.1'] }])] },
    );
    expect(out.clusters.map((c) => [c.cluster, c.endpoints.map((e) => `${e.address}:${e.port}`)])).toEqual([
      ['a', []],
      ['m', ['10.0.0.1:9090']],
      ['z', ['10.0.0.1:8080']],
    ]);
  });

  it('resolves a cluster whose service port is given by name', () => {
    const out = translateEndpoints([cluster('c', 'grpc')], { services: [svc], endpointSlices: [slice('s1', [{ addresses: ['10.0.0.1'] }])] });
    expect(out.clusters[0]?.endpoints.map((e) => e.port)).toEqual([9090]);
  });

  it('is empty when the Service or its port is gone (the endpoints fast path may run before routing catches up)', () => {
    const slices = [slice('s1', [{ addresses: ['10.0.0.1'] }])];
    expect(translateEndpoints([cluster('c', 80)], { services: [], endpointSlices: slices }).clusters[0]?.endpoints).toEqual([]);
    expect(translateEndpoints([cluster('c', 82)], { services: [svc], endpointSlices: slices }).clusters[0]?.endpoints).toEqual([]);
  });

  it('dedupes address:port across slices, most available reading wins, sorted by address then port', () => {
    const out = translateEndpoints([cluster('c', 80)], {
      services: [svc],
      endpointSlices: [
        slice('s1', [{ addresses: ['10.0.0.2'], conditions: { ready: false, terminating: true, serving: false } }, { addresses: ['10.0.0.10'] }]),
        slice('s2', [{ addresses: ['10.0.0.2'], conditions: { ready: true } }, { addresses: ['10.0.0.1'], conditions: { ready: false } }]),
      ],
    });
    expect(out.clusters[0]?.endpoints).toEqual([
      { address: '10.0.0.1', port: 8080, ready: false, serving: false, terminating: false },
      { address: '10.0.0.10', port: 8080, ready: true, serving: true, terminating: false },
      { address: '10.0.0.2', port: 8080, ready: true, serving: true, terminating: false },
    ]);
  });

  it('skips FQDN slices, slices without the port, endpoints without an address, and bad port numbers', () => {
    const fqdn: EndpointSlice = { ...slice('f', [{ addresses: ['db.example.com'] }]), addressType: 'FQDN' };
    const out = translateEndpoints([cluster('c', 80)], {
      services: [svc],
      endpointSlices: [
        fqdn,
        slice('noport', [{ addresses: ['10.0.0.3'] }], [{ name: 'grpc', port: 9090 }]),
        slice('bad', [{ addresses: ['10.0.0.4'] }], [{ name: 'http', port: 0 }]),
        slice('empty', [{ addresses: [] }, { addresses: [''] }, {}]),
      ],
    });
    expect(out.clusters[0]?.endpoints).toEqual([]);
  });
});
