/**
 * The Ingress translator: Kubernetes objects in; snapshot, statuses and
 * failures out. Pure and deterministic: no I/O, no clock, no randomness, and
 * the output does not depend on the order of the input objects.
 * Semantics and decisions: docs/translation.md.
 */
import { buildSnapshot } from '../../dataplane/snapshot/build.ts';
import type { ClusterState, TranslateOptions, TranslateResult } from './types.ts';
import { DEFAULT_CONTROLLER_NAME } from './types.ts';
import { indexByName } from './meta.ts';
import { FailureList } from './failures.ts';
import { addIngressRules } from './ingress.ts';
import { ownedIngresses } from './owned.ts';
import { addControllerDefaultBackend, addIngressDefaultBackends } from './default-backend.ts';
import { buildRouting } from './host-tables.ts';
import type { HostTables } from './host-tables.ts';
import { translateEndpoints } from './endpoints.ts';
import { ingressStatuses } from './status.ts';

export { translateEndpoints } from './endpoints.ts';
export { DEFAULT_CONTROLLER_NAME, FAILURE_REASONS } from './types.ts';
export type * from './types.ts';

/**
 * Translate the cluster state into a snapshot. Problems in objects never
 * throw: they become failures and fail only the route they are in. Throws
 * only on a programming error in `opts` (a generation that is not a
 * non-negative safe integer).
 */
export function translate(input: ClusterState, opts: TranslateOptions): TranslateResult {
  if (!Number.isSafeInteger(opts.generation) || opts.generation < 0) {
    throw new RangeError(`generation must be a non-negative integer, got ${String(opts.generation)}`);
  }
  const failures = new FailureList();
  const services = indexByName(input.services);
  const owned = ownedIngresses(input.ingresses, input.ingressClasses, {
    controllerName: opts.controllerName ?? DEFAULT_CONTROLLER_NAME,
    ingressClassName: opts.ingressClassName,
    watchIngressWithoutClass: opts.watchIngressWithoutClass,
  }, failures);

  const tables: HostTables = new Map();
  // Oldest first: the first claim on a path or default backend is the winner.
  for (const ingress of owned) addIngressRules(tables, ingress, services, failures);
  addIngressDefaultBackends(tables, owned, services, failures);
  if (opts.defaultBackend) addControllerDefaultBackend(tables, opts.defaultBackend, services, failures);

  const routing = buildRouting(tables);
  const endpoints = translateEndpoints(routing.clusters, input);
  const sorted = failures.sorted();
  return {
    snapshot: buildSnapshot(opts.generation, routing, endpoints),
    statuses: ingressStatuses(owned, tables, sorted),
    failures: sorted,
  };
}
