// The one mutable reference of the dataplane. A request reads `current` once
// and keeps that object to its end; `apply` builds a new object and swaps.
import type { Snapshot } from '../snapshot/schema.ts';
import { compileEndpoints, compileRouting, DEFAULT_TIMEOUTS } from './compile.ts';
import type { CompiledEndpoints, CompiledRouting, TimeoutDefaults } from './compile.ts';
import type { PoolRegistry } from '../upstream/pool.ts';

/** The configuration serving traffic. Immutable once published. */
export interface ActiveConfig {
  readonly generation: number;
  readonly routing: CompiledRouting;
  readonly endpoints: CompiledEndpoints;
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

  constructor(pools: PoolRegistry, defaults: TimeoutDefaults = DEFAULT_TIMEOUTS) {
    this.#pools = pools;
    this.#defaults = defaults;
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
    const routing = sameRouting ? prev!.routing : compileRouting(snapshot.routing, this.#defaults);
    const endpoints = sameEndpoints ? prev!.endpoints : compileEndpoints(snapshot.endpoints);
    this.#current = { generation: snapshot.generation, routing, endpoints };
    if (!sameRouting || !sameEndpoints) this.#pools.retain(endpoints.keys, routing.connectTimeouts);
    return { applied: !(sameRouting && sameEndpoints), routingRebuilt: !sameRouting, endpointsRebuilt: !sameEndpoints };
  }
}
