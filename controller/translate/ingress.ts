// Ingress rules → routes. Each problem fails only the rule or path it is in.
import type { HostTables } from './host-tables.ts';
import type { ServiceIndex } from './backends.ts';
import type { FailureList } from './failures.ts';
import type { OwnedIngress } from './owned.ts';
import { claimKey, hostTable } from './host-tables.ts';
import { normaliseHost } from './hosts.ts';
import { normalisePath } from './paths.ts';
import { resolveIngressBackend } from './backends.ts';
import { describeHolder, describeHost, ingressRef, whyWins } from './failures.ts';
import { ingressPathRouteName } from './names.ts';

/**
 * Add the routes of one Ingress's rules, and record its valid hosts in
 * `owned.hosts` for the default backend pass. Call in oldest-first order.
 */
export function addIngressRules(tables: HostTables, owned: OwnedIngress, services: ServiceIndex, failures: FailureList): void {
  const { key, ingress } = owned;
  const ref = ingressRef(key);
  const rules = list(ingress.spec?.rules);
  if (rules.length === 0 && !ingress.spec?.defaultBackend) {
    failures.add(ref, 'spec', 'EmptyIngress', 'Ingress has neither rules nor a defaultBackend, so it routes nothing');
    return;
  }
  rules.forEach((rule, i) => {
    const host = normaliseHost(rule?.host);
    if (!host.ok) {
      failures.add(ref, `spec.rules[${i}].host`, 'InvalidHost', `${host.message}; the rule is ignored`);
      return;
    }
    if (!owned.hosts.includes(host.host)) owned.hosts.push(host.host);
    list(rule?.http?.paths).forEach((p, j) => {
      const field = `spec.rules[${i}].http.paths[${j}]`;
      const path = normalisePath(p?.pathType, p?.path);
      if (!path.ok) {
        failures.add(ref, `${field}.${path.field}`, path.reason, `${path.message}; the path is ignored`);
        return;
      }
      const { type, value } = path.match;
      const table = hostTable(tables, host.host);
      const claim = claimKey(type, value);
      const holder = table.claims.get(claim);
      if (holder) {
        failures.add(ref, `${field}.path`, 'PathConflict',
          `${type} path ${JSON.stringify(value)} on ${describeHost(host.host)} is already routed by ${describeHolder(holder.owner, holder.field, key)}, which wins: ${whyWins(holder.owner, key)}`);
        return;
      }
      table.claims.set(claim, { owner: key, field });
      const backend = resolveIngressBackend(services, key.namespace, p?.backend, `${field}.backend`);
      if (!backend.ok) failures.add(ref, backend.problem.field, backend.problem.reason, backend.problem.message);
      table.entries.push({
        priority: 0,
        type,
        value,
        hasMethod: false,
        headers: 0,
        query: 0,
        createdMs: key.createdMs,
        namespace: key.namespace,
        name: key.name,
        kind: key.kind,
        rule: i,
        path: j,
        source: key,
        clusters: backend.ok ? [backend.cluster] : [],
        route: {
          name: ingressPathRouteName(key.namespace, key.name, i, j),
          source: ref,
          match: { path: { type, value } },
          action: backend.action,
        },
      });
    });
  });
}

/** An array field, or none when absent or malformed. */
function list<T>(value: readonly T[] | null | undefined): readonly T[] {
  return Array.isArray(value) ? value : [];
}
