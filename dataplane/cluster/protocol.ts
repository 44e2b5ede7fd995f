// IPC between the cluster primary (cluster/primary.ts) and its traffic
// workers (cluster/worker.ts). Every message carries a `pyserve:` type so
// node:cluster's and prom-client's own messages pass by untouched.
import type { Registry } from 'prom-client';
import type { Snapshot } from '../snapshot/schema.ts';
import type { GeneratedCertificate } from '../tls/x509.ts';
import type { UpstreamsReport } from '../upstream/report.ts';

/** Where a worker binds one traffic socket. */
export interface BindTarget {
  /** The port asked for on the command line (0 = any). */
  requested: number;
  /** The port the first worker got; later workers bind it too (SO_REUSEPORT). */
  bound?: number;
}

/** The bind plan a worker receives in its environment (`PYSERVE_CLUSTER_BIND`). */
export interface BindPlan {
  traffic: BindTarget;
  https: BindTarget;
}

/** Environment variable holding the {@link BindPlan} as JSON. */
export const BIND_ENV = 'PYSERVE_CLUSTER_BIND';

/** How the traffic sockets are shared between workers. */
export type ListenMode = 'reuseport' | 'shared';

/** One registry's metrics as prom-client's AggregatorRegistry takes them. */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** Worker → primary. */
export type ToPrimary =
  | { type: 'pyserve:init' }
  | { type: 'pyserve:hello' }
  | { type: 'pyserve:applied'; seq: number; ok: boolean; problems?: string[] }
  | { type: 'pyserve:listening'; trafficPort: number; httpsPort: number; mode: ListenMode }
  | { type: 'pyserve:metrics'; seq: number; metrics: MetricsJson }
  | { type: 'pyserve:upstreams'; seq: number; report: UpstreamsReport };

/** Primary → worker. */
export type ToWorker =
  | { type: 'pyserve:init'; defaultCertificate: GeneratedCertificate }
  | { type: 'pyserve:snapshot'; seq: number; snapshot: Snapshot | null }
  | { type: 'pyserve:metrics'; seq: number }
  | { type: 'pyserve:upstreams'; seq: number }
  /** Active health-check verdicts: ids (`cluster` newline `address:port`) of the endpoints held unhealthy. */
  | { type: 'pyserve:health'; unhealthy: string[] }
  | { type: 'pyserve:shutdown' };

/** Whether `m` is one of ours. */
export function isPyserveMessage(m: unknown): m is { type: string } {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('pyserve:');
}
