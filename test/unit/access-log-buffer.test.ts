// The buffered stdout of the dataplane's loggers (observability/log.ts):
// whole lines, in order, in writes no larger than PIPE_BUF, flushed by size,
// by time and on demand; and the --access-log switch.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLoggers, LineBuffer } from '../../dataplane/observability/log.ts';

afterEach(() => {
  vi.useRealTimers();
});

const line = (i: number, pad = 80): string => `{"i":${i},"pad":"${'x'.repeat(pad)}"}\n`;

function capture(opts: { batchBytes?: number; flushIntervalMs?: number } = {}): { out: LineBuffer; writes: string[] } {
  const writes: string[] = [];
  return { out: new LineBuffer({ ...opts, write: (chunk) => void writes.push(chunk) }), writes };
}

describe('LineBuffer', () => {
  it('gathers lines and writes whole lines in order, each write at most batchBytes', () => {
    const { out, writes } = capture({ batchBytes: 1000, flushIntervalMs: 60_000 });
    const lines = Array.from({ length: 100 }, (_, i) => line(i));
    for (const l of lines) out.write(l);
    // 100 lines of ~100 bytes: about ten writes, not a hundred.
    expect(writes.length).toBeGreaterThanOrEqual(9);
    expect(writes.length).toBeLessThanOrEqual(11);
    out.flushSync();
    for (const w of writes) {
      expect(Buffer.byteLength(w)).toBeLessThanOrEqual(1000);
      expect(w.endsWith('\n')).toBe(true);
    }
    expect(writes.join('')).toBe(lines.join(''));
  });

  it('defaults to PIPE_BUF (4096 bytes) per write', () => {
    const { out, writes } = capture({ flushIntervalMs: 60_000 });
    for (let i = 0; i < 500; i++) out.write(line(i, 250));
    out.flushSync();
    expect(writes.length).toBeGreaterThan(30);
    expect(Math.max(...writes.map((w) => Buffer.byteLength(w)))).toBeLessThanOrEqual(4096);
    expect(Math.max(...writes.map((w) => Buffer.byteLength(w)))).toBeGreaterThan(3500);
  });

  it('writes a line longer than a batch on its own', () => {
    const { out, writes } = capture({ batchBytes: 200, flushIntervalMs: 60_000 });
    out.write(line(1, 10));
    out.write(line(2, 500));
    out.write(line(3, 10));
    out.flushSync();
    expect(writes).toEqual([line(1, 10), line(2, 500), line(3, 10)]);
  });

  it('writes a lone line once flushIntervalMs has passed', () => {
    vi.useFakeTimers();
    const { out, writes } = capture({ flushIntervalMs: 100 });
    out.write(line(1));
    vi.advanceTimersByTime(99);
    expect(writes).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(writes).toEqual([line(1)]);
    // The next line arms the timer again.
    out.write(line(2));
    vi.advanceTimersByTime(100);
    expect(writes).toEqual([line(1), line(2)]);
  });

  it('writeNow writes the buffered lines, then its own, at once', () => {
    const { out, writes } = capture({ flushIntervalMs: 60_000 });
    out.write(line(1));
    out.write(line(2));
    out.writeNow(line(3));
    expect(writes.join('')).toBe(line(1) + line(2) + line(3));
  });

  it('never throws; a closed stdout (EPIPE) stops the output', () => {
    let calls = 0;
    const out = new LineBuffer({
      flushIntervalMs: 60_000,
      write: () => {
        calls++;
        throw Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
      },
    });
    expect(() => out.writeNow(line(1))).not.toThrow();
    expect(() => out.writeNow(line(2))).not.toThrow();
    expect(calls).toBe(1);
  });
});

describe('createLoggers', () => {
  const collect = (): { lines: Record<string, unknown>[]; dest: { write(s: string): void } } => {
    const lines: Record<string, unknown>[] = [];
    return { lines, dest: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } };
  };

  it('writes access lines and the announcement by default', () => {
    const { lines, dest } = collect();
    const loggers = createLoggers('warn', dest);
    loggers.access.info({ path: '/a' }, 'request');
    loggers.announce.info({ trafficPort: 1 }, 'listening');
    loggers.log.info('below warn');
    expect(lines.map((l) => l.msg)).toEqual(['request', 'listening']);
  });

  it('with accessLog false, writes no request lines but still announces and logs diagnostics', () => {
    const { lines, dest } = collect();
    const loggers = createLoggers('info', dest, { accessLog: false });
    loggers.access.info({ path: '/a' }, 'request');
    loggers.access.child({ worker: 1 }).info({ path: '/b' }, 'request');
    loggers.announce.info({ trafficPort: 1 }, 'listening');
    loggers.log.info('diagnostic');
    expect(lines.map((l) => l.msg)).toEqual(['listening', 'diagnostic']);
  });
});
