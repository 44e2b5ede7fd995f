// Per-endpoint state that must outlive snapshot swaps: requests in flight,
// active health-check verdicts and passive ejections. Compiled balancers
// (cluster-balancer.ts) are rebuilt on every swap and only point into this
// registry, so an endpoint that stays in its cluster keeps its history.
import type { Cluster, OutlierDetection } from '../snapshot/schema.ts';

/** Outlier detection with the schema's defaults filled in. */
export interface OutlierSettings {
  readonly consecutive5xx: number;
  readonly consecutiveConnectFailures: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectionPercent: number;
}

/** Resolve {@link OutlierDetection} against its documented defaults. */
export function outlierSettings(o: OutlierDetection | undefined): OutlierSettings | undefined {
  if (o === undefined) return undefined;
  return {
    consecutive5xx: o.consecutive5xx ?? 5,
    consecutiveConnectFailures: o.consecutiveConnectFailures ?? 5,
    baseEjectionMs: o.baseEjectionMs ?? 30_000,
    maxEjectionMs: o.maxEjectionMs ?? 300_000,
    maxEjectionPercent: o.maxEjectionPercent ?? 10,
  };
}

/** What one upstream exchange told about its endpoint. */
export type Outcome = 'success' | '5xx' | 'connect-failure';

/** Mutable state of one endpoint of one cluster. */
export class EndpointState {
  readonly key: string;
  /** Requests sent and not yet finished (least-request, circuit breaking). */
  inFlight = 0;
  /** Verdict of active health checks; true while none ran or none are configured. */
  activeHealthy = true;
  consecutive5xx = 0;
  consecutiveConnectFailures = 0;
  /** `Date.now()` until which the endpoint is ejected; 0 when it is not. */
  ejectedUntil = 0;
  /** Times ejected, which grows the next ejection; forgotten after a quiet `maxEjectionMs`. */
  ejections = 0;

  constructor(key: string) {
    this.key = key;
  }

  /** Takes traffic as far as health goes. */
  healthy(now: number): boolean {
    return this.activeHealthy && this.ejectedUntil <= now;
  }
}

/** Mutable state of one cluster: its endpoints, and counters its limits read. */
export class ClusterState {
  readonly name: string;
  readonly endpoints = new Map<string, EndpointState>();
  /** Requests in flight to any endpoint (circuit breaking, retry budget). */
  inFlight = 0;
  /** Retries in flight, held against the retry budget. */
  retriesInFlight = 0;
  /** Requests admitted past `maxConnections`, waiting for a slot, oldest first. */
  readonly pending: Array<() => void> = [];
  outlier: OutlierSettings | undefined;

  constructor(name: string) {
    this.name = name;
  }

  endpoint(key: string): EndpointState {
    let s = this.endpoints.get(key);
    if (s === undefined) {
      s = new EndpointState(key);
      this.endpoints.set(key, s);
    }
    return s;
  }
}

/** Told when an endpoint is ejected, for metrics and logs. */
export type EjectionListener = (cluster: string, key: string, ms: number) => void;

/**
 * All cluster states of one dataplane process. `version` moves whenever a
 * health verdict changes, so balancers can cache their healthy lists.
 */
export class UpstreamHealth {
  readonly clusters = new Map<string, ClusterState>();
  #version = 0;
  #unhealthy: ReadonlySet<string> = new Set();
  readonly #onEject: EjectionListener | undefined;

  constructor(onEject?: EjectionListener) {
    this.#onEject = onEject;
  }

  /** Changes whenever an endpoint's health changes (ejections expire by time, not by version). */
  get version(): number {
    return this.#version;
  }

  cluster(name: string): ClusterState {
    let c = this.clusters.get(name);
    if (c === undefined) {
      c = new ClusterState(name);
      this.clusters.set(name, c);
    }
    return c;
  }

  /**
   * Follow a new snapshot: keep the state of every (cluster, endpoint) still
   * present, drop the rest, and take the clusters' outlier settings.
   */
  sync(clusters: readonly Cluster[], endpointKeys: ReadonlyMap<string, readonly string[]>): void {
    const wanted = new Set<string>();
    for (const c of clusters) {
      wanted.add(c.name);
      const state = this.cluster(c.name);
      state.outlier = outlierSettings(c.outlierDetection);
      const keys = new Set(endpointKeys.get(c.name) ?? []);
      for (const key of keys) state.endpoint(key).activeHealthy = !this.#unhealthy.has(`${c.name}\n${key}`);
      for (const key of state.endpoints.keys()) if (!keys.has(key)) state.endpoints.delete(key);
    }
    for (const name of this.clusters.keys()) if (!wanted.has(name)) this.clusters.delete(name);
    this.#version++;
  }

  /**
   * Take the active checks' verdicts: the ids (`cluster` newline `address:port`)
   * of endpoints held unhealthy. Kept for endpoints that arrive later, since
   * in a worker cluster the verdicts and the snapshot come by separate messages.
   */
  setActiveVerdicts(unhealthy: ReadonlySet<string>): void {
    this.#unhealthy = new Set(unhealthy);
    for (const c of this.clusters.values()) {
      for (const s of c.endpoints.values()) s.activeHealthy = !this.#unhealthy.has(`${c.name}\n${s.key}`);
    }
    this.#version++;
  }

  /** Feed one exchange's outcome to outlier detection. */
  record(cluster: ClusterState, ep: EndpointState, outcome: Outcome): void {
    const o = cluster.outlier;
    if (o === undefined) return;
    if (outcome === 'success') {
      ep.consecutive5xx = 0;
      ep.consecutiveConnectFailures = 0;
      return;
    }
    let trip: boolean;
    if (outcome === '5xx') {
      ep.consecutiveConnectFailures = 0;
      ep.consecutive5xx++;
      trip = o.consecutive5xx > 0 && ep.consecutive5xx >= o.consecutive5xx;
    } else {
      ep.consecutiveConnectFailures++;
      trip = o.consecutiveConnectFailures > 0 && ep.consecutiveConnectFailures >= o.consecutiveConnectFailures;
    }
    if (trip) this.#eject(cluster, ep, o);
  }

  #eject(cluster: ClusterState, ep: EndpointState, o: OutlierSettings): void {
    const now = Date.now();
    if (ep.ejectedUntil > now) return;
    let ejected = 0;
    for (const s of cluster.endpoints.values()) if (s.ejectedUntil > now) ejected++;
    // The share cap never forbids the first ejection (Envoy does the same).
    const cap = Math.max(1, Math.floor((cluster.endpoints.size * o.maxEjectionPercent) / 100));
    if (ejected >= cap) return;
    if (ep.ejections > 0 && now - ep.ejectedUntil > o.maxEjectionMs) ep.ejections = 0;
    ep.ejections++;
    const ms = Math.min(o.baseEjectionMs * ep.ejections, o.maxEjectionMs);
    ep.ejectedUntil = now + ms;
    ep.consecutive5xx = 0;
    ep.consecutiveConnectFailures = 0;
    this.#version++;
    this.#onEject?.(cluster.name, ep.key, ms);
  }
}
