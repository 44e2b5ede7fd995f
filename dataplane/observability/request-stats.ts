// Per-request metrics in plain numbers. prom-client's `inc()` and
// `observe()` copy, validate and hash their label objects on every call:
// about 6,000 instructions per proxied request, 5 % of the whole request
// path's (callgrind, docs/benchmarks.md item 16). Here a request costs a Map
// lookup by route and a few additions; prom-client still does what it is
// good at, the exposition and the cluster aggregation, at scrape time.
import type { Counter, Registry } from 'prom-client';

/** Upper bounds of `pyserve_request_duration_seconds`, in seconds. */
export const REQUEST_DURATION_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const DURATION_NAME = 'pyserve_request_duration_seconds';
const DURATION_HELP = 'Time from request received to response finished, by route.';

/** One route's figures. */
class RouteFigures {
  /** Requests by status code not yet handed to the counter. */
  readonly pending = new Map<number, number>();
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  readonly buckets = new Float64Array(REQUEST_DURATION_BUCKETS.length + 1);
  sum = 0;
  count = 0;
  readonly route: string;
  constructor(route: string) {
    this.route = route;
  }
}

/** A value as prom-client's metric JSON carries it. */
interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
}

/**
 * Requests by route and status (`pyserve_requests_total`, a prom-client
 * Counter that this fills when scraped) and their durations by route
 * (`pyserve_request_duration_seconds`, registered by {@link RequestStats}
 * itself). Routes are kept once seen, as prom-client keeps label sets.
 */
export class RequestStats {
  readonly #routes = new Map<string, RouteFigures>();
  readonly #requests: Counter<'route' | 'code'>;

  /**
   * @param registry where the duration histogram is registered.
   * @param requests the requests counter; its `collect` must call {@link RequestStats.flushCounts}.
   */
  constructor(registry: Registry, requests: Counter<'route' | 'code'>) {
    this.#requests = requests;
    // prom-client's registry takes any object with a name, a type and get()
    // (its own AggregatorRegistry registers such objects); Registry's typing
    // lists only its four classes.
    registry.registerMetric(this.#histogram() as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** One finished request. */
  record(route: string, code: number, seconds: number): void {
    let r = this.#routes.get(route);
    if (r === undefined) {
      r = new RouteFigures(route);
      this.#routes.set(route, r);
    }
    r.pending.set(code, (r.pending.get(code) ?? 0) + 1);
    const bounds = REQUEST_DURATION_BUCKETS;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    r.buckets[i]!++;
    r.sum += seconds;
    r.count++;
  }

  /** Hand the counts recorded since the last call to the requests counter. */
  flushCounts(): void {
    for (const r of this.#routes.values()) {
      if (r.pending.size === 0) continue;
      for (const [code, n] of r.pending) this.#requests.inc({ route: r.route, code }, n);
      r.pending.clear();
    }
  }

  #histogram(): object {
    const values = (): MetricValue[] => {
      const out: MetricValue[] = [];
      const bucketName = `${DURATION_NAME}_bucket`;
      // As prom-client's Histogram writes them: `le` first, cumulative counts, then +Inf, sum, count.
      for (const r of this.#routes.values()) {
        let acc = 0;
        REQUEST_DURATION_BUCKETS.forEach((le, i) => {
          acc += r.buckets[i]!;
          out.push({ value: acc, labels: { le, route: r.route }, metricName: bucketName });
        });
        out.push({ value: r.count, labels: { le: '+Inf', route: r.route }, metricName: bucketName });
        out.push({ value: r.sum, labels: { route: r.route }, metricName: `${DURATION_NAME}_sum` });
        out.push({ value: r.count, labels: { route: r.route }, metricName: `${DURATION_NAME}_count` });
      }
      return out;
    };
    return {
      name: DURATION_NAME,
      help: DURATION_HELP,
      type: 'histogram',
      // Across cluster workers, as prom-client's histograms: bucket by bucket.
      aggregator: 'sum',
      get: async () => ({ name: DURATION_NAME, help: DURATION_HELP, type: 'histogram', values: values(), aggregator: 'sum' }),
      reset: () => {
        for (const r of this.#routes.values()) {
          // The counter is reset next to this (Registry.resetMetrics): counts not yet handed over go too.
          r.pending.clear();
          r.buckets.fill(0);
          r.sum = 0;
          r.count = 0;
        }
      },
    };
  }
}
