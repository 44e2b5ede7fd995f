// Snapshot → data structures the request path only reads. Everything that can
// be decided from config alone (regexes, reply bodies, weights, timeouts) is
// decided here, once per snapshot, never per request.
import type { Endpoints, Route, Routing } from '../snapshot/schema.ts';
import { HostMap } from '../routing/host-map.ts';
import { compilePathMatch } from '../routing/path-match.ts';
import { compileConditions } from '../routing/conditions.ts';
import { RouteTable } from '../routing/table.ts';
import type { MatchableRoute } from '../routing/table.ts';
import { RoundRobin, SmoothWeighted } from '../upstream/balancer.ts';
import { upstreamEndpoint } from '../upstream/endpoint.ts';
import type { UpstreamEndpoint } from '../upstream/endpoint.ts';

/** Timeouts a route gets when the snapshot leaves them out (milliseconds). */
export interface TimeoutDefaults {
  /** Upstream TCP connect. */
  connectMs: number;
  /** Upstream response headers, and gaps between response body chunks. */
  responseMs: number;
  /** Whole request; 0 disables. */
  requestMs: number;
}

/** Defaults used by the dataplane: 5 s connect, 60 s response, no whole-request limit. */
export const DEFAULT_TIMEOUTS: TimeoutDefaults = { connectMs: 5_000, responseMs: 60_000, requestMs: 0 };

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
}

/** A route ready for the request path. */
export interface CompiledRoute extends MatchableRoute {
  /** Route name from the snapshot; the `route` label of metrics and logs. */
  readonly name: string;
  readonly action: DirectReply | ForwardPlan;
  readonly timeouts: Readonly<TimeoutDefaults>;
}

/** The compiled routing section. */
export interface CompiledRouting {
  readonly hash: string;
  readonly table: RouteTable<CompiledRoute>;
  /** Distinct upstream connect timeouts in use, so unused pools can be closed. */
  readonly connectTimeouts: ReadonlySet<number>;
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
export function compileRouting(routing: Routing, defaults: TimeoutDefaults = DEFAULT_TIMEOUTS): CompiledRouting {
  const problems: string[] = [];
  const hosts = new HostMap<readonly CompiledRoute[]>();
  const connectTimeouts = new Set<number>();
  routing.virtualHosts.forEach((vh, i) => {
    const routes: CompiledRoute[] = [];
    vh.routes.forEach((route, j) => {
      try {
        const compiled = compileRoute(route, defaults);
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
  return { hash: routing.hash, table: new RouteTable(hosts), connectTimeouts };
}

function compileRoute(route: Route, defaults: TimeoutDefaults): CompiledRoute {
  const t = route.timeouts;
  const timeouts: TimeoutDefaults = {
    connectMs: t?.upstreamConnectMs ?? defaults.connectMs,
    responseMs: t?.upstreamResponseMs ?? defaults.responseMs,
    requestMs: t?.requestMs ?? defaults.requestMs,
  };
  const a = route.action;
  const action: DirectReply | ForwardPlan = a.type === 'direct'
    ? { type: 'direct', status: a.status, body: Buffer.from(a.body ?? '', 'utf8'), contentType: a.contentType ?? DEFAULT_CONTENT_TYPE }
    : { type: 'forward', backends: new SmoothWeighted(a.backends.map((b) => ({ item: b.cluster, weight: b.weight }))) };
  return {
    name: route.name,
    matchPath: compilePathMatch(route.match.path),
    conditions: compileConditions(route.match),
    action,
    timeouts,
  };
}

/** Endpoints of one cluster, ready to pick from. */
export interface ClusterTargets {
  readonly name: string;
  /** Ready endpoints, round robin. */
  readonly ready: RoundRobin<UpstreamEndpoint>;
  /**
   * Serving but not ready (terminating) endpoints, used only when no endpoint
   * is ready, as kube-proxy does, so a rollout's last pod still drains traffic.
   */
  readonly servingFallback: RoundRobin<UpstreamEndpoint>;
}

/** The compiled endpoints section. */
export interface CompiledEndpoints {
  readonly hash: string;
  readonly clusters: ReadonlyMap<string, ClusterTargets>;
  /** Every endpoint key that may receive traffic; other pools are closed. */
  readonly keys: ReadonlySet<string>;
}

/** Compile the endpoints section. */
export function compileEndpoints(endpoints: Endpoints): CompiledEndpoints {
  const clusters = new Map<string, ClusterTargets>();
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
    clusters.set(c.cluster, { name: c.cluster, ready: new RoundRobin(ready), servingFallback: new RoundRobin(serving) });
  }
  return { hash: endpoints.hash, clusters, keys };
}

/** Next endpoint of a cluster: ready ones first, serving ones only when none is ready. */
export function pickEndpoint(targets: ClusterTargets | undefined): UpstreamEndpoint | undefined {
  if (targets === undefined) return undefined;
  return targets.ready.pick() ?? targets.servingFallback.pick();
}
