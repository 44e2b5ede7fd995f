// An Ingress's ingress-nginx annotations → what its routes and clusters get.
// Each annotation is validated on its own: a bad value is an
// InvalidAnnotation failure and that annotation alone falls back to the
// default, so the Ingress keeps being served.
import type {
  ClusterProtocol, HashOn, LoadBalancer, RedirectAction, RetryOn, RetryPolicy, Route, SessionAffinity,
} from '../../../dataplane/snapshot/schema.ts';
import type { FailureList } from '../failures.ts';
import { normaliseHost } from '../hosts.ts';
import type { ClusterPolicy } from '../policies.ts';
import type { Ingress, ObjectRef } from '../types.ts';
import { ANNOTATIONS } from './catalog.ts';
import { AnnotationReader } from './read.ts';
import { isToken, parseBool, parseInt, parseList, parseNginxSize, parseSeconds } from './values.ts';
import type { Parsed } from './values.ts';

/** Route fields every path of the Ingress gets. */
export type RouteFields = Pick<Route, 'timeouts' | 'limits' | 'redirectHttp' | 'forceRedirectHttp' | 'requestHeaders' | 'retry'>;

/** How a canary Ingress joins the main Ingress's paths. */
export interface CanaryAnnotations {
  /** `canary-by-header`: the header, and what sends a request to the canary. */
  readonly header: { readonly name: string; readonly value: { readonly type: 'Exact' | 'RegularExpression'; readonly value: string } | undefined } | undefined;
  /** `canary-by-cookie`: the cookie whose value `always` / `never` decides. */
  readonly cookie: string | undefined;
  /** `canary-weight` out of `total`. */
  readonly weight: number;
  readonly total: number;
}

/** Everything the annotations of one Ingress ask for. */
export interface IngressAnnotations {
  readonly reader: AnnotationReader;
  /** Set when `canary: "true"`: the Ingress joins other Ingresses' paths instead of having its own. */
  readonly canary: CanaryAnnotations | undefined;
  /** `use-regex` or `rewrite-target`: the paths of this Ingress's hosts are case-insensitive regexes. */
  readonly regex: boolean;
  /** Name of an access-control annotation PyServe cannot enforce: every path answers 503. */
  readonly failClosed: string | undefined;
  readonly routeFields: RouteFields;
  /** `rewrite-target`: the substitution of a regex rewrite whose pattern is the path. */
  readonly rewriteTarget: string | undefined;
  /** `upstream-vhost`. */
  readonly rewriteHost: string | undefined;
  /** `affinity: cookie` and `session-cookie-*`; the cookie path is filled per path when not set. */
  readonly affinity: SessionAffinity | undefined;
  /** `permanent-redirect` / `temporal-redirect`: every path redirects. */
  readonly redirect: RedirectAction | undefined;
  /** `app-root`: an Exact `/` route redirecting there. */
  readonly appRoot: RedirectAction | undefined;
  readonly cluster: ClusterPolicy;
  /** `server-alias`: extra hostnames for the Ingress's host. */
  readonly aliases: readonly string[];
}

// Annotations a canary Ingress honours (they shape its own upstream); every
// other non-canary annotation comes from the main Ingress, as in ingress-nginx.
const CANARY_OWN = new Set(['load-balance', 'upstream-hash-by', 'service-upstream']);
const AFFINITY = ['affinity', 'affinity-mode', 'session-cookie-name', 'session-cookie-path', 'session-cookie-domain', 'session-cookie-samesite',
  'session-cookie-conditional-samesite-none', 'session-cookie-secure', 'session-cookie-max-age', 'session-cookie-expires', 'session-cookie-change-on-failure'];

// nginx variables cannot be evaluated outside nginx; only capture groups are understood.
const NGINX_VARIABLE = /\$(\{?[A-Za-z_])/;

/** Read and validate every annotation of an Ingress; failures go to `failures`. */
export function readIngressAnnotations(ingress: Ingress, ref: ObjectRef, failures: FailureList): IngressAnnotations {
  const r = new AnnotationReader(ingress.metadata?.annotations, ref, failures);
  r.reportUnsupported();
  const value = <T>(name: string, parse: (text: string) => Parsed<T>, effect: string): T | undefined => {
    const text = r.get(name);
    if (text === undefined) return undefined;
    const parsed = parse(text);
    if (parsed.ok) return parsed.value;
    r.invalid(name, `${r.key(name)}: ${parsed.message}`, effect);
    return undefined;
  };

  const canaryOn = value('canary', parseBool, 'the Ingress is not a canary') === true;
  const canary = canaryOn ? readCanary(r, value) : undefined;
  if (!canaryOn) {
    for (const n of r.names()) if (n.startsWith('canary-')) r.ignored(n, `${r.key('canary')} is not "true"`);
    if (r.has('affinity-canary-behavior')) r.ignored('affinity-canary-behavior', 'it applies to canary Ingresses only');
  }

  const cluster = readClusterPolicy(r, value, canaryOn);
  if (canaryOn) {
    for (const n of r.names()) {
      if (n === 'canary' || n.startsWith('canary-') || CANARY_OWN.has(n)) continue;
      if (n === 'affinity-canary-behavior') {
        const v = r.get(n)!.trim();
        if (v === 'legacy') r.ignored(n, 'PyServe always keeps a client pinned to the canary on the canary ("sticky")');
        else if (v !== 'sticky') r.invalid(n, `${r.key(n)}: ${JSON.stringify(v)} is not "sticky" or "legacy"`, 'canary affinity is sticky');
        continue;
      }
      if (AFFINITY.includes(n)) {
        r.ignored(n, 'on a canary Ingress: the session affinity of the main Ingress\'s path applies, and keeps a client pinned to the canary on the canary');
        continue;
      }
      // Unsupported ones were reported already.
      const support = ANNOTATIONS[n]?.support;
      if (support === 'supported' || support === 'partial') r.ignored(n, 'a canary Ingress takes it from the main Ingress');
    }
    return {
      reader: r, canary, regex: false, failClosed: undefined, routeFields: {}, rewriteTarget: undefined, rewriteHost: undefined,
      affinity: undefined, redirect: undefined, appRoot: undefined, cluster, aliases: [],
    };
  }

  const routeFields = readRouteFields(r, value);
  const rewriteTarget = readRewriteTarget(r);
  const regex = value('use-regex', parseBool, 'paths are not regular expressions') === true || (r.get('rewrite-target') ?? '').trim() !== '';
  return {
    reader: r,
    canary: undefined,
    regex,
    failClosed: r.failClosed(),
    routeFields,
    rewriteTarget,
    rewriteHost: readUpstreamVhost(r),
    affinity: readAffinity(r, value),
    redirect: readRedirect(r, value),
    appRoot: readAppRoot(r),
    cluster,
    aliases: readAliases(r),
  };
}

type ValueFn = <T>(name: string, parse: (text: string) => Parsed<T>, effect: string) => T | undefined;

function readCanary(r: AnnotationReader, value: ValueFn): CanaryAnnotations {
  const total = value('canary-weight-total', (t) => parseInt(t, 1, 1_000_000), 'the total weight is 100') ?? 100;
  const weight = value('canary-weight', (t) => parseInt(t, 0, total), 'the canary gets no share by weight') ?? 0;
  let header: CanaryAnnotations['header'];
  const headerName = r.get('canary-by-header')?.trim();
  if (headerName !== undefined && !isToken(headerName)) {
    r.invalid('canary-by-header', `${r.key('canary-by-header')}: ${JSON.stringify(headerName)} is not a header name`, 'no header selects the canary');
  } else if (headerName !== undefined) {
    const exact = r.get('canary-by-header-value');
    const pattern = r.get('canary-by-header-pattern');
    if (exact !== undefined && pattern !== undefined) r.ignored('canary-by-header-pattern', `${r.key('canary-by-header-value')} takes precedence`);
    if (exact !== undefined) {
      header = { name: headerName.toLowerCase(), value: { type: 'Exact', value: exact } };
    } else if (pattern !== undefined) {
      const error = regexError(pattern);
      if (error === undefined) header = { name: headerName.toLowerCase(), value: { type: 'RegularExpression', value: pattern } };
      else r.invalid('canary-by-header-pattern', `${r.key('canary-by-header-pattern')}: ${JSON.stringify(pattern)} is not a valid ECMAScript regular expression (${error})`, 'the header selects the canary only with "always"');
      header ??= { name: headerName.toLowerCase(), value: undefined };
    } else {
      header = { name: headerName.toLowerCase(), value: undefined };
    }
  } else {
    for (const n of ['canary-by-header-value', 'canary-by-header-pattern']) if (r.has(n)) r.ignored(n, `it needs ${r.key('canary-by-header')}`);
  }
  const cookie = r.get('canary-by-cookie')?.trim();
  const cookieOk = cookie === undefined || isToken(cookie);
  if (!cookieOk) r.invalid('canary-by-cookie', `${r.key('canary-by-cookie')}: ${JSON.stringify(cookie)} is not a cookie name`, 'no cookie selects the canary');
  return { header, cookie: cookieOk ? cookie : undefined, weight, total };
}

/** Protocol, balancing and ClusterIP endpoints: the parts that are the backend's, not the path's. */
function readClusterPolicy(r: AnnotationReader, value: ValueFn, canary: boolean): ClusterPolicy {
  let protocol: ClusterProtocol | undefined;
  if (!canary) {
    const raw = r.get('backend-protocol')?.trim();
    if (raw !== undefined) {
      protocol = PROTOCOLS[raw.toUpperCase()];
      if (protocol === undefined) {
        const known = ['AUTO_HTTP', 'FCGI', 'AJP'].includes(raw.toUpperCase());
        r.invalid('backend-protocol', `${r.key('backend-protocol')}: ${JSON.stringify(raw)} is ${known ? 'not supported by PyServe' : 'not one of HTTP, HTTPS, GRPC, GRPCS, H2C, H2'}`, 'the backend is spoken to over HTTP/1.1');
      }
    }
  }
  let loadBalancer: LoadBalancer | undefined;
  const hashBy = r.get('upstream-hash-by');
  if (hashBy !== undefined) {
    const hashOn = parseHashBy(hashBy);
    if (hashOn.ok) loadBalancer = { policy: 'ConsistentHash', hashOn: hashOn.value };
    else r.invalid('upstream-hash-by', `${r.key('upstream-hash-by')}: ${hashOn.message}`, 'requests are not balanced by hash');
  }
  const lb = r.get('load-balance')?.trim();
  if (lb !== undefined) {
    const policy = LB_POLICIES[lb.toLowerCase()];
    if (policy === undefined) r.invalid('load-balance', `${r.key('load-balance')}: ${JSON.stringify(lb)} is not one of round_robin, ewma, least_request, random`, 'round robin is used');
    else if (hashBy !== undefined) r.ignored('load-balance', `${r.key('upstream-hash-by')} takes precedence`);
    else loadBalancer = { policy };
  }
  const useClusterIP = value('service-upstream', parseBool, 'the Service\'s endpoints are used');
  return {
    ...(protocol !== undefined && { protocol }),
    ...(loadBalancer !== undefined && { loadBalancer }),
    ...(useClusterIP === true && { useClusterIP: true }),
  };
}

const PROTOCOLS: Readonly<Record<string, ClusterProtocol>> = { HTTP: 'http', HTTPS: 'https', GRPC: 'grpc', GRPCS: 'grpcs', H2C: 'h2c', H2: 'h2' };
const LB_POLICIES: Readonly<Record<string, LoadBalancer['policy']>> = {
  round_robin: 'RoundRobin', ewma: 'LeastRequest', least_request: 'LeastRequest', least_conn: 'LeastRequest', random: 'Random',
};

/** `upstream-hash-by`: one nginx variable PyServe can compute per request. */
export function parseHashBy(text: string): Parsed<HashOn> {
  const m = /^\$(?:\{([a-z_0-9]+)\}|([a-z_0-9]+))$/i.exec(text.trim());
  const v = (m?.[1] ?? m?.[2])?.toLowerCase();
  const fail: Parsed<HashOn> = {
    ok: false,
    message: `${JSON.stringify(text)} is not one nginx variable PyServe can hash on: $remote_addr, $binary_remote_addr, $request_uri, $http_<header>, $cookie_<name> or $arg_<name>`,
  };
  if (v === undefined) return fail;
  if (v === 'remote_addr' || v === 'binary_remote_addr') return { ok: true, value: { type: 'SourceIP' } };
  if (v === 'request_uri') return { ok: true, value: { type: 'RequestURI' } };
  // nginx spells header names with "_" for "-" in $http_…; cookie and argument names are verbatim.
  const raw = (m?.[1] ?? m?.[2])!;
  if (v.startsWith('http_') && v.length > 5) return { ok: true, value: { type: 'Header', name: v.slice(5).replaceAll('_', '-') } };
  if (v.startsWith('cookie_') && v.length > 7) return { ok: true, value: { type: 'Cookie', name: raw.slice(7) } };
  if (v.startsWith('arg_') && v.length > 4) return { ok: true, value: { type: 'QueryParameter', name: raw.slice(4) } };
  return fail;
}

function readRouteFields(r: AnnotationReader, value: ValueFn): RouteFields {
  const connect = value('proxy-connect-timeout', (t) => inRange(t, 1, 3_600_000, 'from 1ms to 1h'), 'the default connect timeout (5s) applies');
  const read = value('proxy-read-timeout', (t) => inRange(t, 1, 86_400_000, 'from 1ms to 24h'), 'the default read timeout (60s) applies');
  // Validated for the user's sake; PyServe has no separate send timeout (the body timeout bounds a stalled upload).
  value('proxy-send-timeout', (t) => inRange(t, 0, 86_400_000, 'at most 24h'), 'it has no effect');
  const timeouts = {
    ...(connect !== undefined && { upstreamConnectMs: connect }),
    // nginx's proxy_read_timeout is also the idle limit of a WebSocket tunnel.
    ...(read !== undefined && { upstreamResponseMs: read, websocketIdleMs: read }),
  };
  const maxBody = value('proxy-body-size', parseNginxSize, 'the default body limit (1m) applies');
  const sslRedirect = value('ssl-redirect', parseBool, 'hosts with TLS redirect plain HTTP');
  const force = value('force-ssl-redirect', parseBool, 'plain HTTP is not forced to https');
  value('preserve-trailing-slash', parseBool, 'PyServe keeps the path as it is either way');
  const prefix = r.get('x-forwarded-prefix');
  let forwardedPrefix: string | undefined;
  if (prefix !== undefined) {
    if (/[\r\n\0]/.test(prefix) || prefix.length > 8192) r.invalid('x-forwarded-prefix', `${r.key('x-forwarded-prefix')} must be one line of at most 8192 characters`, 'no X-Forwarded-Prefix is sent');
    else forwardedPrefix = prefix;
  }
  const retry = readRetry(r, value);
  return {
    ...(Object.keys(timeouts).length > 0 && { timeouts }),
    ...(maxBody !== undefined && { limits: { maxBodyBytes: maxBody } }),
    ...(sslRedirect === false && { redirectHttp: false }),
    ...(force === true && { forceRedirectHttp: true }),
    ...(forwardedPrefix !== undefined && { requestHeaders: { set: [{ name: 'X-Forwarded-Prefix', value: forwardedPrefix }] } }),
    ...(retry !== undefined && { retry }),
  };
}

/** A parsed duration within bounds; the message quotes the text as written. */
function inRange(text: string, min: number, max: number, what: string): Parsed<number> {
  const p = parseSeconds(text);
  if (!p.ok) return p;
  return p.value >= min && p.value <= max ? p : { ok: false, message: `${JSON.stringify(text)} is not ${what}` };
}

/** nginx `proxy_next_upstream` conditions → retry conditions. */
const NEXT_UPSTREAM: Readonly<Record<string, { on?: RetryOn[]; status?: number }>> = {
  error: { on: ['connect-failure', 'reset'] },
  timeout: { on: ['timeout'] },
  invalid_header: { on: ['reset'] },
  http_500: { status: 500 },
  http_502: { status: 502 },
  http_503: { status: 503 },
  http_504: { status: 504 },
  http_403: { status: 403 },
  http_404: { status: 404 },
  http_429: { status: 429 },
};

/** nginx's defaults: `proxy_next_upstream error timeout`, 3 tries. */
const DEFAULT_ON: RetryOn[] = ['connect-failure', 'reset', 'timeout'];
const MAX_RETRIES = 10;

function readRetry(r: AnnotationReader, value: ValueFn): RetryPolicy | undefined {
  const timeout = value('proxy-next-upstream-timeout', (t) => inRange(t, 0, 86_400_000, 'at most 24h'), 'it has no effect');
  if (timeout !== undefined && timeout > 0) r.ignored('proxy-next-upstream-timeout', 'PyServe limits each try (proxy-read-timeout), not the time spent retrying');
  const tries = value('proxy-next-upstream-tries', (t) => parseInt(t, 0, MAX_RETRIES + 1), 'nginx\'s default of 3 tries applies');
  const text = r.get('proxy-next-upstream');
  let on: RetryOn[] | undefined;
  let statuses: number[] | undefined;
  let nonIdempotent = false;
  let off = false;
  if (text !== undefined) {
    const tokens = text.trim().split(/[\s,]+/).filter((t) => t !== '');
    const unknown = tokens.filter((t) => !(t in NEXT_UPSTREAM) && t !== 'non_idempotent' && t !== 'off');
    if (tokens.length === 0 || unknown.length > 0) {
      r.invalid('proxy-next-upstream', `${r.key('proxy-next-upstream')}: ${unknown.length ? `unknown condition ${JSON.stringify(unknown[0])}` : 'no condition given'} (expected error, timeout, invalid_header, http_500, http_502, http_503, http_504, http_403, http_404, http_429, non_idempotent or off)`, 'nginx\'s default conditions (error timeout) apply');
    } else if (tokens.includes('off')) {
      off = true;
    } else {
      const conditions = new Set<RetryOn>();
      const codes = new Set<number>();
      for (const t of tokens) {
        if (t === 'non_idempotent') nonIdempotent = true;
        else {
          for (const c of NEXT_UPSTREAM[t]!.on ?? []) conditions.add(c);
          if (NEXT_UPSTREAM[t]!.status !== undefined) codes.add(NEXT_UPSTREAM[t]!.status!);
        }
      }
      on = RETRY_ORDER.filter((c) => conditions.has(c));
      statuses = [...codes].sort((a, b) => a - b);
    }
  }
  if (text === undefined && tries === undefined) return undefined;
  if (off) return { attempts: 0 };
  // nginx counts tries (the first included; 0 means no limit); PyServe counts retries.
  const attempts = tries === undefined ? 2 : tries === 0 ? MAX_RETRIES : tries - 1;
  return {
    attempts,
    // Listed conditions replace nginx's default ones, even when only statuses are listed.
    on: on ?? DEFAULT_ON,
    ...(statuses !== undefined && statuses.length > 0 && { statuses }),
    ...(nonIdempotent && { allowNonIdempotent: true }),
  };
}

const RETRY_ORDER: readonly RetryOn[] = ['connect-failure', 'reset', 'timeout', '5xx', 'gateway-error'];

/** `rewrite-target`: a path with `$n` capture references; nginx variables cannot be evaluated. */
function readRewriteTarget(r: AnnotationReader): string | undefined {
  const target = r.get('rewrite-target');
  if (target === undefined || target.trim() === '') return undefined;
  const t = target.trim();
  let problem: string | undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(t)) problem = 'is a URL; use permanent-redirect or temporal-redirect to redirect';
  else if (NGINX_VARIABLE.test(t)) problem = 'uses an nginx variable; only capture groups ($1, $2, …) can be used';
  else if (/[\s?#]/.test(t)) problem = 'contains a space, "?" or "#"';
  else if (!t.startsWith('/') && !t.startsWith('$')) problem = 'does not start with "/"';
  if (problem === undefined) return t;
  r.invalid('rewrite-target', `${r.key('rewrite-target')}: ${JSON.stringify(target)} ${problem}`, 'paths are sent upstream unchanged');
  return undefined;
}

const HOST_HEADER = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$/;

function readUpstreamVhost(r: AnnotationReader): string | undefined {
  const v = r.get('upstream-vhost')?.trim();
  if (v === undefined) return undefined;
  if (HOST_HEADER.test(v) && v.length <= 261) return v;
  const why = NGINX_VARIABLE.test(v) ? 'uses an nginx variable, which PyServe cannot evaluate' : 'is not a host name or IP address with an optional port';
  r.invalid('upstream-vhost', `${r.key('upstream-vhost')}: ${JSON.stringify(v)} ${why}`, 'the client\'s Host is sent upstream');
  return undefined;
}

// eslint-disable-next-line no-control-regex
const COOKIE_PATH = /^\/[^\u0000-\u001f\u007f;]*$/;
const COOKIE_DOMAIN = /^\.?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SAME_SITE: Readonly<Record<string, 'Strict' | 'Lax' | 'None'>> = { strict: 'Strict', lax: 'Lax', none: 'None' };

function readAffinity(r: AnnotationReader, value: ValueFn): SessionAffinity | undefined {
  const type = r.get('affinity')?.trim();
  const on = type === 'cookie';
  if (type !== undefined && !on) r.invalid('affinity', `${r.key('affinity')}: ${JSON.stringify(type)} is not "cookie", the only affinity type`, 'requests are not pinned to an endpoint');
  if (!on) {
    for (const n of AFFINITY) if (n !== 'affinity' && r.has(n)) r.ignored(n, `${r.key('affinity')} is not "cookie"`);
    return undefined;
  }
  const mode = r.get('affinity-mode')?.trim();
  if (mode !== undefined && mode !== 'balanced' && mode !== 'persistent') {
    r.invalid('affinity-mode', `${r.key('affinity-mode')}: ${JSON.stringify(mode)} is not "balanced" or "persistent"`, 'a client stays on its endpoint while it can take traffic');
  }
  value('session-cookie-change-on-failure', parseBool, 'a client whose endpoint is gone is pinned to a new one');
  const name = r.get('session-cookie-name')?.trim() ?? 'INGRESSCOOKIE';
  const nameOk = isToken(name);
  if (!nameOk) r.invalid('session-cookie-name', `${r.key('session-cookie-name')}: ${JSON.stringify(name)} is not a cookie name`, 'the cookie is named INGRESSCOOKIE');
  const path = r.get('session-cookie-path')?.trim();
  const pathOk = path === undefined || COOKIE_PATH.test(path);
  if (!pathOk) r.invalid('session-cookie-path', `${r.key('session-cookie-path')}: ${JSON.stringify(path)} is not a cookie path (it must start with "/")`, 'the cookie path is the Ingress path');
  const domain = r.get('session-cookie-domain')?.trim().toLowerCase();
  const domainOk = domain === undefined || COOKIE_DOMAIN.test(domain);
  if (!domainOk) r.invalid('session-cookie-domain', `${r.key('session-cookie-domain')}: ${JSON.stringify(domain)} is not a domain name`, 'the cookie has no Domain');
  const sameSiteRaw = r.get('session-cookie-samesite')?.trim();
  const sameSite = sameSiteRaw === undefined ? undefined : SAME_SITE[sameSiteRaw.toLowerCase()];
  if (sameSiteRaw !== undefined && sameSite === undefined) r.invalid('session-cookie-samesite', `${r.key('session-cookie-samesite')}: ${JSON.stringify(sameSiteRaw)} is not Strict, Lax or None`, 'the cookie has no SameSite');
  const conditional = value('session-cookie-conditional-samesite-none', parseBool, 'SameSite=None is sent to every browser');
  if (conditional === true) r.ignored('session-cookie-conditional-samesite-none', 'PyServe does not tell browsers apart; SameSite=None is sent to all of them');
  const secure = value('session-cookie-secure', parseBool, 'the cookie is Secure when the request came over HTTPS');
  const maxAge = value('session-cookie-max-age', (t) => parseInt(t, 1, 2_147_483_647), 'the cookie lasts for the browser session');
  const expires = value('session-cookie-expires', (t) => parseInt(t, 1, 2_147_483_647), 'the cookie lasts for the browser session');
  const ttl = maxAge ?? expires;
  return {
    cookie: {
      name: nameOk ? name : 'INGRESSCOOKIE',
      ...(ttl !== undefined && { ttlSeconds: ttl }),
      ...(path !== undefined && pathOk && { path }),
      ...(domain !== undefined && domainOk && { domain }),
      ...(secure !== undefined && { secure }),
      ...(sameSite !== undefined && { sameSite }),
    },
  };
}

const REDIRECT_CODES = new Set([301, 302, 303, 307, 308]);

/** `temporal-redirect` (wins, as in ingress-nginx) or `permanent-redirect`, with their codes. */
function readRedirect(r: AnnotationReader, value: ValueFn): RedirectAction | undefined {
  const code = (name: string, fallback: number): 301 | 302 | 303 | 307 | 308 => {
    const n = value(name, (t) => {
      const p = parseInt(t, 100, 599);
      return p.ok && !REDIRECT_CODES.has(p.value) ? { ok: false, message: `${p.value} is not one of 301, 302, 303, 307, 308` } : p;
    }, `${fallback} is used`);
    return (n ?? fallback) as 301 | 302 | 303 | 307 | 308;
  };
  const temporal = r.get('temporal-redirect')?.trim();
  const permanent = r.get('permanent-redirect')?.trim();
  if (temporal && permanent) r.ignored('permanent-redirect', `${r.key('temporal-redirect')} takes precedence, as in ingress-nginx`);
  const name = temporal ? 'temporal-redirect' : permanent ? 'permanent-redirect' : undefined;
  for (const [c, base] of [['temporal-redirect-code', temporal], ['permanent-redirect-code', permanent]] as const) {
    if (r.has(c) && !base) r.ignored(c, `${r.key(c.replace('-code', ''))} is not set`);
  }
  if (name === undefined) return undefined;
  const status = name === 'temporal-redirect' ? code('temporal-redirect-code', 302) : code('permanent-redirect-code', 301);
  const target = parseRedirectUrl(r.get(name)!.trim());
  if (!target.ok) {
    r.invalid(name, `${r.key(name)}: ${target.message}`, 'requests are proxied to the backend');
    return undefined;
  }
  return { type: 'redirect', ...target.value, status };
}

/**
 * An absolute http(s) URL, as ingress-nginx requires. A trailing
 * `$request_uri` keeps the request's path and query; otherwise the URL's
 * path and query replace them.
 */
export function parseRedirectUrl(text: string): Parsed<Omit<RedirectAction, 'type' | 'status'>> {
  let url = text;
  let keep = false;
  for (const suffix of ['$request_uri', '${request_uri}']) {
    if (url.endsWith(suffix)) {
      url = url.slice(0, -suffix.length);
      keep = true;
    }
  }
  if (NGINX_VARIABLE.test(url)) return { ok: false, message: `${JSON.stringify(text)} uses an nginx variable; only a trailing $request_uri is understood` };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, message: `${JSON.stringify(text)} is not an absolute URL` };
  }
  const scheme = parsed.protocol.slice(0, -1);
  if (scheme !== 'http' && scheme !== 'https') return { ok: false, message: `${JSON.stringify(text)} is not an http or https URL` };
  if (parsed.username !== '' || parsed.password !== '' || parsed.hash !== '' || !/^[a-z0-9.-]+$|^\[[0-9a-f:.]+\]$/.test(parsed.hostname)) {
    return { ok: false, message: `${JSON.stringify(text)} must be scheme://host[:port][/path][?query], with a plain host name` };
  }
  if (keep && (parsed.pathname !== '/' || parsed.search !== '' || url.endsWith('/'))) {
    return { ok: false, message: `${JSON.stringify(text)} has a path before $request_uri, which would double the path` };
  }
  return {
    ok: true,
    value: {
      scheme,
      hostname: parsed.hostname,
      ...(parsed.port !== '' && { port: Number(parsed.port) }),
      ...(!keep && { path: { type: 'ReplaceFullPath' as const, value: parsed.pathname }, query: parsed.search.slice(1) }),
    },
  };
}

/** `app-root`: a path (and query) that `/` redirects to with a 302. */
function readAppRoot(r: AnnotationReader): RedirectAction | undefined {
  const v = r.get('app-root')?.trim();
  if (v === undefined) return undefined;
  const q = v.indexOf('?');
  const path = q === -1 ? v : v.slice(0, q);
  const query = q === -1 ? '' : v.slice(q + 1);
  // eslint-disable-next-line no-control-regex
  if (!path.startsWith('/') || path === '/' || /[\s#\u0000-\u001f\u007f]/.test(v) || path.includes('?')) {
    r.invalid('app-root', `${r.key('app-root')}: ${JSON.stringify(v)} is not a path other than "/" (such as /app)`, '/ is not redirected');
    return undefined;
  }
  return { type: 'redirect', path: { type: 'ReplaceFullPath', value: path }, query, status: 302 };
}

function readAliases(r: AnnotationReader): string[] {
  const text = r.get('server-alias');
  if (text === undefined) return [];
  const out: string[] = [];
  for (const raw of parseList(text)) {
    const host = normaliseHost(raw);
    if (!host.ok || host.host === '*') r.invalid('server-alias', `${r.key('server-alias')}: ${host.ok ? '"*" is not an alias' : host.message}`, `alias ${JSON.stringify(raw)} is not served`);
    else if (!out.includes(host.host)) out.push(host.host);
  }
  return out;
}

/** Why a pattern does not compile as ECMAScript; undefined when it does. */
function regexError(pattern: string): string | undefined {
  try {
    new RegExp(pattern);
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
  }
}
