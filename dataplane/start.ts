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
import type { DataplaneMetrics } from './observability/metrics.ts';
import type { DataplaneOptions } from './options.ts';
import { createTrafficServer } from './server/traffic.ts';
import { listen } from './server/listen.ts';
import type { ListenExtra } from './server/listen.ts';
import { PoolRegistry } from './upstream/pool.ts';
import { H2SessionRegistry } from './upstream/h2-sessions.ts';
import { TlsManager } from './tls/contexts.ts';
import type { GeneratedCertificate } from './tls/x509.ts';
import { DEFAULT_LIMITS } from './limits/defaults.ts';
import type { ListenerLimits } from './limits/defaults.ts';
import { DEFAULT_COMPRESSION } from './middleware/compression.ts';
import type { CompressionSettings } from './middleware/compression.ts';
import type { FeatureDefaults } from './middleware/order.ts';
import { TunnelRegistry } from './websocket/registry.ts';
import { attachExtendedConnect, attachUpgradeHandler } from './websocket/upgrade.ts';
import type { UpgradeEntryDeps } from './websocket/upgrade.ts';
import { UpstreamHealth } from './upstream/health-state.ts';
import { ActiveHealthChecker } from './upstream/active-health.ts';
import { endpointHealthSamples, upstreamsReport } from './upstream/report.ts';

/** Options of {@link startDataplane}; every field has the CLI's default. */
export interface StartOptions extends Partial<Omit<DataplaneOptions, 'timeouts' | 'limits' | 'compression'>> {
  /** Loggers to use instead of stdout ones at `logLevel` (with the access log per `accessLog`). */
  loggers?: DataplaneLoggers;
  /** Route timeout defaults, for routes that do not set their own. */
  timeouts?: Partial<TimeoutDefaults>;
  /** Listener limits; unset fields keep their defaults (limits/defaults.ts). */
  limits?: Partial<ListenerLimits>;
  /** Compression defaults for routes that do not set their own. */
  compression?: Partial<CompressionSettings>;
  /** Serve this instead of a freshly generated self-signed default certificate. */
  defaultCertificate?: GeneratedCertificate;
  /**
   * Run as a cluster worker (cluster/worker.ts): no admin listener and no
   * `listening` line; `beforeListen` runs first (it applies the current
   * snapshot), then `listen` binds each traffic socket.
   */
  worker?: WorkerHooks;
}

/** How a cluster worker takes part in {@link startDataplane}. */
export interface WorkerHooks {
  /** Called with the store and metrics before any traffic socket listens (the store's `health` takes the primary's verdicts). */
  beforeListen(parts: { store: ConfigStore; metrics: DataplaneMetrics }): Promise<void>;
  /** Bind one traffic socket; resolves with the bound port. */
  listen(bind: (port: number, host: string, extra?: ListenExtra) => Promise<number>, which: 'traffic' | 'https'): Promise<number>;
}

/** A running dataplane. */
export interface RunningDataplane {
  /** Bound traffic port (useful with port 0). */
  readonly trafficPort: number;
  /** Bound admin port (useful with port 0). */
  readonly adminPort: number;
  /** Bound HTTPS port (useful with port 0). */
  readonly httpsPort: number;
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
  const loggers = opts.loggers ?? createLoggers(opts.logLevel ?? 'info', undefined, { accessLog: opts.accessLog });
  const { log, access } = loggers;
  const drainTimeoutMs = opts.drainTimeoutMs ?? 15_000;
  let draining = false;

  const pools = new PoolRegistry({
    onEvent: (event, key, connectTimeoutMs) => log.debug({ upstream: key, connectTimeoutMs }, `upstream pool ${event}`),
  });
  const h2 = new H2SessionRegistry({
    onEvent: (event, key, detail) => log.debug({ upstream: key, err: detail }, `upstream HTTP/2 session ${event}`),
  });
  let inFlight = (): number => 0;
  const metrics = createMetrics({
    gc: opts.gcMetrics,
    upstreamPools: () => pools.size + h2.size,
    inFlight: () => inFlight(),
    endpointHealth: () => endpointHealthSamples(store.current?.upstreams),
  });
  const health = new UpstreamHealth((cluster, upstream, ejectionMs) => {
    metrics.ejections.inc({ cluster });
    log.warn({ cluster, upstream, ejectionMs }, 'outlier detection: endpoint ejected');
  });
  // A cluster worker gets the verdicts from its primary, which alone probes.
  const checker = opts.worker !== undefined ? undefined : new ActiveHealthChecker((unhealthy) => health.setActiveVerdicts(unhealthy), log);
  const tls = new TlsManager({ log, registry: metrics.registry, defaultCertificate: opts.defaultCertificate });
  const limits: ListenerLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const features: FeatureDefaults = {
    maxBodyBytes: limits.maxBodyBytes,
    clientBodyTimeoutMs: limits.clientBodyTimeoutMs,
    compression: { ...DEFAULT_COMPRESSION, ...opts.compression },
  };
  // WebSockets outlive snapshots; one whose route leaves gets the drain timeout, then 1001.
  const tunnels = new TunnelRegistry(metrics.registry);
  const store = new ConfigStore(pools, { ...DEFAULT_TIMEOUTS, ...opts.timeouts }, {
    tls,
    upstreams: [h2],
    features,
    onRouting: (routing) => tunnels.routesChanged(routing.routeNames, drainTimeoutMs),
    health,
    onUpstreams: (config) => checker?.update(config.routing.clusters, config.endpoints),
  });
  let httpsPort = 0;
  const upgrades: UpgradeEntryDeps = {
    store, tunnels, metrics, log, access,
    maxUriBytes: limits.maxUriBytes,
    isDraining: () => draining,
    httpsRedirectPort: () => opts.httpsRedirectPort === undefined || opts.httpsRedirectPort === 0 ? httpsPort : opts.httpsRedirectPort,
  };
  const traffic = createTrafficServer({ store, pools, h2, metrics, log, access, upstreamHealth: health }, {
    limits,
    tls,
    httpsRedirectPort: opts.httpsRedirectPort ?? 443,
    http2: { maxConcurrentStreams: opts.http2MaxConcurrentStreams ?? 128 },
  });
  inFlight = () => traffic.inFlight;
  attachUpgradeHandler(traffic.server, upgrades);
  attachExtendedConnect(traffic.h2Server, upgrades);
  const worker = opts.worker;
  const admin = worker !== undefined ? undefined : createAdminServer({
    token,
    maxSnapshotBytes: opts.maxSnapshotBytes ?? 64 * 1024 * 1024,
    store,
    metrics,
    log,
    isDraining: () => draining,
    upstreams: () => upstreamsReport(store.current?.upstreams),
  });
  if (token === undefined && worker === undefined) log.warn('admin API runs WITHOUT a token (--insecure-admin): anyone who reaches it can reconfigure traffic');

  let trafficPort: number;
  let adminPort: number;
  try {
    if (worker !== undefined) {
      await worker.beforeListen({ store, metrics });
      trafficPort = await worker.listen((port, host, extra) => traffic.listen(port, host, extra), 'traffic');
      httpsPort = await worker.listen((port, host, extra) => traffic.listenTls(port, host, extra), 'https');
      adminPort = 0;
    } else {
      trafficPort = await traffic.listen(opts.trafficPort ?? 8080, opts.trafficHost ?? '0.0.0.0');
      httpsPort = await traffic.listenTls(opts.httpsPort ?? 8443, opts.trafficHost ?? '0.0.0.0');
      adminPort = await listen(admin!, opts.adminPort ?? 9901, opts.adminHost ?? '0.0.0.0');
    }
  } catch (err) {
    await traffic.drain(0);
    admin?.close();
    throw err;
  }
  // Written at once (parents wait for it), whatever the access log and level.
  if (worker === undefined) loggers.announce.info({ trafficPort, httpsPort, adminPort }, 'listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      checker?.close();
      log.info({ inFlight: traffic.inFlight, websockets: tunnels.size, drainTimeoutMs }, 'draining');
      // WebSockets get the same drain timeout, then a 1001 close frame each
      // way; the traffic drain cuts connections only after that.
      const websocketsClosed = tunnels.drain(drainTimeoutMs);
      const [drained, closedByProxy] = await Promise.all([traffic.drain(drainTimeoutMs, websocketsClosed), websocketsClosed]);
      const result = { ...drained, websocketsClosed: closedByProxy };
      await Promise.all([pools.closeAll(1_000), h2.closeAll(1_000)]);
      if (admin !== undefined) {
        await new Promise<void>((resolve) => {
          admin.close(() => resolve());
          admin.closeAllConnections();
        });
      }
      log.info(result, 'stopped');
      // The last access lines (requests that finished during the drain) go out before the process exits.
      loggers.flush();
    })();
    return closing;
  };
  return { trafficPort, httpsPort, adminPort, close };
}
