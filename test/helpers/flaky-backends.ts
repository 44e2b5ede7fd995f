/**
 * Backends whose behaviour a test changes while they run: they answer
 * normally, return 5xx, slow down, hang, reset the connection, or stop
 * listening and come back on the same port. Health-check probes (requests
 * for `healthPath`) have their own behaviour and are counted apart from
 * traffic. Traffic responses are echo bodies like those of backends.ts
 * (`echoed()` reads them) plus an `x-backend` header.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Endpoint } from '../../dataplane/snapshot/schema.ts';

/** How a flaky backend answers; change it with {@link FlakyBackend.set}. */
export interface Behaviour {
  /** Status of traffic responses. Default 200. */
  status: number;
  /** Delay before a traffic response head, ms. Default 0. */
  delayMs: number;
  /** Never answer traffic (the socket stays open). */
  hang: boolean;
  /** Destroy the connection instead of answering traffic (a reset before the response head). */
  reset: boolean;
  /** Status of health-check responses. Default 200. */
  healthStatus: number;
  /** Delay before a health-check response, ms. Default 0. */
  healthDelayMs: number;
  /** Never answer health checks. */
  healthHang: boolean;
}

/** What the backend saw of one request. */
export interface SeenRequest {
  backend: string;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bodyBytes: number;
  bodySha256: string;
  /** `Date.now()` when the head arrived. */
  at: number;
}

/** A health-check probe the backend answered (or not). */
export interface SeenProbe {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** `Date.now()` when the probe arrived. */
  at: number;
  /** Status it was (or will be) answered with; undefined when it hung. */
  status: number | undefined;
}

/** A running flaky backend. */
export interface FlakyBackend {
  readonly name: string;
  readonly port: number;
  readonly healthPath: string;
  /** Current behaviour (read only; change with `set`). */
  readonly behaviour: Readonly<Behaviour>;
  /** Traffic requests (anything but `healthPath`), in order of arrival. */
  readonly requests: SeenRequest[];
  /** Health-check probes, in order of arrival. */
  readonly probes: SeenProbe[];
  /** Traffic requests being handled now. */
  readonly inFlight: number;
  /** Most traffic requests ever handled at once. */
  readonly maxInFlight: number;
  /** Change the behaviour (only the fields given). */
  set(b: Partial<Behaviour>): void;
  /** Answer the next probes with these statuses, in order, before `healthStatus` applies again. */
  queueProbeStatuses(...statuses: number[]): void;
  /** Snapshot endpoint for this backend. */
  endpoint(overrides?: Partial<Endpoint>): Endpoint;
  /** Stop listening and cut every connection: connections to the port are refused. */
  stop(): Promise<void>;
  /** Listen again on the same port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

const DEFAULTS: Behaviour = { status: 200, delayMs: 0, hang: false, reset: false, healthStatus: 200, healthDelayMs: 0, healthHang: false };

/** Start a flaky backend on 127.0.0.1:0 (or `port`). */
export async function startFlakyBackend(name: string, opts: Partial<Behaviour> & { healthPath?: string; port?: number } = {}): Promise<FlakyBackend> {
  const { healthPath = '/healthz', port: wantedPort = 0, ...initial } = opts;
  const behaviour: Behaviour = { ...DEFAULTS, ...initial };
  const requests: SeenRequest[] = [];
  const probes: SeenProbe[] = [];
  const sockets = new Set<Socket>();
  const probeScript: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let listening = false;

  const server: Server = createServer((req, res) => {
    const at = Date.now();
    const path = (req.url ?? '/').split('?')[0];
    if (path === healthPath) {
      const scripted = probeScript.shift();
      const hang = scripted === undefined && behaviour.healthHang;
      const status = scripted ?? behaviour.healthStatus;
      probes.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, at, status: hang ? undefined : status });
      req.resume();
      if (hang) return;
      const answer = (): void => {
        if (!res.destroyed) res.writeHead(status, { 'content-type': 'text/plain', 'content-length': 2 }).end('hc');
      };
      if (scripted === undefined && behaviour.healthDelayMs > 0) setTimeout(answer, behaviour.healthDelayMs);
      else answer();
      return;
    }
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      inFlight--;
    };
    res.once('close', finish);
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
    });
    req.once('end', () => {
      const record: SeenRequest = { backend: name, method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes: bytes, bodySha256: hash.digest('hex'), at };
      requests.push(record);
      // Read the behaviour when the request arrives, so a change applies to later requests only.
      const { status, delayMs, hang, reset } = behaviour;
      if (reset) {
        req.socket.destroy();
        return;
      }
      if (hang) return;
      const send = (): void => {
        if (res.destroyed) return;
        const body = JSON.stringify(record);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-backend': name });
        res.end(body);
      };
      if (delayMs > 0) setTimeout(send, delayMs);
      else send();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });

  const listen = (p: number): Promise<void> => new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(p, '127.0.0.1', () => {
      server.off('error', reject);
      listening = true;
      resolve();
    });
  });
  const stop = (): Promise<void> => new Promise((resolve) => {
    if (!listening) {
      resolve();
      return;
    }
    listening = false;
    server.close(() => resolve());
    for (const s of sockets) s.destroy();
    server.closeAllConnections();
  });

  await listen(wantedPort);
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    healthPath,
    behaviour,
    requests,
    probes,
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    set: (b) => Object.assign(behaviour, b),
    queueProbeStatuses: (...statuses) => probeScript.push(...statuses),
    endpoint: (overrides = {}) => ({ address: '127.0.0.1', port, ready: true, serving: true, terminating: false, ...overrides }),
    stop,
    restart: () => listen(port),
    close: stop,
  };
}

/** Count of items per key. */
export function tally<T>(items: Iterable<T>): Map<T, number> {
  const m = new Map<T, number>();
  for (const i of items) m.set(i, (m.get(i) ?? 0) + 1);
  return m;
}

/** Run `total` calls of `fn` with at most `concurrency` at a time; results in call order. */
export async function runConcurrently<T>(total: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(total);
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, total) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      out[i] = await fn(i);
    }
  });
  await Promise.all(lanes);
  return out;
}

/** Resolve after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
