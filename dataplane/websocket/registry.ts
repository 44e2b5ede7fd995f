// Every open tunnel of the process, for the two moments the proxy itself ends
// them: shutdown (after the drain timeout, close code 1001) and removal of
// the route a tunnel was opened on (after the same grace). A snapshot swap
// that keeps the route never touches a tunnel: tunnels hold no reference to
// any config, only to their two sockets.
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import { CLOSE_GOING_AWAY } from './frames.ts';
import type { Tunnel } from './tunnel.ts';

interface Entry {
  readonly route: string;
  /** Pending close because the route left the snapshot. */
  orphanTimer: NodeJS.Timeout | undefined;
}

/** The open tunnels, by route name. */
export class TunnelRegistry {
  readonly #tunnels = new Map<Tunnel, Entry>();
  #onEmpty: (() => void) | undefined;

  constructor(registry?: Registry) {
    if (registry !== undefined) {
      const tunnels = this.#tunnels;
      new Gauge({
        name: 'pyserve_websockets_open',
        help: 'Upgraded connections (WebSockets) currently relayed.',
        registers: [registry],
        collect() {
          this.set(tunnels.size);
        },
      });
    }
  }

  /** Open tunnels. */
  get size(): number {
    return this.#tunnels.size;
  }

  add(tunnel: Tunnel, route: string): void {
    this.#tunnels.set(tunnel, { route, orphanTimer: undefined });
  }

  delete(tunnel: Tunnel): void {
    const e = this.#tunnels.get(tunnel);
    if (e === undefined) return;
    clearTimeout(e.orphanTimer);
    this.#tunnels.delete(tunnel);
    if (this.#tunnels.size === 0) this.#onEmpty?.();
  }

  /**
   * A new routing section is live. Tunnels whose route it no longer has are
   * closed with 1001 after `graceMs` (the drain timeout: the route is being
   * shut down, as the whole process would be); a route that comes back
   * within the grace cancels that.
   */
  routesChanged(routeNames: ReadonlySet<string>, graceMs: number): void {
    for (const [tunnel, e] of this.#tunnels) {
      if (routeNames.has(e.route)) {
        clearTimeout(e.orphanTimer);
        e.orphanTimer = undefined;
      } else if (e.orphanTimer === undefined) {
        e.orphanTimer = setTimeout(() => tunnel.goAway(CLOSE_GOING_AWAY, 'route removed'), graceMs);
        e.orphanTimer.unref();
      }
    }
  }

  /**
   * Shutdown: wait up to `timeoutMs` for the tunnels to end on their own, then
   * close the rest with 1001 and wait for them to go (each is cut at most
   * {@link CLOSE_GRACE_MS} later). Resolves with how many were closed by force.
   */
  async drain(timeoutMs: number): Promise<number> {
    if (this.#tunnels.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#onEmpty = resolve;
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
    }
    const closed = this.#tunnels.size;
    if (closed === 0) return 0;
    const empty = new Promise<void>((resolve) => (this.#onEmpty = resolve));
    for (const tunnel of this.#tunnels.keys()) tunnel.goAway(CLOSE_GOING_AWAY, 'server shutting down');
    await empty;
    return closed;
  }
}
