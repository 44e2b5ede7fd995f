// Wiring of one dataplane process: store, pools, metrics, both listeners and
// the shutdown sequence. main.ts adds flags and signals around this; tests
// and embedders can call startDataplane directly.
import { createAdminServer } from './admin/server.ts';
import { DEFAULT_TIMEOUTS } from './config/compile.ts';
import type { TimeoutDefaults } from './config/compile.ts';
import { ConfigStore } from './config/store.ts';
import { createLoggers } from './observability/log.ts';
import type { DataplaneLoggers } from './observability/log.ts';
import { createMetrics } from './observability/metrics.ts';
import type { DataplaneOptions } from './options.ts';
import { createTrafficServer } from './server/traffic.ts';
import { listen } from './server/listen.ts';
import { PoolRegistry } from './upstream/pool.ts';

/** Options of {@link startDataplane}; every field has the CLI's default. */
export interface StartOptions extends Partial<DataplaneOptions> {
  /** Loggers to use instead of stdout ones at `logLevel`. */
  loggers?: DataplaneLoggers;
  /** Route timeout defaults, for routes that do not set their own. */
  timeouts?: Partial<TimeoutDefaults>;
}

/** A running dataplane. */
export interface RunningDataplane {
  /** Bound traffic port (useful with port 0). */
  readonly trafficPort: number;
  /** Bound admin port (useful with port 0). */
  readonly adminPort: number;
  /**
   * Graceful shutdown: readiness turns false, the traffic listener stops
   * accepting, in-flight requests get up to `drainTimeoutMs`, then every
   * connection and pool is closed and the admin listener stops. Idempotent.
   */
  close(): Promise<void>;
}

/** Start both listeners and announce the bound ports with one `listening` log line. */
export async function startDataplane(opts: StartOptions = {}): Promise<RunningDataplane> {
  const token = opts.adminToken === '' ? undefined : opts.adminToken;
  if (token === undefined && opts.insecureAdmin !== true) {
    throw new Error('startDataplane: adminToken is required unless insecureAdmin is true');
  }
  const { log, access } = opts.loggers ?? createLoggers(opts.logLevel ?? 'info');
  const drainTimeoutMs = opts.drainTimeoutMs ?? 15_000;
  let draining = false;

  const pools = new PoolRegistry({
    onEvent: (event, key, connectTimeoutMs) => log.debug({ upstream: key, connectTimeoutMs }, `upstream pool ${event}`),
  });
  const store = new ConfigStore(pools, { ...DEFAULT_TIMEOUTS, ...opts.timeouts });
  let inFlight = (): number => 0;
  const metrics = createMetrics({ upstreamPools: () => pools.size, inFlight: () => inFlight() });
  const traffic = createTrafficServer({ store, pools, metrics, log, access });
  inFlight = () => traffic.inFlight;
  const admin = createAdminServer({
    token,
    maxSnapshotBytes: opts.maxSnapshotBytes ?? 64 * 1024 * 1024,
    store,
    metrics,
    log,
    isDraining: () => draining,
  });
  if (token === undefined) log.warn('admin API runs WITHOUT a token (--insecure-admin): anyone who reaches it can reconfigure traffic');

  let trafficPort: number;
  let adminPort: number;
  try {
    trafficPort = await traffic.listen(opts.trafficPort ?? 8080, opts.trafficHost ?? '0.0.0.0');
    adminPort = await listen(admin, opts.adminPort ?? 9901, opts.adminHost ?? '0.0.0.0');
  } catch (err) {
    traffic.server.close();
    admin.close();
    throw err;
  }
  access.info({ trafficPort, adminPort }, 'listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      log.info({ inFlight: traffic.inFlight, drainTimeoutMs }, 'draining');
      const result = await traffic.drain(drainTimeoutMs);
      await pools.closeAll(1_000);
      await new Promise<void>((resolve) => {
        admin.close(() => resolve());
        admin.closeAllConnections();
      });
      log.info(result, 'stopped');
    })();
    return closing;
  };
  return { trafficPort, adminPort, close };
}
