// Route custom resources → routes. The spec is validated again with the
// CRD's own zod schema (which also applies its defaults): local mode has no
// API server, and a Route stored before a schema change was never checked
// against the current one. Past the schema, each problem fails only the
// match, backend or timeouts it is in, as for Ingress paths.
import { RouteSpec } from '../api/route.ts';
import type { RouteRule } from '../api/route.ts';
import type { z } from 'zod';
import type { Cluster, Mirror, PathMatch, Route, RouteAction, RouteMatch, Timeouts, ValueMatch } from '../../dataplane/snapshot/schema.ts';
import type { HostTables } from './host-tables.ts';
import type { ServiceIndex } from './backends.ts';
import type { FailureList } from './failures.ts';
import type { OwnedRoute } from './owned.ts';
import type { ObjectRef } from './types.ts';
import { claimKey, conditionsKey, hostTable } from './host-tables.ts';
import { CATCH_ALL_HOST, normaliseHost } from './hosts.ts';
import { normalisePath } from './paths.ts';
import { resolveServicePort } from './backends.ts';
import { describeHolder, describeHost, sourceRef, whyWins } from './failures.ts';
import { routeMatchRouteName } from './names.ts';
import { translateTimeouts } from './durations.ts';
import { translateAffinity, translateBackendPolicy, translateFilters, translateRetry } from './route-policies.ts';
import type { RuleFilters } from './route-policies.ts';
import { serviceClusterIP, withPolicy } from './policies.ts';
import type { ClusterPolicy } from './policies.ts';

type RuleSpec = RouteRule;
type MatchSpec = NonNullable<RuleSpec['matches']>[number];
type ValueMatchSpec = NonNullable<MatchSpec['headers']>[number];

/** More schema problems than this are summed up in one failure, so a garbage spec cannot flood events. */
const MAX_SPEC_ISSUES = 10;

/** Add the routes of one Route. Call in oldest-first order, interleaved with Ingresses. */
export function addRouteRules(tables: HostTables, owned: OwnedRoute, services: ServiceIndex, failures: FailureList): void {
  const { key } = owned;
  const ref = sourceRef(key);
  const parsed = RouteSpec.safeParse(owned.route.spec, { reportInput: true });
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap(describeIssue);
    for (const p of problems.slice(0, MAX_SPEC_ISSUES)) failures.add(ref, p.field, 'InvalidRouteSpec', `${p.message}; the Route is not accepted`);
    if (problems.length > MAX_SPEC_ISSUES) {
      failures.add(ref, 'spec', 'InvalidRouteSpec', `${problems.length - MAX_SPEC_ISSUES} more schema problems not listed; the Route is not accepted`);
    }
    return;
  }
  const spec = parsed.data;
  const hosts = routeHosts(spec.hostnames, ref, failures);
  spec.rules.forEach((rule, i) => {
    const filters = translateFilters(rule, i, ref, failures);
    const policy = translateBackendPolicy(spec, rule, i, ref, failures);
    const { action, clusters } = filters.invalid
      ? { action: INVALID_FILTER, clusters: [] }
      : filters.redirect !== undefined
        ? { action: filters.redirect as RouteAction, clusters: [] }
        : rule.directResponse !== undefined
          ? { action: directAction(rule.directResponse), clusters: [] }
          : ruleAction(rule, i, key.namespace, services, ref, failures, policy);
    const timeouts = ruleTimeouts(rule, i, ref, failures);
    const forwarding = action.type === 'forward' ? forwardFields(rule, i, key.namespace, filters, services, ref, failures) : { fields: {}, clusters: [] };
    // An empty list is read as absent: Gateway API's default match, PathPrefix "/".
    const explicit = rule.matches?.length ? rule.matches : undefined;
    (explicit ?? [undefined]).forEach((m, j) => {
      const field = explicit ? `spec.rules[${i}].matches[${j}]` : `spec.rules[${i}].matches`;
      const translated = translateMatch(m, field, ref, failures);
      if (!translated) return;
      const { match, label } = translated;
      // A prefix replacement means nothing to an Exact or regex match: that match answers 500.
      const misfit = filters.prefixFilter !== undefined && match.path.type !== 'Prefix' && action.type !== 'direct';
      if (misfit) {
        failures.add(ref, `spec.rules[${i}].filters[${filters.prefixFilter}]`, 'InvalidFilter',
          `ReplacePrefixMatch needs a PathPrefix match, and ${explicit ? `match ${j}` : 'the match'} is ${match.path.type === 'RegularExpression' ? 'RegularExpression' : match.path.type}; that match answers 500 until it is fixed`);
      }
      const route: Route = misfit
        ? { name: routeMatchRouteName(key.namespace, key.name, i, j), source: ref, match, action: INVALID_FILTER }
        : {
          name: routeMatchRouteName(key.namespace, key.name, i, j),
          source: ref,
          match,
          action,
          ...(timeouts ? { timeouts } : {}),
          ...forwarding.fields,
        };
      const claim = claimKey(match.path.type, match.path.value, conditionsKey(match));
      for (const host of hosts) {
        const table = hostTable(tables, host);
        const holder = table.claims.get(claim);
        if (holder) {
          failures.add(ref, field, 'PathConflict',
            `${label} on ${describeHost(host)} is already routed by ${describeHolder(holder.owner, holder.field, key)}, which wins: ${whyWins(holder.owner, key)}`);
          continue;
        }
        table.claims.set(claim, { owner: key, field });
        table.entries.push({
          priority: 0,
          type: match.path.type,
          value: match.path.value,
          hasMethod: match.methods !== undefined,
          headers: match.headers?.length ?? 0,
          query: match.query?.length ?? 0,
          cookies: match.cookies?.length ?? 0,
          createdMs: key.createdMs,
          namespace: key.namespace,
          name: key.name,
          kind: key.kind,
          rule: i,
          path: j,
          source: key,
          clusters: misfit ? [] : [...clusters, ...forwarding.clusters],
          route,
        });
      }
    });
  });
}

/**
 * Virtual hosts of a Route: its hostnames, or the catch-all when it has
 * none. The schema's pattern lets through what Ingress hosts may not be
 * (IP addresses, labels over 63 characters), so each is checked again.
 * Duplicates, which only the CRD's CEL rule forbids, are merged.
 */
function routeHosts(hostnames: readonly string[] | undefined, ref: ObjectRef, failures: FailureList): string[] {
  if (!hostnames?.length) return [CATCH_ALL_HOST];
  const hosts: string[] = [];
  hostnames.forEach((raw, k) => {
    const host = normaliseHost(raw);
    if (!host.ok) failures.add(ref, `spec.hostnames[${k}]`, 'InvalidHost', `${host.message}; the hostname is ignored`);
    else if (!hosts.includes(host.host)) hosts.push(host.host);
  });
  return hosts;
}

/**
 * The action shared by every match of a rule. A backend that cannot be
 * resolved is dropped and the others share the traffic; a weight-0 backend
 * is resolved (a broken reference is still reported) but left out. With
 * nothing left the rule answers 503, still claiming its paths so traffic
 * does not fall through to a shorter prefix someone else owns.
 */
function ruleAction(
  rule: RuleSpec,
  i: number,
  namespace: string,
  services: ServiceIndex,
  ref: ObjectRef,
  failures: FailureList,
  policy: ClusterPolicy,
): { action: RouteAction; clusters: Cluster[] } {
  const usable: { cluster: Cluster; weight: number }[] = [];
  let body: string | undefined;
  const backends = rule.backends ?? [];
  backends.forEach((b, k) => {
    const field = `spec.rules[${i}].backends[${k}]`;
    const plain = resolveServicePort(services, namespace, b.name, { number: b.port }, { name: field, portNumber: field, portName: field });
    let p = policy;
    if (plain.ok && p.useClusterIP === true && serviceClusterIP(services.get(`${namespace}/${b.name}`)) === undefined) {
      failures.add(ref, policyField(rule, i, 'useClusterIP'), 'InvalidPolicy', `Service ${namespace}/${b.name} has no ClusterIP (headless); its endpoints are used`);
      p = { ...p, useClusterIP: false };
    }
    const resolved = withPolicy(plain, p);
    if (!resolved.ok) {
      failures.add(ref, resolved.problem.field, resolved.problem.reason, resolved.problem.message);
      if (b.weight > 0 && body === undefined && resolved.action.type === 'direct') body = resolved.action.body;
    } else if (b.weight > 0) {
      usable.push({ cluster: resolved.cluster, weight: b.weight });
    }
  });
  if (usable.length) {
    return {
      action: { type: 'forward', backends: usable.map((u) => ({ cluster: u.cluster.name, weight: u.weight })) },
      clusters: usable.map((u) => u.cluster),
    };
  }
  if (!backends.some((b) => b.weight > 0)) {
    failures.add(ref, `spec.rules[${i}].backends`, 'AllWeightsZero', 'every backend has weight 0, so requests matching this rule get a 503');
  }
  return { action: { type: 'direct', status: 503, body: body ?? 'no backend with a weight above 0' }, clusters: [] };
}

/** What a rule whose filters cannot be applied answers. */
const INVALID_FILTER: RouteAction = { type: 'direct', status: 500, body: 'invalid filter on this route' };

function directAction(d: NonNullable<RuleSpec['directResponse']>): RouteAction {
  return { type: 'direct', status: d.status, ...(d.body !== undefined && { body: d.body }), ...(d.contentType !== undefined && { contentType: d.contentType }) };
}

function policyField(rule: RuleSpec, i: number, name: string): string {
  return (rule.backendPolicy as Record<string, unknown> | undefined)?.[name] !== undefined ? `spec.rules[${i}].backendPolicy.${name}` : `spec.backendPolicy.${name}`;
}

/** Route fields that only mean something when the route forwards, and the mirror clusters. */
function forwardFields(
  rule: RuleSpec,
  i: number,
  namespace: string,
  filters: RuleFilters,
  services: ServiceIndex,
  ref: ObjectRef,
  failures: FailureList,
): { fields: Partial<Route>; clusters: Cluster[] } {
  const mirrors: Mirror[] = [];
  const clusters: Cluster[] = [];
  for (const m of filters.mirrors) {
    const field = `spec.rules[${i}].filters[${m.k}].requestMirror.backend`;
    const resolved = resolveServicePort(services, namespace, m.name, { number: m.port }, { name: field, portNumber: field, portName: field });
    if (!resolved.ok) {
      failures.add(ref, resolved.problem.field, resolved.problem.reason, `${resolved.problem.message}; requests are not mirrored there`);
      continue;
    }
    mirrors.push({ cluster: resolved.cluster.name, percent: m.percent });
    clusters.push(resolved.cluster);
  }
  const retry = translateRetry(rule, i, ref, failures);
  const affinity = translateAffinity(rule, i, ref, failures);
  return {
    fields: {
      ...(filters.rewrite !== undefined && { rewrite: filters.rewrite }),
      ...(filters.requestHeaders !== undefined && { requestHeaders: filters.requestHeaders }),
      ...(filters.responseHeaders !== undefined && { responseHeaders: filters.responseHeaders }),
      ...(retry !== undefined && { retry }),
      ...(affinity !== undefined && { sessionAffinity: affinity }),
      ...(mirrors.length > 0 && { mirrors }),
    },
    clusters,
  };
}

/** Snapshot timeouts of a rule; all of them are ignored when one is unusable, so no surprising half applies. */
function ruleTimeouts(rule: RuleSpec, i: number, ref: ObjectRef, failures: FailureList): Timeouts | undefined {
  const result = translateTimeouts(rule.timeouts);
  if (result.ok) return result.timeouts;
  for (const p of result.problems) {
    failures.add(ref, `spec.rules[${i}].timeouts.${p.field}`, 'InvalidTimeout', `${p.message}; this rule's timeouts are ignored`);
  }
  return undefined;
}

/**
 * One match → snapshot match, or undefined (with failures) when it cannot
 * be used. `label` describes it in conflict messages, in the Route's terms.
 */
function translateMatch(
  m: MatchSpec | undefined,
  field: string,
  ref: ObjectRef,
  failures: FailureList,
): { match: RouteMatch; label: string } | undefined {
  const pathSpec = m?.path ?? { type: 'PathPrefix' as const, value: '/' };
  let path: PathMatch;
  if (pathSpec.type === 'RegularExpression') {
    const error = regexError(pathSpec.value, true);
    if (error !== undefined) {
      failures.add(ref, `${field}.path.value`, 'InvalidRegex', `${JSON.stringify(pathSpec.value)} is not a valid ECMAScript regular expression (${error}); the match is ignored`);
      return undefined;
    }
    path = { type: 'RegularExpression', value: pathSpec.value };
  } else {
    // Ingress rules apply: no traversal sequences, no "?" or "#", and PathPrefix drops a trailing slash.
    const normalised = normalisePath(pathSpec.type === 'Exact' ? 'Exact' : 'Prefix', pathSpec.value);
    if (!normalised.ok) {
      failures.add(ref, `${field}.path.value`, 'InvalidPath', `${normalised.message}; the match is ignored`);
      return undefined;
    }
    path = normalised.match;
  }
  const headers = valueMatches(m?.headers, true, `${field}.headers`, ref, failures);
  const query = valueMatches(m?.queryParams, false, `${field}.queryParams`, ref, failures);
  const cookies = valueMatches(m?.cookies, false, `${field}.cookies`, ref, failures);
  if (!headers || !query || !cookies) return undefined;
  const match: RouteMatch = {
    path,
    ...(m?.method ? { methods: [m.method] } : {}),
    ...(headers.length ? { headers } : {}),
    ...(query.length ? { query } : {}),
    ...(cookies.length ? { cookies } : {}),
  };
  const conditions = [
    ...(m?.method ? [`method ${m.method}`] : []),
    ...(headers.length ? [`${headers.length} header ${headers.length === 1 ? 'condition' : 'conditions'}`] : []),
    ...(query.length ? [`${query.length} query ${query.length === 1 ? 'condition' : 'conditions'}`] : []),
    ...(cookies.length ? [`${cookies.length} cookie ${cookies.length === 1 ? 'condition' : 'conditions'}`] : []),
  ];
  const label = `${pathSpec.type} path ${JSON.stringify(path.value)}${conditions.length ? ` with ${conditions.join(', ')}` : ''}`;
  return { match, label };
}

/**
 * Header or query conditions; null (with failures) when a regex does not
 * compile, since the dataplane would reject the whole snapshot for it. As
 * in Gateway API only the first condition on a name counts (header names
 * compare case-insensitively and are lower-cased), later ones are ignored.
 */
function valueMatches(
  list: readonly ValueMatchSpec[] | undefined,
  headers: boolean,
  field: string,
  ref: ObjectRef,
  failures: FailureList,
): ValueMatch[] | null {
  const out: ValueMatch[] = [];
  const seen = new Set<string>();
  let ok = true;
  (list ?? []).forEach((v, k) => {
    const name = headers ? v.name.toLowerCase() : v.name;
    if (seen.has(name)) return;
    seen.add(name);
    if (v.type === 'RegularExpression') {
      const error = regexError(v.value, false);
      if (error !== undefined) {
        failures.add(ref, `${field}[${k}].value`, 'InvalidRegex', `${JSON.stringify(v.value)} is not a valid ECMAScript regular expression (${error}); the match is ignored`);
        ok = false;
        return;
      }
    }
    out.push({ name, type: v.type, value: v.value });
  });
  return ok ? out : null;
}

/** Why a pattern does not compile, as the dataplane compiles it; undefined when it does. */
function regexError(pattern: string, anchored: boolean): string | undefined {
  try {
    new RegExp(pattern);
    // The dataplane anchors path patterns in a group; check that form too.
    if (anchored) new RegExp(`^(?:${pattern})`);
    return undefined;
  } catch (err) {
    // V8 repeats the pattern ("Invalid regular expression: /…/: Unterminated group"); the failure quotes it already.
    return (err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
  }
}

/** A zod issue → failures: field path under `spec`, and a message a user can act on. */
function describeIssue(issue: z.core.$ZodIssue): { field: string; message: string }[] {
  const field = specField(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => ({ field: `${field}.${k}`, message: `unknown field ${JSON.stringify(k)}` }));
  }
  if (issue.code === 'invalid_format' && issue.format === 'regex') {
    const hint = formatHint(issue.path);
    if (hint) return [{ field, message: `${JSON.stringify(issue.input)} ${hint}` }];
  }
  return [{ field, message: issue.message }];
}

// The schema's patterns are unreadable in a message; say what they mean instead.
function formatHint(path: readonly PropertyKey[]): string | undefined {
  if (path.includes('timeouts')) return 'is not a duration such as 500ms, 10s or 1h30m';
  if (path[0] === 'hostnames') return 'is not a lower-case DNS name or a wildcard such as *.example.com';
  if (path[0] === 'rules' && path[2] === 'name') return 'is not a lower-case DNS label (a-z, 0-9 and "-")';
  return undefined;
}

/** `["rules", 0, "backends"]` → `spec.rules[0].backends`. */
function specField(path: readonly PropertyKey[]): string {
  let out = 'spec';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `.${String(p)}`;
  return out;
}
