/**
 * The snapshot contract between controller and dataplane.
 *
 * A snapshot is the whole desired state of a dataplane. It is split into two
 * sections that change at very different rates: `routing` (virtual hosts,
 * routes, clusters) and `endpoints` (addresses behind each cluster). Each
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

/** What happens to a matched request. */
export const RouteAction = z.discriminatedUnion('type', [ForwardAction, DirectAction]);
export type RouteAction = z.infer<typeof RouteAction>;

/** Per-route timeouts in milliseconds. Absent fields use the dataplane defaults. */
export const Timeouts = z.strictObject({
  /** Whole request, from the first byte received to the last byte sent. 0 disables. */
  requestMs: z.number().int().min(0).max(86_400_000).optional(),
  /** TCP (and TLS) connect to the upstream. */
  upstreamConnectMs: z.number().int().min(1).max(3_600_000).optional(),
  /** Time to the upstream's response headers, and between body chunks. */
  upstreamResponseMs: z.number().int().min(1).max(86_400_000).optional(),
});
export type Timeouts = z.infer<typeof Timeouts>;

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
});
export type VirtualHost = z.infer<typeof VirtualHost>;

/** An upstream service: a named pool of endpoints. */
export const Cluster = z.strictObject({
  /** Unique name, conventionally `<namespace>/<service>/<port>`. */
  name,
  /** The Service this cluster was resolved from. */
  service: z.strictObject({ namespace: z.string(), name: z.string().min(1), port: z.union([z.number().int(), z.string()]) }).optional(),
  /** Protocol spoken to the endpoints. */
  protocol: z.enum(['http']),
});
export type Cluster = z.infer<typeof Cluster>;

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
  /** Virtual hosts, routes and clusters. */
  routing: Routing,
  /** Endpoint addresses per cluster. */
  endpoints: Endpoints,
});
export type Snapshot = z.infer<typeof Snapshot>;
