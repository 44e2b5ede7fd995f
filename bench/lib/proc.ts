/**
 * Processes for the bench: spawning pinned to CPUs, reading their CPU time
 * and memory from /proc, free ports, and waiting for a listener. Everything
 * the bench starts is registered here so an interrupted run kills it all.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import type { AddressInfo } from 'node:net';

/** A process the bench started. */
export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything it wrote to stderr (the last 20 kB). */
  stderr(): string;
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. */
  stop(graceMs?: number): Promise<void>;
}

const started = new Set<Proc>();

function killEverything(): void {
  for (const p of started) {
    try {
      // Negative pid: the whole group, so nginx and HAProxy workers go too.
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}
process.on('exit', killEverything);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killEverything();
    process.exit(130);
  });
}

/** Options of {@link startProc}. */
export interface StartOptions {
  /** CPU list for taskset (`"1"`, `"0,1"`); undefined leaves it unpinned. */
  cpus?: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Where stdout goes: a file path, or `'ignore'` (the default). */
  stdout?: string | 'ignore' | 'pipe';
}

/** Spawn `cmd args` in its own process group, optionally pinned with taskset. */
export function startProc(name: string, cmd: string, args: readonly string[], opts: StartOptions = {}): Proc {
  let argv = [cmd, ...args];
  if (opts.cpus !== undefined) argv = ['taskset', '-c', opts.cpus, ...argv];
  const stdout = opts.stdout === undefined || opts.stdout === 'ignore' ? 'ignore' : opts.stdout === 'pipe' ? 'pipe' : openSync(opts.stdout, 'a');
  const spawnOpts: SpawnOptions = {
    stdio: ['ignore', stdout, 'pipe'],
    detached: true,
    env: { ...process.env, ...opts.env },
    ...(opts.cwd !== undefined && { cwd: opts.cwd }),
  };
  const child = spawn(argv[0]!, argv.slice(1), spawnOpts);
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-20_000);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', (e) => {
      err += String(e);
      resolve(-1);
    });
  });
  const proc: Proc = {
    name,
    child,
    pid: child.pid ?? -1,
    stderr: () => err,
    exited,
    async stop(graceMs = 3_000) {
      if (child.exitCode !== null || child.signalCode !== null) {
        started.delete(proc);
        return;
      }
      try {
        process.kill(-proc.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-proc.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, graceMs);
      await exited;
      clearTimeout(timer);
      started.delete(proc);
    },
  };
  started.add(proc);
  return proc;
}

/** Run a command to completion and return its stdout; throws with stderr on failure. */
export function runCapture(cmd: string, args: readonly string[], opts: { cpus?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const argv = opts.cpus !== undefined ? ['taskset', '-c', opts.cpus, cmd, ...args] : [cmd, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
  });
}

/** The first line a command prints on stdout or stderr (nginx -v uses stderr), or undefined. */
export function versionOf(cmd: string, args: readonly string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  return text === '' ? undefined : text.split('\n')[0]!.trim();
}

/** `n` free TCP ports on 127.0.0.1 (bound together, then released). */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => resolve(s));
  })));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** Resolve once something accepts TCP connections on host:port. */
export async function waitForPort(port: number, proc: Proc | undefined, host = '127.0.0.1', timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, host);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (proc !== undefined && (proc.child.exitCode !== null || proc.child.signalCode !== null)) {
      throw new Error(`${proc.name} exited (${proc.child.exitCode ?? proc.child.signalCode}) before listening on ${port}: ${proc.stderr().slice(-2000)}`);
    }
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms${proc ? `; ${proc.name} stderr: ${proc.stderr().slice(-2000)}` : ''}`);
    await sleep(25);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const CLK_TCK = 100;
const PAGE_KIB = 4;

/** `pid` and all its descendants, read from /proc. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat === undefined) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

function readStat(pid: number): { ppid: number; ticks: number; rssPages: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: split after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]), rssPages: Number(fields[21]) };
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) used so far by a process tree. */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const p of pids) ticks += readStat(p)?.ticks ?? 0;
  return ticks / CLK_TCK;
}

/** Resident memory of a process tree, in MiB (shared pages counted once per process, as `ps` does). */
export function rssMiB(pids: readonly number[]): number {
  let pages = 0;
  for (const p of pids) pages += readStat(p)?.rssPages ?? 0;
  return (pages * PAGE_KIB) / 1024;
}

/** Per-CPU busy jiffies from /proc/stat, to tell whether the load side was saturated. */
export function cpuBusy(): number[] {
  const lines = readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d+ /.test(l));
  return lines.map((l) => {
    const f = l.split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
  });
}

/**
 * Samples a process tree while a measurement runs: CPU time between start and
 * stop, the peak RSS seen, and how busy each machine CPU was.
 */
export class Sampler {
  readonly #pid: number;
  #pids: number[];
  #cpu0 = 0;
  #t0 = 0;
  #busy0: number[] = [];
  #peak = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(pid: number) {
    this.#pid = pid;
    this.#pids = processTree(pid);
  }

  start(): void {
    this.#pids = processTree(this.#pid);
    this.#cpu0 = cpuSeconds(this.#pids);
    this.#busy0 = cpuBusy();
    this.#t0 = performance.now();
    this.#peak = rssMiB(this.#pids);
    this.#timer = setInterval(() => {
      this.#peak = Math.max(this.#peak, rssMiB(this.#pids));
    }, 200);
  }

  stop(): { cpuPercent: number; rssMiB: number; cpuBusyPercent: number[] } {
    clearInterval(this.#timer);
    const seconds = (performance.now() - this.#t0) / 1000;
    const cpu = cpuSeconds(this.#pids) - this.#cpu0;
    this.#peak = Math.max(this.#peak, rssMiB(this.#pids));
    const busy = cpuBusy().map((b, i) => ((b - (this.#busy0[i] ?? 0)) / CLK_TCK / seconds) * 100);
    return { cpuPercent: round((cpu / seconds) * 100, 1), rssMiB: round(this.#peak, 1), cpuBusyPercent: busy.map((b) => round(b, 1)) };
  }
}

export function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
