// Connection pools keyed by endpoint identity, so keep-alive connections live
// through snapshot swaps. A pool is only ever closed gracefully when its
// endpoint leaves the snapshot: requests already dispatched to it finish.
import { H1Pool } from './h1/pool.ts';
import type { UpstreamEndpoint } from './endpoint.ts';

/** Options of {@link PoolRegistry}. */
export interface PoolRegistryOptions {
  /** Idle keep-alive time for upstream connections (an upstream's Keep-Alive hint lowers it). */
  keepAliveTimeoutMs?: number;
  /** Called when a pool is opened or closed, e.g. to log it. */
  onEvent?: (event: 'open' | 'close', key: string, connectTimeoutMs: number) => void;
}

/**
 * One {@link H1Pool} per endpoint `address:port`, and per connect timeout since
 * that is set per pool. Routes almost always share the default timeout,
 * so this is normally one pool per endpoint.
 */
export class PoolRegistry {
  // endpoint key → (connect timeout, scheme) → pool; the inner key is the
  // timeout, negated for TLS pools (clusters of protocol `https`).
  readonly #pools = new Map<string, Map<number, H1Pool>>();
  readonly #closing = new Set<H1Pool>();
  readonly #opts: PoolRegistryOptions;
  #wanted: ReadonlySet<string> | undefined;

  constructor(opts: PoolRegistryOptions = {}) {
    this.#opts = opts;
  }

  /**
   * Pool for an endpoint, created on first use. The caller must dispatch on it
   * synchronously. `tls` gives an HTTP/1.1-over-TLS pool (backend certificates
   * are not verified, as ingress-nginx's default `proxy_ssl_verify off`).
   */
  get(endpoint: UpstreamEndpoint, connectTimeoutMs: number, tls = false): H1Pool {
    let byTimeout = this.#pools.get(endpoint.key);
    const slot = tls ? -connectTimeoutMs : connectTimeoutMs;
    const existing = byTimeout?.get(slot);
    if (existing !== undefined) return existing;
    const pool = new H1Pool({
      address: endpoint.address,
      port: endpoint.port,
      tls,
      connectTimeoutMs,
      keepAliveTimeoutMs: this.#opts.keepAliveTimeoutMs ?? 4_000,
    });
    this.#opts.onEvent?.('open', endpoint.key, connectTimeoutMs);
    if (this.#wanted !== undefined && !this.#wanted.has(endpoint.key)) {
      // A request still holding an older table picked an endpoint that has
      // since left: serve it, then close the pool behind that one request.
      queueMicrotask(() => this.#close(pool, endpoint.key, connectTimeoutMs));
      return pool;
    }
    if (byTimeout === undefined) {
      byTimeout = new Map();
      this.#pools.set(endpoint.key, byTimeout);
    }
    byTimeout.set(slot, pool);
    return pool;
  }

  /**
   * Keep only the pools of `keys` whose connect timeout is in `connectTimeouts`;
   * close the others gracefully (their in-flight requests complete first).
   */
  retain(keys: ReadonlySet<string>, connectTimeouts: ReadonlySet<number>): void {
    this.#wanted = keys;
    for (const [key, byTimeout] of this.#pools) {
      for (const [slot, pool] of byTimeout) {
        if (keys.has(key) && connectTimeouts.has(Math.abs(slot))) continue;
        byTimeout.delete(slot);
        this.#close(pool, key, Math.abs(slot));
      }
      if (byTimeout.size === 0) this.#pools.delete(key);
    }
  }

  /** Number of open pools (closing ones excluded). */
  get size(): number {
    let n = 0;
    for (const byTimeout of this.#pools.values()) n += byTimeout.size;
    return n;
  }

  /** Close every pool gracefully, destroying whatever is still open after `graceMs`. */
  async closeAll(graceMs: number): Promise<void> {
    for (const [key, byTimeout] of this.#pools) {
      for (const [slot, pool] of byTimeout) this.#close(pool, key, Math.abs(slot));
    }
    this.#pools.clear();
    const deadline = Date.now() + graceMs;
    while (this.#closing.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const pool of this.#closing) pool.destroy();
  }

  #close(pool: H1Pool, key: string, timeout: number): void {
    if (this.#closing.has(pool)) return;
    this.#opts.onEvent?.('close', key, timeout);
    this.#closing.add(pool);
    void pool.close().then(() => this.#closing.delete(pool));
  }
}
