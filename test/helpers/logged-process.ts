/**
 * A child process that logs JSON lines (pino) on stdout, with a way to wait
 * for a matching line. Shared by the dataplane and controller helpers.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** One stdout line, parsed when it is JSON. */
export type LogLine = Record<string, unknown> & { msg?: string };

export interface LoggedProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[];
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolve with the first (past or future) log line matching `pred`. */
  waitForLog(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Send `signal` (SIGTERM by default) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

// Children still running when the test process exits, e.g. after a test
// timed out before its cleanup ran, go with it instead of holding ports and
// CPU for the files that follow.
const running = new Set<ChildProcess>();
const killRunning = (): void => {
  for (const child of running) child.kill('SIGKILL');
};
process.once('exit', killRunning);
// Vitest ends a test file's fork with SIGTERM, which skips 'exit': kill the
// children, then end as SIGTERM would have (no listener is left).
process.once('SIGTERM', () => {
  killRunning();
  process.kill(process.pid, 'SIGTERM');
});

/** Spawn `process.execPath args` (the Node 24 running the tests, never a bare `node`). */
export function spawnLogged(label: string, args: string[], env: Record<string, string | undefined> = {}): LoggedProcess {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const logs: LogLine[] = [];
  const waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      line = { msg: '(not json)', text };
    }
    logs.push(line);
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      if (w.pred(line)) {
        waiters.splice(i, 1);
        w.resolve(line);
      }
    }
  });
  const waitForLog = (pred: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> => {
    const seen = logs.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label}: no matching log line within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`)), timeoutMs);
      waiters.push({ pred, resolve: (l) => {
        clearTimeout(timer);
        resolve(l);
      } });
    });
  };
  return {
    child,
    logs,
    stderr: () => stderr,
    exited,
    waitForLog,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Poll `fn` until it returns a truthy value or the time is up; returns it and the time taken. */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, timeoutMs: number, what: string, intervalMs = 25): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return { value: v, ms: performance.now() - start };
      last = v;
    } catch (err) {
      last = err;
    }
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
