// How a dataplane process is started: Node's flags and glibc's malloc
// settings. The chart's `dataplane.nodeFlags` and `dataplane.mallocEnv`
// defaults are the same (test/integration/helm-chart.test.ts compares them),
// and local mode starts its dataplane with them, so a workstation runs the
// dataplane as a pod does. docs/benchmarks.md items 12, 15, 18 and 22 have the
// measurements behind each; charts/pyserve/values.yaml says why in short.

/**
 * Flags put before the dataplane's entry point:
 * - `--max-semi-space-size=4`: V8 otherwise sizes the young generation from
 *   the machine's memory (up to 128 MiB per process on a 24 GiB machine).
 * - `--no-allocation-site-pretenuring`: keeps short-lived request objects
 *   out of the old generation.
 * - `--invocation-count-for-turbofan=600`: optimizes the request path within
 *   a load's first second, before its objects are promoted.
 * - `--no-async-context-frame`: Node 24 otherwise captures the async context
 *   frame in every `process.nextTick` and runs its ticks inside it, for
 *   AsyncLocalStorage, which the dataplane and its dependencies do not use:
 *   ~1,800 instructions per proxied request (docs/benchmarks.md item 22).
 *   AsyncLocalStorage still works without it, on async_hooks.
 * - `--no-node-snapshot`: Node bootstraps itself instead of deserializing
 *   its startup snapshot, whose objects every young-generation collection
 *   visits as roots: RSS under load −5 MiB, GC pauses slightly shorter;
 *   a process starts ~0.1–0.2 s later (item 22).
 */
export const DATAPLANE_NODE_FLAGS: readonly string[] = [
  '--max-semi-space-size=4',
  '--no-allocation-site-pretenuring',
  '--invocation-count-for-turbofan=600',
  '--no-async-context-frame',
  '--no-node-snapshot',
];

/**
 * glibc malloc settings for a dataplane process, as environment variables
 * (glibc reads them at start; node:cluster workers inherit them):
 * - `MALLOC_MMAP_THRESHOLD_=32768`: blocks of 32 KiB and more get a mapping
 *   of their own, returned to the system when freed, instead of staying in a
 *   malloc heap once the burst that needed them is over;
 * - `MALLOC_TRIM_THRESHOLD_=65536`: free memory above 64 KiB at the top of a
 *   heap is returned.
 * Setting either also stops glibc from raising the mmap threshold as the
 * process runs. Measured: peak RSS under the bench's 13-byte load 104.4 ->
 * 99.8 MiB at the same req/s (under load: ~130 mmap/munmap pairs a second).
 */
export const DATAPLANE_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: '32768',
  MALLOC_TRIM_THRESHOLD_: '65536',
};
