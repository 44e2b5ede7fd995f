/**
 * A warm-up run that ends cleanly. wrk stops at the end of its duration by
 * closing every connection with a request in flight; a JIT-compiled server
 * (PyServe) then runs its abort path on 64 connections at once, V8 drops the
 * optimized code of ~25 functions that path shares with the request path
 * (docs/benchmarks.md items 19 and 20), and a measured run that starts right
 * after spends its first ~200 ms recompiling them. So the bench warms every
 * server with this instead: `connections` keep-alive connections send wrk's
 * own request (request line and Host only, so the server meets the same
 * header set as in the measured run) back to back for `seconds`, then each
 * waits for its last response and closes with a FIN.
 *
 * Run on the load CPUs as `node bench/lib/warm-up.ts URL SECONDS CONNECTIONS`;
 * prints `{"requests":N,"errors":N}`.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { runCapture } from './proc.ts';

/** Requests answered and connections that failed (closed early, or a response not understood). */
export interface WarmUpResult {
  requests: number;
  errors: number;
}

/** Bytes of the next whole response at the start of `buf`, or -1 while it is incomplete. */
export function responseLength(buf: Buffer): number {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return -1;
  const head = buf.toString('latin1', 0, end).toLowerCase();
  const length = /\r\ncontent-length: *(\d+)/.exec(head);
  if (length !== null) {
    const total = end + 4 + Number(length[1]);
    return buf.length >= total ? total : -1;
  }
  if (!/\r\ntransfer-encoding: *chunked/.test(head)) throw new Error(`a response framed neither by Content-Length nor chunked: ${head.split('\r\n')[0]}`);
  let at = end + 4;
  for (;;) {
    const line = buf.indexOf('\r\n', at);
    if (line < 0) return -1;
    const size = parseInt(buf.toString('latin1', at, line), 16);
    if (Number.isNaN(size)) throw new Error('a malformed chunk size');
    if (size === 0) {
      // No trailers: the last chunk is followed by the empty line.
      return buf.length >= line + 4 ? line + 4 : -1;
    }
    at = line + 2 + size + 2;
    if (buf.length < at) return -1;
  }
}

export function warmUp(url: string, seconds: number, connections: number): Promise<WarmUpResult> {
  const u = new URL(url);
  const request = `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`;
  const stopAt = Date.now() + seconds * 1000;
  const result: WarmUpResult = { requests: 0, errors: 0 };
  const one = (): Promise<void> => new Promise((resolve) => {
    const socket: Socket = connect(Number(u.port), u.hostname);
    let buf: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (failed: boolean): void => {
      if (done) return;
      done = true;
      if (failed) result.errors++;
      socket.destroy();
      resolve();
    };
    socket.on('connect', () => socket.write(request));
    socket.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      try {
        for (let n = responseLength(buf); n >= 0; n = responseLength(buf)) {
          buf = buf.subarray(n);
          result.requests++;
          if (Date.now() < stopAt) {
            socket.write(request);
          } else {
            // Nothing in flight: a FIN, then wait for the server's.
            socket.end();
            return;
          }
        }
      } catch {
        finish(true);
      }
    });
    // The server's FIN is the answer to ours; before it, the server gave up on the connection.
    socket.on('end', () => finish(!socket.writableEnded));
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(!socket.writableEnded));
  });
  return Promise.all(Array.from({ length: connections }, one)).then(() => result);
}

/** Options of {@link runWarmUp}. */
export interface WarmUpOptions {
  url: string;
  connections: number;
  durationS: number;
  /** CPU list for taskset: the load CPUs. */
  cpus?: string;
}

/** The warm-up as a child process on the load CPUs, as wrk would run there. */
export async function runWarmUp(o: WarmUpOptions): Promise<WarmUpResult> {
  const { stdout, stderr, code } = await runCapture(process.execPath, [fileURLToPath(import.meta.url), o.url, String(o.durationS), String(o.connections)], {
    cpus: o.cpus,
    timeoutMs: (o.durationS + 30) * 1000,
  });
  if (code !== 0) throw new Error(`warm-up of ${o.url} exited with ${code}: ${stderr.trim()}`);
  const r = JSON.parse(stdout) as WarmUpResult;
  if (r.requests === 0) throw new Error(`warm-up of ${o.url}: no response (${r.errors} connections failed)`);
  return r;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [url, seconds, connections] = process.argv.slice(2);
  if (url === undefined) throw new Error('usage: node bench/lib/warm-up.ts URL SECONDS CONNECTIONS');
  const r = await warmUp(url, Number(seconds ?? 3), Number(connections ?? 64));
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
