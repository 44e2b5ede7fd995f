import { describe, expect, it } from 'vitest';
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { createMetrics } from '../../dataplane/observability/metrics.ts';
import { REQUEST_DURATION_BUCKETS } from '../../dataplane/observability/request-stats.ts';

// RequestStats replaces prom-client's per-call inc()/observe() on the request
// path: what a scrape shows must be exactly what prom-client's own Counter and
// Histogram would show for the same requests.

/** Requests as (route, code, seconds); durations on, between and beyond the bucket bounds. */
function sample(): [string, number, number][] {
  const out: [string, number, number][] = [];
  const seconds = [0, 0.0004, 0.001, 0.0011, 0.005, 0.02, 0.1, 0.3, 1, 2.5, 7, 29.9, 60, 61, 3600];
  for (let i = 0; i < 300; i++) {
    out.push([['shop/api', 'shop/web', '(none)'][i % 3]!, [200, 404, 502, 200][i % 4]!, seconds[i % seconds.length]!]);
  }
  return out;
}

/** prom-client's own metrics, fed request by request. */
function reference(requests: [string, number, number][]): Registry {
  const registry = new Registry();
  const counter = new Counter({ name: 'pyserve_requests_total', help: 'Requests answered, by route name and status code.', labelNames: ['route', 'code'], registers: [registry] });
  const histogram = new Histogram({
    name: 'pyserve_request_duration_seconds',
    help: 'Time from request received to response finished, by route.',
    labelNames: ['route'],
    buckets: [...REQUEST_DURATION_BUCKETS],
    registers: [registry],
  });
  for (const [route, code, s] of requests) {
    counter.inc({ route, code });
    histogram.observe({ route }, s);
  }
  return registry;
}

/** The lines of the two request metrics in an exposition, sorted. */
const requestLines = (text: string): string[] => text.split('\n').filter((l) => /^pyserve_request(s_total|_duration_seconds)/.test(l)).sort();

describe('request stats', () => {
  it('expose the same counter and histogram lines as prom-client fed per request', async () => {
    const requests = sample();
    const m = createMetrics();
    for (const [route, code, s] of requests) m.requestStats.record(route, code, s);
    const mine = requestLines(await m.registry.metrics());
    const theirs = requestLines(await reference(requests).metrics());
    expect(mine.length).toBe(3 * 3 + 3 * (REQUEST_DURATION_BUCKETS.length + 3));
    expect(mine).toEqual(theirs);
    // HELP and TYPE lines too.
    expect(await m.registry.metrics()).toContain('# TYPE pyserve_request_duration_seconds histogram\n');
  });

  it('count each request once across scrapes, with direct inc() calls mixed in', async () => {
    const m = createMetrics();
    m.requestStats.record('r', 200, 0.01);
    m.requestStats.record('r', 200, 0.01);
    await m.registry.metrics();
    m.requestStats.record('r', 200, 0.01);
    m.requests.inc({ route: 'r', code: 200 });
    const text = await m.registry.metrics();
    expect(text).toMatch(/^pyserve_requests_total\{route="r",code="200"\} 4$/m);
    expect(text).toMatch(/^pyserve_request_duration_seconds_count\{route="r"\} 3$/m);
    expect(text).toMatch(/^pyserve_request_duration_seconds_bucket\{le="0.01",route="r"\} 3$/m);
  });

  it('aggregate across cluster workers as prom-client histograms do', async () => {
    const requests = sample();
    const workers = [createMetrics(), createMetrics()];
    requests.forEach(([route, code, s], i) => workers[i % 2]!.requestStats.record(route, code, s));
    const merged = AggregatorRegistry.aggregate(await Promise.all(workers.map((w) => w.registry.getMetricsAsJSON())));
    const refs = [reference(requests.filter((_, i) => i % 2 === 0)), reference(requests.filter((_, i) => i % 2 === 1))];
    const expected = AggregatorRegistry.aggregate(await Promise.all(refs.map((r) => r.getMetricsAsJSON())));
    expect(requestLines(await merged.metrics())).toEqual(requestLines(await expected.metrics()));
  });

  it('start from zero after resetMetrics, counts not yet scraped included', async () => {
    const m = createMetrics();
    m.requestStats.record('r', 200, 0.2);
    m.registry.resetMetrics();
    m.requestStats.record('r', 503, 0.2);
    const text = await m.registry.metrics();
    expect(text).not.toMatch(/code="200"/);
    expect(text).toMatch(/^pyserve_requests_total\{route="r",code="503"\} 1$/m);
    expect(text).toMatch(/^pyserve_request_duration_seconds_count\{route="r"\} 1$/m);
    expect(text).toMatch(/^pyserve_request_duration_seconds_sum\{route="r"\} 0.2$/m);
  });
});
