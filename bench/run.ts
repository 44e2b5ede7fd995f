/**
 * `npm run bench` — PyServe side by side with nginx, HAProxy and Caddy on
 * this machine, plus control-plane scale and change under load. Writes
 * bench/results/<date>.json, bench/chart.svg and the generated section of
 * docs/benchmarks.md (see that file for the method).
 *
 *   npm run bench                       full run (about 12 minutes)
 *   npm run bench -- --smoke            seconds-long runs, JSON only (CI)
 *   npm run bench -- --only http,change sections: http, workers, control, propagation, change
 *   npm run bench -- --server-cpus 2-3 --load-cpus 0-1 --workers 2
 *   npm run bench -- --install          install missing Debian tools first (root)
 *   npm run bench -- --rounds 5 --round-seconds 4   HTTP/1.1 rows: alternating rounds (default 3 of 5 s)
 *
 * PYSERVE_BENCH_NODE_FLAGS='--max-semi-space-size=2' passes Node flags to every
 * dataplane the bench starts (workers inherit them).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePorts, versionOf } from './lib/proc.ts';
import type { BenchResult, ChangeUnderLoad, Propagation } from './lib/types.ts';
import { benchNodeFlags, chartDataplaneEnv, dataplaneMain, makeCertificate, pyserveFeatures, SOURCE_DATAPLANE_MAIN, startBackends, which } from './peers/index.ts';
import type { BenchEnv } from './peers/index.ts';
import { runPeers } from './scenarios/http.ts';
import type { ServerSpec } from './scenarios/http.ts';
import { runControlPlane } from './scenarios/control-plane.ts';
import { runPropagation } from './scenarios/propagation.ts';
import { runChangeUnderLoad } from './scenarios/change-under-load.ts';
import { renderMarkdown, spliceGenerated } from './report/markdown.ts';
import { renderChart } from './report/svg.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const ENSURE_DEBS = path.join(ROOT, 'scripts/test-tools/ensure-debs.sh');
const SECTIONS = ['http', 'workers', 'control', 'propagation', 'change'] as const;

const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    install: { type: 'boolean', default: false },
    out: { type: 'string' },
    docs: { type: 'boolean' },
    only: { type: 'string' },
    'server-cpus': { type: 'string', default: '1' },
    'load-cpus': { type: 'string', default: '0' },
    workers: { type: 'string' },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    'round-seconds': { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '64' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0]!.replace(/^\/\*\*?/, '').replace(/^ \* ?/gm, '') + '\n');
  process.exit(0);
}

const smoke = values.smoke;
const only = new Set(values.only?.split(',') ?? SECTIONS);
for (const s of only) if (!(SECTIONS as readonly string[]).includes(s)) fail(`unknown section "${s}"; sections: ${SECTIONS.join(', ')}`);
const writeDocs = values.docs ?? (!smoke && values.only === undefined);
const log = (msg: string): void => void process.stderr.write(`[bench] ${msg}\n`);

function fail(msg: string): never {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(1);
}

// ---------------------------------------------------------------------------
// Tools

const TOOLS: { cmd: string; pkg: string }[] = [
  { cmd: 'nginx', pkg: 'nginx' },
  { cmd: 'haproxy', pkg: 'haproxy' },
  { cmd: 'caddy', pkg: 'caddy' },
  { cmd: 'wrk', pkg: 'wrk' },
  { cmd: 'h2load', pkg: 'nghttp2-client' },
  { cmd: 'taskset', pkg: 'util-linux' },
  { cmd: 'openssl', pkg: 'openssl' },
];

function missingTools(): { cmd: string; pkg: string }[] {
  return TOOLS.filter((t) => which(t.cmd) === t.cmd);
}

if (values.install && missingTools().length > 0) {
  const r = spawnSync('bash', [ENSURE_DEBS, ...missingTools().map((t) => t.pkg)], { stdio: 'inherit' });
  if (r.status !== 0) fail('installing the missing tools failed (see above)');
}
const missing = missingTools();
if (missing.length > 0) {
  const pkgs = [...new Set(missing.map((t) => t.pkg))].join(' ');
  fail(`missing ${missing.map((t) => t.cmd).join(', ')}. Install them (Debian/Ubuntu):\n\n  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${pkgs}\n\nor, as root: bash scripts/test-tools/ensure-debs.sh (or npm run bench -- --install)`);
}

// ---------------------------------------------------------------------------
// Machine, CPUs, pinning

const cores = os.cpus().length;
let serverCpus = values['server-cpus'];
let loadCpus = values['load-cpus'];
const notes: string[] = [];
if (cores < 2) {
  serverCpus = '0';
  loadCpus = '0';
  notes.push('Only one CPU: server and load generator share it, so absolute numbers are low; ratios still compare.');
}
const cpuCount = (list: string): number => list.split(',').reduce((s, part) => {
  const [a, b] = part.split('-').map(Number);
  return s + (b === undefined ? 1 : b - a! + 1);
}, 0);
// The bench process itself runs the WebSocket clients and the admin pushes: keep it off the server's CPUs.
try {
  execFileSync('taskset', ['-a', '-p', '-c', loadCpus, String(process.pid)], { stdio: 'ignore' });
} catch {
  notes.push(`Could not pin the bench process to CPU ${loadCpus}.`);
}

const workersN = Number(values.workers ?? cpuCount(serverCpus));
const loadAvgBefore = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

const durationS = Number(values.duration ?? (smoke ? 1 : 10));
const warmupS = Number(values.warmup ?? (smoke ? 0 : 3));
const rounds = Number(values.rounds ?? (smoke ? 1 : 3));
const roundS = Number(values['round-seconds'] ?? (smoke ? 1 : 5));
const connections = Number(values.connections);
// A proxied WebSocket holds two descriptors in the proxy; stay inside the open-files limit.
const fdLimit = Number(execFileSync('bash', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()) || 1024;
const wsIdle = smoke ? 200 : Math.min(10_000, Math.floor((fdLimit - 2000) / 2 / 500) * 500);
if (!smoke && wsIdle < 10_000) notes.push(`Idle WebSockets: ${wsIdle.toLocaleString('en-US')} rather than 10,000, because the open-files limit here is ${fdLimit} and a proxy holds two descriptors per WebSocket; "MiB per 10k" scales the measured growth.`);
const features = await pyserveFeatures();
notes.push(features.accessLog
  ? 'Access logs are off on every server in the comparison rows (nginx `access_log off`, HAProxy and Caddy configure none, PyServe `--access-log off`); the "access log on" row shows what PyServe\'s JSON access log costs (written to /dev/null).'
  : 'Peers log nothing per request; this PyServe cannot turn its JSON access log off (no --access-log flag), so it writes it (to /dev/null), which is part of its cost.');
const dataplaneNodeFlags = benchNodeFlags();
const dataplaneEnv = chartDataplaneEnv();
const sources = dataplaneMain() === SOURCE_DATAPLANE_MAIN;
notes.push(`PyServe ran ${sources ? 'from its TypeScript sources (PYSERVE_BENCH_SOURCES=1)' : 'compiled (tsconfig.build.json), as the image runs it'}, with the Node flags ${dataplaneNodeFlags.length > 0 ? `\`${dataplaneNodeFlags.join(' ')}\`` : 'of none'} (the chart's \`dataplane.nodeFlags\`${process.env.PYSERVE_BENCH_NODE_FLAGS ? ', then PYSERVE_BENCH_NODE_FLAGS' : ''}) and the environment ${Object.keys(dataplaneEnv).length > 0 ? `\`${Object.entries(dataplaneEnv).map(([k, v]) => `${k}=${v}`).join(' ')}\`` : 'of the bench'} (the chart's \`dataplane.mallocEnv\`).`);

const dir = mkdtempSync(path.join(os.tmpdir(), 'pyserve-bench-'));
const ports = await freePorts(5);
const env: BenchEnv = {
  dir, serverCpus, loadCpus, backendPorts: ports.slice(0, 4), wsPort: ports[4]!,
  largeFile: path.join(dir, 'large.bin'), ...makeCertificate(dir),
};

const result: BenchResult = {
  meta: {
    date: new Date().toISOString(),
    smoke,
    machine: {
      cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
      cores,
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: os.release(),
      loadAvgBefore,
      loadAvgAfter: '',
    },
    versions: versions(),
    settings: { serverCpus, loadCpus, connections, durationS, warmupS, rounds, roundS, workersN, dataplaneNodeFlags, dataplaneEnv, dataplaneBuild: sources ? 'sources' : 'compiled' },
    notes,
  },
  http: [],
  h2: [],
  websocket: { idle: [], echo: [] },
  controlPlane: { translate: [], apply: [], propagation: { available: false, reason: 'not run (--only)' } },
  changeUnderLoad: notRunChange('not run (--only)'),
};

const started = performance.now();
log(`${smoke ? 'smoke' : 'full'} run: server on CPU ${serverCpus}, load on CPU ${loadCpus}; scratch ${dir}`);
const backends = await startBackends(env);
try {
  if (only.has('http')) {
    const servers: ServerSpec[] = [
      { kind: 'pyserve', workers: 1, label: 'PyServe (1 worker)' },
      { kind: 'nginx', workers: 1, label: 'nginx (1 worker)' },
      { kind: 'haproxy', workers: 1, label: 'HAProxy (1 thread)' },
      { kind: 'caddy', workers: 1, label: 'Caddy (GOMAXPROCS=1)' },
      // What the access log costs: the same PyServe with it on (HTTP/1.1 rows only).
      ...(features.accessLog ? [{ kind: 'pyserve', workers: 1, label: 'PyServe (1 worker, access log on)', accessLog: true, httpOnly: true } as const] : []),
    ];
    const peers = await runPeers(env, servers, {
      connections, durationS, warmupS, rounds, roundS,
      wsIdleConnections: wsIdle, wsSettleMs: smoke ? 300 : 2_000,
      wsEchoConnections: connections, wsEchoDurationS: durationS,
      log,
    });
    result.http.push(...peers.http);
    result.h2 = peers.h2;
    result.websocket = { idle: peers.wsIdle, echo: peers.wsEcho };
  }
  if (only.has('workers')) {
    // N workers: every peer gets N processes/threads on the server CPUs.
    const gap = !features.workers
      ? 'the dataplane has no --workers flag yet (node:cluster workers are another issue)'
      : workersN < 2 ? `the server has ${cpuCount(serverCpus)} CPU here; pass --server-cpus with more CPUs or --workers N` : undefined;
    // Two at least: with one it would be the 1-worker row again.
    const w = Math.max(2, workersN);
    const servers: ServerSpec[] = gap !== undefined
      ? [{ kind: 'pyserve', workers: w, label: `PyServe (N workers)`, unavailable: gap }]
      : [
        { kind: 'pyserve', workers: w, label: `PyServe (${w} workers)` },
        { kind: 'nginx', workers: w, label: `nginx (${w} workers)` },
        { kind: 'haproxy', workers: w, label: `HAProxy (${w} threads)` },
        { kind: 'caddy', workers: w, label: `Caddy (GOMAXPROCS=${w})` },
      ];
    const peers = await runPeers(env, servers, { connections, durationS, warmupS, rounds, roundS, wsIdleConnections: 0, wsSettleMs: 0, wsEchoConnections: 0, wsEchoDurationS: 0, httpOnly: true, log });
    result.http.push(...peers.http);
  }
  if (only.has('control')) {
    const cp = await runControlPlane(env, { sizes: smoke ? [100] : [1_000, 5_000, 10_000], runs: smoke ? 1 : 3, log });
    result.controlPlane.translate = cp.translate;
    result.controlPlane.apply = cp.apply;
  }
  if (only.has('propagation')) {
    result.controlPlane.propagation = await runPropagationSafely();
  }
  if (only.has('change')) {
    result.changeUnderLoad = await runChangeUnderLoad(env, {
      durationS: smoke ? 3 : 15,
      connections,
      routeEdits: 20,
      endpointChanges: 50,
      wsConnections: smoke ? 20 : 100,
      log,
    });
  }
} finally {
  await backends.stop();
  rmSync(dir, { recursive: true, force: true });
}
result.meta.machine.loadAvgAfter = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

// ---------------------------------------------------------------------------
// Output

const stamp = result.meta.date.replace(/[:.]/g, '-');
const outFile = values.out ?? path.join(ROOT, 'bench/results', `${smoke ? 'smoke-' : ''}${stamp}.json`);
mkdirSync(path.dirname(outFile), { recursive: true });
writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
if (writeDocs) {
  const chartFile = path.join(ROOT, 'bench/chart.svg');
  const cpu = result.meta.machine.cpu;
  writeFileSync(chartFile, renderChart(result.http, `${result.meta.date.slice(0, 10)} · ${cpu}, ${cores} cores · server pinned to CPU ${serverCpus} · ${connections} connections`));
  const docFile = path.join(ROOT, 'docs/benchmarks.md');
  const doc = existsSync(docFile) ? readFileSync(docFile, 'utf8') : '# Benchmarks\n';
  writeFileSync(docFile, spliceGenerated(doc, renderMarkdown(result, '../bench/chart.svg')));
  log(`wrote ${path.relative(ROOT, docFile)} and ${path.relative(ROOT, chartFile)}`);
}
printSummary(result);
log(`done in ${Math.round((performance.now() - started) / 1000)} s; results: ${outFile}`);
process.stdout.write(`${outFile}\n`);
process.exit(0);

// ---------------------------------------------------------------------------

async function runPropagationSafely(): Promise<Propagation> {
  // A second try on a fresh API server: one failure on a shared CI machine
  // should not cost the run, but it is kept in the result with its diagnosis,
  // and two in a row fail as before.
  const failures: string[] = [];
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      const p = await runPropagation(env, { samples: smoke ? 1 : 5, background: smoke ? 0 : 1_000, log });
      return p.available && failures.length > 0 ? { ...p, failedAttempts: failures } : p;
    } catch (err) {
      // The API server binaries are built from source once per machine (test/tools/kube.ts); a
      // failure there is reported, but the rest of the bench stands.
      log(`propagation failed (attempt ${attempt} of 2): ${(err as Error).message}`);
      failures.push((err as Error).message);
      if (attempt < 2) continue;
      if (smoke) throw err;
      return { available: false, reason: `failed: ${(err as Error).message.split('\n')[0]}` };
    }
  }
  throw new Error('unreachable');
}

function notRunChange(reason: string): ChangeUnderLoad {
  const empty = { target: '', requests: 0, reqPerSec: 0, non2xx: 0, non2xxStatuses: '', socketErrors: 0, latencyMs: { p50: 0, p99: 0, p999: 0, max: 0 } };
  return { routeEdits: 0, endpointChanges: 0, durationS: 0, edited: empty, unrelated: empty, totalFailures: 0, websockets: { available: false, reason } };
}

function versions(): Record<string, string> {
  const v = (cmd: string, args: string[], re: RegExp): string => versionOf(which(cmd), args)?.match(re)?.[1] ?? 'unknown';
  // Set when the bench runs from an exported copy of a commit rather than a checkout.
  let commit = process.env.PYSERVE_BENCH_REVISION ?? 'unknown';
  try {
    if (process.env.PYSERVE_BENCH_REVISION === undefined) {
      commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
      const dirty = execFileSync('git', ['status', '--porcelain', '--', 'dataplane', 'controller'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
      if (dirty) commit += ' (dataplane/controller modified)';
    }
  } catch {
    /* not a checkout */
  }
  return {
    PyServe: commit,
    Node: process.version,
    nginx: v('nginx', ['-v'], /nginx\/(\S+)/),
    HAProxy: v('haproxy', ['-v'], /version (\S+)/),
    Caddy: v('caddy', ['version'], /^v?(\S+)/),
    wrk: v('wrk', ['-v'], /wrk (?:debian\/)?(\S+)/),
    h2load: v('h2load', ['--version'], /nghttp2\/(\S+)/),
  };
}

function printSummary(r: BenchResult): void {
  const lines: string[] = [];
  for (const h of r.http) {
    lines.push(h.available
      ? `${h.scenario.padEnd(12)} ${h.server.padEnd(22)} ${String(h.reqPerSec).padStart(8)} req/s  p99 ${String(h.latencyMs.p99).padStart(8)} ms  ${h.vsNginx ? `${h.vsNginx.throughput.toFixed(2)}× nginx` : ''}`
      : `${h.scenario.padEnd(12)} ${h.server.padEnd(22)} not available: ${h.reason}`);
  }
  const c = r.changeUnderLoad;
  lines.push(`change under load: ${c.routeEdits} route edits, ${c.endpointChanges} endpoint changes, failures ${c.totalFailures}`);
  process.stderr.write(lines.join('\n') + '\n');
}
