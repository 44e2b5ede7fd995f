// Node's process metrics: prom-client's default set under its usual names,
// with `nodejs_gc_duration_seconds` only on request (--gc-metrics). That one
// needs a 'gc' PerformanceObserver, and Node builds every observed GC entry
// with deprecated accessors (DEP0152) whose closures and maps are allocated
// straight in old space: ~5 KiB per GC, at ~90 scavenges/s under load ~0.5
// MB/s of old-space garbage that grew RSS by tens of MiB before a
// mark-compact came, plus ~0.5 % CPU. (v8.GCProfiler is no way out: in Node
// 24 `stop()` leaves its GC callbacks writing until the object is collected.)
import { createRequire } from 'node:module';
import type { Registry } from 'prom-client';

type Collector = (registry: Registry, config: Record<string, unknown>) => void;

// prom-client's own collectors, as `collectDefaultMetrics` runs them. It has
// no option to leave one out and its package has no exports map, so the files
// are required by path (pinned by package-lock; a unit test compares the
// names with `collectDefaultMetrics`).
const require = createRequire(import.meta.url);
const collector = (name: string): Collector => require(`prom-client/lib/metrics/${name}.js`) as Collector;
const ALWAYS = [
  'processCpuTotal', 'processStartTime', 'osMemoryHeap', 'processOpenFileDescriptors', 'processMaxFileDescriptors',
  'eventLoopLag', 'processResources', 'processHandles', 'processRequests', 'heapSizeAndUsed', 'heapSpacesSizeAndUsed', 'version',
].map(collector);

/** Options of {@link collectProcessMetrics}. */
export interface ProcessMetricsOptions {
  /** Also `nodejs_gc_duration_seconds`, at the cost described above. */
  gc: boolean;
}

/** Registers Node's process metrics in `registry`. */
export function collectProcessMetrics(registry: Registry, opts: ProcessMetricsOptions): void {
  const config = { eventLoopMonitoringPrecision: 10 };
  for (const collect of ALWAYS) collect(registry, config);
  if (opts.gc) collector('gc')(registry, config);
}
