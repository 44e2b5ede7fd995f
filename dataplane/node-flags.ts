// Node's flags for a dataplane process. The chart's `dataplane.nodeFlags`
// default is the same list (test/integration/helm-chart.test.ts compares
// them), and local mode starts its dataplane with it, so a workstation runs
// the dataplane as a pod does. docs/benchmarks.md items 12 and 15 have the
// measurements behind each flag; charts/pyserve/values.yaml says why in short.

/**
 * Flags put before the dataplane's entry point:
 * - `--max-semi-space-size=4`: V8 otherwise sizes the young generation from
 *   the machine's memory (up to 128 MiB per process on a 24 GiB machine).
 * - `--no-allocation-site-pretenuring`: keeps short-lived request objects
 *   out of the old generation.
 * - `--invocation-count-for-turbofan=600`: optimizes the request path within
 *   a load's first second, before its objects are promoted.
 */
export const DATAPLANE_NODE_FLAGS: readonly string[] = [
  '--max-semi-space-size=4',
  '--no-allocation-site-pretenuring',
  '--invocation-count-for-turbofan=600',
];
