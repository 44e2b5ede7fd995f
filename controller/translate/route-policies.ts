// Route rule filters and policies → snapshot route and cluster fields.
// The CRD's schema and CEL rules catch most mistakes at the API server, but
// local mode has none, and durations are only range-checked here, so every
// limit the snapshot has is checked again. A filter that cannot be applied
// makes the rule answer 500 (as Gateway API asks): serving without it could
// send traffic somewhere or with headers its author ruled out. A policy
// that cannot be applied is left out, and the dataplane's default applies.
import type {
  CircuitBreaker, HeaderModifier, HealthCheck, LoadBalancer, OutlierDetection, PathMatch, PathRewrite, RedirectAction, RetryPolicy, Rewrite, SessionAffinity,
} from '../../dataplane/snapshot/schema.ts';
import { HeaderModifier as HeaderModifierSchema } from '../../dataplane/snapshot/schema.ts';
import type { RouteRule, RouteSpec } from '../api/route.ts';
import { parseDuration } from './durations.ts';
import type { FailureList } from './failures.ts';
import type { ClusterPolicy } from './policies.ts';
import type { ObjectRef } from './types.ts';

type Filter = NonNullable<RouteRule['filters']>[number];
type PathModifierSpec = NonNullable<NonNullable<Filter['urlRewrite']>['path']>;
type BackendPolicySpec = NonNullable<RouteSpec['backendPolicy']>;

/** A rule's filters, translated; a `prefixFilter` needs every route of the rule to match by Prefix. */
export interface RuleFilters {
  readonly redirect: Omit<RedirectAction, 'path'> & { readonly path?: PathRewrite | undefined } | undefined;
  readonly rewrite: Rewrite | undefined;
  readonly requestHeaders: HeaderModifier | undefined;
  readonly responseHeaders: HeaderModifier | undefined;
  /** Mirror filters with their index, resolved by the caller. */
  readonly mirrors: readonly { readonly k: number; readonly name: string; readonly port: number; readonly percent: number }[];
  /** Index of a filter that replaces a matched prefix, if any. */
  readonly prefixFilter: number | undefined;
  /** Set when a filter cannot be applied: the rule answers 500. */
  readonly invalid: boolean;
}

/** Translate a rule's filters; problems are InvalidFilter failures. */
export function translateFilters(rule: RouteRule, i: number, ref: ObjectRef, failures: FailureList): RuleFilters {
  let invalid = false;
  let prefixFilter: number | undefined;
  const fail = (k: number, sub: string, message: string): void => {
    failures.add(ref, `spec.rules[${i}].filters[${k}]${sub}`, 'InvalidFilter', `${message}; the rule answers 500 until it is fixed`);
    invalid = true;
  };
  let redirect: RuleFilters['redirect'];
  let rewrite: Rewrite | undefined;
  let requestHeaders: HeaderModifier | undefined;
  let responseHeaders: HeaderModifier | undefined;
  const mirrors: { k: number; name: string; port: number; percent: number }[] = [];
  const seen = new Set<string>();
  (rule.filters ?? []).forEach((f, k) => {
    const settings = (f as Record<string, unknown>)[FIELD[f.type]];
    if (settings === undefined) {
      fail(k, '', `a ${f.type} filter needs its ${FIELD[f.type]} field`);
      return;
    }
    if (f.type !== 'RequestMirror' && seen.has(f.type)) {
      fail(k, '', `only one ${f.type} filter is allowed per rule`);
      return;
    }
    seen.add(f.type);
    switch (f.type) {
      case 'RequestHeaderModifier':
      case 'ResponseHeaderModifier': {
        const parsed = HeaderModifierSchema.safeParse(settings);
        if (!parsed.success) {
          fail(k, `.${FIELD[f.type]}`, parsed.error.issues[0]!.message);
          return;
        }
        const m = parsed.data;
        if (f.type === 'RequestHeaderModifier') requestHeaders = m;
        else responseHeaders = m;
        return;
      }
      case 'URLRewrite': {
        const u = f.urlRewrite!;
        const path = u.path === undefined ? undefined : pathModifier(u.path, true, (m) => fail(k, '.urlRewrite.path', m));
        if (u.path !== undefined && path === undefined) return;
        if (path?.type === 'ReplacePrefixMatch') prefixFilter = k;
        rewrite = { ...(path !== undefined && { path }), ...(u.hostname !== undefined && { host: u.hostname }) };
        return;
      }
      case 'RequestRedirect': {
        const r = f.requestRedirect!;
        const path = r.path === undefined ? undefined : pathModifier(r.path, false, (m) => fail(k, '.requestRedirect.path', m));
        if (r.path !== undefined && path === undefined) return;
        if (path?.type === 'ReplacePrefixMatch') prefixFilter = k;
        redirect = {
          type: 'redirect',
          ...(r.scheme !== undefined && { scheme: r.scheme }),
          ...(r.hostname !== undefined && { hostname: r.hostname }),
          ...(r.port !== undefined && { port: r.port }),
          ...(path !== undefined && { path }),
          status: r.statusCode as RedirectAction['status'],
        };
        return;
      }
      case 'RequestMirror':
        mirrors.push({ k, name: f.requestMirror!.backend.name, port: f.requestMirror!.backend.port, percent: f.requestMirror!.percent });
    }
  });
  if (redirect !== undefined && rewrite !== undefined) {
    fail((rule.filters ?? []).findIndex((f) => f.type === 'URLRewrite'), '', 'RequestRedirect and URLRewrite cannot be combined');
  }
  return { redirect, rewrite, requestHeaders, responseHeaders, mirrors, prefixFilter, invalid };
}

const FIELD = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  RequestMirror: 'requestMirror',
} as const;

function pathModifier(m: PathModifierSpec, regexAllowed: boolean, fail: (message: string) => void): PathRewrite | undefined {
  switch (m.type) {
    case 'ReplaceFullPath':
      if (m.replaceFullPath === undefined) return void fail('ReplaceFullPath needs replaceFullPath');
      return { type: 'ReplaceFullPath', value: m.replaceFullPath };
    case 'ReplacePrefixMatch':
      if (m.replacePrefixMatch === undefined) return void fail('ReplacePrefixMatch needs replacePrefixMatch');
      return { type: 'ReplacePrefixMatch', value: m.replacePrefixMatch };
    case 'ReplaceRegexMatch': {
      if (!regexAllowed) return void fail('a redirect path cannot be ReplaceRegexMatch');
      if (m.replaceRegexMatch === undefined) return void fail('ReplaceRegexMatch needs replaceRegexMatch');
      const { pattern, substitution } = m.replaceRegexMatch;
      try {
        new RegExp(pattern);
        new RegExp(`^(?:${pattern})`);
      } catch (err) {
        return void fail(`${JSON.stringify(pattern)} is not a valid ECMAScript regular expression (${(err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '')})`);
      }
      return { type: 'RegexReplace', pattern, substitution };
    }
  }
}

/** Whether a ReplacePrefixMatch filter can apply to a route matching `path`. */
export function prefixFilterFits(path: PathMatch): boolean {
  return path.type === 'Prefix';
}

/** A duration within bounds, in ms; a problem message otherwise. */
function duration(text: string | undefined, min: number, max: number, maxText: string): { ms?: number; problem?: string } {
  if (text === undefined) return {};
  const ms = parseDuration(text);
  if (ms === undefined) return { problem: `${JSON.stringify(text)} is not a duration such as 500ms, 10s or 1m30s` };
  if (ms < min || ms > max) return { problem: `${JSON.stringify(text)} is not from ${min}ms to ${maxText}` };
  return { ms };
}

/** A rule's retry; undefined (with InvalidPolicy) when a duration is out of range. */
export function translateRetry(rule: RouteRule, i: number, ref: ObjectRef, failures: FailureList): RetryPolicy | undefined {
  const r = rule.retry;
  if (r === undefined) return undefined;
  const perTry = duration(r.perTryTimeout, 1, 86_400_000, '24h');
  const backoff = duration(r.backoff, 1, 60_000, '1m');
  const problems = [
    ...(perTry.problem ? [['perTryTimeout', perTry.problem]] : []),
    ...(backoff.problem ? [['backoff', backoff.problem]] : []),
    ...(r.codes && new Set(r.codes).size !== r.codes.length ? [['codes', 'codes must not repeat']] : []),
    ...(r.on && new Set(r.on).size !== r.on.length ? [['on', 'conditions must not repeat']] : []),
  ];
  for (const [f, m] of problems) failures.add(ref, `spec.rules[${i}].retry.${f}`, 'InvalidPolicy', `${m}; the rule is not retried`);
  if (problems.length) return undefined;
  return {
    attempts: r.attempts,
    ...(r.on !== undefined && { on: r.on }),
    ...(r.codes !== undefined && r.codes.length > 0 && { statuses: r.codes }),
    ...(perTry.ms !== undefined && { perTryTimeoutMs: perTry.ms }),
    ...(backoff.ms !== undefined && { backoffBaseMs: backoff.ms }),
    ...(r.allowNonIdempotent !== undefined && { allowNonIdempotent: r.allowNonIdempotent }),
    ...(r.budgetPercent !== undefined && { budgetPercent: r.budgetPercent }),
  };
}

/** A rule's session persistence as cookie affinity; undefined (with InvalidPolicy) when the lifetime is out of range. */
export function translateAffinity(rule: RouteRule, i: number, ref: ObjectRef, failures: FailureList): SessionAffinity | undefined {
  const p = rule.sessionPersistence;
  if (p === undefined) return undefined;
  const ttl = duration(p.absoluteTimeout, 1000, 2_147_483_647_000, '68 years');
  if (ttl.problem) {
    failures.add(ref, `spec.rules[${i}].sessionPersistence.absoluteTimeout`, 'InvalidPolicy', `${ttl.problem}; requests are not pinned to an endpoint`);
    return undefined;
  }
  const c = p.cookie;
  return {
    cookie: {
      name: p.sessionName,
      ...(ttl.ms !== undefined && { ttlSeconds: Math.floor(ttl.ms / 1000) }),
      ...(c?.path !== undefined && { path: c.path }),
      ...(c?.domain !== undefined && { domain: c.domain }),
      ...(c?.secure !== undefined && { secure: c.secure }),
      ...(c?.httpOnly !== undefined && { httpOnly: c.httpOnly }),
      ...(c?.sameSite !== undefined && { sameSite: c.sameSite }),
    },
  };
}

const PROTOCOL = { HTTP: 'http', HTTPS: 'https', H2C: 'h2c', H2: 'h2', GRPC: 'grpc', GRPCS: 'grpcs' } as const;

/**
 * The cluster policy of a rule: `spec.backendPolicy` with the rule's own
 * fields replacing it field by field. A part with an out-of-range duration
 * is left out, with an InvalidPolicy failure at the field that set it.
 */
export function translateBackendPolicy(spec: RouteSpec, rule: RouteRule, i: number, ref: ObjectRef, failures: FailureList): ClusterPolicy {
  const fieldOf = (name: keyof BackendPolicySpec): string => rule.backendPolicy?.[name] !== undefined ? `spec.rules[${i}].backendPolicy.${name}` : `spec.backendPolicy.${name}`;
  const pick = <K extends keyof BackendPolicySpec>(name: K): BackendPolicySpec[K] | undefined => rule.backendPolicy?.[name] ?? spec.backendPolicy?.[name];
  const bad = (name: keyof BackendPolicySpec, sub: string, message: string): undefined => {
    failures.add(ref, `${fieldOf(name)}.${sub}`, 'InvalidPolicy', `${message}; the ${name} policy is not applied`);
    return undefined;
  };

  const protocol = pick('protocol');
  const lb = pick('loadBalancer');
  let loadBalancer: LoadBalancer | undefined;
  if (lb !== undefined) {
    const h = lb.consistentHash;
    if ((lb.type === 'ConsistentHash') !== (h !== undefined)) loadBalancer = bad('loadBalancer', 'consistentHash', 'consistentHash must be set exactly when type is ConsistentHash');
    else if (h === undefined) loadBalancer = { policy: lb.type };
    else if ((h.type === 'SourceIP' || h.type === 'RequestURI') !== (h.name === undefined)) loadBalancer = bad('loadBalancer', 'consistentHash.name', 'name must be set for Header, Cookie and QueryParameter, and only for them');
    else if (h.type === 'Header' || h.type === 'Cookie') {
      loadBalancer = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(h.name!)
        ? { policy: 'ConsistentHash', hashOn: { type: h.type, name: h.name! } }
        : bad('loadBalancer', 'consistentHash.name', `${JSON.stringify(h.name)} is not a ${h.type.toLowerCase()} name`);
    } else if (h.type === 'QueryParameter') loadBalancer = { policy: 'ConsistentHash', hashOn: { type: 'QueryParameter', name: h.name! } };
    else loadBalancer = { policy: 'ConsistentHash', hashOn: { type: h.type } };
  }

  const hc = pick('healthCheck');
  let healthCheck: HealthCheck | undefined;
  if (hc !== undefined) {
    const interval = duration(hc.interval, 100, 3_600_000, '1h');
    const timeout = duration(hc.timeout, 1, 600_000, '10m');
    const hostOk = hc.host === undefined || /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)(:[0-9]{1,5})?$/.test(hc.host);
    const statusesOk = hc.expectedStatuses === undefined || new Set(hc.expectedStatuses).size === hc.expectedStatuses.length;
    if (interval.problem) healthCheck = bad('healthCheck', 'interval', interval.problem);
    else if (timeout.problem) healthCheck = bad('healthCheck', 'timeout', timeout.problem);
    else if (!hostOk) healthCheck = bad('healthCheck', 'host', `${JSON.stringify(hc.host)} is not a host name with an optional port`);
    else if (!statusesOk) healthCheck = bad('healthCheck', 'expectedStatuses', 'statuses must not repeat');
    else {
      healthCheck = {
        path: hc.path,
        ...(hc.host !== undefined && { host: hc.host }),
        ...(interval.ms !== undefined && { intervalMs: interval.ms }),
        ...(timeout.ms !== undefined && { timeoutMs: timeout.ms }),
        ...(hc.healthyThreshold !== undefined && { healthyThreshold: hc.healthyThreshold }),
        ...(hc.unhealthyThreshold !== undefined && { unhealthyThreshold: hc.unhealthyThreshold }),
        ...(hc.expectedStatuses !== undefined && { expectedStatuses: hc.expectedStatuses }),
      };
    }
  }

  const od = pick('outlierDetection');
  let outlierDetection: OutlierDetection | undefined;
  if (od !== undefined) {
    const base = duration(od.baseEjectionTime, 1, 3_600_000, '1h');
    const max = duration(od.maxEjectionTime, 1, 86_400_000, '24h');
    if (base.problem) outlierDetection = bad('outlierDetection', 'baseEjectionTime', base.problem);
    else if (max.problem) outlierDetection = bad('outlierDetection', 'maxEjectionTime', max.problem);
    else {
      outlierDetection = {
        ...(od.consecutive5xx !== undefined && { consecutive5xx: od.consecutive5xx }),
        ...(od.consecutiveConnectFailures !== undefined && { consecutiveConnectFailures: od.consecutiveConnectFailures }),
        ...(base.ms !== undefined && { baseEjectionMs: base.ms }),
        ...(max.ms !== undefined && { maxEjectionMs: max.ms }),
        ...(od.maxEjectionPercent !== undefined && { maxEjectionPercent: od.maxEjectionPercent }),
      };
    }
  }

  const cb = pick('circuitBreaker');
  const circuitBreaker: CircuitBreaker | undefined = cb === undefined ? undefined : { ...cb };
  const panic = pick('panicThresholdPercent');
  const useClusterIP = pick('useClusterIP');
  return {
    ...(protocol !== undefined && { protocol: PROTOCOL[protocol] }),
    ...(loadBalancer !== undefined && { loadBalancer }),
    ...(healthCheck !== undefined && { healthCheck }),
    ...(outlierDetection !== undefined && { outlierDetection }),
    ...(panic !== undefined && { panicThresholdPercent: panic }),
    ...(circuitBreaker !== undefined && { circuitBreaker }),
    ...(useClusterIP === true && { useClusterIP: true }),
  };
}
