/**
 * wrk as the HTTP/1.1 load generator: one thread (it gets one core), a fixed
 * number of keep-alive connections, and a Lua `done` hook that prints the
 * summary and latency percentiles (p99.9 included, which `--latency` lacks)
 * as JSON.
 */
import { fileURLToPath } from 'node:url';
import { runCapture } from './proc.ts';

const REPORT_LUA = fileURLToPath(new URL('../wrk/report.lua', import.meta.url));
const STATUS_LUA = fileURLToPath(new URL('../wrk/status.lua', import.meta.url));

/** What one wrk run measured. */
export interface WrkResult {
  requests: number;
  durationS: number;
  reqPerSec: number;
  /** Socket errors plus HTTP statuses >= 400, as wrk counts them. */
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  /** Responses that were not 2xx; only counted when `countStatuses` was set. */
  non2xx?: number;
  non2xxStatuses?: string;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
}

/** Options of {@link runWrk}. */
export interface WrkOptions {
  url: string;
  connections: number;
  durationS: number;
  /** CPU list for taskset. */
  cpus?: string;
  threads?: number;
  /** Count non-2xx responses exactly (slower). */
  countStatuses?: boolean;
  headers?: Record<string, string>;
}

const ms = (us: number): number => Math.round(us) / 1000;

/** Run wrk and parse its JSON line. Throws when wrk fails or prints none. */
export async function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [
    '-t', String(o.threads ?? 1),
    '-c', String(o.connections),
    '-d', `${o.durationS}s`,
    // Longer than any sane response here: a timeout should show up as a latency, not vanish.
    '--timeout', '10s',
    '-s', o.countStatuses === true ? STATUS_LUA : REPORT_LUA,
    // wrk adds its own Host unless one named exactly "Host" is given; any other
    // spelling would send two, which a proxy must refuse.
    ...Object.entries(o.headers ?? {}).flatMap(([k, v]) => ['-H', `${k.toLowerCase() === 'host' ? 'Host' : k}: ${v}`]),
    o.url,
  ];
  const { stdout, stderr, code } = await runCapture('wrk', args, { cpus: o.cpus, timeoutMs: (o.durationS + 30) * 1000 });
  const line = stdout.split('\n').find((l) => l.startsWith('WRKJSON '));
  if (code !== 0 || line === undefined) throw new Error(`wrk ${args.join(' ')} failed (exit ${code}): ${stderr}${stdout}`);
  const raw = JSON.parse(line.slice(8)) as {
    requests: number; durationUs: number; non2xx?: number; non2xxStatuses?: string;
    errors: WrkResult['errors'];
    latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  };
  const durationS = raw.durationUs / 1e6;
  const l = raw.latencyUs;
  return {
    requests: raw.requests,
    durationS: Math.round(durationS * 1000) / 1000,
    reqPerSec: Math.round(raw.requests / durationS),
    errors: raw.errors,
    ...(raw.non2xx !== undefined && { non2xx: raw.non2xx, non2xxStatuses: raw.non2xxStatuses?.trim() ?? '' }),
    latencyMs: { p50: ms(l.p50), p90: ms(l.p90), p99: ms(l.p99), p999: ms(l.p999), max: ms(l.max), mean: ms(l.mean) },
  };
}

/** Socket-level failures of a run (not HTTP statuses). */
export function socketErrors(r: WrkResult): number {
  return r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout;
}
