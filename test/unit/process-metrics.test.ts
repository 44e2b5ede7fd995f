import { getHeapSpaceStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { collectProcessMetrics } from '../../dataplane/observability/process-metrics.ts';

// Every case but the first starts a GC observer that stays for the rest of
// this process (prom-client cannot stop one): the old-space case runs first.

const oldSpaceUsed = (): number => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;

let sink: unknown;
/** Short-lived garbage across event-loop turns: scavenges, and turns for GC observers to run in. */
async function churn(turns: number): Promise<void> {
  for (let i = 0; i < turns; i++) {
    for (let j = 0; j < 20_000; j++) sink = { j, s: `x${j}` };
    await new Promise((r) => setImmediate(r));
  }
}

const names = (r: Registry): string[] => r.getMetricsAsArray().map((m) => m.name).sort();

describe('process metrics', () => {
  it('by default leave no old-space garbage per GC (with the GC histogram, ~5 KiB)', async () => {
    const registry = new Registry();
    collectProcessMetrics(registry, { gc: false });
    await churn(50);
    const before = oldSpaceUsed();
    await churn(400);
    const grown = oldSpaceUsed() - before;
    // About a hundred scavenges: with a GC observer old space grew 260-500 KiB here, without ~2 KiB.
    expect(grown).toBeLessThan(64 * 1024);
    expect(names(registry)).not.toContain('nodejs_gc_duration_seconds');
    void sink;
  });

  it("with gc: true register exactly prom-client's default metric names, and count GCs", async () => {
    const ours = new Registry();
    collectProcessMetrics(ours, { gc: true });
    const reference = new Registry();
    collectDefaultMetrics({ register: reference });
    expect(names(ours)).toEqual(names(reference));
    expect(names(ours)).toContain('nodejs_gc_duration_seconds');
    await churn(50);
    const text = await ours.getSingleMetricAsString('nodejs_gc_duration_seconds');
    expect(Number(/^nodejs_gc_duration_seconds_count\{kind="minor"\} (\d+)$/m.exec(text)?.[1] ?? 0)).toBeGreaterThan(0);
  });

  it('without gc: the same names minus the GC histogram', () => {
    const ours = new Registry();
    collectProcessMetrics(ours, { gc: false });
    const reference = new Registry();
    collectDefaultMetrics({ register: reference });
    expect(names(ours)).toEqual(names(reference).filter((n) => n !== 'nodejs_gc_duration_seconds'));
  });
});
