// Per-Ingress outcome. Statuses depend on routing only, never on endpoint
// readiness: the endpoints fast path does not recompute them, so a status
// that mentioned endpoints would go stale.
import type { HostTables } from './host-tables.ts';
import type { OwnedIngress } from './owned.ts';
import type { IngressStatus, ResourceFailure } from './types.ts';
import { compareStatuses } from './sort.ts';

const MAX_LISTED = 3;

/** One status per owned Ingress, sorted by namespace and name. */
export function ingressStatuses(
  owned: readonly OwnedIngress[],
  tables: HostTables,
  failures: readonly ResourceFailure[],
): IngressStatus[] {
  const routes = new Map<string, number>();
  for (const table of tables.values()) {
    for (const e of table.entries) {
      if (!e.source) continue;
      const id = `${e.source.namespace}/${e.source.name}`;
      routes.set(id, (routes.get(id) ?? 0) + 1);
    }
  }
  const problems = new Map<string, ResourceFailure[]>();
  for (const f of failures) {
    if (f.object.kind !== 'Ingress') continue;
    const id = `${f.object.namespace}/${f.object.name}`;
    const l = problems.get(id);
    if (l) l.push(f);
    else problems.set(id, [f]);
  }
  return owned.map(({ key }): IngressStatus => {
    const id = `${key.namespace}/${key.name}`;
    const n = routes.get(id) ?? 0;
    const mine = problems.get(id) ?? [];
    const programmed = `${n} ${n === 1 ? 'route' : 'routes'} programmed`;
    const base = { kind: 'Ingress' as const, namespace: key.namespace, name: key.name };
    if (mine.length === 0) return { ...base, accepted: true, reason: 'Accepted', message: programmed };
    const listed = mine.slice(0, MAX_LISTED).map((f) => `${f.reason} at ${f.field}`).join(', ');
    const more = mine.length > MAX_LISTED ? ` and ${mine.length - MAX_LISTED} more` : '';
    const summary = `${mine.length} ${mine.length === 1 ? 'failure' : 'failures'}: ${listed}${more}`;
    if (n === 0) return { ...base, accepted: false, reason: 'Rejected', message: `no route programmed; ${summary}` };
    return { ...base, accepted: true, reason: 'PartiallyAccepted', message: `${programmed}; ${summary}` };
  }).sort(compareStatuses);
}
