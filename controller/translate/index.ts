/**
 * The translator: Ingresses and Routes in; snapshot, statuses and
 * failures out. Pure and deterministic: no I/O, no clock, no randomness, and
 * the output does not depend on the order of the input objects.
 * Semantics and decisions: docs/translation.md.
 */
import { buildSnapshot } from '../../dataplane/snapshot/build.ts';
import type { ClusterState, TranslateOptions, TranslateResult } from './types.ts';
import { DEFAULT_CONTROLLER_NAME } from './types.ts';
import { compareSourceAge, indexByName } from './meta.ts';
import type { SourceKey } from './meta.ts';
import { FailureList } from './failures.ts';
import { addIngressRules } from './ingress.ts';
import { addRouteRules } from './routes.ts';
import { ownedObjects } from './owned.ts';
import { addControllerDefaultBackend, addIngressDefaultBackends } from './default-backend.ts';
import { buildRouting } from './host-tables.ts';
import type { HostTables } from './host-tables.ts';
import { translateEndpoints } from './endpoints.ts';
import { ingressStatuses, routeStatuses } from './status.ts';
import { applyIngressTls } from './tls.ts';
import { readIngressAnnotations } from './annotations/ingress.ts';
import type { IngressAnnotations } from './annotations/ingress.ts';
import { addCanaries } from './annotations/canary.ts';
import { applyServerAliases } from './annotations/aliases.ts';
import { ingressRef } from './failures.ts';
import { normaliseHost } from './hosts.ts';
import type { OwnedIngress } from './owned.ts';

export { translateEndpoints } from './endpoints.ts';
export { DEFAULT_CONTROLLER_NAME, FAILURE_REASONS, ROUTE_ACCEPTED_REASONS, ROUTE_RESOLVED_REFS_REASONS } from './types.ts';
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
  const owned = ownedObjects(input.ingresses, Array.isArray(input.routes) ? input.routes : [], input.ingressClasses, {
    controllerName: opts.controllerName ?? DEFAULT_CONTROLLER_NAME,
    ingressClassName: opts.ingressClassName,
    watchIngressWithoutClass: opts.watchIngressWithoutClass,
  }, failures);

  // ingress-nginx annotations, read once per Ingress; canary Ingresses join
  // other Ingresses' paths after those exist, instead of claiming their own.
  const annotated = owned.ingresses.map((o) => ({ owned: o, ann: readIngressAnnotations(o.ingress, ingressRef(o.key), failures) }));
  const mains = annotated.filter((a) => a.ann.canary === undefined);
  const canaries = annotated.filter((a) => a.ann.canary !== undefined);
  const regexHosts = regexHostsOf(mains);

  const tables: HostTables = new Map();
  // Oldest first across both kinds: the first claim on a path or default backend is the winner.
  const sources: { key: SourceKey; add: () => void }[] = [
    ...mains.map(({ owned: o, ann }) => ({ key: o.key, add: () => addIngressRules(tables, o, services, failures, ann, regexHosts) })),
    ...owned.routes.map((o) => ({ key: o.key, add: () => addRouteRules(tables, o, services, failures) })),
  ];
  for (const source of sources.sort((a, b) => compareSourceAge(a.key, b.key))) source.add();
  addCanaries(tables, canaries, services, failures, regexHosts);
  addIngressDefaultBackends(tables, mains.map((a) => a.owned), services, failures);
  if (opts.defaultBackend) addControllerDefaultBackend(tables, opts.defaultBackend, services, failures);

  const withTls = applyIngressTls(buildRouting(tables), owned.ingresses, input.secrets ?? [], failures);
  const routing = applyServerAliases(withTls, mains, failures);
  const endpoints = translateEndpoints(routing.clusters, input);
  const sorted = failures.sorted();
  return {
    snapshot: buildSnapshot(opts.generation, routing, endpoints),
    statuses: ingressStatuses(owned.ingresses, tables, sorted),
    routeStatuses: routeStatuses(owned.routes, tables, sorted),
    failures: sorted,
  };
}

/**
 * Hosts whose Ingress paths are regular expressions: ingress-nginx turns on
 * `~*` for every path of a host as soon as one Ingress on it sets
 * `use-regex` or `rewrite-target`.
 */
function regexHostsOf(ingresses: readonly { readonly owned: OwnedIngress; readonly ann: IngressAnnotations }[]): Set<string> {
  const hosts = new Set<string>();
  for (const { owned, ann } of ingresses) {
    if (!ann.regex) continue;
    for (const rule of Array.isArray(owned.ingress.spec?.rules) ? owned.ingress.spec.rules : []) {
      const host = normaliseHost(rule?.host);
      if (host.ok) hosts.add(host.host);
    }
  }
  return hosts;
}
