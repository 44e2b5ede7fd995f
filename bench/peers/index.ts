/**
 * Starting the backends and the servers under test. Peers get the server
 * CPUs, backends and load generators the others (see docs/benchmarks.md for
 * why). Every peer is configured from bench/peers/configs.ts and proxies to
 * the same backend.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, writeFileSync, readFileSync, mkdirSync, rmSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { applySnapshot, direct, exact, forward, prefix, snapshot, vhost } from '../../test/helpers/snapshots.ts';
import { compileProject } from '../../test/helpers/compiled-build.ts';
import type { Endpoint, Snapshot } from '../../dataplane/snapshot/schema.ts';
import { freePorts, startProc, waitForPort, runCapture } from '../lib/proc.ts';
import type { Proc } from '../lib/proc.ts';
import { caddyConfig, haproxyConfig, LARGE_BYTES, nginxBackendConfig, nginxPeerConfig, SMALL_BODY } from './configs.ts';
import type { PeerLayout } from './configs.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** The dataplane's sources, which `node` runs through type stripping. */
export const SOURCE_DATAPLANE_MAIN = path.join(REPO, 'dataplane', 'main.ts');
// Per run, so two runs never rebuild under each other; removed on exit.
const BUILD_DIR = path.join(REPO, '.cache', `bench-build-${process.pid}`);

let builtMain: string | undefined;

/**
 * The dataplane the bench runs: compiled from the current sources
 * (tsconfig.build.json, as the image does) into .cache/bench-build-<pid> on
 * first use, so the numbers are those of what a pod runs. PYSERVE_BENCH_SOURCES=1
 * runs the TypeScript sources instead.
 */
export function dataplaneMain(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PYSERVE_BENCH_SOURCES === '1') return SOURCE_DATAPLANE_MAIN;
  if (builtMain === undefined) {
    process.once('exit', () => rmSync(BUILD_DIR, { recursive: true, force: true }));
    compileProject(BUILD_DIR);
    builtMain = path.join(BUILD_DIR, 'dataplane', 'main.js');
  }
  return builtMain;
}
const WS_ECHO = fileURLToPath(new URL('./ws-echo.ts', import.meta.url));

export type PeerKind = 'pyserve' | 'nginx' | 'haproxy' | 'caddy';
export const PEER_KINDS: readonly PeerKind[] = ['pyserve', 'nginx', 'haproxy', 'caddy'];

/** Where the bench runs: scratch folder, CPU split, backends. */
export interface BenchEnv {
  dir: string;
  /** CPUs of the server under test. */
  serverCpus: string;
  /** CPUs of the load generators and backends. */
  loadCpus: string;
  backendPorts: number[];
  wsPort: number;
  largeFile: string;
  certFile: string;
  keyFile: string;
  pemFile: string;
}

/** A running server under test. */
export interface Peer {
  kind: PeerKind;
  /** e.g. `PyServe (1 worker)`. */
  label: string;
  workers: number;
  port: number;
  /** TLS (HTTP/2) port, or undefined when this peer has no TLS listener. */
  tlsPort: number | undefined;
  proc: Proc;
  /** PyServe only: whether its access log is on. */
  accessLog?: boolean;
  /** PyServe only. */
  adminUrl?: string;
  token?: string;
  stop(): Promise<void>;
}

/** Self-signed certificate for 127.0.0.1, made fresh per run (h2load does not verify). */
export function makeCertificate(dir: string): { certFile: string; keyFile: string; pemFile: string } {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  const pemFile = path.join(dir, 'haproxy.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: 'ignore' });
  writeFileSync(pemFile, readFileSync(certFile, 'utf8') + readFileSync(keyFile, 'utf8'));
  return { certFile, keyFile, pemFile };
}

/** Running backends. */
export interface Backends {
  http: Proc;
  ws: Proc;
  stop(): Promise<void>;
}

/**
 * nginx (one worker) serves the static responses on several ports; a Node
 * `ws` server echoes WebSocket messages. Both on the load CPUs.
 */
export async function startBackends(env: BenchEnv): Promise<Backends> {
  writeFileSync(env.largeFile, Buffer.alloc(LARGE_BYTES, 'x'));
  const conf = path.join(env.dir, 'backend.conf');
  writeFileSync(conf, nginxBackendConfig(env.dir, env.backendPorts, env.largeFile));
  const http = startProc('backend nginx', nginxBin(), ['-c', conf, '-e', path.join(env.dir, 'backend.stderr.log')], { cpus: env.loadCpus });
  const ws = startProc('ws echo backend', process.execPath, [WS_ECHO, String(env.wsPort)], { cpus: env.loadCpus });
  await Promise.all([...env.backendPorts.map((p) => waitForPort(p, http)), waitForPort(env.wsPort, ws)]);
  return { http, ws, stop: async () => void (await Promise.all([http.stop(), ws.stop()])) };
}

/** Options of {@link startPeer}. */
export interface PeerOptions {
  workers: number;
  /**
   * PyServe only: keep its per-request access log on. Default off, like every
   * peer's (nginx `access_log off`; HAProxy and Caddy configure none), so the
   * rows compare like for like; the bench adds one row with it on to show its cost.
   */
  accessLog?: boolean;
}

/** Start one server under test, configured and ready for traffic. */
export async function startPeer(kind: PeerKind, env: BenchEnv, opts: PeerOptions): Promise<Peer> {
  const [port, tlsPort] = await freePorts(2);
  const layout: PeerLayout = {
    port: port!, tlsPort: tlsPort!, backendPort: env.backendPorts[0]!, wsPort: env.wsPort,
    dir: env.dir, certFile: env.certFile, keyFile: env.keyFile, pemFile: env.pemFile, workers: opts.workers,
  };
  const w = opts.workers === 1 ? '1 worker' : `${opts.workers} workers`;
  switch (kind) {
    case 'nginx': {
      const conf = path.join(env.dir, 'nginx.conf');
      writeFileSync(conf, nginxPeerConfig(layout));
      const proc = startProc('nginx', nginxBin(), ['-c', conf, '-e', path.join(env.dir, 'nginx.stderr.log')], { cpus: env.serverCpus });
      await Promise.all([waitForPort(layout.port, proc), waitForPort(layout.tlsPort, proc)]);
      return { kind, label: `nginx (${w})`, workers: opts.workers, port: layout.port, tlsPort: layout.tlsPort, proc, stop: () => proc.stop() };
    }
    case 'haproxy': {
      const conf = path.join(env.dir, 'haproxy.cfg');
      writeFileSync(conf, haproxyConfig(layout));
      const proc = startProc('haproxy', haproxyBin(), ['-db', '-f', conf], { cpus: env.serverCpus });
      await Promise.all([waitForPort(layout.port, proc), waitForPort(layout.tlsPort, proc)]);
      return { kind, label: `HAProxy (${opts.workers === 1 ? '1 thread' : `${opts.workers} threads`})`, workers: opts.workers, port: layout.port, tlsPort: layout.tlsPort, proc, stop: () => proc.stop() };
    }
    case 'caddy': {
      const conf = path.join(env.dir, 'Caddyfile');
      writeFileSync(conf, caddyConfig(layout));
      const home = path.join(env.dir, 'caddy-home');
      mkdirSync(home, { recursive: true });
      const proc = startProc('caddy', 'caddy', ['run', '--config', conf, '--adapter', 'caddyfile'], {
        cpus: env.serverCpus,
        // Caddy sizes GOMAXPROCS from its CPU affinity; the env makes the worker count explicit.
        env: { GOMAXPROCS: String(opts.workers), HOME: home, XDG_DATA_HOME: home, XDG_CONFIG_HOME: home },
      });
      await Promise.all([waitForPort(layout.port, proc), waitForPort(layout.tlsPort, proc)]);
      return { kind, label: `Caddy (GOMAXPROCS=${opts.workers})`, workers: opts.workers, port: layout.port, tlsPort: layout.tlsPort, proc, stop: () => proc.stop() };
    }
    case 'pyserve':
      return startPyServe(env, layout, opts);
  }
}

/** What the dataplane in this tree can do, read from its own usage text. */
export interface PyServeFeatures {
  /** `--workers N` (node:cluster) exists. */
  workers: boolean;
  /** The HTTPS listener exists (`--https-port`; HTTP/2 by ALPN, a self-signed default certificate). */
  https: boolean;
  /** `--access-log on|off` exists (before it, the access log could not be turned off). */
  accessLog: boolean;
  usage: string;
}

let featuresCache: PyServeFeatures | undefined;

export async function pyserveFeatures(): Promise<PyServeFeatures> {
  if (featuresCache) return featuresCache;
  const { stdout, stderr } = await runCapture(process.execPath, [dataplaneMain(), '--help'], { timeoutMs: 20_000 });
  const usage = stdout + stderr;
  featuresCache = { workers: /--workers\b/.test(usage), https: /--https-port\b/.test(usage), accessLog: /--access-log\b/.test(usage), usage };
  return featuresCache;
}

const TOKEN = 'bench-token';

/** The PyServe snapshot serving the common surface (see configs.ts). */
export function pyserveSnapshot(generation: number, env: Pick<BenchEnv, 'wsPort'>, backendPort: number): Snapshot {
  const ep = (port: number): Endpoint => ({ address: '127.0.0.1', port, ready: true, serving: true, terminating: false });
  return snapshot(generation, [
    vhost('bench', ['*'], [
      direct('direct', exact('/direct'), 200, SMALL_BODY),
      forward('small', exact('/small'), 'backend'),
      forward('large', exact('/large'), 'backend'),
      forward('ws', prefix('/ws'), 'ws'),
    ]),
  ], { backend: [ep(backendPort)], ws: [ep(env.wsPort)] });
}

async function startPyServe(env: BenchEnv, layout: PeerLayout, opts: PeerOptions): Promise<Peer> {
  const features = await pyserveFeatures();
  if (opts.workers > 1 && !features.workers) throw new NotAvailable('the dataplane has no --workers flag yet (node:cluster workers are another issue)');
  const [adminPort] = await freePorts(1);
  const proc = await startPyServeProcess(env.serverCpus, layout.port, adminPort!, [
    ...(opts.workers > 1 ? ['--workers', String(opts.workers)] : []),
    ...(features.https ? ['--https-port', String(layout.tlsPort)] : []),
    ...(features.accessLog ? ['--access-log', opts.accessLog === true ? 'on' : 'off'] : []),
  ]);
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await waitForPort(adminPort!, proc);
  await applySnapshot(adminUrl, pyserveSnapshot(1, env, layout.backendPort), { token: TOKEN });
  await waitForPort(layout.port, proc);
  if (features.https) await waitForPort(layout.tlsPort, proc);
  const w = opts.workers === 1 ? '1 worker' : `${opts.workers} workers`;
  return {
    kind: 'pyserve', label: `PyServe (${w})`, workers: opts.workers, port: layout.port,
    // A dataplane without --access-log always logs.
    accessLog: !features.accessLog || opts.accessLog === true,
    tlsPort: features.https ? layout.tlsPort : undefined, proc, adminUrl, token: TOKEN, stop: () => proc.stop(),
  };
}

/** The chart's `dataplane` values that say how a dataplane process starts. */
function chartDataplaneValues(): { nodeFlags?: string[]; mallocEnv?: Record<string, string> | null } {
  const values = parseYaml(readFileSync(path.join(REPO, 'charts', 'pyserve', 'values.yaml'), 'utf8')) as { dataplane?: ReturnType<typeof chartDataplaneValues> };
  return values.dataplane ?? {};
}

/** The Node flags the Helm chart starts a dataplane with (`dataplane.nodeFlags`). */
export function chartNodeFlags(): string[] {
  return chartDataplaneValues().nodeFlags ?? [];
}

/**
 * The environment the Helm chart adds to a dataplane container: its glibc
 * malloc settings (`dataplane.mallocEnv`). Every dataplane the bench starts
 * gets it, as node:cluster workers inherit it.
 */
export function chartDataplaneEnv(): Record<string, string> {
  return { ...chartDataplaneValues().mallocEnv };
}

/**
 * Node flags for every dataplane the bench starts: the chart's, then
 * `PYSERVE_BENCH_NODE_FLAGS` (whitespace-separated; a later V8 flag wins), e.g.
 * `PYSERVE_BENCH_NODE_FLAGS='--max-semi-space-size=16' npm run bench`.
 * node:cluster workers inherit them (they are the primary's execArgv).
 */
export function benchNodeFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  return [...chartNodeFlags(), ...(env.PYSERVE_BENCH_NODE_FLAGS ?? '').split(/\s+/).filter((f) => f !== '')];
}

/**
 * The dataplane as a pod runs it, access log on unless `extra` turns it off.
 * Its stdout goes to /dev/null: lines are still serialized and written, as in
 * production, but no reader competes for the load CPUs.
 */
export async function startPyServeProcess(cpus: string, trafficPort: number, adminPort: number, extra: string[] = [], nodeFlags: string[] = []): Promise<Proc> {
  const features = await pyserveFeatures();
  // An HTTPS listener on its default port would collide with any other dataplane on this machine.
  const https = features.https && !extra.includes('--https-port') ? ['--https-port', '0'] : [];
  // The 1-worker rows must be one process: the dataplane's own default is one worker per CPU.
  const workers = extra.includes('--workers') ? [] : ['--workers', '1'];
  return startProc('pyserve', process.execPath, [
    ...benchNodeFlags(),
    ...nodeFlags,
    dataplaneMain(),
    '--host', '127.0.0.1', '--traffic-port', String(trafficPort),
    '--admin-host', '127.0.0.1', '--admin-port', String(adminPort),
    '--log-level', 'warn',
    ...https,
    ...workers,
    ...extra,
  ], { cpus, env: { ...chartDataplaneEnv(), PYSERVE_ADMIN_TOKEN: TOKEN }, stdout: '/dev/null' });
}

export { TOKEN as PYSERVE_TOKEN };

/** A row that cannot run yet; reported with its reason instead of numbers. */
export class NotAvailable extends Error {}

function nginxBin(): string {
  return which('nginx');
}

function haproxyBin(): string {
  return which('haproxy');
}

/** Debian puts nginx and haproxy in /usr/sbin, which a non-root PATH may lack. */
export function which(cmd: string): string {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin']) {
    const p = path.join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return cmd;
}
