import { describe, expect, it } from 'vitest';
import { medianRow } from '../../bench/scenarios/http.ts';
import type { HttpRow } from '../../bench/lib/types.ts';

const row = (reqPerSec: number, p99: number, rssMiB: number, socketErrors = 0): HttpRow => ({
  server: 'PyServe (1 worker)', kind: 'pyserve', workers: 1, scenario: 'proxy-13B', available: true,
  reqPerSec, latencyMs: { p50: p99 / 2, p99, p999: p99 * 2, max: p99 * 3 }, cpuPercent: 99, rssMiB,
  socketErrors, errorStatuses: 0, cpuBusyPercent: [50, 99],
});

describe('medianRow (bench HTTP/1.1 rounds)', () => {
  it('takes the median of each figure over an odd number of rounds, the peak RSS and the summed errors', () => {
    const m = medianRow([row(300, 9, 120), row(100, 3, 140, 1), row(200, 5, 130)]);
    expect(m).toMatchObject({ reqPerSec: 200, latencyMs: { p50: 2.5, p99: 5, p999: 10, max: 27 }, rssMiB: 140, socketErrors: 1 });
    expect(m.available && m.rounds).toEqual([
      { reqPerSec: 300, p99: 9, rssMiB: 120 }, { reqPerSec: 100, p99: 3, rssMiB: 140 }, { reqPerSec: 200, p99: 5, rssMiB: 130 },
    ]);
  });

  it('averages the middle two of an even number, and passes a single round through', () => {
    expect(medianRow([row(100, 2, 1), row(400, 8, 1), row(200, 4, 1), row(300, 6, 1)])).toMatchObject({ reqPerSec: 250, latencyMs: { p99: 5 } });
    const one = row(123, 4, 5);
    expect(medianRow([one])).toBe(one);
  });

  it('keeps an unavailable row as it is', () => {
    const gone: HttpRow = { server: 'x', kind: 'caddy', workers: 1, scenario: 'direct', available: false, reason: 'not installed' };
    expect(medianRow([gone])).toBe(gone);
  });
});
