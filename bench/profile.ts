/**
 * Profile the dataplane under load: `node bench/profile.ts [--path /small]
 * [--seconds 10] [--connections 64] [--heap] [--out DIR] [--dataplane FILE]
 * [--args='--access-log off']`. The dataplane runs compiled and with the
 * chart's Node flags, as in `npm run bench`; PYSERVE_BENCH_NODE_FLAGS adds more.
 *
 * Starts the bench backend and the dataplane (pinned as in the bench) with
 * `--cpu-prof`, drives it with wrk, stops it gracefully so the profile is
 * written, and prints the top frames by self time and the time per source
 * file / package. With --heap, it also writes a heap snapshot at the end of
 * the load (SIGUSR2) and prints the largest constructors by retained count.
 * `--dataplane` profiles another entry point (dataplane/main.ts to profile
 * the sources, or a scratch tree with a candidate fix) under the same conditions.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePorts, sleep, startProc, waitForPort, Sampler } from './lib/proc.ts';
import { runWrk } from './lib/wrk.ts';
import { benchNodeFlags, chartDataplaneEnv, dataplaneMain, SOURCE_DATAPLANE_MAIN, makeCertificate, PYSERVE_TOKEN, pyserveSnapshot, startBackends } from './peers/index.ts';
import type { BenchEnv } from './peers/index.ts';
import { applySnapshot } from '../test/helpers/snapshots.ts';

const { values } = parseArgs({
  options: {
    path: { type: 'string', default: '/small' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '64' },
    heap: { type: 'boolean', default: false },
    out: { type: 'string' },
    dataplane: { type: 'string' },
    top: { type: 'string', default: '30' },
    args: { type: 'string', default: '' },
  },
});

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const dir = values.out ?? mkdtempSync(path.join(tmpdir(), 'pyserve-profile-'));
const ports = await freePorts(7);
const env: BenchEnv = {
  dir, serverCpus: '1', loadCpus: '0', backendPorts: [ports[0]!], wsPort: ports[1]!,
  largeFile: path.join(dir, 'large.bin'), ...makeCertificate(dir),
};
const backends = await startBackends(env);
const trafficPort = ports[2]!;
const adminPort = ports[3]!;
const nodeFlags = [...benchNodeFlags(), '--cpu-prof', `--cpu-prof-dir=${dir}`, ...(values.heap ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`] : [])];
const proc = startProc('pyserve', process.execPath, [
  ...nodeFlags, values.dataplane ?? dataplaneMain(),
  '--host', '127.0.0.1', '--traffic-port', String(trafficPort),
  '--admin-host', '127.0.0.1', '--admin-port', String(adminPort), '--log-level', 'warn',
  // Explicit: another dataplane on this machine may hold the default HTTPS port.
  '--https-port', '0', '--workers', '1',
  ...values.args.split(/\s+/).filter((a) => a !== ''),
], { cpus: env.serverCpus, env: { ...chartDataplaneEnv(), PYSERVE_ADMIN_TOKEN: PYSERVE_TOKEN }, stdout: '/dev/null' });
await waitForPort(adminPort, proc);
await applySnapshot(`http://127.0.0.1:${adminPort}`, pyserveSnapshot(1, env, env.backendPorts[0]!), { token: PYSERVE_TOKEN });
await waitForPort(trafficPort, proc);

const sampler = new Sampler(proc.pid);
sampler.start();
const wrk = await runWrk({ url: `http://127.0.0.1:${trafficPort}${values.path}`, connections: Number(values.connections), durationS: Number(values.seconds), cpus: env.loadCpus });
const usage = sampler.stop();
console.log(`load: ${wrk.reqPerSec} req/s, p50 ${wrk.latencyMs.p50} ms, p99 ${wrk.latencyMs.p99} ms; server CPU ${usage.cpuPercent}%, peak RSS ${usage.rssMiB} MiB`);
if (values.heap) {
  process.kill(proc.pid, 'SIGUSR2');
  await sleep(3_000);
}
await proc.stop(30_000);
await backends.stop();

const profFile = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
if (profFile === undefined) throw new Error(`no .cpuprofile in ${dir}: ${proc.stderr()}`);
const profile = JSON.parse(readFileSync(path.join(dir, profFile), 'utf8')) as CpuProfile;
printProfile(profile, Number(values.top));
console.log(`\nprofile: ${path.join(dir, profFile)} (open in Chrome DevTools → Performance)`);
const heapFile = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot'));
if (heapFile !== undefined) {
  printHeap(path.join(dir, heapFile));
  console.log(`heap snapshot: ${path.join(dir, heapFile)}`);
}

function where(cf: ProfileNode['callFrame']): string {
  if (cf.url === '') return '(native)';
  const u = cf.url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) return u.slice(nm + 13).split('/').slice(0, u.slice(nm + 13).startsWith('@') ? 2 : 1).join('/');
  if (u.startsWith('node:')) return u;
  const repo = path.dirname(SOURCE_DATAPLANE_MAIN).replace(/dataplane$/, '');
  // The compiled build lives under .cache/bench-build-<pid>/: name its files as their sources.
  return u.startsWith(repo) ? u.slice(repo.length).replace(/^\.cache\/bench-build-\d+\//, '') : u;
}

/** Self time per frame and per file/package, from the sample deltas. */
function printProfile(p: CpuProfile, top: number): void {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const frames = new Map<string, number>();
  const files = new Map<string, number>();
  for (const [id, us] of self) {
    const cf = byId.get(id)!.callFrame;
    const key = `${cf.functionName || '(anonymous)'}  ${where(cf)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    frames.set(key, (frames.get(key) ?? 0) + us);
    const f = where(cf);
    files.set(f, (files.get(f) ?? 0) + us);
  }
  const pct = (us: number): string => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
  console.log(`\nself time, top ${top} frames (of ${(total / 1e6).toFixed(1)} s sampled):`);
  for (const [k, us] of [...frames].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(us)}  ${k}`);
  console.log('\nself time by file / package:');
  for (const [k, us] of [...files].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${pct(us)}  ${k}`);

  // Inclusive time of project functions: what each layer of the request path costs.
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, number>();
  for (const [id, us] of self) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      const w = where(cf);
      if (!/^(dataplane|test)\//.test(w) && !/^(undici|pino|prom-client)$/.test(w)) continue;
      const key = `${cf.functionName || '(anonymous)'}  ${w}:${cf.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  console.log('\ninclusive time of project and key-package functions (top 25):');
  for (const [k, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${pct(us)}  ${k}`);
}

/** Count and self size per constructor name; enough to see what fills the heap. */
function printHeap(file: string): void {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as { snapshot: { meta: { node_fields: string[]; node_types: (string | string[])[] } }; nodes: number[]; strings: string[] };
  const fields = snap.snapshot.meta.node_fields;
  const width = fields.length;
  const nameIdx = fields.indexOf('name');
  const sizeIdx = fields.indexOf('self_size');
  const typeIdx = fields.indexOf('type');
  const types = snap.snapshot.meta.node_types[0] as string[];
  const agg = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeIdx]!]!;
    const name = type === 'object' || type === 'closure' ? snap.strings[snap.nodes[i + nameIdx]!]! : `(${type})`;
    const a = agg.get(name) ?? { count: 0, bytes: 0 };
    a.count++;
    a.bytes += snap.nodes[i + sizeIdx]!;
    agg.set(name, a);
  }
  const total = [...agg.values()].reduce((s, a) => s + a.bytes, 0);
  console.log(`\nheap: ${(total / 1048576).toFixed(1)} MiB in objects; largest by self size:`);
  for (const [k, a] of [...agg].sort((x, y) => y[1].bytes - x[1].bytes).slice(0, 20)) {
    console.log(`  ${(a.bytes / 1048576).toFixed(2).padStart(8)} MiB  ${String(a.count).padStart(8)}  ${k}`);
  }
}
