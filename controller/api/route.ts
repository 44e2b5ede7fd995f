/**
 * The `Route` custom resource (`routes.pyserve.io`, v1alpha1): PyServe's own
 * routing API for what an Ingress cannot say — method, header and query
 * matches, weighted backends, timeouts. A clean subset of Gateway API's
 * HTTPRoute, so moving to HTTPRoute later is a rename, not a redesign.
 *
 * This zod schema is the single source of truth: crds/pyserve.io_routes.yaml
 * is generated from it (`npm run crds`), CEL rules included, and the
 * controller validates with it again before translating.
 */
import { z } from 'zod';

export const ROUTE_GROUP = 'pyserve.io';
export const ROUTE_VERSION = 'v1alpha1';
export const ROUTE_KIND = 'Route';
export const ROUTE_PLURAL = 'routes';

const cel = (rule: string, message: string, fieldPath?: string) => ({ rule, message, ...(fieldPath ? { fieldPath } : {}) });

/** Lower-case DNS name or single-label wildcard (`*.example.com`). */
const Hostname = z.string().min(1).max(253)
  .regex(/^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/)
  .describe('A lower-case DNS name, or a single-label wildcard such as *.example.com (matches a.example.com, not b.a.example.com).');

/** Go-style duration as Gateway API uses: `500ms`, `10s`, `1m`, `1h`. */
const Duration = z.string().max(16).regex(/^([0-9]{1,5}(h|m|s|ms)){1,4}$/)
  .describe('A duration such as 500ms, 10s, 1m or 1h30m.');

export const RoutePathMatch = z.strictObject({
  type: z.enum(['Exact', 'PathPrefix', 'RegularExpression']).default('PathPrefix')
    .describe('Exact: the whole path. PathPrefix: element-wise prefix (/foo matches /foo and /foo/bar, not /foobar). RegularExpression: ECMAScript regex anchored at the start.'),
  value: z.string().min(1).max(1024).default('/').describe('The path, or the pattern for RegularExpression.'),
}).describe('How the request path is matched.')
  .meta({ 'x-kubernetes-validations': [cel("self.type == 'RegularExpression' || self.value.startsWith('/')", 'path value must start with "/" unless type is RegularExpression')] });

export const RouteValueMatch = z.strictObject({
  name: z.string().min(1).max(256).describe('Header name (case-insensitive) or query parameter name (case-sensitive).'),
  type: z.enum(['Exact', 'RegularExpression']).default('Exact').describe('How value is compared.'),
  value: z.string().max(4096).describe('Value, or ECMAScript regex for RegularExpression.'),
});

export const RouteMatch = z.strictObject({
  path: RoutePathMatch.optional().describe('Path condition; default PathPrefix "/".'),
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']).optional().describe('HTTP method; absent means any.'),
  headers: z.array(RouteValueMatch).max(16).optional().describe('Header conditions, all of which must hold.'),
  queryParams: z.array(RouteValueMatch).max(16).optional().describe('Query parameter conditions, all of which must hold.'),
  cookies: z.array(RouteValueMatch).max(16).optional().describe('Cookie conditions (PyServe extension), all of which must hold; names are case-sensitive, values compared as sent.'),
}).describe('Conditions that must all hold for a request to match.');

export const RouteBackend = z.strictObject({
  name: z.string().min(1).max(253).describe('Name of a Service in the Route\'s namespace.'),
  port: z.number().int().min(1).max(65535).describe('Service port number.'),
  weight: z.number().int().min(0).max(1_000_000).default(1).describe('Relative weight; 0 sends no traffic to this backend.'),
});

export const RouteTimeouts = z.strictObject({
  request: Duration.optional().describe('Whole request, from the first byte received to the last byte sent.'),
  backendRequest: Duration.optional().describe('Time to the backend\'s response headers, and between body chunks.'),
  connect: Duration.optional().describe('TCP connect to the backend.'),
});

// ---- Filters (Gateway API HTTPRouteFilter shapes) ----

const HeaderName = z.string().min(1).max(256).regex(/^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/)
  .describe('An HTTP header name (case-insensitive).');

export const RouteHTTPHeader = z.strictObject({
  name: HeaderName,
  // eslint-disable-next-line no-control-regex
  value: z.string().max(4096).regex(/^[^\r\n\x00]*$/).describe('Header value; no CR, LF or NUL.'),
});

// Connection, framing, Host and X-Request-ID are PyServe's and cannot be
// edited; that is checked when the Route is translated (InvalidFilter), since
// a CEL rule over every header of every filter of every rule would exceed the
// API server's validation cost budget. Uniqueness of names in `set` is the
// list-map key's job (exact case, as in Gateway API).
export const RouteHeaderModifier = z.strictObject({
  set: z.array(RouteHTTPHeader).max(16).optional().describe('Replace the header (or add it when absent).')
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] }),
  add: z.array(RouteHTTPHeader).max(16).optional().describe('Add a value, keeping existing ones.'),
  remove: z.array(HeaderName).max(16).optional().describe('Remove these headers.').meta({ 'x-kubernetes-list-type': 'set' }),
}).describe('Header edits, applied in the order remove, set, add. Connection, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Content-Length, Host, Expect and X-Request-ID cannot be edited.');

const RewritePath = z.string().min(1).max(1024).regex(/^\/[^\s?#]*$/).describe('A path starting with "/", without spaces, "?" or "#".');

export const RoutePathModifier = z.strictObject({
  type: z.enum(['ReplaceFullPath', 'ReplacePrefixMatch', 'ReplaceRegexMatch'])
    .describe('ReplaceFullPath: the whole path. ReplacePrefixMatch: the part a PathPrefix match matched. ReplaceRegexMatch (PyServe extension): when pattern matches, the whole path becomes substitution, with $1…$99 for capture groups.'),
  replaceFullPath: RewritePath.optional(),
  replacePrefixMatch: RewritePath.optional(),
  replaceRegexMatch: z.strictObject({
    pattern: z.string().min(1).max(1024).describe('ECMAScript regular expression, anchored at the start of the path.'),
    substitution: z.string().max(1024).regex(/^[^\s?#]*$/).describe('The new path; $1…$99 are capture groups, $$ a "$".'),
  }).optional(),
}).meta({
  'x-kubernetes-validations': [
    cel("self.type == 'ReplaceFullPath' ? has(self.replaceFullPath) : !has(self.replaceFullPath)", 'replaceFullPath must be set exactly when type is ReplaceFullPath'),
    cel("self.type == 'ReplacePrefixMatch' ? has(self.replacePrefixMatch) : !has(self.replacePrefixMatch)", 'replacePrefixMatch must be set exactly when type is ReplacePrefixMatch'),
    cel("self.type == 'ReplaceRegexMatch' ? has(self.replaceRegexMatch) : !has(self.replaceRegexMatch)", 'replaceRegexMatch must be set exactly when type is ReplaceRegexMatch'),
  ],
});

const PreciseHostname = z.string().min(1).max(253).regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/)
  .describe('A lower-case DNS name, no wildcard.');

export const RouteRequestRedirect = z.strictObject({
  scheme: z.enum(['http', 'https']).optional().describe('Scheme of the Location; default the request\'s.'),
  hostname: PreciseHostname.optional().describe('Host of the Location; default the request\'s.'),
  port: z.number().int().min(1).max(65535).optional().describe('Port of the Location; default the scheme\'s when scheme is set, else the request\'s.'),
  path: RoutePathModifier.optional().describe('Path of the Location (ReplaceFullPath or ReplacePrefixMatch); default the request\'s.'),
  statusCode: z.literal([301, 302, 303, 307, 308]).default(302).describe('Redirect status.'),
}).meta({ 'x-kubernetes-validations': [cel("!has(self.path) || self.path.type != 'ReplaceRegexMatch'", 'a redirect path cannot be ReplaceRegexMatch')] });

export const RouteURLRewrite = z.strictObject({
  hostname: PreciseHostname.optional().describe('Host header sent to the backend.'),
  path: RoutePathModifier.optional().describe('Path sent to the backend.'),
});

export const RouteBackendRef = z.strictObject({
  name: z.string().min(1).max(253).describe('Name of a Service in the Route\'s namespace.'),
  port: z.number().int().min(1).max(65535).describe('Service port number.'),
});

export const RouteRequestMirror = z.strictObject({
  backend: RouteBackendRef.describe('Service that receives the copies; its responses are discarded.'),
  percent: z.number().int().min(0).max(100).default(100).describe('Share of requests mirrored.'),
});

const FILTER_FIELDS = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  RequestMirror: 'requestMirror',
} as const;

export const RouteFilter = z.strictObject({
  type: z.enum(['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite', 'RequestMirror']).describe('Which filter; the field of the same name (lower camel case) holds its settings.'),
  requestHeaderModifier: RouteHeaderModifier.optional(),
  responseHeaderModifier: RouteHeaderModifier.optional(),
  requestRedirect: RouteRequestRedirect.optional(),
  urlRewrite: RouteURLRewrite.optional(),
  requestMirror: RouteRequestMirror.optional(),
}).describe('A request or response transform (Gateway API HTTPRouteFilter).').meta({
  'x-kubernetes-validations': Object.entries(FILTER_FIELDS).map(([type, field]) =>
    cel(`self.type == '${type}' ? has(self.${field}) : !has(self.${field})`, `${field} must be set exactly when type is ${type}`)),
});

export const RouteDirectResponse = z.strictObject({
  status: z.number().int().min(200).max(599).describe('Status code.'),
  body: z.string().max(65536).optional().describe('Response body.'),
  contentType: z.string().max(256).optional().describe('Content-Type of body; default text/plain; charset=utf-8.'),
}).describe('Answer matching requests directly, without a backend (PyServe extension).');

// ---- Policies (PyServe extensions) ----

const RETRY_ON = ['connect-failure', 'reset', 'timeout', '5xx', 'gateway-error'] as const;

export const RouteRetry = z.strictObject({
  attempts: z.number().int().min(0).max(10).default(2).describe('Retries after the first try; 0 turns retrying off.'),
  on: z.array(z.enum(RETRY_ON)).max(5).optional().describe('What allows a retry: connect-failure, reset (connection broke before a response), timeout (perTryTimeout), 5xx, gateway-error (502, 503, 504). Default connect-failure and reset.'),
  codes: z.array(z.number().int().min(400).max(599)).max(32).optional().describe('Response statuses that allow a retry too (Gateway API codes).'),
  perTryTimeout: Duration.optional().describe('Time to the response head of each try; default the rule\'s backendRequest timeout.'),
  backoff: Duration.optional().describe('Base of the jittered exponential backoff between tries; default 25ms.'),
  allowNonIdempotent: z.boolean().optional().describe('Retry POST, PATCH and CONNECT too; default false.'),
  budgetPercent: z.number().int().min(0).max(100).optional().describe('Retries in flight may be at most this share of the backend\'s requests in flight; default 20.'),
}).describe('Retries (Gateway API HTTPRouteRetry plus PyServe\'s conditions and budget).');

export const RouteSessionPersistence = z.strictObject({
  sessionName: z.string().min(1).max(128).regex(/^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/).default('pyserve-affinity').describe('Name of the affinity cookie.'),
  absoluteTimeout: Duration.optional().describe('Cookie lifetime (Max-Age); absent: a session cookie.'),
  cookie: z.strictObject({
    path: z.string().min(1).max(1024).regex(/^\/[^;\s]*$/).optional().describe('Cookie Path; default "/".'),
    domain: PreciseHostname.optional().describe('Cookie Domain; default none.'),
    secure: z.boolean().optional().describe('Secure; default: when the request came over HTTPS.'),
    httpOnly: z.boolean().optional().describe('HttpOnly; default true.'),
    sameSite: z.enum(['Strict', 'Lax', 'None']).optional().describe('SameSite; default not sent.'),
  }).optional().describe('Cookie attributes (PyServe extension).'),
}).describe('Session affinity by a cookie PyServe issues (Gateway API sessionPersistence, cookie type).');

const HashOnSpec = z.strictObject({
  type: z.enum(['Header', 'Cookie', 'QueryParameter', 'SourceIP', 'RequestURI']).describe('What the hash is computed from.'),
  name: z.string().min(1).max(256).optional().describe('Header, cookie or query parameter name.'),
}).meta({ 'x-kubernetes-validations': [cel("(self.type == 'SourceIP' || self.type == 'RequestURI') ? !has(self.name) : has(self.name)", 'name must be set for Header, Cookie and QueryParameter, and only for them')] });

export const RouteBackendPolicy = z.strictObject({
  protocol: z.enum(['HTTP', 'HTTPS', 'H2C', 'H2', 'GRPC', 'GRPCS']).optional().describe('Protocol spoken to the backends; default HTTP.'),
  loadBalancer: z.strictObject({
    type: z.enum(['RoundRobin', 'LeastRequest', 'Random', 'ConsistentHash']).describe('Balancing policy.'),
    consistentHash: HashOnSpec.optional().describe('Hash key, for ConsistentHash.'),
  }).meta({ 'x-kubernetes-validations': [cel("self.type == 'ConsistentHash' ? has(self.consistentHash) : !has(self.consistentHash)", 'consistentHash must be set exactly when type is ConsistentHash')] }).optional(),
  healthCheck: z.strictObject({
    path: z.string().min(1).max(1024).regex(/^\/[^\s#]*$/).describe('Path probed with GET.'),
    host: z.string().min(1).max(253).optional().describe('Host header of the probes; default the endpoint address.'),
    interval: Duration.optional().describe('Between probes of one endpoint; default 5s.'),
    timeout: Duration.optional().describe('Probe timeout; default 1s.'),
    healthyThreshold: z.number().int().min(1).max(100).optional().describe('Passes in a row to become healthy; default 2.'),
    unhealthyThreshold: z.number().int().min(1).max(100).optional().describe('Failures in a row to become unhealthy; default 3.'),
    expectedStatuses: z.array(z.number().int().min(100).max(599)).min(1).max(64).optional().describe('Passing statuses; default 200-399.'),
  }).optional().describe('Active HTTP health checks.'),
  outlierDetection: z.strictObject({
    consecutive5xx: z.number().int().min(0).max(1000).optional().describe('5xx responses in a row that eject an endpoint; 0 off; default 5.'),
    consecutiveConnectFailures: z.number().int().min(0).max(1000).optional().describe('Connect failures in a row that eject; 0 off; default 5.'),
    baseEjectionTime: Duration.optional().describe('First ejection; doubled each time; default 30s.'),
    maxEjectionTime: Duration.optional().describe('Longest ejection; default 5m.'),
    maxEjectionPercent: z.number().int().min(0).max(100).optional().describe('Most endpoints ejected at once; default 10 (at least one).'),
  }).optional().describe('Passive health: eject endpoints that fail requests in a row.'),
  panicThresholdPercent: z.number().int().min(0).max(100).optional().describe('Below this share of healthy endpoints, health is ignored; 0 off; default 50.'),
  circuitBreaker: z.strictObject({
    maxConnections: z.number().int().min(1).max(1_000_000).optional().describe('Connections to all endpoints together.'),
    maxPendingRequests: z.number().int().min(0).max(1_000_000).optional().describe('Requests waiting for a connection.'),
    maxRequestsPerEndpoint: z.number().int().min(1).max(1_000_000).optional().describe('Requests in flight to one endpoint.'),
  }).optional().describe('Limits beyond which requests get a 503 at once.'),
  useClusterIP: z.boolean().optional().describe('Send to the Service\'s ClusterIP instead of its endpoints (ingress-nginx service-upstream).'),
}).describe('How the rule\'s backends are balanced, checked and protected (PyServe extension). In spec: for every rule; a rule\'s own fields replace those fields.');

export const RouteRule = z.strictObject({
  name: z.string().max(63).regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$/).optional().describe('Optional name for humans and tools; route names in metrics and logs use the rule index (stable across edits that do not reorder rules).'),
  matches: z.array(RouteMatch).max(16).optional().describe('Any one match selects this rule; default is PathPrefix "/".'),
  backends: z.array(RouteBackend).max(16).optional().describe('Services that serve the matched requests, split by weight. Required unless the rule redirects or answers directly.'),
  filters: z.array(RouteFilter).max(16).optional().describe('Transforms applied to matched requests and their responses.'),
  directResponse: RouteDirectResponse.optional(),
  timeouts: RouteTimeouts.optional(),
  retry: RouteRetry.optional(),
  sessionPersistence: RouteSessionPersistence.optional(),
  backendPolicy: RouteBackendPolicy.optional(),
}).superRefine((rule, ctx) => {
  // The CEL rule below, for local mode (no API server); zod refinements do not reach the CRD.
  const kinds = Number((rule.backends?.length ?? 0) > 0) + Number(rule.directResponse !== undefined) + Number(rule.filters?.some((f) => f.type === 'RequestRedirect') ?? false);
  if (kinds !== 1) ctx.addIssue({ code: 'custom', message: 'a rule needs exactly one of backends, directResponse or a RequestRedirect filter', path: ['backends'] });
}).meta({
  'x-kubernetes-validations': [
    cel('!has(self.backends) || size(self.backends) == 0 || self.backends.exists(b, b.weight > 0)', 'at least one backend needs a weight above 0'),
    cel("(has(self.backends) && size(self.backends) > 0 ? 1 : 0) + (has(self.directResponse) ? 1 : 0) + (has(self.filters) && self.filters.exists(f, f.type == 'RequestRedirect') ? 1 : 0) == 1",
      'a rule needs exactly one of backends, directResponse or a RequestRedirect filter'),
    ...['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite'].map((t) =>
      cel(`!has(self.filters) || self.filters.filter(f, f.type == '${t}').size() <= 1`, `at most one ${t} filter`)),
    cel("!has(self.filters) || !(self.filters.exists(f, f.type == 'RequestRedirect') && self.filters.exists(f, f.type == 'URLRewrite'))", 'RequestRedirect and URLRewrite cannot be combined'),
    cel("!has(self.filters) || !self.filters.exists(f, (f.type == 'URLRewrite' && has(f.urlRewrite) && has(f.urlRewrite.path) && f.urlRewrite.path.type == 'ReplacePrefixMatch') || (f.type == 'RequestRedirect' && has(f.requestRedirect) && has(f.requestRedirect.path) && f.requestRedirect.path.type == 'ReplacePrefixMatch')) || !has(self.matches) || self.matches.all(m, !has(m.path) || m.path.type == 'PathPrefix')",
      'ReplacePrefixMatch needs every match to be a PathPrefix'),
  ],
});

export const RouteSpec = z.strictObject({
  ingressClassName: z.string().max(253).optional().describe('IngressClass of the PyServe install that serves this Route; absent means the default class.'),
  hostnames: z.array(Hostname).max(16).optional().describe('Hosts this Route serves; absent or empty means any host.'),
  backendPolicy: RouteBackendPolicy.optional(),
  rules: z.array(RouteRule).min(1).max(64).describe('Rules; among matching rules the most specific path wins (Exact, then longest prefix, then regex).'),
}).meta({
  'x-kubernetes-validations': [cel('!has(self.hostnames) || self.hostnames.all(h, self.hostnames.exists_one(x, x == h))', 'hostnames must be unique', '.hostnames')],
});

const Condition = z.strictObject({
  type: z.string().max(316),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: z.number().int().min(0).optional(),
  lastTransitionTime: z.string(),
  reason: z.string().max(1024),
  message: z.string().max(32768),
});

export const RouteStatus = z.strictObject({
  observedGeneration: z.number().int().min(0).optional().describe('metadata.generation the conditions describe.'),
  conditions: z.array(Condition).max(8).optional().describe('Accepted, ResolvedRefs and Programmed.'),
});

export type RouteSpec = z.infer<typeof RouteSpec>;
export type RouteStatus = z.infer<typeof RouteStatus>;
export type RouteRule = z.infer<typeof RouteRule>;

/** A Route as read from the API server. */
export interface RouteObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; generation?: number; uid?: string; resourceVersion?: string; creationTimestamp?: string | Date };
  spec?: unknown;
  status?: RouteStatus;
}
