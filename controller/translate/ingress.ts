// Ingress rules → routes. Each problem fails only the rule or path it is in.
// What the Ingress's annotations ask for (annotations/ingress.ts) is applied
// here, per path.
import type { Cluster, PathMatch, Route, RouteAction } from '../../dataplane/snapshot/schema.ts';
import type { HostTables, RouteEntry } from './host-tables.ts';
import type { BackendProblem, ServiceIndex } from './backends.ts';
import type { FailureList } from './failures.ts';
import type { OwnedIngress } from './owned.ts';
import type { IngressAnnotations } from './annotations/ingress.ts';
import type { IngressBackend, ObjectRef } from './types.ts';
import { claimKey, hostTable } from './host-tables.ts';
import { normaliseHost } from './hosts.ts';
import { normalisePath, normaliseRegexPath } from './paths.ts';
import { resolveIngressBackend } from './backends.ts';
import { describeHolder, describeHost, ingressRef, whyWins } from './failures.ts';
import { ingressAppRootRouteName, ingressPathRouteName } from './names.ts';
import { serviceClusterIP, withPolicy } from './policies.ts';

/**
 * Add the routes of one Ingress's rules, and record its valid hosts in
 * `owned.hosts` for the default backend pass. Call in oldest-first order.
 * Paths on a host in `regexHosts` are case-insensitive regular expressions
 * (ingress-nginx applies `use-regex` and `rewrite-target` to every path of
 * the host, whichever Ingress they come from).
 */
export function addIngressRules(
  tables: HostTables,
  owned: OwnedIngress,
  services: ServiceIndex,
  failures: FailureList,
  ann: IngressAnnotations,
  regexHosts: ReadonlySet<string>,
): void {
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
    if (!owned.hosts.includes(host.host)) {
      owned.hosts.push(host.host);
      // Before the paths: nginx answers app-root for "/" ahead of any location.
      if (ann.appRoot !== undefined) addAppRoot(tables, owned, host.host, i, ann, failures);
    }
    list(rule?.http?.paths).forEach((p, j) => {
      const field = `spec.rules[${i}].http.paths[${j}]`;
      const path = regexHosts.has(host.host) ? normaliseRegexPath(p?.pathType, p?.path) : normalisePath(p?.pathType, p?.path);
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
          `${type === 'RegularExpression' ? 'regex' : type} path ${JSON.stringify(value)} on ${describeHost(host.host)} is already routed by ${describeHolder(holder.owner, holder.field, key)}, which wins: ${whyWins(holder.owner, key)}`);
        return;
      }
      table.claims.set(claim, { owner: key, field });
      const backend = pathBackend(ann, services, key.namespace, p?.backend, `${field}.backend`);
      if (backend.problem) failures.add(ref, backend.problem.field, backend.problem.reason, backend.problem.message);
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
        clusters: backend.cluster ? [backend.cluster] : [],
        route: pathRoute(ingressPathRouteName(key.namespace, key.name, i, j), ref, path.match, backend.action, ann),
      });
    });
  });
}

/**
 * The action of one path: a redirect or a fail-closed 503 when the
 * annotations say so (the backend is then not looked at), else the backend
 * on the cluster its annotation policy asks for.
 */
function pathBackend(
  ann: IngressAnnotations,
  services: ServiceIndex,
  namespace: string,
  backend: IngressBackend | null | undefined,
  field: string,
): { readonly action: RouteAction; readonly cluster?: Cluster | undefined; readonly problem?: BackendProblem | undefined } {
  if (ann.failClosed !== undefined) {
    return { action: { type: 'direct', status: 503, body: `${ann.reader.key(ann.failClosed)} is not supported by PyServe` } };
  }
  if (ann.redirect !== undefined) return { action: ann.redirect };
  const resolved = resolveIngressBackend(services, namespace, backend, field);
  let policy = ann.cluster;
  if (resolved.ok && policy.useClusterIP === true && resolved.cluster.service !== undefined) {
    const svc = resolved.cluster.service;
    if (serviceClusterIP(services.get(`${svc.namespace}/${svc.name}`)) === undefined) {
      ann.reader.invalid('service-upstream', `${ann.reader.key('service-upstream')}: Service ${svc.namespace}/${svc.name} has no ClusterIP (headless)`, 'its endpoints are used');
      policy = { ...policy, useClusterIP: false };
    }
  }
  const final = withPolicy(resolved, policy);
  return final.ok ? { action: final.action, cluster: final.cluster } : { action: final.action, problem: final.problem };
}

/** A path's route with the annotation fields; forwarding-only ones only on forward routes. */
function pathRoute(name: string, source: ObjectRef, path: PathMatch, action: RouteAction, ann: IngressAnnotations): Route {
  const f = ann.routeFields;
  const common = {
    ...(f.limits !== undefined && { limits: f.limits }),
    ...(f.redirectHttp !== undefined && { redirectHttp: f.redirectHttp }),
    ...(f.forceRedirectHttp !== undefined && { forceRedirectHttp: f.forceRedirectHttp }),
  };
  if (action.type !== 'forward') return { name, source, match: { path }, action, ...common };
  // nginx rewrites with the location's own regex, so its capture groups are the path's.
  const rewritePath = ann.rewriteTarget !== undefined && path.type === 'RegularExpression'
    ? { type: 'RegexReplace' as const, pattern: path.value, substitution: ann.rewriteTarget }
    : undefined;
  const affinity = ann.affinity === undefined ? undefined
    // ingress-nginx's default cookie path is the location's path; a regex is no cookie path.
    : ann.affinity.cookie.path !== undefined || path.type === 'RegularExpression' || path.value === '/' ? ann.affinity
      : { cookie: { ...ann.affinity.cookie, path: path.value } };
  return {
    name,
    source,
    match: { path },
    action,
    ...(f.timeouts !== undefined && { timeouts: f.timeouts }),
    ...common,
    ...((rewritePath !== undefined || ann.rewriteHost !== undefined) && {
      rewrite: { ...(rewritePath !== undefined && { path: rewritePath }), ...(ann.rewriteHost !== undefined && { host: ann.rewriteHost }) },
    }),
    ...(f.requestHeaders !== undefined && { requestHeaders: f.requestHeaders }),
    ...(f.retry !== undefined && { retry: f.retry }),
    ...(affinity !== undefined && { sessionAffinity: affinity }),
  };
}

/** The app-root redirect: Exact `/` on one host of the Ingress, claimed like a path. */
function addAppRoot(tables: HostTables, owned: OwnedIngress, host: string, rule: number, ann: IngressAnnotations, failures: FailureList): void {
  const { key } = owned;
  const ref = ingressRef(key);
  const table = hostTable(tables, host);
  const claim = claimKey('Exact', '/');
  const field = ann.reader.field('app-root');
  const holder = table.claims.get(claim);
  if (holder) {
    failures.add(ref, field, 'PathConflict',
      `the app-root redirect of "/" on ${describeHost(host)} conflicts with ${describeHolder(holder.owner, holder.field, key)}, which wins: ${whyWins(holder.owner, key)}`);
    return;
  }
  table.claims.set(claim, { owner: key, field });
  const entry: RouteEntry = {
    priority: 0,
    type: 'Exact',
    value: '/',
    hasMethod: false,
    headers: 0,
    query: 0,
    createdMs: key.createdMs,
    namespace: key.namespace,
    name: key.name,
    kind: key.kind,
    rule,
    path: -1,
    source: key,
    clusters: [],
    route: pathRoute(ingressAppRootRouteName(key.namespace, key.name), ref, { type: 'Exact', value: '/' }, ann.appRoot!, ann),
  };
  table.entries.push(entry);
}

/** An array field, or none when absent or malformed. */
function list<T>(value: readonly T[] | null | undefined): readonly T[] {
  return Array.isArray(value) ? value : [];
}
