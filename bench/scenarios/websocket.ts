/**
 * WebSockets through each peer to the echo backend: memory held by many idle
 * connections, and echo round trips per second over 64 busy ones. The
 * clients run in the bench process, which is pinned to the load CPUs.
 */
import WebSocket from 'ws';
import { processTree, rssMiB, round, Sampler, sleep } from '../lib/proc.ts';
import type { Latency, WsEchoRow, WsIdleRow } from '../lib/types.ts';
import type { Peer } from '../peers/index.ts';

/** Open one WebSocket; resolves when open, rejects with the handshake failure. */
export function openWs(url: string, timeoutMs = 10_000, host?: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs, ...(host !== undefined && { headers: { host } }) });
    const fail = (err: Error): void => {
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      reject(err);
    };
    ws.once('open', () => {
      ws.removeAllListeners('error');
      ws.on('error', () => undefined);
      resolve(ws);
    });
    ws.once('unexpected-response', (_req, res) => fail(new Error(`handshake answered HTTP ${res.statusCode}`)));
    ws.once('error', fail);
  });
}

/** Send one message and wait for its echo. */
export function echo(ws: WebSocket, msg: string, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.off('message', onMessage);
      reject(new Error('no echo'));
    }, timeoutMs);
    const onMessage = (): void => {
      clearTimeout(timer);
      resolve();
    };
    ws.once('message', onMessage);
    ws.send(msg);
  });
}

/** Undefined when a WebSocket round trip through the peer works, else why not. */
export async function wsGap(peer: Pick<Peer, 'kind' | 'label' | 'port'>, host?: string): Promise<string | undefined> {
  try {
    const ws = await openWs(`ws://127.0.0.1:${peer.port}/ws`, 5_000, host);
    try {
      await echo(ws, 'probe');
    } finally {
      ws.terminate();
    }
    return undefined;
  } catch (err) {
    const why = (err as Error).message;
    return peer.kind === 'pyserve' ? `the dataplane does not proxy WebSocket upgrades yet (${why})` : `WebSocket through ${peer.label} failed: ${why}`;
  }
}

/** Open `n` sockets, at most `parallel` handshakes at a time. */
async function openMany(url: string, n: number, parallel = 200): Promise<{ sockets: WebSocket[]; failed: number; firstError: string | undefined }> {
  const sockets: WebSocket[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      try {
        sockets.push(await openWs(url));
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, n) }, worker));
  return { sockets, failed, firstError };
}

export interface WsIdleOptions {
  connections: number;
  settleMs: number;
  log: (msg: string) => void;
}

/** RSS of the peer before and after holding `connections` idle WebSockets. */
export async function measureWsIdle(peer: Peer, o: WsIdleOptions): Promise<WsIdleRow> {
  const base = { server: peer.label, kind: peer.kind };
  const gap = await wsGap(peer);
  if (gap !== undefined) {
    o.log(`ws idle: ${peer.label}: not available (${gap})`);
    return { ...base, available: false, reason: gap };
  }
  await sleep(o.settleMs);
  const pids = processTree(peer.proc.pid);
  const before = rssMiB(pids);
  const { sockets, failed, firstError } = await openMany(`ws://127.0.0.1:${peer.port}/ws`, o.connections);
  let dropped = 0;
  for (const ws of sockets) ws.once('close', () => dropped++);
  await sleep(o.settleMs);
  const after = rssMiB(processTree(peer.proc.pid));
  // Idle means no traffic for the whole settle time; a connection that closed meanwhile was dropped.
  const droppedWhileIdle = dropped;
  await Promise.all(sockets.map((ws) => new Promise<void>((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.once('close', () => resolve());
    ws.terminate();
  })));
  if (failed > 0) o.log(`ws idle: ${peer.label}: ${failed} handshakes failed (${firstError})`);
  const opened = sockets.length;
  const mibPer10k = opened > 0 ? round(((after - before) / opened) * 10_000, 1) : 0;
  o.log(`ws idle: ${peer.label}: ${opened} open, RSS ${round(before, 1)} → ${round(after, 1)} MiB (${mibPer10k} MiB per 10k)`);
  return { ...base, available: true, connections: o.connections, opened, dropped: droppedWhileIdle + failed, rssBeforeMiB: round(before, 1), rssAfterMiB: round(after, 1), mibPer10k };
}

export interface WsEchoOptions {
  connections: number;
  durationS: number;
  log: (msg: string) => void;
}

/** Echo round trips per second over `connections` sockets, each keeping one message in flight. */
export async function measureWsEcho(peer: Peer, o: WsEchoOptions): Promise<WsEchoRow> {
  const base = { server: peer.label, kind: peer.kind };
  const gap = await wsGap(peer);
  if (gap !== undefined) {
    o.log(`ws echo: ${peer.label}: not available (${gap})`);
    return { ...base, available: false, reason: gap };
  }
  const { sockets, failed } = await openMany(`ws://127.0.0.1:${peer.port}/ws`, o.connections);
  const latencies: number[] = [];
  let errors = failed;
  const sampler = new Sampler(peer.proc.pid);
  sampler.start();
  const t0 = performance.now();
  const deadline = t0 + o.durationS * 1000;
  await Promise.all(sockets.map((ws) => new Promise<void>((resolve) => {
    let sentAt = 0;
    const send = (): void => {
      if (performance.now() >= deadline) return resolve();
      sentAt = performance.now();
      ws.send('hello, world!');
    };
    ws.on('message', () => {
      latencies.push(performance.now() - sentAt);
      send();
    });
    ws.once('close', () => {
      if (performance.now() < deadline) errors++;
      resolve();
    });
    send();
  })));
  const seconds = (performance.now() - t0) / 1000;
  const usage = sampler.stop();
  for (const ws of sockets) ws.terminate();
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0, 3);
  const latencyMs: Latency = { p50: at(0.5), p99: at(0.99), p999: at(0.999), max: round(latencies.at(-1) ?? 0, 3) };
  const messagesPerSec = Math.round(latencies.length / seconds);
  o.log(`ws echo: ${peer.label}: ${messagesPerSec} msg/s, p99 ${latencyMs.p99} ms`);
  return { ...base, available: true, connections: o.connections, messagesPerSec, latencyMs, cpuPercent: usage.cpuPercent, rssMiB: usage.rssMiB, errors };
}
