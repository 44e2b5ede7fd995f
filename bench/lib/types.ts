/** Shapes of bench/results/*.json; the smoke test checks them and docs are rendered from them. */

/** A measurement that could not run, with the reason. */
export interface Unavailable {
  available: false;
  reason: string;
}

/** Latency percentiles in milliseconds. */
export interface Latency {
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export type HttpScenario = 'proxy-13B' | 'proxy-16KiB' | 'direct' | 'not-found';

/** One server × one HTTP/1.1 scenario. */
export type HttpRow = {
  server: string;
  kind: string;
  workers: number;
  scenario: HttpScenario;
  /** PyServe rows that ran: whether its access log was on (the peers never log per request). */
  accessLog?: boolean;
} & (Unavailable | {
  available: true;
  reqPerSec: number;
  latencyMs: Latency;
  /** CPU of the server's process tree, percent of one core. */
  cpuPercent: number;
  /** Peak RSS of the server's process tree. */
  rssMiB: number;
  /** Socket errors during the run. */
  socketErrors: number;
  /** Responses with status >= 400 (expected only in not-found). */
  errorStatuses: number;
  /** Busy percent of each machine CPU during the run: shows whether the load side was saturated. */
  cpuBusyPercent: number[];
  /** Ratios against nginx in the same scenario and run; undefined for nginx itself or when nginx did not run. */
  vsNginx?: { throughput: number; p99: number };
  /** Each round's figures, when the row is the median of several (`--rounds`). */
  rounds?: { reqPerSec: number; p99: number; rssMiB: number }[];
});

/** One server × TLS + HTTP/2 via h2load. */
export type H2Row = {
  server: string;
  kind: string;
} & (Unavailable | {
  available: true;
  reqPerSec: number;
  latencyMs: Latency;
  succeeded: number;
  failed: number;
  cpuPercent: number;
  rssMiB: number;
  vsNginx?: { throughput: number; p99: number };
});

export type WsIdleRow = {
  server: string;
  kind: string;
} & (Unavailable | {
  available: true;
  connections: number;
  opened: number;
  /** Connections that closed while idle. */
  dropped: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  /** (after − before) scaled to 10,000 connections. */
  mibPer10k: number;
});

export type WsEchoRow = {
  server: string;
  kind: string;
} & (Unavailable | {
  available: true;
  connections: number;
  messagesPerSec: number;
  latencyMs: Latency;
  cpuPercent: number;
  rssMiB: number;
  errors: number;
});

export interface TranslateRow {
  ingresses: number;
  services: number;
  endpointSlices: number;
  routes: number;
  /** First translate of the process (cold JIT). */
  firstMs: number;
  /** Median of the following runs. */
  medianMs: number;
  /** RSS of the process holding the objects and the snapshot. */
  rssMiB: number;
  heapUsedMiB: number;
  snapshotBytes: number;
}

export interface ApplyRow {
  ingresses: number;
  snapshotBytes: number;
  /** PUT /v1/snapshot round trip, new routing and endpoints. */
  fullApplyMs: number;
  /** PUT with only endpoints changed, the whole body sent (routing unchanged: not compiled or checked again). */
  endpointsOnlyApplyMs: number;
  /** The next endpoints-only PUT as the pusher sends it to a dataplane serving that routing: routing as just its hash. */
  routingAsHashApplyMs: number;
  rssMiB: number;
}

export type Propagation = Unavailable | {
  available: true;
  /** Ingress created → first 200 on its host, per sample. */
  ingressToTrafficMs: number[];
  /** EndpointSlice replaced → traffic reaches the new backend, per sample. */
  endpointsToTrafficMs: number[];
  /** Ingresses present in the API server while sampling. */
  background: number;
  /** Errors (with their diagnosis) of attempts that failed before this one succeeded. */
  failedAttempts?: string[];
};

export interface LoadStream {
  target: string;
  requests: number;
  reqPerSec: number;
  non2xx: number;
  non2xxStatuses: string;
  socketErrors: number;
  latencyMs: Latency;
}

export interface ChangeUnderLoad {
  routeEdits: number;
  endpointChanges: number;
  durationS: number;
  edited: LoadStream;
  unrelated: LoadStream;
  /** non2xx + socket errors over both streams; must be 0. */
  totalFailures: number;
  websockets: Unavailable | { available: true; connections: number; configChanges: number; dropped: number };
}

export interface BenchResult {
  meta: {
    date: string;
    smoke: boolean;
    machine: { cpu: string; cores: number; memGiB: number; kernel: string; loadAvgBefore: string; loadAvgAfter: string };
    versions: Record<string, string>;
    settings: {
      serverCpus: string;
      loadCpus: string;
      connections: number;
      durationS: number;
      warmupS: number;
      /** HTTP/1.1 rows: alternating rounds, and seconds measured per row per round (older results have neither). */
      rounds?: number;
      roundS?: number;
      workersN: number;
      /** Node flags of every dataplane: the chart's, then PYSERVE_BENCH_NODE_FLAGS. */
      dataplaneNodeFlags?: string[];
      /** Environment every dataplane got beyond the bench's own (the chart's `dataplane.mallocEnv`). */
      dataplaneEnv?: Record<string, string>;
      /** `compiled` (tsconfig.build.json, as the image runs it) or `sources` (type stripping). */
      dataplaneBuild?: 'compiled' | 'sources';
    };
    notes: string[];
  };
  http: HttpRow[];
  h2: H2Row[];
  websocket: { idle: WsIdleRow[]; echo: WsEchoRow[] };
  controlPlane: { translate: TranslateRow[]; apply: ApplyRow[]; propagation: Propagation };
  changeUnderLoad: ChangeUnderLoad;
}
