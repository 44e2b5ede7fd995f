/**
 * Snapshots whose clusters carry balancing and health options (policy,
 * health checks, outlier detection, panic threshold, circuit breaking), built
 * with the contract's own buildSnapshot so hashes are real; and readers of
 * what a dataplane reports about its upstreams (`GET /v1/upstreams`, the
 * `pyserve_upstream_*` metrics).
 */
import { request } from 'undici';
import { buildSnapshot } from '../../dataplane/snapshot/build.ts';
import type { Cluster, Endpoint, Snapshot, VirtualHost } from '../../dataplane/snapshot/schema.ts';

/** Everything of a cluster but its name; `protocol` defaults to `http`. */
export type ClusterOptions = Partial<Omit<Cluster, 'name'>>;

/**
 * A hashed snapshot. Every cluster named in `endpoints` is declared in
 * routing (list one with `[]` to declare it without endpoints), with the
 * options `clusters` gives for it, so routing stays identical when only
 * endpoints change.
 */
export function clusterSnapshot(
  generation: number,
  virtualHosts: VirtualHost[],
  endpoints: Record<string, Endpoint[]>,
  clusters: Record<string, ClusterOptions> = {},
): Snapshot {
  for (const name of Object.keys(clusters)) {
    if (!(name in endpoints)) throw new Error(`cluster options for "${name}", which has no endpoints entry`);
  }
  const names = Object.keys(endpoints).sort();
  return buildSnapshot(
    generation,
    { virtualHosts, clusters: names.map((name): Cluster => ({ protocol: 'http', ...clusters[name], name })) },
    { clusters: names.map((cluster) => ({ cluster, endpoints: endpoints[cluster]! })) },
  );
}

/** An endpoint on 127.0.0.1 (ready unless overridden). */
export function localEndpoint(port: number, overrides: Partial<Endpoint> = {}): Endpoint {
  return { address: '127.0.0.1', port, ready: true, serving: true, terminating: false, ...overrides };
}

// ---- GET /v1/upstreams ----

/** One endpoint as `GET /v1/upstreams` reports it. */
export interface UpstreamEndpointView {
  key: string;
  ready: boolean;
  healthy: boolean;
  ejected: boolean;
  ejectedUntil: string | null;
  ejections: number;
  inFlight: number;
}

/** One cluster as `GET /v1/upstreams` reports it. */
export interface UpstreamClusterView {
  name: string;
  policy: string;
  panic: boolean;
  endpoints: UpstreamEndpointView[];
}

/** Raw `GET /v1/upstreams` (status and text), with the given token or none. */
export async function fetchUpstreams(adminUrl: string, token: string | null = 't'): Promise<{ status: number; text: string }> {
  const res = await request(`${adminUrl}/v1/upstreams`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.statusCode, text: await res.body.text() };
}

/** `GET /v1/upstreams`, parsed; throws unless it answers 200. */
export async function upstreams(adminUrl: string, token = 't'): Promise<UpstreamClusterView[]> {
  const res = await fetchUpstreams(adminUrl, token);
  if (res.status !== 200) throw new Error(`GET /v1/upstreams: ${res.status} ${res.text}`);
  return (JSON.parse(res.text) as { clusters: UpstreamClusterView[] }).clusters;
}

/** One cluster of `GET /v1/upstreams`; throws when it is missing. */
export async function upstreamCluster(adminUrl: string, name: string): Promise<UpstreamClusterView> {
  const c = (await upstreams(adminUrl)).find((x) => x.name === name);
  if (c === undefined) throw new Error(`cluster "${name}" missing from /v1/upstreams`);
  return c;
}

/** One endpoint (`127.0.0.1:<port>`) of a cluster of `GET /v1/upstreams`; throws when it is missing. */
export async function upstreamEndpoint(adminUrl: string, cluster: string, port: number): Promise<UpstreamEndpointView> {
  const c = await upstreamCluster(adminUrl, cluster);
  const e = c.endpoints.find((x) => x.key === `127.0.0.1:${port}`);
  if (e === undefined) throw new Error(`endpoint 127.0.0.1:${port} missing from cluster "${cluster}": ${JSON.stringify(c)}`);
  return e;
}

// ---- /metrics ----

/** One sample of the Prometheus text format. */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parse the Prometheus text exposition format (label order does not matter). */
export function parseMetrics(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The admin port's `/metrics`, parsed. */
export async function scrape(adminUrl: string): Promise<MetricSample[]> {
  const res = await request(`${adminUrl}/metrics`);
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET /metrics: ${res.statusCode} ${text}`);
  return parseMetrics(text);
}

/**
 * Sum of the samples of `name` whose labels include `labels`; undefined when
 * there is none.
 */
export function metricValue(samples: MetricSample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hits.length === 0 ? undefined : hits.reduce((n, s) => n + s.value, 0);
}

/** Like {@link metricValue}, straight from the admin port, 0 when absent (counters not yet incremented). */
export async function counter(adminUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricValue(await scrape(adminUrl), name, labels) ?? 0;
}
