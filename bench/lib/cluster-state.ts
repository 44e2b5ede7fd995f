/**
 * Generated cluster state at scale: `n` Ingresses spread over 50 namespaces,
 * each with its own host, two paths, one Service and one EndpointSlice of
 * three ready endpoints. Deterministic, so runs compare.
 */
import type { ClusterState, EndpointSlice, Ingress, IngressClass, Service } from '../../controller/translate/index.ts';

export const BENCH_CLASS = 'pyserve';

export function generateClusterState(n: number): ClusterState {
  const ingressClasses: IngressClass[] = [{ metadata: { name: BENCH_CLASS }, spec: { controller: 'pyserve.io/ingress-controller' } }];
  const ingresses: Ingress[] = [];
  const services: Service[] = [];
  const endpointSlices: EndpointSlice[] = [];
  for (let i = 0; i < n; i++) {
    const namespace = `team-${i % 50}`;
    const name = `app-${i}`;
    const created = new Date(Date.UTC(2026, 0, 1, 0, 0, i % 86_400)).toISOString();
    ingresses.push({
      metadata: { name, namespace, creationTimestamp: created },
      spec: {
        ingressClassName: BENCH_CLASS,
        rules: [{
          host: `${name}.${namespace}.bench.example`,
          http: {
            paths: [
              { path: '/', pathType: 'Prefix', backend: { service: { name, port: { name: 'http' } } } },
              { path: '/api/v1', pathType: 'Prefix', backend: { service: { name, port: { number: 8080 } } } },
            ],
          },
        }],
      },
    });
    services.push({
      metadata: { name, namespace },
      spec: { type: 'ClusterIP', ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'api', port: 8080, protocol: 'TCP' }] },
    });
    const base = 10 * 65_536 + i * 3;
    const ip = (k: number): string => `10.${(base + k) >> 16 & 255}.${(base + k) >> 8 & 255}.${(base + k) & 255}`;
    endpointSlices.push({
      metadata: { name: `${name}-abcde`, namespace, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'api', port: 9090, protocol: 'TCP' }],
      endpoints: [0, 1, 2].map((k) => ({ addresses: [ip(k)], conditions: { ready: true, serving: true, terminating: false } })),
    });
  }
  return { ingresses, ingressClasses, services, endpointSlices };
}
