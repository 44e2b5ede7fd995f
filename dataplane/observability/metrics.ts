// A dedicated registry: the dataplane may be embedded (tests, local mode) next
// to other prom-client users, and the global registry would mix them.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from './process-metrics.ts';
import { RequestStats } from './request-stats.ts';

/** Route label for requests that matched no route (404s, malformed requests). */
export const NO_ROUTE = '(none)';

/** Kinds of upstream failure counted by `pyserve_upstream_errors_total`. */
export type UpstreamErrorKind = 'connect' | 'timeout' | 'bad_response';

/** Why a pushed snapshot was refused, the `reason` label of `pyserve_snapshot_rejected_total`. */
export type RejectReason = 'too_large' | 'bad_json' | 'invalid';

/** The dataplane's metrics. */
export interface DataplaneMetrics {
  readonly registry: Registry;
  /** Requests by route and status; proxied and locally answered ones are counted through `requestStats`. */
  readonly requests: Counter<'route' | 'code'>;
  /** Per-request counts and `pyserve_request_duration_seconds`, cheap on the request path (request-stats.ts). */
  readonly requestStats: RequestStats;
  readonly upstreamErrors: Counter<'cluster' | 'kind'>;
  readonly snapshotGeneration: Gauge;
  readonly snapshotApply: Histogram;
  readonly snapshotRejected: Counter<'reason'>;
  readonly retries: Counter<'cluster'>;
  readonly retryBudgetExhausted: Counter<'cluster'>;
  readonly overflow: Counter<'cluster' | 'limit'>;
  readonly ejections: Counter<'cluster'>;
  readonly mirrors: Counter<'cluster' | 'outcome'>;
}

/** One endpoint's health as `pyserve_upstream_endpoint_healthy` reports it. */
export interface EndpointHealthSample {
  readonly cluster: string;
  readonly endpoint: string;
  /** Active checks pass (or none run) and the endpoint is not ejected. */
  readonly healthy: boolean;
}

/** Sources the metrics read at scrape time, and which optional metrics to keep. */
export interface MetricSources {
  /** Node's GC duration histogram too (`--gc-metrics`; process-metrics.ts says what it costs). */
  gc?: boolean;
  upstreamPools?: () => number;
  inFlight?: () => number;
  /** Endpoints of clusters, for the health gauge. */
  endpointHealth?: () => Iterable<EndpointHealthSample>;
}

/** Create the metrics in a fresh registry, with Node's process metrics (process-metrics.ts). */
export function createMetrics(opts: MetricSources = {}): DataplaneMetrics {
  const registry = new Registry();
  collectProcessMetrics(registry, { gc: opts.gc ?? false });
  const requests = new Counter({
    name: 'pyserve_requests_total',
    help: 'Requests answered, by route name and status code.',
    labelNames: ['route', 'code'],
    registers: [registry],
    // Runs at scrape time only, after `stats` below exists.
    collect() {
      stats.flushCounts();
    },
  });
  const stats = new RequestStats(registry, requests);
  const m: DataplaneMetrics = {
    registry,
    requests,
    requestStats: stats,
    upstreamErrors: new Counter({
      name: 'pyserve_upstream_errors_total',
      help: 'Upstream failures by cluster and kind (connect, timeout, bad_response).',
      labelNames: ['cluster', 'kind'],
      registers: [registry],
    }),
    snapshotGeneration: new Gauge({
      name: 'pyserve_snapshot_generation',
      help: 'Generation of the snapshot being served (-1 before the first one).',
      // Across cluster workers: the generation every one of them serves.
      aggregator: 'min',
      registers: [registry],
    }),
    snapshotApply: new Histogram({
      name: 'pyserve_snapshot_apply_seconds',
      help: 'Time to parse, validate, compile and swap an accepted snapshot.',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    snapshotRejected: new Counter({
      name: 'pyserve_snapshot_rejected_total',
      help: 'Snapshots refused by the admin API, by reason (too_large, bad_json, invalid).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    retries: new Counter({
      name: 'pyserve_upstream_retries_total',
      help: 'Retries started (tries after the first), by cluster.',
      labelNames: ['cluster'],
      registers: [registry],
    }),
    retryBudgetExhausted: new Counter({
      name: 'pyserve_upstream_retry_budget_exhausted_total',
      help: 'Retries not made because the cluster\'s retry budget was used up.',
      labelNames: ['cluster'],
      registers: [registry],
    }),
    overflow: new Counter({
      name: 'pyserve_upstream_overflow_total',
      help: 'Requests shed with a 503 by a circuit-breaker limit (max_connections, max_pending_requests, max_requests_per_endpoint).',
      labelNames: ['cluster', 'limit'],
      registers: [registry],
    }),
    ejections: new Counter({
      name: 'pyserve_upstream_ejections_total',
      help: 'Endpoints ejected by outlier detection, by cluster.',
      labelNames: ['cluster'],
      registers: [registry],
    }),
    mirrors: new Counter({
      name: 'pyserve_upstream_mirrors_total',
      help: 'Mirrored request copies by mirror cluster and outcome (sent, failed, skipped).',
      labelNames: ['cluster', 'outcome'],
      registers: [registry],
    }),
  };
  m.snapshotGeneration.set(-1);
  const pools = opts.upstreamPools;
  if (pools) {
    new Gauge({
      name: 'pyserve_upstream_pools',
      help: 'Open upstream connection pools (one per endpoint address:port).',
      registers: [registry],
      collect() {
        this.set(pools());
      },
    });
  }
  const inFlight = opts.inFlight;
  if (inFlight) {
    new Gauge({
      name: 'pyserve_requests_in_flight',
      help: 'Requests received and not yet finished.',
      registers: [registry],
      collect() {
        this.set(inFlight());
      },
    });
  }
  const endpointHealth = opts.endpointHealth;
  if (endpointHealth) {
    new Gauge({
      name: 'pyserve_upstream_endpoint_healthy',
      help: 'Whether an endpoint takes traffic as far as health goes: 1 when active checks pass (or none run) and it is not ejected.',
      labelNames: ['cluster', 'endpoint'],
      // Across cluster workers: healthy only where every worker sees it healthy.
      aggregator: 'min',
      registers: [registry],
      collect() {
        this.reset();
        for (const s of endpointHealth()) this.set({ cluster: s.cluster, endpoint: s.endpoint }, s.healthy ? 1 : 0);
      },
    });
  }
  return m;
}
