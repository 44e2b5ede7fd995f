/**
 * The throughput ladder of docs/benchmarks.md ("What limits PyServe today"):
 * `node bench/ladder.ts [--rounds 5] [--seconds 4]`. Each rung is a server on
 * the bench's server CPU, loaded by wrk (64 connections) on the load CPU, with
 * the bench's nginx backend there too; rungs run in alternation round after
 * round and medians are printed, so machine noise falls on all alike:
 *
 *   node:http, canned 13 B         PyServe's h1 server, canned 13 B
 *   node:http + h1 client, proxy   h1 server + h1 client, proxy
 *   the whole dataplane (compiled, --access-log off), proxy
 *
 * The distance between the last two rungs is what PyServe's request path
 * (routing, header rewriting, metrics, request ids, proxy bookkeeping) costs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { applySnapshot } from '../test/helpers/snapshots.ts';
import { freePorts, startProc, waitForPort } from './lib/proc.ts';
import type { Proc } from './lib/proc.ts';
import { runWrk, socketErrors } from './lib/wrk.ts';
import { alternate, median } from './lib/rounds.ts';
import { benchNodeFlags, chartDataplaneEnv, dataplaneMain, makeCertificate, PYSERVE_TOKEN, pyserveSnapshot, startBackends } from './peers/index.ts';
import type { BenchEnv } from './peers/index.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '2' },
  },
});

const RUNG = fileURLToPath(new URL('./ladder/rung.ts', import.meta.url));
const RUNGS = ['node-canned', 'h1-canned', 'node-proxy', 'h1-proxy', 'dataplane'] as const;
type Rung = (typeof RUNGS)[number];

const main = dataplaneMain();
const root = path.dirname(path.dirname(main));
const dir = mkdtempSync(path.join(tmpdir(), 'pyserve-ladder-'));
const ports = await freePorts(2);
const env: BenchEnv = { dir, serverCpus: '1', loadCpus: '0', backendPorts: [ports[0]!], wsPort: ports[1]!, largeFile: path.join(dir, 'large.bin'), ...makeCertificate(dir) };
const backend = env.backendPorts[0]!;

/** Start a rung; resolves with its process and the port to load. */
async function start(rung: Rung): Promise<{ proc: Proc; port: number }> {
  const [port, adminPort] = await freePorts(2);
  if (rung !== 'dataplane') {
    const proc = startProc(rung, process.execPath, [...benchNodeFlags(), RUNG, rung, String(port), String(backend), root], { cpus: env.serverCpus, env: chartDataplaneEnv() });
    await waitForPort(port!, proc);
    return { proc, port: port! };
  }
  const proc = startProc(rung, process.execPath, [
    ...benchNodeFlags(), main, '--host', '127.0.0.1', '--traffic-port', String(port), '--admin-host', '127.0.0.1', '--admin-port', String(adminPort),
    // Explicit: another dataplane on this machine may hold the default HTTPS port.
    '--https-port', '0', '--workers', '1',
    '--log-level', 'warn', '--access-log', 'off',
  ], { cpus: env.serverCpus, env: { ...chartDataplaneEnv(), PYSERVE_ADMIN_TOKEN: PYSERVE_TOKEN }, stdout: '/dev/null' });
  await waitForPort(adminPort!, proc);
  await applySnapshot(`http://127.0.0.1:${adminPort}`, pyserveSnapshot(1, env, backend), { token: PYSERVE_TOKEN });
  await waitForPort(port!, proc);
  return { proc, port: port! };
}

const backends = await startBackends(env);
let results: Map<Rung, number[]>;
try {
  results = await alternate(Number(values.rounds), RUNGS, async (rung, round) => {
    const { proc, port } = await start(rung);
    try {
      // The canned rungs answer any path; the others proxy /small to the backend's 13 bytes.
      const url = `http://127.0.0.1:${port}/small`;
      await runWrk({ url, connections: 64, durationS: Number(values.warmup), cpus: env.loadCpus });
      const r = await runWrk({ url, connections: 64, durationS: Number(values.seconds), cpus: env.loadCpus });
      if (socketErrors(r) + r.errors.status > 0) throw new Error(`${rung}: ${JSON.stringify(r.errors)}`);
      process.stderr.write(`round ${round + 1} ${rung}: ${r.reqPerSec} req/s\n`);
      return r.reqPerSec;
    } finally {
      await proc.stop();
    }
  });
} finally {
  await backends.stop();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`\nmedians over ${values.rounds} rounds (req/s):`);
for (const [rung, list] of results) console.log(`  ${rung.padEnd(12)} ${String(median(list)).padStart(7)}   (${list.join(', ')})`);
