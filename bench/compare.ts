/**
 * A/B a hot-path change: `node bench/compare.ts NAME=path/to/dataplane/main.ts …
 * [--path /small] [--seconds 8] [--rounds 3] [--args 'NAME=--flag value']
 * [--node-flags 'NAME=--node-flag'] [--env 'NAME=KEY=VALUE …'] [--gc]`. Each variant runs under the bench's
 * pinning and backend, in alternation round after round, so noise from the
 * rest of the machine falls on all of them alike; medians are printed. Use it
 * with a scratch copy of the tree holding the candidate fix, or with one tree
 * and per-variant flags:
 *
 *   node bench/compare.ts on=dataplane/main.ts off=dataplane/main.ts --args 'off=--access-log off'
 *   node bench/compare.ts base=dataplane/main.ts semi2=dataplane/main.ts --node-flags 'semi2=--max-semi-space-size=2'
 *
 * Without variants, or for a variant given as `NAME=` with no path, it
 * measures the compiled build of the current tree. The
 * chart's Node flags (`dataplane.nodeFlags`) and PYSERVE_BENCH_NODE_FLAGS
 * apply to every variant; `--node-flags` come after them, so they win. `--stdout pipe` sends the
 * dataplane's stdout through a pipe that this process drains on the load CPU,
 * as a container runtime reads a pod's (default: /dev/null, where a write(2)
 * costs next to nothing). `--gc` runs every variant with `--trace-gc-nvp` and
 * adds, per variant, the bytes promoted to the old generation per scavenge
 * (median over the measured run) and the full collections in it: short-lived
 * request objects that get promoted show there long before they show in
 * req/s (docs/benchmarks.md, "What limits", items 9 and 10). It also adds the
 * bytes the heap allocated per request and the share of the run spent in GC
 * pauses (with the longest pause).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { applySnapshot } from '../test/helpers/snapshots.ts';
import { freePorts, Sampler, startProc, waitForPort } from './lib/proc.ts';
import { runWrk } from './lib/wrk.ts';
import { alternate, median } from './lib/rounds.ts';
import { benchNodeFlags, chartDataplaneEnv, dataplaneMain, makeCertificate, PYSERVE_TOKEN, pyserveSnapshot, startBackends } from './peers/index.ts';
import type { BenchEnv } from './peers/index.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    path: { type: 'string', default: '/small' },
    seconds: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '64' },
    args: { type: 'string', multiple: true, default: [] },
    'node-flags': { type: 'string', multiple: true, default: [] },
    env: { type: 'string', multiple: true, default: [] },
    stdout: { type: 'string', default: 'null' },
    gc: { type: 'boolean', default: false },
    smaps: { type: 'boolean', default: false },
  },
});
if (values.stdout !== 'null' && values.stdout !== 'pipe') throw new Error('--stdout is null or pipe');
if (values.gc && values.stdout === 'pipe') throw new Error('--gc reads the dataplane\'s stdout from a file: not with --stdout pipe');
/** `NAME=--a b --c` options → flags per variant name. */
const perVariant = (list: string[]): Map<string, string[]> => new Map(list.map((a) => {
  const i = a.indexOf('=');
  if (i <= 0) throw new Error(`expected NAME=FLAGS, got "${a}"`);
  return [a.slice(0, i), a.slice(i + 1).split(/\s+/).filter((f) => f !== '')];
}));
const extraArgs = perVariant(values.args);
const extraNodeFlags = perVariant(values['node-flags']);
const extraEnv = new Map([...perVariant(values.env)].map(([name, list]) => [name, Object.fromEntries(list.map((kv) => {
  const i = kv.indexOf('=');
  if (i <= 0) throw new Error(`--env ${name}=: expected KEY=VALUE, got "${kv}"`);
  // An empty value removes the variable (`x=MALLOC_ARENA_MAX=`: glibc's default).
  return [kv.slice(0, i), kv.slice(i + 1) === '' ? undefined : kv.slice(i + 1)];
}))]));
const variants = (positionals.length > 0 ? positionals : [`current=${dataplaneMain()}`]).map((p) => {
  const i = p.indexOf('=');
  // `NAME=` alone: the compiled build of the current tree.
  const file = i > 0 ? p.slice(i + 1) : p;
  const v = { name: i > 0 ? p.slice(0, i) : p, main: file === '' ? dataplaneMain() : path.resolve(file) };
  return {
    ...v, args: extraArgs.get(v.name) ?? [], nodeFlags: [...benchNodeFlags(), ...(extraNodeFlags.get(v.name) ?? [])],
    env: { ...chartDataplaneEnv(), ...extraEnv.get(v.name) },
  };
});
for (const name of [...extraArgs.keys(), ...extraNodeFlags.keys(), ...extraEnv.keys()]) {
  if (!variants.some((v) => v.name === name)) throw new Error(`--args/--node-flags/--env name "${name}" is not a variant`);
}

const dir = mkdtempSync(path.join(tmpdir(), 'pyserve-compare-'));
const ports = await freePorts(2);
const env: BenchEnv = { dir, serverCpus: '1', loadCpus: '0', backendPorts: [ports[0]!], wsPort: ports[1]!, largeFile: path.join(dir, 'large.bin'), ...makeCertificate(dir) };
if (values.stdout === 'pipe') {
  // This process reads the pipes: keep it off the server's CPU.
  execFileSync('taskset', ['-a', '-p', '-c', env.loadCpus, String(process.pid)], { stdio: 'ignore' });
}
const backends = await startBackends(env);
let results: Map<(typeof variants)[number], ({ rps: number; p99: number; cpu: number; rss: number } & Partial<GcFigures>)[]>;
try {
  results = await alternate(Number(values.rounds), variants, async (v, round) => {
    const [trafficPort, adminPort] = await freePorts(2);
    const gcLog = path.join(dir, `gc-${v.name}-${round}.log`);
    const proc = startProc(v.name, process.execPath, [
      ...v.nodeFlags, ...(values.gc ? ['--trace-gc-nvp'] : []),
      v.main, '--host', '127.0.0.1', '--traffic-port', String(trafficPort), '--admin-host', '127.0.0.1', '--admin-port', String(adminPort), '--log-level', 'warn',
      // Explicit: another dataplane on this machine may hold the default HTTPS port.
      '--https-port', '0', '--workers', '1',
      ...v.args,
    ], { cpus: env.serverCpus, env: { ...v.env, PYSERVE_ADMIN_TOKEN: PYSERVE_TOKEN }, stdout: values.stdout === 'pipe' ? 'pipe' : values.gc ? gcLog : '/dev/null' });
    proc.child.stdout?.resume();
    try {
      await waitForPort(adminPort!, proc);
      await applySnapshot(`http://127.0.0.1:${adminPort}`, pyserveSnapshot(1, env, env.backendPorts[0]!), { token: PYSERVE_TOKEN });
      await waitForPort(trafficPort!, proc);
      const url = `http://127.0.0.1:${trafficPort}${values.path}`;
      const connections = Number(values.connections);
      await runWrk({ url, connections, durationS: Number(values.warmup), cpus: env.loadCpus });
      const gcBefore = values.gc ? gcLines(gcLog).length : 0;
      const s = new Sampler(proc.pid);
      s.start();
      const r = await runWrk({ url, connections, durationS: Number(values.seconds), cpus: env.loadCpus });
      const u = s.stop();
      if (values.smaps) process.stderr.write(smapsBreakdown(proc.pid));
      const gc: Partial<GcFigures> = values.gc ? gcFigures(gcLines(gcLog).slice(gcBefore), r.requests, r.durationS) : {};
      // req/s per CPU-second normalizes away CPU the rest of the machine took from the server.
      const gcText = gc.promotedKB === undefined ? '' : `, promoted ${gc.promotedKB} KB/scavenge, ${gc.fullGCs} full GCs, allocated ${gc.allocatedPerRequest} B/request, GC pauses ${gc.pausePercent}% (max ${gc.maxPauseMs} ms)`;
      process.stderr.write(`round ${round + 1} ${v.name}: ${r.reqPerSec} req/s (${Math.round(r.reqPerSec / (u.cpuPercent / 100))} per CPU-second), p99 ${r.latencyMs.p99} ms, CPU ${u.cpuPercent}%, RSS ${u.rssMiB} MiB${gcText}\n`);
      return { rps: r.reqPerSec, p99: r.latencyMs.p99, cpu: u.cpuPercent, rss: u.rssMiB, ...gc };
    } finally {
      await proc.stop();
    }
  });
} finally {
  await backends.stop();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`\nmedians over ${values.rounds} rounds, ${values.path}:`);
for (const [{ name }, list] of results) {
  const m = (f: (g: Partial<GcFigures>) => number | undefined): number => median(list.map((l) => f(l) ?? 0));
  const gc = values.gc ? `  promoted ${m((g) => g.promotedKB)} KB/scavenge  full GCs ${m((g) => g.fullGCs)}  allocated ${m((g) => g.allocatedPerRequest)} B/req  GC pauses ${m((g) => g.pausePercent)}% (max ${m((g) => g.maxPauseMs)} ms)` : '';
  console.log(`  ${name.padEnd(16)} ${String(median(list.map((l) => l.rps))).padStart(7)} req/s  ${String(median(list.map((l) => Math.round(l.rps / (l.cpu / 100))))).padStart(7)} req/CPU-s  p99 ${median(list.map((l) => l.p99))} ms  RSS ${median(list.map((l) => l.rss))} MiB${gc}`);
}

/**
 * Where a process's resident memory is at the end of a run, from
 * /proc/PID/smaps: resident KiB per mapping (file, or anonymous with its
 * permissions), largest first, anonymous and file-backed totals.
 */
function smapsBreakdown(pid: number): string {
  const groups = new Map<string, number>();
  let name = '';
  let anon = 0;
  let file = 0;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      name = `${head[2] || '[anon]'} ${head[1]}`;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) {
      const kib = Number(rss[1]);
      groups.set(name, (groups.get(name) ?? 0) + kib);
      if (name.startsWith('/')) file += kib;
      else anon += kib;
    }
  }
  const rows = [...groups].filter(([, kib]) => kib >= 256).sort((a, b) => b[1] - a[1]);
  return `  smaps: anonymous ${Math.round(anon / 1024 * 10) / 10} MiB, file-backed ${Math.round(file / 1024 * 10) / 10} MiB\n${rows.map(([n, kib]) => `    ${String(kib).padStart(8)} KiB  ${n}\n`).join('')}`;
}

/** The `--trace-gc-nvp` lines the dataplane has written so far. */
function gcLines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l.includes(' gc=')) : [];
}

interface GcFigures {
  /** Median bytes promoted to the old generation per scavenge, KB. */
  promotedKB: number;
  fullGCs: number;
  /** Bytes the JavaScript heap allocated per request: V8's `allocated` (since the collection before) summed over the collections. */
  allocatedPerRequest: number;
  /** Share of the measured run spent in GC pauses, and the longest one. */
  pausePercent: number;
  maxPauseMs: number;
}

/** GC figures of a measured run, from its `--trace-gc-nvp` lines. */
function gcFigures(lines: string[], requests: number, seconds: number): GcFigures {
  const field = (l: string, name: string): number => Number(new RegExp(` ${name}=([\\d.]+)`).exec(l)?.[1] ?? 0);
  const scavenges = lines.filter((l) => / gc=s /.test(l));
  const promoted = scavenges.map((l) => field(l, 'promoted'));
  const pauses = lines.map((l) => field(l, 'pause'));
  const allocated = lines.reduce((sum, l) => sum + field(l, 'allocated'), 0);
  return {
    promotedKB: Math.round(median(promoted.length > 0 ? promoted : [0]) / 1024 * 10) / 10,
    fullGCs: lines.filter((l) => / gc=mc /.test(l)).length,
    allocatedPerRequest: requests > 0 ? Math.round(allocated / requests) : 0,
    pausePercent: Math.round(pauses.reduce((a, b) => a + b, 0) / (seconds * 1000) * 1000) / 10,
    maxPauseMs: Math.round(Math.max(0, ...pauses) * 10) / 10,
  };
}
