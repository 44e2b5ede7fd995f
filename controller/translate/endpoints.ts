// EndpointSlices → per-cluster endpoints. Kept separate from routing so the
// controller can rebuild only this section when just EndpointSlices change.
import type { Cluster, Endpoint, Endpoints } from '../../dataplane/snapshot/schema.ts';
import type { ClusterState, EndpointConditions, EndpointSlice, Service } from './types.ts';
import { indexByName, namespaceOf } from './meta.ts';
import { compareStrings } from './sort.ts';
import { isPortNumber, isTcpPort } from './backends.ts';
import { serviceClusterIP } from './policies.ts';

/** Label that ties an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/**
 * Endpoints of each cluster, in cluster-name order, one entry per cluster
 * (empty when its Service, port or slices are missing). Clusters without a
 * `service` have no endpoints to look up.
 */
export function translateEndpoints(
  clusters: readonly Cluster[],
  state: Pick<ClusterState, 'services' | 'endpointSlices'>,
): Omit<Endpoints, 'hash'> {
  const services = indexByName(state.services);
  const slices = slicesByService(state.endpointSlices);
  const names = new Map<string, Cluster>();
  for (const c of clusters) if (!names.has(c.name)) names.set(c.name, c);
  return {
    clusters: [...names.values()]
      .sort((a, b) => compareStrings(a.name, b.name))
      .map((c) => ({ cluster: c.name, endpoints: c.service ? clusterEndpoints(c.service, services, slices) : [] })),
  };
}

/** Slices by `namespace/service`, skipping those without the service-name label. */
function slicesByService(all: readonly EndpointSlice[]): Map<string, EndpointSlice[]> {
  const out = new Map<string, EndpointSlice[]>();
  // Index by slice name first so a duplicated slice is counted once.
  for (const slice of indexByName(all).values()) {
    const service = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (!service) continue;
    const key = `${namespaceOf(slice.metadata)}/${service}`;
    const list = out.get(key);
    if (list) list.push(slice);
    else out.set(key, [slice]);
  }
  return out;
}

function clusterEndpoints(
  ref: NonNullable<Cluster['service']>,
  services: ReadonlyMap<string, Service>,
  slices: ReadonlyMap<string, readonly EndpointSlice[]>,
): Endpoint[] {
  const key = `${ref.namespace}/${ref.name}`;
  const service = services.get(key);
  const ports = (Array.isArray(service?.spec?.ports) ? service.spec.ports : []).filter(isTcpPort);
  const servicePort = typeof ref.port === 'number'
    ? ports.find((p) => p.port === ref.port)
    : ports.find((p) => p.name === ref.port);
  if (!servicePort) return [];
  if (ref.useClusterIP === true) {
    // ingress-nginx service-upstream: the virtual IP and the Service port, kube-proxy balancing behind it.
    const ip = serviceClusterIP(service);
    return ip === undefined || !isPortNumber(servicePort.port) ? [] : [withConditions(ip, servicePort.port, undefined)];
  }
  // Slices name their ports after the Service port; unnamed is '' or absent.
  const portName = servicePort.name ?? '';
  const merged = new Map<string, Endpoint>();
  for (const slice of slices.get(key) ?? []) {
    if (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue;
    const slicePort = (slice.ports ?? []).find((p) => (p.name ?? '') === portName);
    if (!slicePort || !isPortNumber(slicePort.port)) continue;
    for (const ep of slice.endpoints ?? []) {
      const address = ep.addresses?.[0];
      if (typeof address !== 'string' || address === '') continue;
      const endpoint = withConditions(address.toLowerCase(), slicePort.port, ep.conditions);
      const id = `${endpoint.address}|${endpoint.port}`;
      const prev = merged.get(id);
      merged.set(id, prev ? mergeDuplicate(prev, endpoint) : endpoint);
    }
  }
  return [...merged.values()].sort((a, b) => compareStrings(a.address, b.address) || a.port - b.port);
}

/**
 * API defaults: absent `ready` means ready, absent `serving` follows
 * `ready`, absent `terminating` means not terminating. A terminating
 * endpoint is never ready (the API guarantees it; enforced for hand-written input).
 */
export function withConditions(address: string, port: number, c: EndpointConditions | null | undefined): Endpoint {
  const terminating = c?.terminating ?? false;
  const apiReady = c?.ready ?? true;
  const ready = apiReady && !terminating;
  const serving = c?.serving ?? apiReady;
  return { address, port, ready, serving, terminating };
}

// The same address can sit in two slices while it moves between them; the
// most available reading wins, which is also independent of slice order.
function mergeDuplicate(a: Endpoint, b: Endpoint): Endpoint {
  const terminating = a.terminating && b.terminating;
  return {
    address: a.address,
    port: a.port,
    ready: (a.ready || b.ready) && !terminating,
    serving: a.serving || b.serving,
    terminating,
  };
}
