/**
 * The per-server measurements. HTTP/1.1 keep-alive throughput and latency:
 * wrk through the proxied (13 B, 16 KiB), direct and 404 paths, each after a
 * warm-up run that is thrown away so JITs and pools are warm.
 */
import { runWrk, socketErrors } from '../lib/wrk.ts';
import { Sampler, round } from '../lib/proc.ts';
import type { H2Row, HttpRow, HttpScenario, WsEchoRow, WsIdleRow } from '../lib/types.ts';
import { NotAvailable, startPeer } from '../peers/index.ts';
import type { BenchEnv, Peer, PeerKind } from '../peers/index.ts';
import { addH2Ratios, measureH2 } from './h2.ts';
import { measureWsEcho, measureWsIdle } from './websocket.ts';

const PATHS: Record<HttpScenario, string> = {
  'proxy-13B': '/small',
  'proxy-16KiB': '/large',
  direct: '/direct',
  'not-found': '/no/such/route',
};
export const HTTP_SCENARIOS = Object.keys(PATHS) as HttpScenario[];

/** Settings of the per-server runs. */
export interface PeerRunOptions {
  connections: number;
  durationS: number;
  warmupS: number;
  wsIdleConnections: number;
  wsSettleMs: number;
  wsEchoConnections: number;
  wsEchoDurationS: number;
  /** Run only HTTP/1.1 (the N-worker configurations). */
  httpOnly?: boolean;
  log: (msg: string) => void;
}

/** One server configuration to measure. */
export interface ServerSpec {
  kind: PeerKind;
  workers: number;
  /** Set when this configuration cannot run here; the rows carry the reason. */
  unavailable?: string;
  label: string;
  /** PyServe only: access log on (default off, like the peers). */
  accessLog?: boolean;
  /** Only the HTTP/1.1 scenarios for this one (a variant of a server measured in full). */
  httpOnly?: boolean;
}

export interface PeerResults {
  http: HttpRow[];
  h2: H2Row[];
  wsIdle: WsIdleRow[];
  wsEcho: WsEchoRow[];
}

/**
 * Each server is started once and measured in turn: HTTP/1.1 scenarios,
 * TLS + HTTP/2 and WebSocket echo. Idle WebSockets are measured on a fresh
 * start of the same server, so neither run's memory colours the other's.
 */
export async function runPeers(env: BenchEnv, servers: readonly ServerSpec[], o: PeerRunOptions): Promise<PeerResults> {
  const out: PeerResults = { http: [], h2: [], wsIdle: [], wsEcho: [] };
  for (const spec of servers) {
    const base = { server: spec.label, kind: spec.kind };
    const httpOnly = o.httpOnly === true || spec.httpOnly === true;
    const skip = (reason: string): void => {
      o.log(`${spec.label}: not available (${reason})`);
      for (const scenario of HTTP_SCENARIOS) out.http.push({ ...base, workers: spec.workers, scenario, available: false, reason });
      if (httpOnly) return;
      out.h2.push({ ...base, available: false, reason });
      out.wsIdle.push({ ...base, available: false, reason });
      out.wsEcho.push({ ...base, available: false, reason });
    };
    if (spec.unavailable !== undefined) {
      skip(spec.unavailable);
      continue;
    }
    let peer: Peer;
    try {
      peer = await startPeer(spec.kind, env, { workers: spec.workers, accessLog: spec.accessLog });
    } catch (err) {
      if (!(err instanceof NotAvailable)) throw err;
      skip(err.message);
      continue;
    }
    // The spec's label: it tells variants of one server apart (access log on).
    peer.label = spec.label;
    try {
      for (const scenario of HTTP_SCENARIOS) {
        const row = await measureHttp(peer, env, scenario, o);
        out.http.push(peer.accessLog !== undefined && row.available ? { ...row, accessLog: peer.accessLog } : row);
      }
      if (httpOnly) continue;
      out.h2.push(await measureH2(peer, env, { connections: o.connections, durationS: o.durationS, warmupS: o.warmupS, log: o.log }));
      out.wsEcho.push(await measureWsEcho(peer, { connections: o.wsEchoConnections, durationS: o.wsEchoDurationS, log: o.log }));
    } finally {
      await peer.stop();
    }
    // A fresh process: a garbage-collected runtime still holding the heap the
    // load runs grew would absorb the sockets' memory and under-report it.
    const fresh = await startPeer(spec.kind, env, { workers: spec.workers });
    try {
      out.wsIdle.push(await measureWsIdle(fresh, { connections: o.wsIdleConnections, settleMs: o.wsSettleMs, log: o.log }));
    } finally {
      await fresh.stop();
    }
  }
  addRatios(out.http);
  addH2Ratios(out.h2);
  return out;
}

async function measureHttp(peer: Peer, env: BenchEnv, scenario: HttpScenario, o: PeerRunOptions): Promise<HttpRow> {
  const url = `http://127.0.0.1:${peer.port}${PATHS[scenario]}`;
  if (o.warmupS > 0) await runWrk({ url, connections: o.connections, durationS: o.warmupS, cpus: env.loadCpus });
  const sampler = new Sampler(peer.proc.pid);
  sampler.start();
  const r = await runWrk({ url, connections: o.connections, durationS: o.durationS, cpus: env.loadCpus });
  const usage = sampler.stop();
  o.log(`http: ${peer.label} ${scenario}: ${r.reqPerSec} req/s, p99 ${r.latencyMs.p99} ms, CPU ${usage.cpuPercent}%, RSS ${usage.rssMiB} MiB, load CPUs busy ${usage.cpuBusyPercent.join('/')}%`);
  return {
    server: peer.label,
    kind: peer.kind,
    workers: peer.workers,
    scenario,
    available: true,
    reqPerSec: r.reqPerSec,
    latencyMs: { p50: r.latencyMs.p50, p99: r.latencyMs.p99, p999: r.latencyMs.p999, max: r.latencyMs.max },
    cpuPercent: usage.cpuPercent,
    rssMiB: usage.rssMiB,
    socketErrors: socketErrors(r),
    errorStatuses: r.errors.status,
    cpuBusyPercent: usage.cpuBusyPercent,
  };
}

/** Ratios against nginx with the same worker count and scenario. */
function addRatios(rows: HttpRow[]): void {
  for (const row of rows) {
    if (!row.available || row.kind === 'nginx') continue;
    const ref = rows.find((r) => r.kind === 'nginx' && r.workers === row.workers && r.scenario === row.scenario);
    if (ref === undefined || !ref.available || ref.reqPerSec === 0 || ref.latencyMs.p99 === 0) continue;
    row.vsNginx = { throughput: round(row.reqPerSec / ref.reqPerSec, 2), p99: round(row.latencyMs.p99 / ref.latencyMs.p99, 2) };
  }
}
