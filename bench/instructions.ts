/**
 * Instructions per proxied request, counted by valgrind's callgrind:
 * `node bench/instructions.ts [NAME=path/to/dataplane/main.js …] [--path /small]
 * [--requests 3000] [--warmup 20000] [--top 40] [--jit-names]`.
 *
 * Wall-clock A/B (bench/compare.ts) needs a machine whose speed holds still;
 * these VMs move ±15 % between rounds a minute apart. Instructions do not
 * depend on what else the machine runs: the same build measures within
 * ~0.5 % run to run (docs/benchmarks.md, item 16). They leave out the kernel
 * (the socket system calls, ~40 % of a request's time) and say nothing about
 * cache misses, so they decide changes to the request path's own work, not
 * the final figures.
 *
 * Each variant (default: the compiled build of this tree) runs alone: the
 * bench backend, then the dataplane with the chart's Node flags under
 * `valgrind --tool=callgrind` with instrumentation off; h2load sends
 * `--warmup` requests (HTTP/1.1, 64 connections) so the request path is
 * optimized, instrumentation goes on for 2,000 more, the counters are zeroed,
 * and exactly `--requests` are counted. `--jit-names` adds `--perf-basic-prof`
 * so the top list names JIT code by its JavaScript function. Needs valgrind
 * and h2load (Debian: valgrind, nghttp2-client).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { applySnapshot } from '../test/helpers/snapshots.ts';
import { freePorts, runCapture, sleep, startProc, waitForPort } from './lib/proc.ts';
import { benchNodeFlags, chartDataplaneEnv, dataplaneMain, makeCertificate, PYSERVE_TOKEN, pyserveSnapshot, startBackends } from './peers/index.ts';
import type { BenchEnv } from './peers/index.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    path: { type: 'string', default: '/small' },
    requests: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '20000' },
    top: { type: 'string', default: '0' },
    'jit-names': { type: 'boolean', default: false },
  },
});
for (const tool of ['valgrind', 'callgrind_control', 'callgrind_annotate', 'h2load']) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${tool} not found (Debian: apt-get install valgrind nghttp2-client)`);
  }
}
const variants = (positionals.length > 0 ? positionals : ['current=']).map((p) => {
  const i = p.indexOf('=');
  const file = i > 0 ? p.slice(i + 1) : p;
  return { name: i > 0 ? p.slice(0, i) : p, main: file === '' ? dataplaneMain() : path.resolve(file) };
});

const dir = mkdtempSync(path.join(tmpdir(), 'pyserve-instructions-'));
const ports = await freePorts(2);
const env: BenchEnv = { dir, serverCpus: '1', loadCpus: '0', backendPorts: [ports[0]!], wsPort: ports[1]!, largeFile: path.join(dir, 'large.bin'), ...makeCertificate(dir) };
const backends = await startBackends(env);
const requests = Number(values.requests);
const results: { name: string; perRequest: number; compiling: number }[] = [];

/** Send exactly `n` requests; throws unless all of them succeeded. */
async function load(url: string, n: number): Promise<void> {
  const r = await runCapture('h2load', ['--h1', '-n', String(n), '-c', '64', '-t', '1', url], { cpus: env.loadCpus, timeoutMs: 900_000 });
  const done = /(\d+) succeeded/.exec(r.stdout);
  if (done === null || Number(done[1]) !== n) throw new Error(`h2load: expected ${n} successful requests:\n${r.stdout}${r.stderr}`);
}

try {
  for (const v of variants) {
    const [trafficPort, adminPort] = await freePorts(2);
    const out = path.join(dir, `callgrind.${v.name}`);
    const proc = startProc(v.name, 'valgrind', [
      '--tool=callgrind', '--smc-check=all-non-file', '--instr-atstart=no', `--callgrind-out-file=${out}`,
      process.execPath, ...benchNodeFlags(), ...(values['jit-names'] ? ['--perf-basic-prof'] : []),
      v.main, '--host', '127.0.0.1', '--traffic-port', String(trafficPort), '--admin-host', '127.0.0.1', '--admin-port', String(adminPort), '--log-level', 'warn',
      '--https-port', '0', '--workers', '1', '--access-log', 'off',
    ], { cpus: env.serverCpus, env: { ...chartDataplaneEnv(), PYSERVE_ADMIN_TOKEN: PYSERVE_TOKEN }, stdout: '/dev/null', cwd: dir });
    try {
      // Under valgrind the process starts ~50x slower.
      await waitForPort(adminPort!, proc, '127.0.0.1', 300_000);
      await applySnapshot(`http://127.0.0.1:${adminPort}`, pyserveSnapshot(1, env, env.backendPorts[0]!), { token: PYSERVE_TOKEN });
      await waitForPort(trafficPort!, proc, '127.0.0.1', 300_000);
      const url = `http://127.0.0.1:${trafficPort}${values.path}`;
      const pid = String(proc.pid);
      await load(url, Number(values.warmup));
      execFileSync('callgrind_control', ['-i', 'on', pid], { stdio: 'ignore' });
      await load(url, 2_000);
      execFileSync('callgrind_control', ['-z', pid], { stdio: 'ignore' });
      await load(url, requests);
      execFileSync('callgrind_control', ['-d', pid], { stdio: 'ignore' });
      await sleep(1_000);
      const dump = readdirSync(dir).filter((f) => f.startsWith(`callgrind.${v.name}.`)).map((f) => path.join(dir, f)).sort().at(-1);
      if (dump === undefined) throw new Error(`no callgrind dump for ${v.name}: ${proc.stderr()}`);
      const total = Number(/^(?:summary|totals): (\d+)/m.exec(readFileSync(dump, 'utf8'))?.[1] ?? NaN);
      const perRequest = Math.round(total / requests);
      // A function optimized late (or again) compiles inside the counted window: V8's
      // compilers then add millions of instructions that are not the request path's.
      const compiling = Math.round(compilerInstructions(dump) / requests);
      results.push({ name: v.name, perRequest, compiling });
      process.stderr.write(`${v.name}: ${perRequest} instructions per request (${total} for ${requests}), ${compiling} of them V8 compiling\n`);
      if (Number(values.top) > 0) printTop(dump, Number(values.top), values['jit-names'] ? `/tmp/perf-${proc.pid}.map` : undefined);
    } finally {
      await proc.stop(10_000);
      if (values['jit-names']) rmSync(`/tmp/perf-${proc.pid}.map`, { force: true });
    }
  }
} finally {
  await backends.stop();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`\nuser-space instructions per request, ${values.path}, ${requests} requests after ${values.warmup} (and without V8's compilers):`);
for (const r of results) console.log(`  ${r.name.padEnd(16)} ${String(r.perRequest).padStart(8)}  ${String(r.perRequest - r.compiling).padStart(8)}`);

/** Instructions per function in a dump, as callgrind_annotate lists them (every function: threshold 100 %). */
function functionCounts(dump: string): { instructions: number; symbol: string }[] {
  const annotated = execFileSync('callgrind_annotate', ['--threshold=100', dump], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const out: { instructions: number; symbol: string }[] = [];
  for (const line of annotated.split('\n')) {
    const m = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line);
    if (m !== null && !m[2]!.includes('PROGRAM TOTALS')) out.push({ instructions: Number(m[1]!.replace(/,/g, '')), symbol: m[2]! });
  }
  return out;
}

/** Instructions spent in V8's optimizing and baseline compilers. */
function compilerInstructions(dump: string): number {
  const compiler = /v8::internal::(compiler|maglev|baseline|turboshaft)::|v8::internal::Compiler|v8::internal::OptimizingCompile/;
  return functionCounts(dump).reduce((sum, f) => (compiler.test(f.symbol) ? sum + f.instructions : sum), 0);
}

/** The functions with the most instructions, JIT code named from the perf map when there is one. */
function printTop(dump: string, top: number, perfMap: string | undefined): void {
  const ranges: [number, number, string][] = perfMap !== undefined && existsSync(perfMap)
    ? readFileSync(perfMap, 'utf8').split('\n').map((l) => l.split(' ')).filter((p) => p.length >= 3)
      .map((p) => [parseInt(p[0]!, 16), parseInt(p[1]!, 16), p.slice(2).join(' ')] as [number, number, string]).sort((a, b) => a[0] - b[0])
    : [];
  const nameOf = (addr: number): string => {
    let lo = 0;
    let hi = ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const [start, size, name] = ranges[mid]!;
      if (addr < start) hi = mid - 1;
      else if (addr >= start + size) lo = mid + 1;
      else return name;
    }
    return `(code at 0x${addr.toString(16)})`;
  };
  const byName = new Map<string, number>();
  for (const { instructions, symbol } of functionCounts(dump)) {
    const jit = /\?\?\?:0x([0-9a-f]+)/.exec(symbol);
    const name = jit !== null ? nameOf(parseInt(jit[1]!, 16)) : symbol.replace(/\s*\[.*\]$/, '').replace(/^\?\?\?:/, '').slice(0, 140);
    byName.set(name, (byName.get(name) ?? 0) + instructions);
  }
  for (const [name, n] of [...byName].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`  ${String(Math.round(n / requests)).padStart(7)}  ${name}`);
  }
}
