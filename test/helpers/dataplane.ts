/**
 * Spawns the real dataplane (`dataplane/main.ts`) as a child process, the way
 * a pod or local mode runs it, and discovers its ports from the `listening`
 * log line. Stdout is always consumed (a full pipe would stall the child) and
 * every JSON line is kept for assertions on the access log.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { spawnLogged } from './logged-process.ts';
import type { LogLine } from './logged-process.ts';

/** Path of the dataplane entry point. */
export const DATAPLANE_MAIN = fileURLToPath(new URL('../../dataplane/main.ts', import.meta.url));

export type { LogLine } from './logged-process.ts';

/** A running dataplane child. */
export interface DataplaneChild {
  readonly trafficPort: number;
  /** Bound HTTPS port (the helper passes `--https-port 0` unless `args` sets one). */
  readonly httpsPort: number;
  readonly adminPort: number;
  /** `http://127.0.0.1:<trafficPort>` */
  readonly trafficUrl: string;
  /** `http://127.0.0.1:<adminPort>` */
  readonly adminUrl: string;
  /** The admin token it was started with (undefined with --insecure-admin). */
  readonly token: string | undefined;
  readonly child: ChildProcess;
  /** Every stdout line parsed as JSON, in order. */
  readonly logs: LogLine[];
  /** Everything written to stderr. */
  stderr(): string;
  /** Exit code and signal once the child exits. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolve with the first (past or future) log line matching `pred`. */
  waitForLog(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Send `signal` (SIGTERM by default) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Options of {@link spawnDataplane}. */
export interface SpawnOptions {
  /** Extra flags, appended after the port and token flags. */
  args?: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Admin token passed with --admin-token (default `t`); null passes none. */
  token?: string | null;
  /** How long to wait for the listening line. */
  startTimeoutMs?: number;
  /** Entry point to run instead of the sources' (a compiled build's). */
  main?: string;
  /** Node.js flags, before the entry point. */
  nodeFlags?: string[];
}

/** Start a dataplane on 127.0.0.1 with ports 0 and wait until it listens. */
export function spawnDataplane(opts: SpawnOptions = {}): Promise<DataplaneChild> {
  const token = opts.token === null ? undefined : (opts.token ?? 't');
  const args = [
    ...(opts.nodeFlags ?? []),
    opts.main ?? DATAPLANE_MAIN,
    '--host', '127.0.0.1',
    '--traffic-port', '0',
    '--admin-host', '127.0.0.1',
    '--admin-port', '0',
    // Parallel test files each start dataplanes: never the fixed default 8443.
    '--https-port', '0',
    ...(token !== undefined ? ['--admin-token', token] : []),
    // One process (no cluster) unless the test asks for workers.
    ...(opts.args?.some((a) => a === '--workers' || a.startsWith('--workers=')) || opts.env?.PYSERVE_WORKERS !== undefined ? [] : ['--workers', '1']),
    ...(opts.args ?? []),
  ];
  const proc = spawnLogged('dataplane', args, opts.env ?? {});
  const { child, logs, exited, waitForLog } = proc;
  const stderr = proc.stderr;

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`dataplane did not announce its ports; stderr: ${stderr()}`));
    }, opts.startTimeoutMs ?? 20_000);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`dataplane exited with ${code} before listening; stderr: ${stderr()}`));
    });
    void waitForLog((l) => l.msg === 'listening', opts.startTimeoutMs ?? 20_000).then((line) => {
      clearTimeout(timer);
      const trafficPort = line.trafficPort as number;
      const adminPort = line.adminPort as number;
      resolve({
        trafficPort,
        httpsPort: line.httpsPort as number,
        adminPort,
        trafficUrl: `http://127.0.0.1:${trafficPort}`,
        adminUrl: `http://127.0.0.1:${adminPort}`,
        token,
        child,
        logs,
        stderr,
        exited,
        waitForLog,
        stop: proc.stop,
      });
    }, () => undefined);
  });
}

/** Run the dataplane expecting it to exit on its own (e.g. refusing to start). */
export function runDataplaneToExit(args: string[], env: Record<string, string> = {}, timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [DATAPLANE_MAIN, ...args], {
    env: { ...process.env, PYSERVE_ADMIN_TOKEN: '', PYSERVE_ADMIN_TOKEN_FILE: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`dataplane did not exit within ${timeoutMs} ms; stdout: ${stdout}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
