/**
 * Local-mode shorthand for endpoints: instead of hand-writing EndpointSlices,
 * annotate a Service with the addresses that serve it:
 *
 *   pyserve.io/endpoints: "127.0.0.1:9001, 127.0.0.1:9002"
 *
 * Entries are `host:port` (IPv6 as `[::1]:9001`). A Service with several ports
 * names the port each entry belongs to: `http=127.0.0.1:9001, admin=127.0.0.1:9100`.
 * The result is ordinary EndpointSlices, so the translator sees exactly what
 * it would see in a cluster.
 */
import { isIP } from 'node:net';
import type { KubeObject } from './parse-manifests.ts';

export const ENDPOINTS_ANNOTATION = 'pyserve.io/endpoints';

interface ServicePort {
  name?: string;
  port: number;
}

/** Build EndpointSlices from the annotation, or explain why it is invalid. */
export function parseEndpointsShorthand(service: KubeObject, value: string): { slices: KubeObject[] } | { error: string } {
  const ports = ((service.spec as { ports?: ServicePort[] } | undefined)?.ports ?? []);
  if (ports.length === 0) return { error: `${ENDPOINTS_ANNOTATION} needs the Service to declare spec.ports` };
  // One slice per (service port, target port, address family): a slice's ports apply to all its endpoints.
  const groups = new Map<string, { portName: string; port: number; family: 'IPv4' | 'IPv6'; addresses: Set<string> }>();
  for (const raw of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = raw.indexOf('=');
    const portName = eq >= 0 ? raw.slice(0, eq).trim() : undefined;
    const hostPort = eq >= 0 ? raw.slice(eq + 1).trim() : raw;
    let svcPort: ServicePort | undefined;
    if (portName === undefined) {
      if (ports.length > 1) return { error: `"${raw}": the Service has several ports; write <port name>=host:port` };
      svcPort = ports[0];
    } else {
      svcPort = ports.find((p) => p.name === portName);
      if (!svcPort) return { error: `"${raw}": the Service has no port named "${portName}"` };
    }
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(hostPort);
    if (!m) return { error: `"${raw}": expected host:port (IPv6 as [addr]:port)` };
    const host = (m[1] ?? m[2]) as string;
    const port = Number(m[3]);
    if (port < 1 || port > 65535) return { error: `"${raw}": port must be 1-65535` };
    const fam = isIP(host);
    if (fam === 0) return { error: `"${raw}": "${host}" is not an IP address (EndpointSlices carry addresses, not names)` };
    const family = fam === 6 ? 'IPv6' : 'IPv4';
    const name = svcPort?.name ?? '';
    const key = `${name}|${port}|${family}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { portName: name, port, family, addresses: new Set() }));
    g.addresses.add(host);
  }
  const slices: KubeObject[] = [];
  let i = 0;
  for (const g of [...groups.values()].sort((a, b) => `${a.portName}|${a.port}|${a.family}`.localeCompare(`${b.portName}|${b.port}|${b.family}`))) {
    slices.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${service.metadata.name}-local-${i++}`,
        namespace: service.metadata.namespace ?? 'default',
        labels: { 'kubernetes.io/service-name': service.metadata.name, 'endpointslice.kubernetes.io/managed-by': 'pyserve.io/local' },
      },
      addressType: g.family,
      endpoints: [...g.addresses].sort().map((a) => ({ addresses: [a], conditions: { ready: true, serving: true, terminating: false } })),
      ports: [{ name: g.portName, port: g.port, protocol: 'TCP' }],
    });
  }
  return { slices };
}
