// ingress-nginx canary Ingresses. A canary does not route paths of its own:
// each of its paths joins the same host and path of a main Ingress, as
// ingress-nginx merges it into the main location. Here that becomes
//   - the main route's backend split by weight with the canary's, and
//   - extra routes on the same path with a header or cookie condition,
//     ahead of the main route (more conditions sort first), in
//     ingress-nginx's precedence: header, then cookie, then weight.
// The canary routes copy the main route's settings (timeouts, rewrites,
// affinity…): ingress-nginx takes those from the main Ingress too.
import type { Cluster, Route, RouteAction, RouteMatch, ValueMatch } from '../../../dataplane/snapshot/schema.ts';
import type { SourceKey } from '../meta.ts';
import type { HTTPIngressPath } from '../types.ts';
import type { ServiceIndex } from '../backends.ts';
import { resolveIngressBackend } from '../backends.ts';
import type { FailureList } from '../failures.ts';
import { describeHolder, describeHost, ingressRef, sameSource, whyWins } from '../failures.ts';
import type { HostTables, RouteEntry } from '../host-tables.ts';
import { claimKey, conditionsKey } from '../host-tables.ts';
import { normaliseHost } from '../hosts.ts';
import { canaryRouteName } from '../names.ts';
import type { OwnedIngress } from '../owned.ts';
import { normalisePath, normaliseRegexPath } from '../paths.ts';
import { serviceClusterIP, withPolicy } from '../policies.ts';
import type { IngressAnnotations } from './ingress.ts';

/** A canary Ingress and its annotations. */
export interface CanaryIngress {
  readonly owned: OwnedIngress;
  readonly ann: IngressAnnotations;
}

/** Merge canary Ingresses (oldest first) into the main paths already in `tables`. */
export function addCanaries(tables: HostTables, canaries: readonly CanaryIngress[], services: ServiceIndex, failures: FailureList, regexHosts: ReadonlySet<string>): void {
  for (const { owned, ann } of canaries) {
    const { key, ingress } = owned;
    const ref = ingressRef(key);
    const canary = ann.canary!;
    const rules = Array.isArray(ingress.spec?.rules) ? ingress.spec.rules : [];
    if (rules.length === 0) failures.add(ref, 'spec.rules', 'CanaryWithoutMain', 'a canary Ingress needs rules whose paths match a main Ingress\'s; its default backend is not used');
    rules.forEach((rule, i) => {
      const host = normaliseHost(rule?.host);
      if (!host.ok) {
        failures.add(ref, `spec.rules[${i}].host`, 'InvalidHost', `${host.message}; the rule is ignored`);
        return;
      }
      const paths: readonly HTTPIngressPath[] = Array.isArray(rule?.http?.paths) ? rule.http.paths : [];
      paths.forEach((p, j) => {
        const field = `spec.rules[${i}].http.paths[${j}]`;
        const path = regexHosts.has(host.host) ? normaliseRegexPath(p?.pathType, p?.path) : normalisePath(p?.pathType, p?.path);
        if (!path.ok) {
          failures.add(ref, `${field}.${path.field}`, path.reason, `${path.message}; the path is ignored`);
          return;
        }
        const { type, value } = path.match;
        const label = `${type === 'RegularExpression' ? 'regex' : type} path ${JSON.stringify(value)} on ${describeHost(host.host)}`;
        const table = tables.get(host.host);
        const holder = table?.claims.get(claimKey(type, value));
        if (table === undefined || holder === undefined) {
          failures.add(ref, `${field}.path`, 'CanaryWithoutMain', `no Ingress routes ${label}, so this canary path has nothing to join and is not served`);
          return;
        }
        if (holder.owner.kind !== 'Ingress') {
          failures.add(ref, `${field}.path`, 'CanaryWithoutMain', `${label} is routed by ${holder.owner.kind} ${holder.owner.namespace}/${holder.owner.name}; a canary joins Ingress paths only`);
          return;
        }
        const index = table.entries.findIndex((e) => e.priority === 0 && e.source !== undefined && sameSource(e.source, holder.owner)
          && e.type === type && e.value === value && !e.hasMethod && e.headers === 0 && e.query === 0 && !e.cookies);
        const main = table.entries[index]!;
        if (main.canary !== undefined) {
          failures.add(ref, `${field}.path`, 'PathConflict',
            `${label} already has canary Ingress ${main.canary.namespace}/${main.canary.name}, which wins: ${whyWins(main.canary, key)} (one canary per path, as in ingress-nginx)`);
          return;
        }
        if (main.route.action.type !== 'forward') {
          const why = main.route.action.type === 'redirect' ? 'redirects' : `answers ${main.route.action.status} itself`;
          failures.add(ref, `${field}.path`, 'CanaryWithoutMain', `the main path ${label} (${describeHolder(holder.owner, holder.field, key)}) ${why}, so the canary is not used`);
          return;
        }
        const mainCluster = main.clusters[0];
        let policy = { ...ann.cluster, protocol: mainCluster?.protocol };
        const resolved = resolveIngressBackend(services, key.namespace, p?.backend, `${field}.backend`);
        if (!resolved.ok) {
          failures.add(ref, resolved.problem.field, resolved.problem.reason, `${resolved.problem.message}; the canary is not used on ${label}`);
          return;
        }
        const svc = resolved.cluster.service;
        if (policy.useClusterIP === true && svc !== undefined && serviceClusterIP(services.get(`${svc.namespace}/${svc.name}`)) === undefined) {
          ann.reader.invalid('service-upstream', `${ann.reader.key('service-upstream')}: Service ${svc.namespace}/${svc.name} has no ClusterIP (headless)`, 'its endpoints are used');
          policy = { ...policy, useClusterIP: false };
        }
        const backend = withPolicy(resolved, policy);
        if (!backend.ok) return;
        const toCanary: RouteAction = backend.action;
        const toMain = main.route.action;
        const { weight, total } = canary;
        const mainBackend = toMain.backends[0]!;
        const split: RouteAction = weight === 0 ? toMain
          : weight === total ? { type: 'forward', backends: [{ cluster: backend.cluster.name, weight: total }] }
            : { type: 'forward', backends: [{ cluster: mainBackend.cluster, weight: total - weight }, { cluster: backend.cluster.name, weight }] };
        table.entries[index] = {
          ...main,
          route: { ...main.route, action: split },
          clusters: weight === 0 ? main.clusters : weight === total ? [backend.cluster] : [...main.clusters, backend.cluster],
          canary: key,
        };

        const add = (kind: string, match: Omit<RouteMatch, 'path'>, action: RouteAction): void => {
          const full: RouteMatch = { path: path.match, ...match };
          const claim = claimKey(type, value, conditionsKey(full));
          const taken = table.claims.get(claim);
          if (taken) {
            failures.add(ref, `${field}.path`, 'PathConflict', `the canary's ${kind} route for ${label} is already routed by ${describeHolder(taken.owner, taken.field, key)}, which wins: ${whyWins(taken.owner, key)}`);
            return;
          }
          table.claims.set(claim, { owner: key, field });
          const { name: _name, source: _source, match: _match, action: _action, ...settings } = main.route;
          const route: Route = { name: canaryRouteName(key.namespace, key.name, i, j, kind), source: ref, match: full, action, ...settings };
          table.entries.push(entryFor(main, route, key, i, j, backend.cluster, action === toCanary));
        };
        if (canary.header !== undefined) {
          const h = canary.header;
          add('header', { headers: [valueMatch(h.name, h.value?.type ?? 'Exact', h.value?.value ?? 'always')] }, toCanary);
          if (h.value === undefined) add('header-never', { headers: [valueMatch(h.name, 'Exact', 'never')] }, toMain);
        }
        if (canary.cookie !== undefined) {
          add('cookie', { cookies: [valueMatch(canary.cookie, 'Exact', 'always')] }, toCanary);
          add('cookie-never', { cookies: [valueMatch(canary.cookie, 'Exact', 'never')] }, toMain);
        }
      });
    });
  }
}

function valueMatch(name: string, type: ValueMatch['type'], value: string): ValueMatch {
  return { name, type, value };
}

/** A canary route's table entry: sorted on the main path by its conditions, owned by the canary Ingress. */
function entryFor(main: RouteEntry, route: Route, key: SourceKey, rule: number, path: number, cluster: Cluster, toCanary: boolean): RouteEntry {
  return {
    priority: 0,
    type: main.type,
    value: main.value,
    hasMethod: false,
    headers: route.match.headers?.length ?? 0,
    query: 0,
    cookies: route.match.cookies?.length ?? 0,
    createdMs: key.createdMs,
    namespace: key.namespace,
    name: key.name,
    kind: key.kind,
    rule,
    path,
    source: key,
    clusters: toCanary ? [cluster] : main.clusters,
    route,
  };
}
