// Default backends become a lowest-priority Prefix `/` route. They are only
// added where they can be reached: a host that already routes Prefix `/`
// never falls through to a default backend.
import type { BackendRef } from './types.ts';
import type { OwnedIngress } from './owned.ts';
import type { HostTables, RouteEntry } from './host-tables.ts';
import type { ResolvedBackend, ServiceIndex } from './backends.ts';
import type { FailureList } from './failures.ts';
import type { SourceKey } from './meta.ts';
import { CATCH_ALL_HOST } from './hosts.ts';
import { coversEverything, hostTable } from './host-tables.ts';
import { resolveIngressBackend, resolveServicePort } from './backends.ts';
import { describeHost, ingressRef, whyWins } from './failures.ts';
import { CONTROLLER_DEFAULT_BACKEND_ROUTE, ingressDefaultBackendRouteName } from './names.ts';
import { compareHostnames } from './sort.ts';

/**
 * Apply each Ingress's `spec.defaultBackend` to the hosts of its rules and
 * to the catch-all host. On each host the oldest Ingress wins; every other
 * Ingress whose default backend lost somewhere gets one DefaultBackendConflict.
 * Call after every Ingress's rules were added, with Ingresses oldest first.
 */
export function addIngressDefaultBackends(
  tables: HostTables,
  owned: readonly OwnedIngress[],
  services: ServiceIndex,
  failures: FailureList,
): void {
  for (const { key, ingress, hosts } of owned) {
    const backend = ingress.spec?.defaultBackend;
    if (!backend) continue;
    const ref = ingressRef(key);
    let resolved: ResolvedBackend | undefined;
    const lost: string[] = [];
    const scopes = [...new Set([...hosts, CATCH_ALL_HOST])].sort(compareHostnames);
    for (const host of scopes) {
      if (coversEverything(tables.get(host), 0)) continue;
      const table = hostTable(tables, host);
      const winner = table.defaultBackendOwner;
      if (winner) {
        lost.push(`on ${describeHost(host)}, where Ingress ${winner.namespace}/${winner.name} wins (${whyWins(winner, key)})`);
        continue;
      }
      if (!resolved) {
        // Resolved once and only where used, so one bad reference is one failure.
        resolved = resolveIngressBackend(services, key.namespace, backend, 'spec.defaultBackend');
        if (!resolved.ok) failures.add(ref, resolved.problem.field, resolved.problem.reason, resolved.problem.message);
      }
      table.defaultBackendOwner = key;
      table.entries.push(defaultEntry(1, key, ingressDefaultBackendRouteName(key.namespace, key.name), resolved));
    }
    if (lost.length) {
      failures.add(ref, 'spec.defaultBackend', 'DefaultBackendConflict',
        `this default backend is not used ${lost.join('; nor ')}`);
    }
  }
}

/**
 * Apply the controller-wide default backend to every host without a Prefix `/`
 * route, catch-all included, as ingress-nginx does: unmatched requests on a
 * known host reach it too. A problem with it is reported against the Service
 * it names, with fields under `options.defaultBackend`.
 */
export function addControllerDefaultBackend(
  tables: HostTables,
  backend: BackendRef,
  services: ServiceIndex,
  failures: FailureList,
): void {
  hostTable(tables, CATCH_ALL_HOST);
  const port = typeof backend.port === 'number' || /^\d+$/.test(backend.port)
    ? { number: Number(backend.port) }
    : { name: backend.port };
  let resolved: ResolvedBackend | undefined;
  for (const host of [...tables.keys()].sort(compareHostnames)) {
    const table = tables.get(host);
    if (!table || coversEverything(table, 1)) continue;
    if (!resolved) {
      resolved = resolveServicePort(services, backend.namespace, backend.name, port, {
        name: 'options.defaultBackend.name',
        portNumber: 'options.defaultBackend.port',
        portName: 'options.defaultBackend.port',
      });
      if (!resolved.ok) {
        failures.add({ kind: 'Service', namespace: backend.namespace, name: backend.name },
          resolved.problem.field, resolved.problem.reason, resolved.problem.message);
      }
    }
    table.entries.push(defaultEntry(2, undefined, CONTROLLER_DEFAULT_BACKEND_ROUTE, resolved));
  }
}

function defaultEntry(priority: 1 | 2, source: SourceKey | undefined, name: string, resolved: ResolvedBackend): RouteEntry {
  return {
    priority,
    type: 'Prefix',
    value: '/',
    hasMethod: false,
    headers: 0,
    query: 0,
    createdMs: source?.createdMs,
    namespace: source?.namespace ?? '',
    name: source?.name ?? '',
    kind: source?.kind ?? '',
    rule: -1,
    path: -1,
    source,
    clusters: resolved.ok ? [resolved.cluster] : [],
    route: {
      name,
      ...(source ? { source: ingressRef(source) } : {}),
      match: { path: { type: 'Prefix', value: '/' } },
      action: resolved.action,
    },
  };
}
