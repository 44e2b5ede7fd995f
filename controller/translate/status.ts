// Per-Ingress and per-Route outcome. Statuses depend on routing only, never
// on endpoint readiness: the endpoints fast path does not recompute them, so
// a status that mentioned endpoints would go stale.
import type { HostTables } from './host-tables.ts';
import type { OwnedIngress, OwnedRoute } from './owned.ts';
import type { SourceKind } from './meta.ts';
import type {
  FailureReason, IngressStatus, ResourceFailure, RouteAcceptedCondition, RouteResolvedRefsCondition, RouteResolvedRefsReason, RouteStatusResult,
} from './types.ts';
import { compareStatuses } from './sort.ts';

const MAX_LISTED = 3;
const MAX_REFS_LISTED = 8;

/** One status per owned Ingress, sorted by namespace and name. */
export function ingressStatuses(
  owned: readonly OwnedIngress[],
  tables: HostTables,
  failures: readonly ResourceFailure[],
): IngressStatus[] {
  const routes = routeCounts(tables, 'Ingress');
  const problems = failuresOf(failures, 'Ingress');
  return owned.map(({ key }): IngressStatus => {
    const id = `${key.namespace}/${key.name}`;
    const n = routes.get(id) ?? 0;
    const mine = problems.get(id) ?? [];
    const base = { kind: 'Ingress' as const, namespace: key.namespace, name: key.name };
    if (mine.length === 0) return { ...base, accepted: true, reason: 'Accepted', message: programmed(n) };
    if (n === 0) return { ...base, accepted: false, reason: 'Rejected', message: `no route programmed; ${summary(mine)}` };
    return { ...base, accepted: true, reason: 'PartiallyAccepted', message: `${programmed(n)}; ${summary(mine)}` };
  }).sort(compareStatuses);
}

/** `ResolvedRefs` reason for each failure that means a backend reference cannot be used. */
const REF_REASONS: Partial<Record<FailureReason, RouteResolvedRefsReason>> = {
  ServiceNotFound: 'BackendNotFound',
  ServicePortNotFound: 'BackendNotFound',
  UnsupportedServiceType: 'UnsupportedBackend',
};

/**
 * One status per owned Route, sorted by namespace and name, with Gateway
 * API style `Accepted` and `ResolvedRefs` conditions. Backend problems go to
 * `ResolvedRefs` only; every other failure is listed under `Accepted`.
 */
export function routeStatuses(
  owned: readonly OwnedRoute[],
  tables: HostTables,
  failures: readonly ResourceFailure[],
): RouteStatusResult[] {
  const routes = routeCounts(tables, 'Route');
  const problems = failuresOf(failures, 'Route');
  return owned.map(({ key, route }): RouteStatusResult => {
    const id = `${key.namespace}/${key.name}`;
    const generation = route.metadata?.generation;
    const base = {
      namespace: key.namespace,
      name: key.name,
      generation: typeof generation === 'number' && Number.isSafeInteger(generation) && generation >= 0 ? generation : 0,
    };
    const mine = problems.get(id) ?? [];
    const invalid = mine.filter((f) => f.reason === 'InvalidRouteSpec');
    if (invalid.length) {
      const listed = invalid.slice(0, MAX_LISTED).map((f) => `${f.field}: ${f.message.replace(/; the Route is not accepted$/, '')}`).join('; ');
      return {
        ...base,
        conditions: [
          { type: 'Accepted', status: 'False', reason: 'InvalidRouteSpec', message: `the spec does not match the Route schema: ${listed}${more(invalid.length, MAX_LISTED)}` },
          { type: 'ResolvedRefs', status: 'Unknown', reason: 'InvalidRouteSpec', message: 'backend references are not resolved while the spec is invalid' },
        ],
      };
    }
    const refs = mine.filter((f) => REF_REASONS[f.reason] !== undefined);
    const others = mine.filter((f) => REF_REASONS[f.reason] === undefined);
    const n = routes.get(id) ?? 0;
    const accepted: RouteAcceptedCondition = n > 0
      ? { type: 'Accepted', status: 'True', reason: 'Accepted', message: others.length ? `${programmed(n)}; ${summary(others)}` : programmed(n) }
      : { type: 'Accepted', status: 'False', reason: 'NoRoutes', message: others.length ? `no route programmed; ${summary(others)}` : 'no route programmed' };
    let resolved: RouteResolvedRefsCondition = { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'all backend references resolved' };
    if (refs.length) {
      const reason = refs.some((f) => REF_REASONS[f.reason] === 'BackendNotFound') ? 'BackendNotFound' : 'UnsupportedBackend';
      const listed = refs.slice(0, MAX_REFS_LISTED).map((f) => `${f.field}: ${f.message}`).join('; ');
      const count = `${refs.length} backend ${refs.length === 1 ? 'reference' : 'references'}`;
      resolved = { type: 'ResolvedRefs', status: 'False', reason, message: `${count} cannot be used: ${listed}${more(refs.length, MAX_REFS_LISTED)}` };
    }
    return { ...base, conditions: [accepted, resolved] };
  }).sort(compareStatuses);
}

/** Routes in the snapshot per `namespace/name` of one source kind (one per host a match is on). */
function routeCounts(tables: HostTables, kind: SourceKind): Map<string, number> {
  const routes = new Map<string, number>();
  for (const table of tables.values()) {
    for (const e of table.entries) {
      for (const s of [e.source, e.canary]) {
        if (s?.kind !== kind) continue;
        const id = `${s.namespace}/${s.name}`;
        routes.set(id, (routes.get(id) ?? 0) + 1);
      }
    }
  }
  return routes;
}

/** Failures per `namespace/name` of one kind, in the (sorted) order given. */
function failuresOf(failures: readonly ResourceFailure[], kind: SourceKind): Map<string, ResourceFailure[]> {
  const out = new Map<string, ResourceFailure[]>();
  for (const f of failures) {
    if (f.object.kind !== kind) continue;
    const id = `${f.object.namespace}/${f.object.name}`;
    const l = out.get(id);
    if (l) l.push(f);
    else out.set(id, [f]);
  }
  return out;
}

function programmed(n: number): string {
  return `${n} ${n === 1 ? 'route' : 'routes'} programmed`;
}

/** `2 failures: PathConflict at spec.rules[0]…, …` listing at most {@link MAX_LISTED}. */
function summary(failures: readonly ResourceFailure[]): string {
  const listed = failures.slice(0, MAX_LISTED).map((f) => `${f.reason} at ${f.field}`).join(', ');
  return `${failures.length} ${failures.length === 1 ? 'failure' : 'failures'}: ${listed}${more(failures.length, MAX_LISTED)}`;
}

function more(total: number, listed: number): string {
  return total > listed ? ` and ${total - listed} more` : '';
}
