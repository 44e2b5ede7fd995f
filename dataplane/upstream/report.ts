// The upstream state as the admin API shows it (`GET /v1/upstreams`): per
// cluster its policy and panic mode, per endpoint readiness, health,
// ejection and load. A worker cluster merges its workers' reports.
import type { CompiledUpstreams } from '../config/compile.ts';
import type { EndpointHealthSample } from '../observability/metrics.ts';
import type { PolicyName } from './cluster-balancer.ts';

/** One endpoint in {@link UpstreamsReport}. */
export interface EndpointReport {
  /** `address:port`. */
  readonly key: string;
  /** Ready in the snapshot (false: serving while terminating). */
  readonly ready: boolean;
  /** Active health checks pass, or the cluster has none. */
  readonly healthy: boolean;
  /** Ejected by outlier detection right now. */
  readonly ejected: boolean;
  /** End of the current ejection. */
  readonly ejectedUntil: string | null;
  /** Times ejected recently; each ejection lasts longer. */
  readonly ejections: number;
  /** Requests in flight to it. */
  readonly inFlight: number;
}

/** One cluster in {@link UpstreamsReport}. */
export interface ClusterReport {
  readonly name: string;
  readonly policy: PolicyName;
  /** Health is being ignored because too few endpoints are healthy (panic threshold). */
  readonly panic: boolean;
  readonly endpoints: EndpointReport[];
}

/** Body of `GET /v1/upstreams`. */
export interface UpstreamsReport {
  readonly clusters: ClusterReport[];
}

/** Report on the clusters of one process. */
export function upstreamsReport(upstreams: CompiledUpstreams | undefined): UpstreamsReport {
  const now = Date.now();
  const clusters: ClusterReport[] = [];
  for (const b of upstreams?.values() ?? []) {
    const endpoints = [...b.ready.map((m) => ({ m, ready: true })), ...b.serving.map((m) => ({ m, ready: false }))].map(({ m, ready }) => {
      const ejected = m.state.ejectedUntil > now;
      return {
        key: m.endpoint.key,
        ready,
        healthy: m.state.activeHealthy,
        ejected,
        ejectedUntil: ejected ? new Date(m.state.ejectedUntil).toISOString() : null,
        ejections: m.state.ejections,
        inFlight: m.state.inFlight,
      };
    });
    clusters.push({ name: b.name, policy: b.policy, panic: b.panic, endpoints });
  }
  return { clusters };
}

/**
 * Merge workers' reports into the primary's: the primary knows the active
 * verdicts; ejections and load live in each worker (passive health sees
 * only a worker's own requests).
 */
export function mergeReports(primary: UpstreamsReport, workers: readonly UpstreamsReport[]): UpstreamsReport {
  const seen = new Map<string, EndpointReport[]>();
  for (const w of workers) {
    for (const c of w.clusters) {
      for (const e of c.endpoints) {
        const id = `${c.name}\n${e.key}`;
        const list = seen.get(id) ?? [];
        list.push(e);
        seen.set(id, list);
      }
    }
  }
  const panicky = new Set(workers.flatMap((w) => w.clusters.filter((c) => c.panic).map((c) => c.name)));
  return {
    clusters: primary.clusters.map((c) => ({
      ...c,
      panic: c.panic || panicky.has(c.name),
      endpoints: c.endpoints.map((e) => {
        const ws = seen.get(`${c.name}\n${e.key}`) ?? [];
        const until = ws.map((w) => w.ejectedUntil).filter((u): u is string => u !== null).sort().at(-1) ?? null;
        return {
          ...e,
          ejected: ws.some((w) => w.ejected),
          ejectedUntil: until,
          ejections: Math.max(0, ...ws.map((w) => w.ejections)),
          inFlight: ws.reduce((n, w) => n + w.inFlight, 0),
        };
      }),
    })),
  };
}

/** Health samples for `pyserve_upstream_endpoint_healthy`. */
export function* endpointHealthSamples(upstreams: CompiledUpstreams | undefined): Iterable<EndpointHealthSample> {
  const now = Date.now();
  for (const b of upstreams?.values() ?? []) {
    for (const m of [...b.ready, ...b.serving]) yield { cluster: b.name, endpoint: m.endpoint.key, healthy: m.state.healthy(now) };
  }
}
