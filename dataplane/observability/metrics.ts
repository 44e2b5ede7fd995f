// A dedicated registry: the dataplane may be embedded (tests, local mode) next
// to other prom-client users, and the global registry would mix them.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Route label for requests that matched no route (404s, malformed requests). */
export const NO_ROUTE = '(none)';

/** Kinds of upstream failure counted by `pyserve_upstream_errors_total`. */
export type UpstreamErrorKind = 'connect' | 'timeout' | 'bad_response';

/** Why a pushed snapshot was refused, the `reason` label of `pyserve_snapshot_rejected_total`. */
export type RejectReason = 'too_large' | 'bad_json' | 'invalid';

/** The dataplane's metrics. */
export interface DataplaneMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'code'>;
  readonly requestDuration: Histogram<'route'>;
  readonly upstreamErrors: Counter<'cluster' | 'kind'>;
  readonly snapshotGeneration: Gauge;
  readonly snapshotApply: Histogram;
  readonly snapshotRejected: Counter<'reason'>;
}

/** Create the metrics in a fresh registry, with Node's default process metrics. */
export function createMetrics(opts: { upstreamPools?: () => number; inFlight?: () => number } = {}): DataplaneMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const m: DataplaneMetrics = {
    registry,
    requests: new Counter({
      name: 'pyserve_requests_total',
      help: 'Requests answered, by route name and status code.',
      labelNames: ['route', 'code'],
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: 'pyserve_request_duration_seconds',
      help: 'Time from request received to response finished, by route.',
      labelNames: ['route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
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
  return m;
}
