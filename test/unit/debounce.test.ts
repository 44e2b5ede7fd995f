import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Debouncer } from '../../controller/debounce.ts';
import type { ChangeKind } from '../../controller/debounce.ts';

describe('Debouncer', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  const setup = (buildMs = 0) => {
    const builds: { at: number; kinds: ChangeKind[] }[] = [];
    const d = new Debouncer({ holdoffMs: 100, maxDelayMs: 500 }, async (kinds) => {
      builds.push({ at: performance.now(), kinds: [...kinds].sort() });
      if (buildMs) await new Promise((r) => setTimeout(r, buildMs));
    });
    return { d, builds, t0: performance.now() };
  };

  it('coalesces a burst into one build after the holdoff', async () => {
    const { d, builds, t0 } = setup();
    d.notify('routing');
    await vi.advanceTimersByTimeAsync(50);
    d.notify('endpoints');
    await vi.advanceTimersByTimeAsync(99);
    expect(builds).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(builds).toEqual([{ at: t0 + 150, kinds: ['endpoints', 'routing'] }]);
  });

  it('builds no later than the max delay under a steady trickle', async () => {
    const { d, builds, t0 } = setup();
    for (let i = 0; i < 20; i++) {
      d.notify('endpoints');
      await vi.advanceTimersByTimeAsync(50);
    }
    expect(builds.length).toBeGreaterThanOrEqual(2);
    expect(builds[0]!.at - t0).toBe(500);
  });

  it('never overlaps builds and runs one more for changes made during a build', async () => {
    const { d, builds } = setup(300);
    let running = 0;
    let maxRunning = 0;
    const d2 = new Debouncer({ holdoffMs: 10, maxDelayMs: 50 }, async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((r) => setTimeout(r, 100));
      running--;
    });
    d2.notify('routing');
    await vi.advanceTimersByTimeAsync(20);
    d2.notify('routing');
    d2.notify('endpoints');
    await vi.advanceTimersByTimeAsync(500);
    expect(maxRunning).toBe(1);
    d.notify('routing');
    await vi.advanceTimersByTimeAsync(150);
    d.notify('endpoints');
    await vi.advanceTimersByTimeAsync(1000);
    expect(builds.map((b) => b.kinds)).toEqual([['routing'], ['endpoints']]);
  });

  it('stops building after close', async () => {
    const { d, builds } = setup();
    d.notify('routing');
    d.close();
    await vi.advanceTimersByTimeAsync(1000);
    expect(builds).toHaveLength(0);
  });
});
