/**
 * EndpointSlices the controller tests create by hand (no controller-manager
 * runs): one for a dataplane's admin port, one for a Service's backends.
 * Addresses must not be loopback (the API server refuses them): see net.ts.
 */
import type { V1EndpointSlice } from '@kubernetes/client-node';

/** A slice of the `pyserve-admin` Service pointing at one dataplane's admin port. */
export function adminSlice(ns: string, ip: string, name: string, adminPort: number, ready: boolean): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: ns, labels: { 'kubernetes.io/service-name': 'pyserve-admin' } },
    addressType: 'IPv4',
    ports: [{ name: 'admin', port: adminPort, protocol: 'TCP' }],
    endpoints: [{ addresses: [ip], conditions: { ready }, targetRef: { kind: 'Pod', name, namespace: ns } }],
  };
}

/** A slice of `service` with one ready endpoint on port `port` (named `http`). */
export function backendSlice(ns: string, ip: string, name: string, service: string, port: number): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: ns, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port, protocol: 'TCP' }],
    endpoints: [{ addresses: [ip], conditions: { ready: true } }],
  };
}
