/**
 * TLS with HTTP/2 through h2load: 64 connections, one stream each (the same
 * concurrency as the HTTP/1.1 runs), the proxied 13-byte response. h2load
 * prints no percentiles, so they come from its per-request log file.
 */
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Sampler, round, runCapture } from '../lib/proc.ts';
import type { H2Row, Latency } from '../lib/types.ts';
import { pyserveFeatures } from '../peers/index.ts';
import type { BenchEnv, Peer } from '../peers/index.ts';

export interface H2Options {
  connections: number;
  durationS: number;
  warmupS: number;
  log: (msg: string) => void;
}

/** Why PyServe has no TLS row, judged from the dataplane's own usage text. */
export async function pyserveTlsGap(): Promise<string> {
  const f = await pyserveFeatures();
  return f.https ? 'the HTTPS listener did not start' : 'the dataplane has no TLS or HTTP/2 listener yet';
}

/** One h2load run against a started peer; undefined when it has no TLS listener. */
export async function measureH2(peer: Peer, env: BenchEnv, o: H2Options): Promise<H2Row> {
  const base = { server: peer.label, kind: peer.kind };
  if (peer.tlsPort === undefined) {
    const reason = peer.kind === 'pyserve' ? await pyserveTlsGap() : 'no TLS listener';
    o.log(`h2: ${peer.label}: not available (${reason})`);
    return { ...base, available: false, reason };
  }
  const logFile = path.join(env.dir, `h2load-${peer.kind}.log`);
  const args = [
    '-c', String(o.connections), '-m', '1', '-t', '1',
    '-D', String(o.durationS),
    ...(o.warmupS > 0 ? [`--warm-up-time=${o.warmupS}`] : []),
    `--log-file=${logFile}`,
    `https://127.0.0.1:${peer.tlsPort}/small`,
  ];
  const sampler = new Sampler(peer.proc.pid);
  sampler.start();
  const { stdout, stderr, code } = await runCapture('h2load', args, { cpus: env.loadCpus, timeoutMs: (o.durationS + o.warmupS + 30) * 1000 });
  const usage = sampler.stop();
  const protocol = stdout.match(/Application protocol: (\S+)/)?.[1];
  if (code !== 0 || protocol !== 'h2') {
    // Reported rather than thrown: a listener that cannot do h2 yet should not stop the other rows.
    const reason = code !== 0 ? `h2load failed (exit ${code}): ${(stderr + stdout).trim().split('\n').slice(-3).join(' ')}` : `TLS listener negotiated ${protocol ?? 'no protocol'}, not h2`;
    o.log(`h2: ${peer.label}: ${reason}`);
    rmSync(logFile, { force: true });
    return { ...base, available: false, reason };
  }
  const parsed = parseH2load(stdout);
  const latencyMs = percentilesFromLog(logFile);
  rmSync(logFile, { force: true });
  o.log(`h2: ${peer.label}: ${parsed.reqPerSec} req/s, p99 ${latencyMs.p99} ms, ${parsed.failed} failed`);
  return { ...base, available: true, reqPerSec: parsed.reqPerSec, latencyMs, succeeded: parsed.succeeded, failed: parsed.failed, cpuPercent: usage.cpuPercent, rssMiB: usage.rssMiB };
}

/** Ratios against nginx's row. */
export function addH2Ratios(rows: H2Row[]): void {
  const ref = rows.find((r) => r.kind === 'nginx');
  for (const row of rows) {
    if (!row.available || row.kind === 'nginx' || ref === undefined || !ref.available) continue;
    row.vsNginx = { throughput: round(row.reqPerSec / ref.reqPerSec, 2), p99: round(row.latencyMs.p99 / ref.latencyMs.p99, 2) };
  }
}

/** The summary lines of h2load's output. */
export function parseH2load(out: string): { reqPerSec: number; succeeded: number; failed: number } {
  const rps = out.match(/finished in [\d.]+\w+, ([\d.]+) req\/s/);
  const req = out.match(/requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/);
  if (!rps || !req) throw new Error(`cannot parse h2load output:\n${out}`);
  return { reqPerSec: Math.round(Number(rps[1])), succeeded: Number(req[4]), failed: Number(req[5]) + Number(req[6]) + Number(req[7]) };
}

/** Percentiles from h2load's log: start (µs since epoch) \t status \t duration (µs). */
function percentilesFromLog(file: string): Latency {
  const durations: number[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const us = Number(line.split('\t')[2]);
    if (Number.isFinite(us) && line !== '') durations.push(us);
  }
  durations.sort((a, b) => a - b);
  const at = (q: number): number => round((durations[Math.min(durations.length - 1, Math.floor(q * durations.length))] ?? 0) / 1000, 3);
  return { p50: at(0.5), p99: at(0.99), p999: at(0.999), max: round((durations.at(-1) ?? 0) / 1000, 3) };
}
