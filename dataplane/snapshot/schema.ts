/**
 * The snapshot contract between controller and dataplane.
 *
 * A snapshot is the whole desired state of a dataplane. It is split into two
 * sections that change at very different rates: `routing` (virtual hosts,
 * routes, clusters, certificates) and `endpoints` (addresses behind each cluster). Each
 * section carries a content hash so a dataplane can skip work when a section
 * did not change, and so the pusher can tell whether a target is up to date.
 *
 * Every object is strict: unknown fields are rejected, so a controller that is
 * newer than the dataplane fails loudly instead of being half understood. No
 * field has a schema default: hashes are computed over what the producer sent,
 * so parsing must not add anything.
 */
import { z } from 'zod';

/** Current schema version. Bumped on any incompatible change. */
export const SNAPSHOT_SCHEMA_VERSION = 1;

const name = z.string().min(1).max(512);

/** A reference back to the Kubernetes object a piece of config came from. */
export const SourceRef = z.strictObject({
  /** Object kind, e.g. `Ingress` or `Route`. */
  kind: z.string().min(1),
  /** Namespace of the object. */
  namespace: z.string(),
  /** Name of the object. */
  name: z.string().min(1),
});
export type SourceRef = z.infer<typeof SourceRef>;

/** How a request path is compared with a route's path value. */
export const PathMatch = z.strictObject({
  /**
   * `Exact`: the path equals `value` (case-sensitive).
   * `Prefix`: element-wise prefix per the Kubernetes Ingress spec: `/foo`
   * matches `/foo` and `/foo/bar`, never `/foobar`; a trailing slash in
   * `value` is ignored.
   * `RegularExpression`: `value` is an ECMAScript regex anchored at the start
   * of the path (ingress-nginx `use-regex` semantics).
   */
  type: z.enum(['Exact', 'Prefix', 'RegularExpression']),
  /** The path or pattern; always starts with `/` for Exact and Prefix. */
  value: z.string().min(1).max(4096),
}).superRefine((m, ctx) => {
  if (m.type !== 'RegularExpression' && !m.value.startsWith('/')) {
    ctx.addIssue({ code: 'custom', message: `${m.type} path must start with "/"`, path: ['value'] });
  }
  if (m.type === 'RegularExpression') {
    try {
      new RegExp(m.value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `invalid regular expression: ${(err as Error).message}`, path: ['value'] });
    }
  }
});
export type PathMatch = z.infer<typeof PathMatch>;

/** A header or query parameter condition. All listed conditions must hold. */
export const ValueMatch = z.strictObject({
  /** Header name (case-insensitive) or query parameter name (case-sensitive). */
  name: z.string().min(1).max(256),
  /** `Exact` compares the whole value; `RegularExpression` tests an ECMAScript regex. */
  type: z.enum(['Exact', 'RegularExpression']),
  /** Value or pattern to compare with. */
  value: z.string().max(4096),
});
export type ValueMatch = z.infer<typeof ValueMatch>;

/** Conditions a request must satisfy to use a route. */
export const RouteMatch = z.strictObject({
  /** Path condition; required, every route matches on path. */
  path: PathMatch,
  /** HTTP methods (upper case). Absent means any method. */
  methods: z.array(z.string().regex(/^[A-Z]+$/)).min(1).optional(),
  /** Header conditions, all of which must hold. */
  headers: z.array(ValueMatch).optional(),
  /** Query parameter conditions, all of which must hold. */
  query: z.array(ValueMatch).optional(),
  /**
   * Cookie conditions, all of which must hold (ingress-nginx
   * `canary-by-cookie`). Names are case-sensitive; the value is compared as
   * sent, not decoded; when a name appears twice, the first occurrence counts.
   * A missing cookie never matches.
   */
  cookies: z.array(ValueMatch).optional(),
});
export type RouteMatch = z.infer<typeof RouteMatch>;

/** One weighted backend of a forward action. */
export const WeightedBackend = z.strictObject({
  /** Name of a cluster in `routing.clusters`. */
  cluster: name,
  /** Relative weight, 0 disables the backend. */
  weight: z.number().int().min(0).max(1_000_000),
});
export type WeightedBackend = z.infer<typeof WeightedBackend>;

/** Proxy the request to one of the weighted backends. */
export const ForwardAction = z.strictObject({
  type: z.literal('forward'),
  /** Backends to split traffic across, by weight. */
  backends: z.array(WeightedBackend).min(1),
});

/** Answer the request locally without contacting any upstream. */
export const DirectAction = z.strictObject({
  type: z.literal('direct'),
  /** HTTP status code to answer with. */
  status: z.number().int().min(200).max(599),
  /** Response body. */
  body: z.string().max(1_048_576).optional(),
  /** Content-Type of `body`; defaults to `text/plain; charset=utf-8`. */
  contentType: z.string().max(256).optional(),
});

// ---- Transforms: path rewrites, redirects, header edits (traffic management, issue 5) ----

// Nothing a request line or a Location header could be split or smuggled with.
// eslint-disable-next-line no-control-regex
const UNSAFE_IN_PATH = /[\u0000-\u0020\u007f?#]/;

/** A path written into a request line or a Location header: starts with `/`, no space, control character, `?` or `#`. */
const RewrittenPath = z.string().min(1).max(4096).refine((v) => v.startsWith('/') && !UNSAFE_IN_PATH.test(v), 'path must start with "/" and contain no space, control character, "?" or "#"');

/** Replace the whole request path with `value` (Gateway API `ReplaceFullPath`). */
export const ReplaceFullPath = z.strictObject({
  type: z.literal('ReplaceFullPath'),
  /** The new path. */
  value: RewrittenPath,
});

/**
 * Replace the part of the path the route's `Prefix` match matched (Gateway
 * API `ReplacePrefixMatch`): with prefix `/foo` and value `/bar`, `/foo/x`
 * becomes `/bar/x` and `/foo` becomes `/bar`; value `/` turns `/foo/x` into
 * `/x`. Only valid on routes whose path match is `Prefix`.
 */
export const ReplacePrefixMatch = z.strictObject({
  type: z.literal('ReplacePrefixMatch'),
  /** What replaces the matched prefix. */
  value: RewrittenPath,
});

/**
 * Regular-expression rewrite, as nginx's `rewrite` (ingress-nginx
 * `rewrite-target`): when `pattern` (ECMAScript, anchored at the start of
 * the raw path like a `RegularExpression` path match) matches, the **whole**
 * path becomes `substitution`, in which `$1`…`$99` stand for capture groups
 * (empty when a group did not take part) and `$$` for a `$`. A result that
 * does not start with `/` gets one. When the pattern does not match, the
 * path is left alone. The query string is kept either way.
 */
export const RegexReplace = z.strictObject({
  type: z.literal('RegexReplace'),
  /** ECMAScript regular expression; use `(?i:…)` for case-insensitive matching. */
  pattern: z.string().min(1).max(4096).refine((v) => {
    try {
      new RegExp(`^(?:${v})`);
      new RegExp(v);
      return true;
    } catch {
      return false;
    }
  }, 'pattern must be a valid ECMAScript regular expression'),
  /** The new path, with `$n` references to capture groups. */
  // eslint-disable-next-line no-control-regex
  substitution: z.string().max(4096).refine((v) => !/[\u0000-\u001f\u007f ?#]/.test(v), 'substitution must contain no space, control character, "?" or "#"'),
});

/** How a route rewrites the request path before it goes upstream. */
export const PathRewrite = z.discriminatedUnion('type', [ReplaceFullPath, ReplacePrefixMatch, RegexReplace]);
export type PathRewrite = z.infer<typeof PathRewrite>;

/**
 * Send the request upstream with a different path or Host (Gateway API
 * `URLRewrite`; ingress-nginx `rewrite-target`, `upstream-vhost`). Matching,
 * the access log and `X-Forwarded-Host` keep the request as received.
 */
export const Rewrite = z.strictObject({
  /** Path rewrite. Absent: the path is sent as received. */
  path: PathRewrite.optional(),
  /**
   * `Host` header (HTTP/2 `:authority`) sent upstream: a DNS name or IP
   * address, optionally with `:port`. Absent: the client's Host.
   */
  host: z.string().min(1).max(261).regex(/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$/, 'host must be a DNS name or IP address, optionally with :port').optional(),
});
export type Rewrite = z.infer<typeof Rewrite>;

/**
 * Answer with a redirect built from the request (Gateway API
 * `RequestRedirect`; ingress-nginx `permanent-redirect`,
 * `temporal-redirect`, `app-root`). Absent parts are the request's own.
 */
export const RedirectAction = z.strictObject({
  type: z.literal('redirect'),
  /** Scheme of the Location. Absent: the request's (`https` when it arrived over TLS). */
  scheme: z.enum(['http', 'https']).optional(),
  /** Host of the Location: a DNS name or IP address, no wildcard. Absent: the request's host. */
  hostname: z.string().min(1).max(253).regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*|\[[0-9a-f:.]+\])$/, 'hostname must be a lower-case DNS name or IP address').optional(),
  /**
   * Port of the Location. Absent: with `scheme` set, that scheme's default
   * port (left out of the URL); otherwise the port of the request's Host
   * header, if it had one. 80 with http and 443 with https are never written.
   */
  port: z.number().int().min(1).max(65535).optional(),
  /** Path of the Location. Absent: the request's path. `ReplacePrefixMatch` needs a `Prefix` route. */
  path: z.discriminatedUnion('type', [ReplaceFullPath, ReplacePrefixMatch]).optional(),
  /**
   * Query string of the Location, without `?`; `""` drops it. Absent: the
   * request's query string.
   */
  query: z.string().max(4096).refine((v) => !UNSAFE_IN_PATH.test(v.replaceAll('?', '')), 'query must contain no space, control character or "#"').optional(),
  /** Status code. */
  status: z.union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)]),
});
export type RedirectAction = z.infer<typeof RedirectAction>;

/** An HTTP field name (RFC 9110 token). */
export const HeaderName = z.string().min(1).max(256).regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'header name must be an HTTP token');

// Fields the dataplane owns: connection-level ones, framing, Host (see
// `rewrite.host`) and the request id that ties logs together.
const RESERVED_HEADERS = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings',
  'content-length', 'host', 'expect', 'x-request-id',
]);
const EditableHeaderName = HeaderName.refine((n) => !RESERVED_HEADERS.has(n.toLowerCase()), {
  message: `header cannot be edited: ${[...RESERVED_HEADERS].join(', ')} are managed by the dataplane`,
});

/** A header name and value; the value may not contain CR, LF or NUL. */
export const HeaderValuePair = z.strictObject({
  /** Field name, any case (names compare case-insensitively). */
  name: EditableHeaderName,
  /** Field value. */
  // eslint-disable-next-line no-control-regex
  value: z.string().max(8192).regex(/^[^\r\n\u0000]*$/, 'header value must not contain CR, LF or NUL'),
});

/**
 * Header edits (Gateway API `RequestHeaderModifier` /
 * `ResponseHeaderModifier`), applied in the order remove, set, add. On
 * requests they run after the dataplane wrote its forwarding headers, so
 * `set` can replace e.g. `X-Forwarded-Proto`.
 */
export const HeaderModifier = z.strictObject({
  /** Replace every value of these headers with one value (adds the header when absent). Names unique. */
  set: z.array(HeaderValuePair).max(64).optional(),
  /** Add a value; existing values of the header are kept. */
  add: z.array(HeaderValuePair).max(64).optional(),
  /** Remove these headers. */
  remove: z.array(EditableHeaderName).max(64).optional(),
}).superRefine((m, ctx) => {
  const seen = new Set<string>();
  m.set?.forEach((h, i) => {
    const lower = h.name.toLowerCase();
    if (seen.has(lower)) ctx.addIssue({ code: 'custom', message: `header "${h.name}" is set twice`, path: ['set', i, 'name'] });
    seen.add(lower);
  });
});
export type HeaderModifier = z.infer<typeof HeaderModifier>;

/** What happens to a matched request. */
export const RouteAction = z.discriminatedUnion('type', [ForwardAction, DirectAction, RedirectAction]);
export type RouteAction = z.infer<typeof RouteAction>;

/** Per-route timeouts in milliseconds. Absent fields use the dataplane defaults. */
export const Timeouts = z.strictObject({
  /** Whole request, from the first byte received to the last byte sent. 0 disables. */
  requestMs: z.number().int().min(0).max(86_400_000).optional(),
  /** TCP (and TLS) connect to the upstream. */
  upstreamConnectMs: z.number().int().min(1).max(3_600_000).optional(),
  /** Time to the upstream's response headers, and between body chunks. */
  upstreamResponseMs: z.number().int().min(1).max(86_400_000).optional(),
  /**
   * An upgraded connection (WebSocket) is closed after this long without a
   * byte in either direction; pings count. A WebSocket gets a close frame
   * with code 1001 each way. Dataplane default 3600000 (one hour, what
   * ingress-nginx users set `proxy-read-timeout` to for WebSockets).
   */
  websocketIdleMs: z.number().int().min(1).max(604_800_000).optional(),
});
export type Timeouts = z.infer<typeof Timeouts>;

/** Per-route request limits. Absent fields use the dataplane defaults (flags). */
export const RouteLimits = z.strictObject({
  /**
   * Largest request body in bytes; 0 means no limit (ingress-nginx
   * `proxy-body-size`, whose `0` means the same). A larger declared
   * Content-Length gets 413 before anything is sent upstream; a body without
   * one is counted as it streams, and the upstream request is aborted when
   * it crosses the limit. Dataplane default 1 MiB (`--max-body-bytes`).
   */
  maxBodyBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
});
export type RouteLimits = z.infer<typeof RouteLimits>;

/** A response compression coding, by its HTTP name. */
export const CompressionAlgorithm = z.enum(['zstd', 'br', 'gzip', 'deflate']);

/**
 * Per-route response compression. Absent fields use the dataplane defaults
 * (`--compression*` flags).
 */
export const Compression = z.strictObject({
  /** Compress upstream responses on this route. Dataplane default false (ingress-nginx `use-gzip`). */
  enabled: z.boolean().optional(),
  /**
   * Responses whose Content-Length is below this many bytes are sent as they
   * are; responses of unknown length are compressed. Dataplane default 256
   * (ingress-nginx `gzip-min-length`).
   */
  minLength: z.number().int().min(0).max(2 ** 31).optional(),
  /**
   * Media types to compress, lower case without parameters: `type/subtype`,
   * `type/*`, or `*` for all. Replaces the default list (ingress-nginx's
   * `gzip-types` plus `text/html`). Add `text/event-stream` to compress SSE.
   */
  contentTypes: z.array(z.string().regex(/^(\*|[a-z0-9][a-z0-9!#$&^_.+-]*\/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*))$/, 'content type must be "type/subtype", "type/*" or "*"')).max(256).optional(),
  /**
   * Codings offered, in the server's order of preference: the client's
   * Accept-Encoding q-values decide, ties go to the earlier entry. Default
   * `["zstd", "br", "gzip", "deflate"]`.
   */
  algorithms: z.array(CompressionAlgorithm).min(1).max(4).refine((a) => new Set(a).size === a.length, 'algorithms must not repeat').optional(),
});
export type Compression = z.infer<typeof Compression>;

// ---- Resilience, affinity and mirroring of a route (issue 5) ----

/**
 * What makes a try fail and another one start:
 * `connect-failure`: the connection could not be opened (refused, unreachable, connect timeout);
 * `reset`: the connection broke, or the response was not valid HTTP, before the response head arrived;
 * `timeout`: no response head within the per-try timeout;
 * `5xx`: a response with status 500–599;
 * `gateway-error`: a response with status 502, 503 or 504.
 */
export const RetryOn = z.enum(['connect-failure', 'reset', 'timeout', '5xx', 'gateway-error']);
export type RetryOn = z.infer<typeof RetryOn>;

/**
 * Retries of a route (ingress-nginx `proxy-next-upstream*`, Gateway API
 * `retry`). A retry goes to another endpoint when the cluster has one. Only
 * the response head decides: once any of the response was sent to the
 * client, nothing is retried. A request whose body was already streamed
 * upstream is retried only if the body was small enough to keep.
 */
export const RetryPolicy = z.strictObject({
  /** Retries after the first try; 0 turns retrying off (ingress-nginx `proxy-next-upstream: off`). */
  attempts: z.number().int().min(0).max(10),
  /** Conditions that allow a retry. Absent: `connect-failure` and `reset` (nginx's `error`). Empty: only `statuses`. */
  on: z.array(RetryOn).max(5).refine((a) => new Set(a).size === a.length, 'conditions must not repeat').optional(),
  /** Response statuses that also allow a retry, e.g. `[429]` (ingress-nginx `http_429`). */
  statuses: z.array(z.number().int().min(400).max(599)).min(1).max(32).refine((a) => new Set(a).size === a.length, 'statuses must not repeat').optional(),
  /** Time to the response head of each try. Absent: the route's `timeouts.upstreamResponseMs`. */
  perTryTimeoutMs: z.number().int().min(1).max(86_400_000).optional(),
  /** Base of the jittered exponential backoff between tries. Default 25 ms. */
  backoffBaseMs: z.number().int().min(1).max(60_000).optional(),
  /**
   * Retry methods that are not idempotent (POST, PATCH, CONNECT) too
   * (ingress-nginx `non_idempotent`). Default false: only GET, HEAD,
   * OPTIONS, TRACE, PUT and DELETE are retried.
   */
  allowNonIdempotent: z.boolean().optional(),
  /**
   * Retry budget: retries in flight to the cluster may be at most this share
   * of its requests in flight, so a failing upstream cannot be hit by a
   * retry storm. Default 20.
   */
  budgetPercent: z.number().min(0).max(100).optional(),
  /** Retries in flight that are always allowed, whatever the budget says (low traffic). Default 3. */
  minRetryConcurrency: z.number().int().min(0).max(10_000).optional(),
});
export type RetryPolicy = z.infer<typeof RetryPolicy>;

/** A cookie name (RFC 6265 token). */
export const CookieName = z.string().min(1).max(256).regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'cookie name must be an HTTP token');

/**
 * Session affinity by a cookie the dataplane issues (ingress-nginx
 * `affinity: cookie`, `session-cookie-*`): the first response sets it, and
 * later requests carrying it go to the same endpoint (and cluster) while
 * that endpoint can take traffic; otherwise another is picked and the cookie
 * is set again.
 */
export const SessionAffinity = z.strictObject({
  cookie: z.strictObject({
    /** Cookie name. */
    name: CookieName,
    /** `Max-Age` in seconds. Absent: a session cookie. */
    ttlSeconds: z.number().int().min(1).max(2_147_483_647).optional(),
    /** `Path`. Absent: `/`. */
    // eslint-disable-next-line no-control-regex
    path: z.string().min(1).max(1024).regex(/^\/[^\u0000-\u001f\u007f;]*$/, 'cookie path must start with "/" and contain no ";" or control character').optional(),
    /** `Domain`. Absent: none (the cookie goes back to the request's host only). */
    domain: z.string().min(1).max(253).regex(/^\.?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'cookie domain must be a lower-case DNS name').optional(),
    /** `Secure`. Absent: set when the request arrived over TLS. */
    secure: z.boolean().optional(),
    /** `HttpOnly`. Absent: true. */
    httpOnly: z.boolean().optional(),
    /** `SameSite`. Absent: not sent. */
    sameSite: z.enum(['Strict', 'Lax', 'None']).optional(),
  }),
});
export type SessionAffinity = z.infer<typeof SessionAffinity>;

/**
 * Copy a sample of a route's requests to another cluster (Gateway API
 * `RequestMirror`), fire-and-forget: the mirror's response is discarded and
 * its failures or slowness never affect the client's response.
 */
export const Mirror = z.strictObject({
  /** Name of a cluster in `routing.clusters`. */
  cluster: name,
  /** Share of requests mirrored, 0–100 (fractions allowed). */
  percent: z.number().min(0).max(100),
});
export type Mirror = z.infer<typeof Mirror>;

/** A route: conditions plus an action. */
export const Route = z.strictObject({
  /**
   * Stable, unique name, e.g. `ingress/default/web/rule/0/path/1`. Used as the
   * `route` label in metrics and logs, so it must not change between
   * snapshots for the same source rule.
   */
  name,
  /** Object this route was translated from. */
  source: SourceRef.optional(),
  /** Request conditions. */
  match: RouteMatch,
  /** What to do with a matching request. */
  action: RouteAction,
  /** Per-route timeouts. */
  timeouts: Timeouts.optional(),
  /**
   * Overrides the virtual host's `tls.redirectHttp` for this route (e.g.
   * ingress-nginx's `ssl-redirect: "false"` on one Ingress). Ignored when the
   * virtual host has no `tls`.
   */
  redirectHttp: z.boolean().optional(),
  /**
   * Redirect plain-HTTP requests to https even when the virtual host has no
   * `tls`, e.g. behind a load balancer that terminates TLS (ingress-nginx
   * `force-ssl-redirect`). Wins over `redirectHttp: false`. Default false.
   */
  forceRedirectHttp: z.boolean().optional(),
  /** Per-route request limits. */
  limits: RouteLimits.optional(),
  /** Per-route response compression. */
  compression: Compression.optional(),
  /** Path and Host rewrite before the request goes upstream (forward routes). */
  rewrite: Rewrite.optional(),
  /** Edits of the request headers sent upstream (forward routes). */
  requestHeaders: HeaderModifier.optional(),
  /** Edits of the upstream response headers sent to the client (forward routes). */
  responseHeaders: HeaderModifier.optional(),
  /** Retries (forward routes). Absent: the dataplane's default, no retries. */
  retry: RetryPolicy.optional(),
  /** Cookie session affinity (forward routes). Absent: none. */
  sessionAffinity: SessionAffinity.optional(),
  /** Request mirrors (forward routes). */
  mirrors: z.array(Mirror).min(1).max(8).optional(),
});
export type Route = z.infer<typeof Route>;

/**
 * A hostname pattern: an exact DNS name (`a.example.com`), a single-label
 * wildcard (`*.example.com`, matches `a.example.com` only, not
 * `b.a.example.com` nor `example.com`), or `*` for any host. Lower case.
 */
export const Hostname = z.string().max(253).regex(
  /^(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$/,
  'hostname must be a lower-case DNS name, "*.<dns name>", or "*"',
);

/** `Strict-Transport-Security` sent on HTTPS responses of a virtual host (RFC 6797). */
export const Hsts = z.strictObject({
  /** `max-age` in seconds; 0 tells browsers to forget the host's HSTS state. */
  maxAgeSeconds: z.number().int().min(0).max(2_147_483_647),
  /** Add `includeSubDomains`. Default false. */
  includeSubDomains: z.boolean().optional(),
  /** Add `preload` (only meaningful with a max-age of a year or more and includeSubDomains). Default false. */
  preload: z.boolean().optional(),
});
export type Hsts = z.infer<typeof Hsts>;

/** HTTPS settings of a virtual host. Its presence is what makes a host "have TLS". */
export const VirtualHostTls = z.strictObject({
  /**
   * Name of an entry of `routing.certificates`, served to clients whose SNI
   * matches one of the virtual host's hostnames. Absent: the default
   * certificate (`routing.tls.defaultCertificate`, else the self-signed one the
   * dataplane generates at start). A certificate that exists but cannot be
   * loaded (bad PEM, key does not match) also falls back to the default; the
   * dataplane reports it and keeps the rest of the snapshot.
   */
  certificate: name.optional(),
  /**
   * Answer requests that arrive over plain HTTP with a `308 Permanent
   * Redirect` to the same URL on https, as ingress-nginx does for hosts with
   * TLS. Default true. Routes can override it with `redirectHttp`. ACME
   * HTTP-01 challenges (`/.well-known/acme-challenge/…`) are never redirected.
   */
  redirectHttp: z.boolean().optional(),
  /** Send `Strict-Transport-Security` on HTTPS responses. Absent: not sent. */
  hsts: Hsts.optional(),
});
export type VirtualHostTls = z.infer<typeof VirtualHostTls>;

/** A set of hostnames sharing one ordered route list. */
export const VirtualHost = z.strictObject({
  /** Unique name, usually the primary hostname. */
  name,
  /** Hostnames served by this virtual host. Each may appear in only one virtual host. */
  hostnames: z.array(Hostname).min(1),
  /**
   * Routes in evaluation order: the first route whose match holds wins. The
   * translator sorts them (Exact before Prefix, longer prefixes first).
   */
  routes: z.array(Route),
  /** HTTPS settings. Absent: the host is served over HTTPS too, with the default certificate, and never redirected. */
  tls: VirtualHostTls.optional(),
});
export type VirtualHost = z.infer<typeof VirtualHost>;

// ---- Balancing and health of a cluster (issue 5) ----

/**
 * What a consistent hash is computed from. A request that lacks it (no such
 * header, cookie or parameter) is balanced round robin instead.
 * `Header`, `Cookie`, `QueryParameter`: that value (first occurrence);
 * `SourceIP`: the client address; `RequestURI`: the raw path and query
 * (ingress-nginx `$request_uri`).
 */
export const HashOn = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('Header'), /** Header name, case-insensitive. */ name: HeaderName }),
  z.strictObject({ type: z.literal('Cookie'), /** Cookie name. */ name: CookieName }),
  z.strictObject({ type: z.literal('QueryParameter'), /** Parameter name, case-sensitive. */ name: z.string().min(1).max(256) }),
  z.strictObject({ type: z.literal('SourceIP') }),
  z.strictObject({ type: z.literal('RequestURI') }),
]);
export type HashOn = z.infer<typeof HashOn>;

/**
 * How a cluster's endpoints share requests. `RoundRobin` (the default),
 * `LeastRequest` (power of two random choices, fewer requests in flight
 * wins; ingress-nginx `ewma` maps here), `Random`, or `ConsistentHash` on
 * `hashOn`, so the same key keeps reaching the same endpoint while the
 * endpoint set is stable and only about 1/n of keys move when it changes.
 */
export const LoadBalancer = z.strictObject({
  policy: z.enum(['RoundRobin', 'LeastRequest', 'Random', 'ConsistentHash']),
  /** The hash key; required with `ConsistentHash`, not allowed otherwise. */
  hashOn: HashOn.optional(),
}).superRefine((lb, ctx) => {
  if ((lb.policy === 'ConsistentHash') !== (lb.hashOn !== undefined)) {
    ctx.addIssue({ code: 'custom', message: 'hashOn is required with policy ConsistentHash and not allowed otherwise', path: ['hashOn'] });
  }
});
export type LoadBalancer = z.infer<typeof LoadBalancer>;

/**
 * Active HTTP health checking: each endpoint is probed with a `GET` of
 * `path`, over the cluster's protocol. An endpoint failing
 * `unhealthyThreshold` probes in a row stops getting traffic until it
 * passes `healthyThreshold` in a row. Endpoints start healthy.
 */
export const HealthCheck = z.strictObject({
  /** Path (and query) probed. */
  // eslint-disable-next-line no-control-regex
  path: z.string().min(1).max(1024).regex(/^\/[^\u0000-\u0020\u007f#]*$/, 'path must start with "/" and contain no space, control character or "#"'),
  /** `Host` header of the probe. Absent: the endpoint's `address:port`. */
  host: z.string().min(1).max(261).regex(/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$/, 'host must be a DNS name or IP address, optionally with :port').optional(),
  /** Time between probes of one endpoint. Default 5000. */
  intervalMs: z.number().int().min(100).max(3_600_000).optional(),
  /** A probe without a response head within this time fails. Default 1000. */
  timeoutMs: z.number().int().min(1).max(600_000).optional(),
  /** Passing probes in a row that make an unhealthy endpoint healthy. Default 2. */
  healthyThreshold: z.number().int().min(1).max(100).optional(),
  /** Failing probes in a row that make a healthy endpoint unhealthy. Default 3. */
  unhealthyThreshold: z.number().int().min(1).max(100).optional(),
  /** Statuses that pass. Absent: 200–399, as a Kubernetes `httpGet` probe. */
  expectedStatuses: z.array(z.number().int().min(100).max(599)).min(1).max(64).refine((a) => new Set(a).size === a.length, 'statuses must not repeat').optional(),
});
export type HealthCheck = z.infer<typeof HealthCheck>;

/**
 * Passive health: endpoints that fail real requests in a row are ejected
 * (take no traffic) for `baseEjectionMs` × the number of times they were
 * ejected, at most `maxEjectionMs`, then return.
 */
export const OutlierDetection = z.strictObject({
  /** 5xx responses in a row that eject an endpoint; 0 turns this off. Default 5. */
  consecutive5xx: z.number().int().min(0).max(1000).optional(),
  /** Connect failures (refused, unreachable, connect timeout, reset before a response) in a row that eject; 0 turns this off. Default 5. */
  consecutiveConnectFailures: z.number().int().min(0).max(1000).optional(),
  /** First ejection time. Default 30000. */
  baseEjectionMs: z.number().int().min(1).max(3_600_000).optional(),
  /** Longest ejection, however often an endpoint was ejected. Default 300000. */
  maxEjectionMs: z.number().int().min(1).max(86_400_000).optional(),
  /** Most endpoints ejected at once, as a share of the cluster; at least one can always be ejected. Default 10. */
  maxEjectionPercent: z.number().int().min(0).max(100).optional(),
});
export type OutlierDetection = z.infer<typeof OutlierDetection>;

/**
 * Limits that shed load with a local 503 (and a header naming the limit)
 * instead of queueing without bound. Absent fields: no limit.
 */
export const CircuitBreaker = z.strictObject({
  /** Connections open to all endpoints of the cluster together. */
  maxConnections: z.number().int().min(1).max(1_000_000).optional(),
  /** Requests waiting for a connection. */
  maxPendingRequests: z.number().int().min(0).max(1_000_000).optional(),
  /** Requests in flight to one endpoint. */
  maxRequestsPerEndpoint: z.number().int().min(1).max(1_000_000).optional(),
});
export type CircuitBreaker = z.infer<typeof CircuitBreaker>;

/** An upstream service: a named pool of endpoints. */
export const Cluster = z.strictObject({
  /** Unique name, conventionally `<namespace>/<service>/<port>`. */
  name,
  /** The Service this cluster was resolved from. */
  service: z.strictObject({
    namespace: z.string(),
    name: z.string().min(1),
    port: z.union([z.number().int(), z.string()]),
    /**
     * The endpoints are the Service's ClusterIP and port, not its pods
     * (ingress-nginx `service-upstream`): kube-proxy balances, and balancing,
     * affinity and health in the dataplane see one endpoint. For the
     * controller; the dataplane only sees the endpoints it is given.
     */
    useClusterIP: z.boolean().optional(),
  }).optional(),
  /**
   * Protocol spoken to the endpoints (ingress-nginx `backend-protocol`, or a
   * Service port's `appProtocol`):
   * `http`: HTTP/1.1; `https`: HTTP/1.1 over TLS; `h2c`: HTTP/2 cleartext
   * (prior knowledge); `h2`: HTTP/2 over TLS (ALPN `h2`); `grpc`: gRPC over
   * h2c; `grpcs`: gRPC over h2. Backend certificates are not verified, as
   * ingress-nginx does not by default; no SNI is sent.
   */
  protocol: z.enum(['http', 'https', 'h2c', 'h2', 'grpc', 'grpcs']),
  /** How endpoints are picked. Absent: round robin. */
  loadBalancer: LoadBalancer.optional(),
  /** Active health checks. Absent: none (EndpointSlice readiness only). */
  healthCheck: HealthCheck.optional(),
  /** Passive health (ejection). Absent: none. */
  outlierDetection: OutlierDetection.optional(),
  /**
   * When fewer than this share of the cluster's ready endpoints are healthy
   * (health checks, ejection), health is ignored and all ready endpoints
   * take traffic, so a bad health signal cannot take a whole service down.
   * 0 turns it off. Default 50.
   */
  panicThresholdPercent: z.number().int().min(0).max(100).optional(),
  /** Connection and request limits. Absent: none. */
  circuitBreaker: CircuitBreaker.optional(),
});
export type Cluster = z.infer<typeof Cluster>;
export type ClusterProtocol = Cluster['protocol'];

/**
 * A certificate chain and its private key, as a `kubernetes.io/tls` Secret
 * holds them. Snapshots carry private keys: the admin API that receives them
 * must stay reachable from inside the cluster only.
 */
export const Certificate = z.strictObject({
  /** Unique name, conventionally `<namespace>/<secret name>`; what `virtualHosts[].tls.certificate` refers to. */
  name,
  /** The Secret it came from, for reports about it. */
  source: SourceRef.optional(),
  /** PEM certificates (`tls.crt`): the server certificate first, then its intermediates. */
  certPem: z.string().min(1).max(1_048_576),
  /** PEM private key (`tls.key`): PKCS#8, PKCS#1 (RSA) or SEC1 (EC), unencrypted. Never logged. */
  keyPem: z.string().min(1).max(65_536),
});
export type Certificate = z.infer<typeof Certificate>;

/** Listener-wide TLS settings. */
export const TlsSettings = z.strictObject({
  /**
   * Certificate served when the client's SNI matches no virtual host with a
   * loadable certificate, or when it sends none (ingress-nginx's
   * `--default-ssl-certificate`). Absent: a self-signed certificate generated
   * at start.
   */
  defaultCertificate: name.optional(),
  /** Lowest protocol version accepted. Default `TLSv1.2`. */
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).optional(),
  /**
   * OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are always OpenSSL's
   * defaults). Default: Mozilla's "intermediate" list, as ingress-nginx's
   * `ssl-ciphers`. A list OpenSSL refuses is reported and the default is used.
   */
  ciphers: z.string().min(1).max(4096).optional(),
});
export type TlsSettings = z.infer<typeof TlsSettings>;

/** A 64-char lower-case hex sha256 digest. */
export const Hash = z.string().regex(/^[0-9a-f]{64}$/, 'hash must be a sha256 hex digest');

/** Routing section: everything but endpoint addresses. */
export const Routing = z.strictObject({
  /** sha256 of the canonical JSON of this section without `hash`. */
  hash: Hash,
  /** Virtual hosts. */
  virtualHosts: z.array(VirtualHost),
  /** Clusters referenced by forward actions. */
  clusters: z.array(Cluster),
  /** Certificates referenced by virtual hosts and `tls.defaultCertificate`. Absent: none. */
  certificates: z.array(Certificate).optional(),
  /** Listener-wide TLS settings. Absent: all defaults. */
  tls: TlsSettings.optional(),
});
export type Routing = z.infer<typeof Routing>;

/** One upstream address, with EndpointSlice conditions. */
export const Endpoint = z.strictObject({
  /** IPv4 or IPv6 address (or a resolvable name in local mode). */
  address: z.string().min(1).max(253),
  /** TCP port. */
  port: z.number().int().min(1).max(65535),
  /** Receives new traffic. Only ready endpoints are picked by the balancer. */
  ready: z.boolean(),
  /** Able to serve (may be true while terminating). */
  serving: z.boolean(),
  /** Being shut down; carried so in-flight and long-lived connections can drain. */
  terminating: z.boolean(),
});
export type Endpoint = z.infer<typeof Endpoint>;

/** Endpoints of one cluster. */
export const ClusterEndpoints = z.strictObject({
  /** Cluster name, as in `routing.clusters`. */
  cluster: name,
  /** The cluster's endpoints, sorted by address and port. */
  endpoints: z.array(Endpoint),
});
export type ClusterEndpoints = z.infer<typeof ClusterEndpoints>;

/** Endpoints section; changes far more often than routing. */
export const Endpoints = z.strictObject({
  /** sha256 of the canonical JSON of this section without `hash`. */
  hash: Hash,
  /** Per-cluster endpoints. */
  clusters: z.array(ClusterEndpoints),
});
export type Endpoints = z.infer<typeof Endpoints>;

/** The whole snapshot as pushed to `PUT /v1/snapshot`. */
export const Snapshot = z.strictObject({
  /** Must equal {@link SNAPSHOT_SCHEMA_VERSION}. */
  schemaVersion: z.literal(SNAPSHOT_SCHEMA_VERSION),
  /**
   * Monotonic counter set by the controller, for humans and metrics. The
   * dataplane does not order by it: section hashes are the identity.
   */
  generation: z.number().int().min(0),
  /**
   * Virtual hosts, routes and clusters. A push whose `routing.hash` is the
   * one the dataplane serves keeps that routing, and may carry just
   * `{ "hash": … }` here (the dataplane then checks only the endpoints).
   */
  routing: Routing,
  /** Endpoint addresses per cluster. */
  endpoints: Endpoints,
});
export type Snapshot = z.infer<typeof Snapshot>;
