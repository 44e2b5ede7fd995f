// Backend references → clusters. A reference that cannot be resolved still
// yields an action (a 503 answered by the dataplane) so the route keeps
// claiming its path: falling through to a shorter prefix would send traffic
// somewhere the author never meant.
import type { Cluster, RouteAction } from '../../dataplane/snapshot/schema.ts';
import type { FailureReason, IngressBackend, Service, ServicePort } from './types.ts';
import { clusterName } from './names.ts';

/** A backend problem, located by a field path inside the object at fault. */
export interface BackendProblem {
  readonly field: string;
  readonly reason: FailureReason;
  readonly message: string;
}

/** Outcome of resolving one backend reference. */
export type ResolvedBackend =
  | { readonly ok: true; readonly cluster: Cluster; readonly action: RouteAction }
  | { readonly ok: false; readonly problem: BackendProblem; readonly action: RouteAction };

/** Services by `namespace/name`. */
export type ServiceIndex = ReadonlyMap<string, Service>;

/** How a backend names the Service port. */
export type PortRef = { readonly number: number } | { readonly name: string };

/** Field paths to blame for each part of a Service reference. */
export interface RefFields {
  readonly name: string;
  readonly portNumber: string;
  readonly portName: string;
}

/**
 * Resolve an Ingress backend (`spec.defaultBackend` or a path's `backend`) in
 * the Ingress's namespace. `field` is the path of the backend itself.
 */
export function resolveIngressBackend(
  services: ServiceIndex,
  namespace: string,
  backend: IngressBackend | null | undefined,
  field: string,
): ResolvedBackend {
  const svc = backend?.service;
  if (!svc) {
    if (backend?.resource) return fail(`${field}.resource`, 'UnsupportedBackend', 'resource backends are not supported; use a service backend', 'unsupported backend');
    return fail(field, 'InvalidBackend', 'backend must name a service', 'invalid backend');
  }
  if (backend.resource) return fail(field, 'InvalidBackend', 'backend must set only one of service and resource', 'invalid backend');
  if (typeof svc.name !== 'string' || svc.name === '') {
    return fail(`${field}.service.name`, 'InvalidBackend', 'service backend has no name', 'invalid backend');
  }
  const number = svc.port?.number;
  const name = svc.port?.name;
  const hasNumber = number !== null && number !== undefined;
  const hasName = name !== null && name !== undefined && name !== '';
  if (hasNumber === hasName) {
    return fail(`${field}.service.port`, 'InvalidBackend', 'service port must set exactly one of number and name', 'invalid backend');
  }
  if (hasNumber && !isPortNumber(number)) {
    return fail(`${field}.service.port.number`, 'InvalidBackend', `service port number ${JSON.stringify(number)} is not an integer from 1 to 65535`, 'invalid backend');
  }
  const port: PortRef = hasNumber ? { number: number as number } : { name: name as string };
  return resolveServicePort(services, namespace, svc.name, port, {
    name: `${field}.service.name`,
    portNumber: `${field}.service.port.number`,
    portName: `${field}.service.port.name`,
  });
}

/** Find a Service and one of its TCP ports; the cluster is named by the port number. */
export function resolveServicePort(
  services: ServiceIndex,
  namespace: string,
  name: string,
  port: PortRef,
  fields: RefFields,
): ResolvedBackend {
  const ref = `${namespace}/${name}`;
  const service = services.get(ref);
  if (!service) return fail(fields.name, 'ServiceNotFound', `Service ${ref} not found`, `no service ${ref}`);
  if (service.spec?.type === 'ExternalName') {
    return fail(fields.name, 'UnsupportedServiceType', `Service ${ref} is of type ExternalName, which is not supported`, `unsupported service ${ref}`);
  }
  const ports = (Array.isArray(service.spec?.ports) ? service.spec.ports : []).filter(isTcpPort);
  const found = 'number' in port
    ? ports.find((p) => p.port === port.number)
    : ports.find((p) => p.name === port.name);
  const label = 'number' in port ? String(port.number) : port.name;
  if (!found || !isPortNumber(found.port)) {
    const known = ports.map((p) => (p.name ? `${p.name}/${String(p.port)}` : String(p.port))).join(', ') || 'none';
    return fail(
      'number' in port ? fields.portNumber : fields.portName,
      'ServicePortNotFound',
      `Service ${ref} has no TCP port ${'number' in port ? label : JSON.stringify(label)} (ports: ${known})`,
      `no port ${label} on service ${ref}`,
    );
  }
  const cluster: Cluster = {
    name: clusterName(namespace, name, found.port),
    service: { namespace, name, port: found.port },
    protocol: 'http',
  };
  return { ok: true, cluster, action: { type: 'forward', backends: [{ cluster: cluster.name, weight: 1 }] } };
}

/** A 503 for a route whose backend cannot be used. */
function fail(field: string, reason: FailureReason, message: string, body: string): ResolvedBackend {
  return { ok: false, problem: { field, reason, message }, action: { type: 'direct', status: 503, body } };
}

/** Ingress only reaches TCP ports; absent protocol means TCP. */
export function isTcpPort(p: ServicePort): boolean {
  return !p.protocol || p.protocol === 'TCP';
}

/** A usable TCP port number. */
export function isPortNumber(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;
}
