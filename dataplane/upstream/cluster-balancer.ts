// One cluster ready for the request path: its endpoints bound to their
// long-lived state, the load-balancing policy, the health filter with the
// panic threshold, affinity ids and circuit-breaker limits. Rebuilt on every
// swap that touches routing or endpoints; the state it points to is not.
import { hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { CircuitBreaker, Cluster, ClusterProtocol, HashOn, LoadBalancer } from '../snapshot/schema.ts';
import type { UpstreamEndpoint } from './endpoint.ts';
import { HashRing, ringHash } from './hash-ring.ts';
import type { ClusterState, EndpointState, UpstreamHealth } from './health-state.ts';

/** An endpoint as the balancer hands it out. */
export interface Member {
  readonly endpoint: UpstreamEndpoint;
  readonly state: EndpointState;
  /** Value of the session-affinity cookie that leads back here. */
  readonly affinityId: string;
}

/** What a pick may look at in the request. */
export interface PickInput {
  readonly headers: IncomingHttpHeaders;
  readonly clientAddress: string;
  /** Query string without `?`, undefined when there is none. */
  readonly rawQuery: string | undefined;
  /** Path and query as received. */
  readonly pathAndQuery: string;
}

/** Policy names as the admin API reports them. */
export type PolicyName = LoadBalancer['policy'];

/** Cookie value naming one endpoint of one cluster; opaque to clients, stable across snapshots. */
export function affinityId(cluster: string, key: string): string {
  return hash('sha256', `${cluster}|${key}`, 'base64url').slice(0, 22);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Value of an affinity or hash cookie in the request, if any. */
export function requestCookie(headers: IncomingHttpHeaders, name: string): string | undefined {
  const c = headers.cookie;
  return cookieValue(Array.isArray(c) ? c.join('; ') : c, name);
}

function hashKey(on: HashOn, input: PickInput): string | undefined {
  switch (on.type) {
    case 'Header': {
      const v = input.headers[on.name.toLowerCase()];
      return Array.isArray(v) ? v.join(',') : v;
    }
    case 'Cookie':
      return requestCookie(input.headers, on.name);
    case 'QueryParameter':
      return input.rawQuery === undefined ? undefined : new URLSearchParams(input.rawQuery).get(on.name) ?? undefined;
    case 'SourceIP':
      return input.clientAddress;
    case 'RequestURI':
      return input.pathAndQuery;
  }
}

/** Picks endpoints of one cluster. */
export class ClusterBalancer {
  readonly name: string;
  readonly protocol: ClusterProtocol;
  readonly policy: PolicyName;
  readonly state: ClusterState;
  /** Ready endpoints, in snapshot order. */
  readonly ready: readonly Member[];
  /** Serving but not ready (terminating) endpoints: used only when none is ready, as kube-proxy does. */
  readonly serving: readonly Member[];
  readonly circuitBreaker: CircuitBreaker | undefined;
  readonly #byAffinity: ReadonlyMap<string, Member>;
  readonly #health: UpstreamHealth;
  readonly #panicPercent: number;
  readonly #hashOn: HashOn | undefined;
  readonly #ring: HashRing | undefined;
  #next = 0;
  // Healthy list cache: valid while the health version is unchanged and no ejection has expired.
  #cachedVersion = -1;
  #cachedUntil = 0;
  #candidates: readonly Member[] = [];
  #panic = false;

  constructor(cluster: Cluster, ready: readonly UpstreamEndpoint[], serving: readonly UpstreamEndpoint[], health: UpstreamHealth) {
    this.name = cluster.name;
    this.protocol = cluster.protocol;
    this.policy = cluster.loadBalancer?.policy ?? 'RoundRobin';
    this.state = health.cluster(cluster.name);
    this.#health = health;
    const member = (endpoint: UpstreamEndpoint): Member => ({
      endpoint,
      state: this.state.endpoint(endpoint.key),
      affinityId: affinityId(cluster.name, endpoint.key),
    });
    this.ready = ready.map(member);
    this.serving = serving.map(member);
    this.#byAffinity = new Map([...this.ready, ...this.serving].map((m) => [m.affinityId, m]));
    this.#panicPercent = cluster.panicThresholdPercent ?? 50;
    this.#hashOn = cluster.loadBalancer?.hashOn;
    this.#ring = this.#hashOn !== undefined ? new HashRing(this.ready.map((m) => m.endpoint.key)) : undefined;
    this.circuitBreaker = cluster.circuitBreaker;
  }

  /** True while health is being ignored because too few endpoints are healthy. */
  get panic(): boolean {
    this.#refresh(Date.now());
    return this.#panic;
  }

  /** Endpoints that may take a request now: healthy ready ones, all ready ones in panic, serving ones when none is ready. */
  candidates(now = Date.now()): readonly Member[] {
    this.#refresh(now);
    return this.#candidates;
  }

  /** The member an affinity cookie names, when it may still take traffic. */
  byAffinity(id: string): Member | undefined {
    const m = this.#byAffinity.get(id);
    return m !== undefined && this.candidates().includes(m) ? m : undefined;
  }

  /**
   * Next endpoint by policy among the candidates, avoiding `exclude`d keys
   * (endpoints a retry already tried) while any other is left.
   */
  pick(input: PickInput, exclude?: ReadonlySet<string>): Member | undefined {
    let list = this.candidates();
    if (list.length === 0) return undefined;
    if (exclude !== undefined && exclude.size > 0) {
      const rest = list.filter((m) => !exclude.has(m.endpoint.key));
      if (rest.length > 0) list = rest;
    }
    if (list.length === 1) return list[0];
    switch (this.policy) {
      case 'Random':
        return list[Math.floor(Math.random() * list.length)];
      case 'LeastRequest': {
        // Power of two choices: nearly as good as scanning all, and never herds onto one endpoint.
        const a = Math.floor(Math.random() * list.length);
        let b = Math.floor(Math.random() * (list.length - 1));
        if (b >= a) b++;
        return list[b]!.state.inFlight < list[a]!.state.inFlight ? list[b] : list[a];
      }
      case 'ConsistentHash': {
        const key = hashKey(this.#hashOn!, input);
        if (key !== undefined && this.ready.length > 0) {
          const allowed = list === this.ready ? undefined : new Set(list);
          const owner = this.#ring!.lookup(ringHash(key), (i) => allowed === undefined || allowed.has(this.ready[i]!));
          if (owner >= 0) return this.ready[owner];
        }
        // No key in the request: spread such requests rather than pin them all to one endpoint.
        return list[this.#next++ % list.length];
      }
      default:
        return list[this.#next++ % list.length];
    }
  }

  #refresh(now: number): void {
    if (this.#cachedVersion === this.#health.version && now < this.#cachedUntil) return;
    this.#cachedVersion = this.#health.version;
    this.#cachedUntil = Infinity;
    this.#panic = false;
    if (this.ready.length === 0) {
      this.#candidates = this.serving;
      return;
    }
    const healthy: Member[] = [];
    for (const m of this.ready) {
      if (m.state.healthy(now)) healthy.push(m);
      else if (m.state.ejectedUntil > now && m.state.activeHealthy) this.#cachedUntil = Math.min(this.#cachedUntil, m.state.ejectedUntil);
    }
    if (healthy.length === this.ready.length) {
      this.#candidates = this.ready;
    } else if (this.#panicPercent > 0 && healthy.length * 100 < this.#panicPercent * this.ready.length) {
      this.#panic = true;
      this.#candidates = this.ready;
    } else {
      this.#candidates = healthy;
    }
  }
}
