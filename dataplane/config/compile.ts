// Snapshot → data structures the request path only reads. Everything that can
// be decided from config alone (regexes, reply bodies, weights, timeouts) is
// decided here, once per snapshot, never per request.
import type { Cluster, ClusterProtocol, Endpoints, Mirror, Route, Routing, SessionAffinity, VirtualHostTls } from '../snapshot/schema.ts';
import { hstsHeader } from '../tls/policy.ts';
import { HostMap } from '../routing/host-map.ts';
import { compilePathMatch } from '../routing/path-match.ts';
import { compileConditions } from '../routing/conditions.ts';
import { RouteTable } from '../routing/table.ts';
import type { MatchableRoute } from '../routing/table.ts';
import { SmoothWeighted } from '../upstream/balancer.ts';
import { ClusterBalancer } from '../upstream/cluster-balancer.ts';
import type { UpstreamHealth } from '../upstream/health-state.ts';
import { compileRetry } from '../upstream/retry.ts';
import type { CompiledRetry } from '../upstream/retry.ts';
import { upstreamEndpoint } from '../upstream/endpoint.ts';
import type { UpstreamEndpoint } from '../upstream/endpoint.ts';
import { compileChain, DEFAULT_FEATURES } from '../middleware/order.ts';
import type { FeatureDefaults, RouteChain } from '../middleware/order.ts';
import { compileTransforms } from '../transforms/index.ts';
import type { RouteTransforms } from '../transforms/index.ts';
import { compileRedirect } from '../transforms/redirect.ts';
import type { RedirectReply } from '../transforms/redirect.ts';

/** Timeouts a route gets when the snapshot leaves them out (milliseconds). */
export interface TimeoutDefaults {
  /** Upstream TCP connect. */
  connectMs: number;
  /** Upstream response headers, and gaps between response body chunks. */
  responseMs: number;
  /** Whole request; 0 disables. */
  requestMs: number;
  /** Idle time after which an upgraded connection (WebSocket) is closed; 0 disables. */
  websocketIdleMs: number;
}

/** Defaults used by the dataplane: 5 s connect, 60 s response, no whole-request limit, 1 h WebSocket idle. */
export const DEFAULT_TIMEOUTS: TimeoutDefaults = { connectMs: 5_000, responseMs: 60_000, requestMs: 0, websocketIdleMs: 3_600_000 };

/** A locally answered route. */
export interface DirectReply {
  readonly type: 'direct';
  readonly status: number;
  readonly body: Buffer;
  readonly contentType: string;
}

/** A proxied route. */
export interface ForwardPlan {
  readonly type: 'forward';
  /** Cluster names by weight. */
  readonly backends: SmoothWeighted<string>;
  /** Protocol of every cluster of the snapshot (shared by all routes). */
  readonly protocols: ReadonlyMap<string, ClusterProtocol>;
  /** Retries; undefined when the route does not retry. */
  readonly retry: CompiledRetry | undefined;
  /** Cookie session affinity. */
  readonly affinity: SessionAffinity['cookie'] | undefined;
  /** Request mirrors. */
  readonly mirrors: readonly Mirror[];
}

/** A route ready for the request path. */
export interface CompiledRoute extends MatchableRoute {
  /** Route name from the snapshot; the `route` label of metrics and logs. */
  readonly name: string;
  readonly action: DirectReply | ForwardPlan | RedirectReply;
  readonly timeouts: Readonly<TimeoutDefaults>;
  /** Answer plain-HTTP requests with a 308 to https (the virtual host has TLS and the route did not opt out, or the route forces it). */
  readonly redirectHttps: boolean;
  /** `Strict-Transport-Security` value for HTTPS responses, when the virtual host asks for one. */
  readonly hsts: string | undefined;
  /** Middleware of the route, in phase order (middleware/order.ts). */
  readonly chain: RouteChain;
  /** Path, Host and header rewrites (transforms/index.ts). */
  readonly transforms: RouteTransforms;
}

/** The compiled routing section. */
export interface CompiledRouting {
  readonly hash: string;
  readonly table: RouteTable<CompiledRoute>;
  /** Distinct upstream connect timeouts in use, so unused pools can be closed. */
  readonly connectTimeouts: ReadonlySet<number>;
  /** Names of all routes, so WebSockets opened on a route that left can be closed. */
  readonly routeNames: ReadonlySet<string>;
  /** Clusters as the snapshot declares them (policies, health checks, limits). */
  readonly clusters: readonly Cluster[];
}

/** Thrown when a snapshot passes validation but cannot be compiled. */
export class CompileError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`snapshot does not compile: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

const DEFAULT_CONTENT_TYPE = 'text/plain; charset=utf-8';

/** Compile the routing section. Throws {@link CompileError}. */
export function compileRouting(routing: Routing, defaults: TimeoutDefaults = DEFAULT_TIMEOUTS, features: FeatureDefaults = DEFAULT_FEATURES): CompiledRouting {
  const problems: string[] = [];
  const hosts = new HostMap<readonly CompiledRoute[]>();
  const connectTimeouts = new Set<number>();
  const routeNames = new Set<string>();
  const protocols = new Map(routing.clusters.map((c) => [c.name, c.protocol]));
  routing.virtualHosts.forEach((vh, i) => {
    const routes: CompiledRoute[] = [];
    vh.routes.forEach((route, j) => {
      try {
        const compiled = compileRoute(route, defaults, protocols, vh.tls, features);
        routeNames.add(compiled.name);
        if (compiled.action.type === 'forward') connectTimeouts.add(compiled.timeouts.connectMs);
        routes.push(compiled);
      } catch (err) {
        problems.push(`routing.virtualHosts.${i}.routes.${j}: ${(err as Error).message}`);
      }
    });
    for (const hostname of vh.hostnames) {
      if (!hosts.add(hostname, routes)) problems.push(`routing.virtualHosts.${i}.hostnames: "${hostname}" is used twice`);
    }
  });
  if (problems.length > 0) throw new CompileError(problems);
  return { hash: routing.hash, table: new RouteTable(hosts), connectTimeouts, routeNames, clusters: routing.clusters };
}

function compileRoute(route: Route, defaults: TimeoutDefaults, protocols: ReadonlyMap<string, ClusterProtocol>, tls: VirtualHostTls | undefined, features: FeatureDefaults): CompiledRoute {
  const t = route.timeouts;
  const timeouts: TimeoutDefaults = {
    connectMs: t?.upstreamConnectMs ?? defaults.connectMs,
    responseMs: t?.upstreamResponseMs ?? defaults.responseMs,
    requestMs: t?.requestMs ?? defaults.requestMs,
    websocketIdleMs: t?.websocketIdleMs ?? defaults.websocketIdleMs,
  };
  const a = route.action;
  const action: DirectReply | ForwardPlan | RedirectReply = a.type === 'direct'
    ? { type: 'direct', status: a.status, body: Buffer.from(a.body ?? '', 'utf8'), contentType: a.contentType ?? DEFAULT_CONTENT_TYPE }
    : a.type === 'redirect'
      ? compileRedirect(a, route.match.path)
      : {
        type: 'forward',
        backends: new SmoothWeighted(a.backends.map((b) => ({ item: b.cluster, weight: b.weight }))),
        protocols,
        retry: compileRetry(route.retry, timeouts.responseMs),
        affinity: route.sessionAffinity?.cookie,
        mirrors: route.mirrors ?? [],
      };
  return {
    name: route.name,
    matchPath: compilePathMatch(route.match.path),
    conditions: compileConditions(route.match),
    action,
    timeouts,
    redirectHttps: route.forceRedirectHttp === true || (tls !== undefined && (route.redirectHttp ?? tls.redirectHttp ?? true)),
    hsts: tls?.hsts !== undefined ? hstsHeader(tls.hsts) : undefined,
    chain: compileChain(route, features),
    transforms: compileTransforms(route),
  };
}

/** Endpoints of one cluster, as the snapshot lists them. */
export interface ClusterEndpointSet {
  readonly name: string;
  /** Ready endpoints. */
  readonly ready: readonly UpstreamEndpoint[];
  /** Serving but not ready (terminating) endpoints. */
  readonly serving: readonly UpstreamEndpoint[];
}

/** The compiled endpoints section. */
export interface CompiledEndpoints {
  readonly hash: string;
  readonly clusters: ReadonlyMap<string, ClusterEndpointSet>;
  /** Every endpoint key that may receive traffic; other pools are closed. */
  readonly keys: ReadonlySet<string>;
}

/** Compile the endpoints section. */
export function compileEndpoints(endpoints: Endpoints): CompiledEndpoints {
  const clusters = new Map<string, ClusterEndpointSet>();
  const keys = new Set<string>();
  for (const c of endpoints.clusters) {
    const ready: UpstreamEndpoint[] = [];
    const serving: UpstreamEndpoint[] = [];
    const seen = new Set<string>();
    for (const e of c.endpoints) {
      const ep = upstreamEndpoint(e.address, e.port);
      if (seen.has(ep.key)) continue;
      seen.add(ep.key);
      if (e.ready) ready.push(ep);
      else if (e.serving) serving.push(ep);
      else continue;
      keys.add(ep.key);
    }
    clusters.set(c.cluster, { name: c.cluster, ready, serving });
  }
  return { hash: endpoints.hash, clusters, keys };
}

/** Balancers by cluster name. */
export type CompiledUpstreams = ReadonlyMap<string, ClusterBalancer>;

/**
 * Bind each declared cluster to its endpoints and to the long-lived health
 * state (which `health.sync` has already aligned with this snapshot).
 */
export function compileUpstreams(clusters: readonly Cluster[], endpoints: CompiledEndpoints, health: UpstreamHealth): CompiledUpstreams {
  const out = new Map<string, ClusterBalancer>();
  for (const c of clusters) {
    const set = endpoints.clusters.get(c.name);
    out.set(c.name, new ClusterBalancer(c, set?.ready ?? [], set?.serving ?? [], health));
  }
  return out;
}

/** Endpoint keys per cluster, for `UpstreamHealth.sync`. */
export function endpointKeysByCluster(endpoints: CompiledEndpoints): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [name, set] of endpoints.clusters) out.set(name, [...set.ready, ...set.serving].map((e) => e.key));
  return out;
}
