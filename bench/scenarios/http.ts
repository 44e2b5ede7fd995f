/**
 * The per-server measurements. HTTP/1.1 keep-alive throughput and latency:
 * wrk through the proxied (13 B, 16 KiB), direct and 404 paths, each after a
 * warm-up run that is thrown away so JITs and pools are warm. These rows run
 * in rounds: every server is measured once per round, in turn, and a row
 * reports the medians of its rounds, so a slow phase of a shared machine falls
 * on every server rather than on whichever ran during it.
 */
import { runWrk, socketErrors } from '../lib/wrk.ts';
import { Sampler, round } from '../lib/proc.ts';
import { alternate, median } from '../lib/rounds.ts';
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
  /** Alternating rounds of the HTTP/1.1 rows (at least 1). */
  rounds: number;
  /** Length of one HTTP/1.1 measurement in one round. */
  roundS: number;
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
 * HTTP/1.1 first: every available server runs at once (idle ones cost no
 * CPU) and each round measures them in turn, starting one server later each
 * round. Then, one server at a time: TLS + HTTP/2 and WebSocket echo, and idle
 * WebSockets on a fresh start of the same server, so neither run's memory
 * colours the other's.
 */
export async function runPeers(env: BenchEnv, servers: readonly ServerSpec[], o: PeerRunOptions): Promise<PeerResults> {
  const out: PeerResults = { http: [], h2: [], wsIdle: [], wsEcho: [] };
  const skip = (spec: ServerSpec, reason: string): void => {
    const base = { server: spec.label, kind: spec.kind };
    o.log(`${spec.label}: not available (${reason})`);
    for (const scenario of HTTP_SCENARIOS) out.http.push({ ...base, workers: spec.workers, scenario, available: false, reason });
    if (o.httpOnly === true || spec.httpOnly === true) return;
    out.h2.push({ ...base, available: false, reason });
    out.wsIdle.push({ ...base, available: false, reason });
    out.wsEcho.push({ ...base, available: false, reason });
  };
  const start = async (spec: ServerSpec): Promise<Peer | undefined> => {
    try {
      const peer = await startPeer(spec.kind, env, { workers: spec.workers, accessLog: spec.accessLog });
      // The spec's label: it tells variants of one server apart (access log on).
      peer.label = spec.label;
      return peer;
    } catch (err) {
      if (!(err instanceof NotAvailable)) throw err;
      skip(spec, err.message);
      return undefined;
    }
  };

  const running: { spec: ServerSpec; peer: Peer }[] = [];
  try {
    for (const spec of servers) {
      if (spec.unavailable !== undefined) {
        skip(spec, spec.unavailable);
        continue;
      }
      const peer = await start(spec);
      if (peer !== undefined) running.push({ spec, peer });
    }
    const rounds = Math.max(1, o.rounds);
    const measured = await alternate(rounds, running, async ({ peer }) => {
      const rows: HttpRow[] = [];
      for (const scenario of HTTP_SCENARIOS) {
        // Warm before every round, not only the first: a JIT-compiled server
        // cools down while the others take their turns. PyServe after 60 s
        // idle served its first ~0.5 s at a quarter of its speed, some
        // requests taking 150-340 ms (nginx: no change), most likely what
        // put its p99 at 41 ms in a round that followed its longest wait
        // (What limits, item 19).
        rows.push(await measureHttp(peer, env, scenario, o));
      }
      return rows;
    });
    for (const entry of running) {
      const { peer } = entry;
      for (let i = 0; i < HTTP_SCENARIOS.length; i++) {
        const row = medianRow(measured.get(entry)!.map((rows) => rows[i]!));
        out.http.push(peer.accessLog !== undefined && row.available ? { ...row, accessLog: peer.accessLog } : row);
      }
    }
  } finally {
    await Promise.all(running.map(({ peer }) => peer.stop()));
  }

  for (const { spec } of running) {
    if (o.httpOnly === true || spec.httpOnly === true) continue;
    const peer = await start(spec);
    if (peer === undefined) continue;
    try {
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

/**
 * One row for several rounds of the same server and scenario: the medians of
 * throughput, latency and CPU, the highest RSS (the peak under load is what a
 * memory limit has to hold), error counts summed; each round's figures kept.
 */
export function medianRow(rows: readonly HttpRow[]): HttpRow {
  const ran = rows.filter((r): r is Extract<HttpRow, { available: true }> => r.available);
  if (ran.length === 0) return rows[0]!;
  if (ran.length === 1) return ran[0]!;
  const med = (f: (r: (typeof ran)[number]) => number): number => median(ran.map(f));
  const first = ran[0]!;
  return {
    ...first,
    reqPerSec: med((r) => r.reqPerSec),
    latencyMs: { p50: med((r) => r.latencyMs.p50), p99: med((r) => r.latencyMs.p99), p999: med((r) => r.latencyMs.p999), max: Math.max(...ran.map((r) => r.latencyMs.max)) },
    cpuPercent: med((r) => r.cpuPercent),
    rssMiB: Math.max(...ran.map((r) => r.rssMiB)),
    socketErrors: ran.reduce((n, r) => n + r.socketErrors, 0),
    errorStatuses: ran.reduce((n, r) => n + r.errorStatuses, 0),
    cpuBusyPercent: first.cpuBusyPercent.map((_, i) => med((r) => r.cpuBusyPercent[i] ?? 0)),
    rounds: ran.map((r) => ({ reqPerSec: r.reqPerSec, p99: r.latencyMs.p99, rssMiB: r.rssMiB })),
  };
}

async function measureHttp(peer: Peer, env: BenchEnv, scenario: HttpScenario, o: PeerRunOptions): Promise<HttpRow> {
  const url = `http://127.0.0.1:${peer.port}${PATHS[scenario]}`;
  if (o.warmupS > 0) await runWrk({ url, connections: o.connections, durationS: o.warmupS, cpus: env.loadCpus });
  const sampler = new Sampler(peer.proc.pid);
  sampler.start();
  const r = await runWrk({ url, connections: o.connections, durationS: o.roundS, cpus: env.loadCpus });
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
