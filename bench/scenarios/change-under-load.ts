/**
 * Change under load: two wrk streams run against the PyServe dataplane, one
 * on routes that get edited and one on an unrelated virtual host, while 20
 * route edits and 50 endpoint changes are pushed. Every response must be a
 * 2xx and no socket may fail. Endpoint changes move clusters between the
 * backend's ports, including removing the endpoint a pool is busy with, so
 * the graceful pool close is exercised for real.
 */
import { applySnapshot, direct, forward, prefix, snapshot, vhost } from '../../test/helpers/snapshots.ts';
import type { Endpoint, Route, Snapshot } from '../../dataplane/snapshot/schema.ts';
import { freePorts, sleep, waitForPort } from '../lib/proc.ts';
import type { ChangeUnderLoad, LoadStream } from '../lib/types.ts';
import { runWrk, socketErrors } from '../lib/wrk.ts';
import type { WrkResult } from '../lib/wrk.ts';
import { PYSERVE_TOKEN, startPyServeProcess } from '../peers/index.ts';
import type { BenchEnv } from '../peers/index.ts';
import { echo, openWs, wsGap } from './websocket.ts';

export interface ChangeOptions {
  durationS: number;
  connections: number;
  routeEdits: number;
  endpointChanges: number;
  wsConnections: number;
  log: (msg: string) => void;
}

const ep = (port: number): Endpoint => ({ address: '127.0.0.1', port, ready: true, serving: true, terminating: false });

/**
 * The snapshot after `edits` route edits and `moves` endpoint changes. Edits
 * cycle through what operators change: weights between two clusters, an
 * added route, per-route timeouts, route order. Endpoint changes rotate which
 * backend ports each cluster has (always at least one).
 */
export function changeSnapshot(generation: number, edits: number, moves: number, ports: readonly number[], wsPort: number): Snapshot {
  const kind = edits % 4;
  const weightA = kind === 0 ? 1 : 1 + (edits % 3);
  const edited: Route[] = [
    forward('edited/main', prefix('/e'), [['edited-a', weightA], ['edited-b', edits % 2 === 0 ? 1 : 2]],
      kind === 2 ? { upstreamResponseMs: 30_000 + edits } : undefined),
  ];
  const extra: Route[] = Array.from({ length: kind === 1 ? 1 + (edits % 5) : 0 }, (_, i) => direct(`edited/extra-${i}`, prefix(`/x${i}`), 200, `v${edits}`));
  const routes = kind === 3 ? [...extra, ...edited] : [...edited, ...extra];
  routes.push(forward('ws', prefix('/ws'), 'ws'));
  const pick = (offset: number, count: number): Endpoint[] =>
    Array.from({ length: count }, (_, i) => ep(ports[(moves + offset + i) % ports.length]!));
  return snapshot(generation, [
    vhost('edited', ['edited.bench'], routes),
    vhost('stable', ['stable.bench'], [forward('stable', prefix('/'), 'stable')]),
  ], {
    'edited-a': pick(0, 1 + (moves % 2)),
    'edited-b': pick(1, 1),
    stable: pick(2, 1 + (moves % 3 === 0 ? 1 : 0)),
    ws: [ep(wsPort)],
  });
}

function stream(target: string, r: WrkResult): LoadStream {
  return {
    target,
    requests: r.requests,
    reqPerSec: r.reqPerSec,
    non2xx: r.non2xx ?? 0,
    non2xxStatuses: r.non2xxStatuses ?? '',
    socketErrors: socketErrors(r),
    latencyMs: { p50: r.latencyMs.p50, p99: r.latencyMs.p99, p999: r.latencyMs.p999, max: r.latencyMs.max },
  };
}

export async function runChangeUnderLoad(env: BenchEnv, o: ChangeOptions): Promise<ChangeUnderLoad> {
  const [trafficPort, adminPort] = await freePorts(2);
  const proc = await startPyServeProcess(env.serverCpus, trafficPort!, adminPort!);
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const push = (s: Snapshot): Promise<unknown> => applySnapshot(adminUrl, s, { token: PYSERVE_TOKEN });
  try {
    await waitForPort(adminPort!, proc);
    let generation = 1;
    let edits = 0;
    let moves = 0;
    await push(changeSnapshot(generation, edits, moves, env.backendPorts, env.wsPort));
    await waitForPort(trafficPort!, proc);
    const url = `http://127.0.0.1:${trafficPort}`;

    // Long-lived WebSockets across 20 of the changes, where the dataplane proxies them.
    const gap = await wsGap({ kind: 'pyserve', label: 'PyServe', port: trafficPort! }, 'edited.bench');
    const sockets = gap === undefined ? await Promise.all(Array.from({ length: o.wsConnections }, () => openWs(`ws://127.0.0.1:${trafficPort}/ws`, 10_000, 'edited.bench'))) : [];
    let wsDropped = 0;
    for (const ws of sockets) ws.once('close', () => wsDropped++);

    const half = Math.max(1, Math.floor(o.connections / 2));
    const loads = Promise.all([
      runWrk({ url: `${url}/e/item`, headers: { host: 'edited.bench' }, connections: half, durationS: o.durationS, cpus: env.loadCpus, countStatuses: true }),
      runWrk({ url: `${url}/s/item`, headers: { host: 'stable.bench' }, connections: half, durationS: o.durationS, cpus: env.loadCpus, countStatuses: true }),
    ]);
    // Spread the changes over the middle 80% of the run so all of them happen under load.
    const total = o.routeEdits + o.endpointChanges;
    const gapMs = (o.durationS * 1000 * 0.8) / total;
    await sleep(o.durationS * 100);
    let wsChanges = 0;
    for (let i = 0; i < total; i++) {
      // Interleave: one route edit after every few endpoint changes.
      const isEdit = edits < o.routeEdits && (moves >= o.endpointChanges || (i * o.routeEdits) / total >= edits);
      if (isEdit) edits++;
      else moves++;
      generation++;
      await push(changeSnapshot(generation, edits, moves, env.backendPorts, env.wsPort));
      if (wsChanges < 20) wsChanges++;
      await sleep(gapMs);
    }
    const [editedRun, stableRun] = await loads;
    // Each surviving socket must still echo: open is not enough.
    let wsEchoFailures = 0;
    await Promise.all(sockets.map((ws) => echo(ws, 'still here').catch(() => void wsEchoFailures++)));
    for (const ws of sockets) ws.terminate();

    const edited = stream('edited.bench /e/item (routes edited)', editedRun);
    const unrelated = stream('stable.bench /s/item (unrelated vhost)', stableRun);
    const result: ChangeUnderLoad = {
      routeEdits: edits,
      endpointChanges: moves,
      durationS: o.durationS,
      edited,
      unrelated,
      totalFailures: edited.non2xx + edited.socketErrors + unrelated.non2xx + unrelated.socketErrors,
      websockets: gap === undefined
        ? { available: true, connections: sockets.length, configChanges: wsChanges, dropped: Math.max(wsDropped, wsEchoFailures) }
        : { available: false, reason: gap },
    };
    o.log(`change under load: ${edits} route edits + ${moves} endpoint changes; edited ${edited.requests} req (${edited.non2xx} non-2xx, ${edited.socketErrors} socket errors), unrelated ${unrelated.requests} req (${unrelated.non2xx} non-2xx, ${unrelated.socketErrors} socket errors)`);
    return result;
  } finally {
    await proc.stop();
  }
}
