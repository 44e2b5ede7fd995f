/**
 * Control plane at scale: translate time and memory for generated clusters
 * (each size in a fresh process), then the dataplane's snapshot apply time
 * and RSS for the same snapshots, full and endpoints-only.
 */
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { buildSnapshot } from '../../dataplane/snapshot/build.ts';
import type { Snapshot } from '../../dataplane/snapshot/schema.ts';
import { freePorts, processTree, round, rssMiB, runCapture, sleep, waitForPort } from '../lib/proc.ts';
import type { ApplyRow, TranslateRow } from '../lib/types.ts';
import { PYSERVE_TOKEN, startPyServeProcess } from '../peers/index.ts';
import type { BenchEnv } from '../peers/index.ts';

const CHILD = fileURLToPath(new URL('./translate-child.ts', import.meta.url));

export interface ControlPlaneOptions {
  sizes: number[];
  /** Translate runs per size after the first. */
  runs: number;
  log: (msg: string) => void;
}

export async function runControlPlane(env: BenchEnv, o: ControlPlaneOptions): Promise<{ translate: TranslateRow[]; apply: ApplyRow[] }> {
  const translate: TranslateRow[] = [];
  const apply: ApplyRow[] = [];
  for (const n of o.sizes) {
    const file = path.join(env.dir, `snapshot-${n}.json`);
    // Pinned like a controller pod with one core; --expose-gc lets the child settle its heap before reading RSS.
    const { stdout, stderr, code } = await runCapture(process.execPath, ['--expose-gc', CHILD, String(n), String(o.runs + 1), file], { cpus: env.serverCpus, timeoutMs: 300_000 });
    if (code !== 0) throw new Error(`translate child for ${n} failed (${code}): ${stderr}`);
    const row = JSON.parse(stdout.trim().split('\n').pop()!) as TranslateRow & { failures: number };
    if (row.failures !== 0) throw new Error(`generated cluster of ${n} Ingresses translated with ${row.failures} failures`);
    const { failures: _f, ...clean } = row;
    translate.push(clean);
    o.log(`translate: ${n} Ingresses → ${row.routes} routes: first ${row.firstMs} ms, median ${row.medianMs} ms, RSS ${row.rssMiB} MiB`);
    const a = await measureApply(env, n, file);
    apply.push(a);
    o.log(`apply: ${n} Ingresses (${a.snapshotBytes} bytes): full ${a.fullApplyMs} ms, endpoints-only ${a.endpointsOnlyApplyMs} ms, routing as its hash ${a.routingAsHashApplyMs} ms, dataplane RSS ${a.rssMiB} MiB`);
    rmSync(file, { force: true });
  }
  return { translate, apply };
}

async function put(adminUrl: string, body: string): Promise<number> {
  const t0 = performance.now();
  const res = await request(`${adminUrl}/v1/snapshot`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${PYSERVE_TOKEN}`, 'content-type': 'application/json' },
    body,
  });
  const text = await res.body.text();
  const ms = performance.now() - t0;
  if (res.statusCode !== 200) throw new Error(`snapshot refused: ${res.statusCode} ${text.slice(0, 500)}`);
  return round(ms, 1);
}

/** A fresh dataplane per size, so its RSS is that of one snapshot. */
async function measureApply(env: BenchEnv, n: number, file: string): Promise<ApplyRow> {
  const body = readFileSync(file, 'utf8');
  const [trafficPort, adminPort] = await freePorts(2);
  const proc = await startPyServeProcess(env.serverCpus, trafficPort!, adminPort!);
  try {
    await waitForPort(adminPort!, proc);
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    const fullApplyMs = await put(adminUrl, body);
    // One endpoint turns not-ready: a typical EndpointSlice update, routing unchanged.
    const snap = JSON.parse(body) as Snapshot;
    const { hash: _rh, ...routing } = snap.routing;
    const { hash: _eh, ...endpoints } = snap.endpoints;
    const first = endpoints.clusters[0]?.endpoints[0];
    if (first !== undefined) first.ready = false;
    const endpointsOnlyApplyMs = await put(adminUrl, JSON.stringify(buildSnapshot(snap.generation + 1, routing, endpoints)));
    // The next such update as the controller's pusher sends it to a dataplane
    // that serves the routing already: the routing section as just its hash.
    if (first !== undefined) first.ready = true;
    const next = buildSnapshot(snap.generation + 2, routing, endpoints);
    const routingAsHashApplyMs = await put(adminUrl, JSON.stringify({ ...next, routing: { hash: next.routing.hash } }));
    await sleep(200);
    const rss = round(rssMiB(processTree(proc.pid)), 1);
    const row: ApplyRow = { ingresses: n, snapshotBytes: Buffer.byteLength(body), fullApplyMs, endpointsOnlyApplyMs, routingAsHashApplyMs, rssMiB: rss };
    await waitForPort(trafficPort!, proc);
    return row;
  } finally {
    await proc.stop();
  }
}
