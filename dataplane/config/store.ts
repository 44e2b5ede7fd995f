// The one mutable reference of the dataplane. A request reads `current` once
// and keeps that object to its end; `apply` builds a new object and swaps.
import type { Snapshot } from '../snapshot/schema.ts';
import { CompileError, compileEndpoints, compileRouting, compileUpstreams, DEFAULT_TIMEOUTS, endpointKeysByCluster } from './compile.ts';
import { keepsServedRouting } from '../snapshot/validate.ts';
import type { CompiledEndpoints, CompiledRouting, CompiledUpstreams, TimeoutDefaults } from './compile.ts';
import { UpstreamHealth } from '../upstream/health-state.ts';
import type { PoolRegistry } from '../upstream/pool.ts';
import type { CompiledTls, TlsManager } from '../tls/contexts.ts';
import type { FeatureDefaults } from '../middleware/order.ts';

/** The configuration serving traffic. Immutable once published. */
export interface ActiveConfig {
  readonly generation: number;
  readonly routing: CompiledRouting;
  readonly endpoints: CompiledEndpoints;
  /** Balancers per cluster, bound to the store's long-lived health state. */
  readonly upstreams: CompiledUpstreams;
  /** Certificates and SNI map; undefined when the store runs without TLS (unit tests). */
  readonly tls: CompiledTls | undefined;
}

/** Optional parts of the dataplane that follow snapshot swaps. */
export interface StoreExtensions {
  /** Builds the TLS config from each new routing section. */
  readonly tls?: TlsManager;
  /** Other upstream connection holders (HTTP/2 sessions) that drop endpoints which left. */
  readonly upstreams?: readonly { retain(keys: ReadonlySet<string>): void }[];
  /** Defaults of per-route features (body limit, compression) from the flags. */
  readonly features?: FeatureDefaults;
  /** Told of each new routing section after the swap (open WebSockets check their route is still there). */
  readonly onRouting?: (routing: CompiledRouting) => void;
  /** Health state that outlives swaps; one is created when absent. */
  readonly health?: UpstreamHealth;
  /** Told after a swap that changed clusters or endpoints (active health checks follow them). */
  readonly onUpstreams?: (config: ActiveConfig) => void;
}

/** What {@link ConfigStore.apply} did. */
export interface ApplyResult {
  /** False when both section hashes equal the current ones. */
  applied: boolean;
  /** True when the route table was rebuilt (the routing hash changed). */
  routingRebuilt: boolean;
  /** True when endpoints were recompiled (the endpoints hash changed). */
  endpointsRebuilt: boolean;
}

/** Holds the active config and swaps it. */
export class ConfigStore {
  #current: ActiveConfig | undefined;
  readonly #pools: PoolRegistry;
  readonly #defaults: TimeoutDefaults;
  readonly #ext: StoreExtensions;
  /** Requests in flight, health verdicts and ejections per (cluster, endpoint), kept across swaps. */
  readonly health: UpstreamHealth;

  constructor(pools: PoolRegistry, defaults: TimeoutDefaults = DEFAULT_TIMEOUTS, ext: StoreExtensions = {}) {
    this.#pools = pools;
    this.#defaults = defaults;
    this.#ext = ext;
    this.health = ext.health ?? new UpstreamHealth();
  }

  /** The config to serve with, or undefined before the first snapshot. */
  get current(): ActiveConfig | undefined {
    return this.#current;
  }

  /**
   * Compile what changed and swap. Throws `CompileError` and leaves the
   * current config untouched when the snapshot does not compile. The snapshot
   * must have passed `validateSnapshot`.
   */
  apply(snapshot: Snapshot): ApplyResult {
    const prev = this.#current;
    const sameRouting = prev?.routing.hash === snapshot.routing.hash;
    const sameEndpoints = prev?.endpoints.hash === snapshot.endpoints.hash;
    // Its routing was accepted unchecked for being the one served; another
    // push changed that in between (the primary queues commits after checking).
    if (!sameRouting && keepsServedRouting(snapshot)) {
      throw new CompileError(['routing.hash: the routing being served changed while this snapshot was checked; push the whole snapshot again']);
    }
    const routing = sameRouting ? prev!.routing : compileRouting(snapshot.routing, this.#defaults, this.#ext.features);
    const endpoints = sameEndpoints ? prev!.endpoints : compileEndpoints(snapshot.endpoints);
    // Last before the swap: TLS compilation never throws (bad certificates fall back
    // to the default one), so nothing after it can leave a half-applied snapshot.
    const tls = sameRouting ? prev!.tls : this.#ext.tls?.compile(snapshot.routing);
    let upstreams = prev?.upstreams;
    if (upstreams === undefined || !sameRouting || !sameEndpoints) {
      this.health.sync(routing.clusters, endpointKeysByCluster(endpoints));
      upstreams = compileUpstreams(routing.clusters, endpoints, this.health);
    }
    this.#current = { generation: snapshot.generation, routing, endpoints, upstreams, tls };
    if (!sameRouting && tls !== undefined) this.#ext.tls!.activate(tls);
    if (!sameRouting) this.#ext.onRouting?.(routing);
    if (!sameRouting || !sameEndpoints) {
      this.#pools.retain(endpoints.keys, routing.connectTimeouts);
      for (const u of this.#ext.upstreams ?? []) u.retain(endpoints.keys);
      this.#ext.onUpstreams?.(this.#current);
    }
    return { applied: !(sameRouting && sameEndpoints), routingRebuilt: !sameRouting, endpointsRebuilt: !sameEndpoints };
  }
}
