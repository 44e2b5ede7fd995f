// One translate measurement in a fresh process, so its RSS is its own:
// `node translate-child.ts N RUNS SNAPSHOT_OUT`. Prints one JSON line.
// The objects, the cache-like copies a controller keeps and the snapshot all
// stay referenced while RSS is read, as in a running controller.
import { writeFileSync } from 'node:fs';
import { translate } from '../../controller/translate/index.ts';
import { generateClusterState } from '../lib/cluster-state.ts';

const n = Number(process.argv[2]);
const runs = Number(process.argv[3] ?? 5);
const out = process.argv[4];

const state = generateClusterState(n);
const times: number[] = [];
let result;
for (let i = 0; i < Math.max(1, runs); i++) {
  const t0 = performance.now();
  result = translate(state, { generation: i + 1 });
  times.push(performance.now() - t0);
}
result = result!;
const json = JSON.stringify(result.snapshot);
if (out !== undefined) writeFileSync(out, json);
// Settle the heap so RSS reflects what is kept, not garbage of the last run.
(globalThis as { gc?: () => void }).gc?.();
const mem = process.memoryUsage();
const first = times[0]!;
const rest = times.slice(1).sort((a, b) => a - b);
const routes = result.snapshot.routing.virtualHosts.reduce((s, vh) => s + vh.routes.length, 0);
process.stdout.write(JSON.stringify({
  ingresses: n,
  services: state.services.length,
  endpointSlices: state.endpointSlices.length,
  routes,
  firstMs: Math.round(first * 10) / 10,
  medianMs: Math.round((rest[Math.floor(rest.length / 2)] ?? first) * 10) / 10,
  rssMiB: Math.round((mem.rss / 1048576) * 10) / 10,
  heapUsedMiB: Math.round((mem.heapUsed / 1048576) * 10) / 10,
  snapshotBytes: Buffer.byteLength(json),
  failures: result.failures.length,
}) + '\n');
