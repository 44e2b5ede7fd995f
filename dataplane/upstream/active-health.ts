// Active HTTP health checks (snapshot `cluster.healthCheck`). One prober per
// (cluster, endpoint), kept across swaps while its settings stay the same, so
// its consecutive pass/fail counts are not reset by unrelated changes. Each
// probe opens a fresh connection, as a kubelet probe does, so a wedged
// listener is caught, not hidden behind a pooled connection. In a worker
// cluster only the primary probes; it sends the verdicts to every worker.
import { request as httpRequest } from '../node-http.ts';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { connect as h2Connect, constants as h2 } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import type { Logger } from 'pino';
import type { CompiledEndpoints } from '../config/compile.ts';
import type { Cluster, ClusterProtocol, HealthCheck } from '../snapshot/schema.ts';
import type { UpstreamEndpoint } from './endpoint.ts';

/** Identity of an endpoint within a cluster: `cluster` + newline + `address:port`. */
export function endpointId(cluster: string, key: string): string {
  return `${cluster}\n${key}`;
}

interface ProbeSettings {
  /** Identity of these settings: a prober is replaced only when it changes. */
  readonly key: string;
  readonly protocol: ClusterProtocol;
  readonly path: string;
  readonly host: string | undefined;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  readonly expected: ReadonlySet<number> | undefined;
}

function settingsOf(protocol: ClusterProtocol, hc: HealthCheck): ProbeSettings {
  return {
    key: JSON.stringify([protocol, hc]),
    protocol,
    path: hc.path,
    host: hc.host,
    intervalMs: hc.intervalMs ?? 5_000,
    timeoutMs: hc.timeoutMs ?? 1_000,
    healthyThreshold: hc.healthyThreshold ?? 2,
    unhealthyThreshold: hc.unhealthyThreshold ?? 3,
    expected: hc.expectedStatuses === undefined ? undefined : new Set(hc.expectedStatuses),
  };
}

/** One probe: resolves with the response status, rejects on any failure or after the timeout. */
export function probeOnce(s: Pick<ProbeSettings, 'protocol' | 'path' | 'host' | 'timeoutMs'>, ep: UpstreamEndpoint): Promise<number> {
  const host = s.host ?? ep.key;
  const tls = s.protocol === 'https' || s.protocol === 'h2' || s.protocol === 'grpcs';
  if (s.protocol === 'http' || s.protocol === 'https') {
    return new Promise((resolve, reject) => {
      const options = {
        host: ep.address, port: ep.port, path: s.path, method: 'GET', agent: false as const,
        headers: { host, 'user-agent': 'pyserve-health-check', connection: 'close' },
        // Backend certificates are not verified, as for proxied traffic.
        rejectUnauthorized: false,
      };
      const onResponse = (res: IncomingMessage): void => {
        clearTimeout(timer);
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      };
      const req: ClientRequest = tls ? httpsRequest(options, onResponse) : httpRequest(options, onResponse);
      const timer = setTimeout(() => req.destroy(new Error(`no response within ${s.timeoutMs} ms`)), s.timeoutMs);
      req.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.end();
    });
  }
  return new Promise((resolve, reject) => {
    const authority = `${tls ? 'https' : 'http'}://${ep.key}`;
    const session = h2Connect(authority, tls ? { rejectUnauthorized: false, ALPNProtocols: ['h2'] } : {});
    const timer = setTimeout(() => session.destroy(new Error(`no response within ${s.timeoutMs} ms`)), s.timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      session.destroy();
      reject(err);
    };
    session.once('error', fail);
    const stream = session.request({ [h2.HTTP2_HEADER_PATH]: s.path, [h2.HTTP2_HEADER_AUTHORITY]: host, 'user-agent': 'pyserve-health-check' }, { endStream: true });
    stream.once('error', fail);
    stream.once('response', (headers) => {
      clearTimeout(timer);
      resolve(Number(headers[h2.HTTP2_HEADER_STATUS] ?? 0));
      session.close();
      stream.destroy();
    });
  });
}

class Prober {
  readonly settings: ProbeSettings;
  readonly #endpoint: UpstreamEndpoint;
  readonly #report: (healthy: boolean) => void;
  readonly #log: Logger | undefined;
  #healthy: boolean;
  #passes = 0;
  #fails = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(settings: ProbeSettings, endpoint: UpstreamEndpoint, healthy: boolean, report: (healthy: boolean) => void, log: Logger | undefined) {
    this.settings = settings;
    this.#endpoint = endpoint;
    this.#healthy = healthy;
    this.#report = report;
    this.#log = log;
    // Spread the first probes of a large cluster over one interval.
    this.#schedule(Math.random() * Math.min(settings.intervalMs, 1_000));
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#run(), ms);
    this.#timer.unref();
  }

  async #run(): Promise<void> {
    const s = this.settings;
    let pass: boolean;
    let detail: string;
    try {
      const status = await probeOnce(s, this.#endpoint);
      pass = s.expected !== undefined ? s.expected.has(status) : status >= 200 && status < 400;
      detail = `status ${status}`;
    } catch (err) {
      pass = false;
      detail = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
    if (this.#stopped) return;
    if (pass) {
      this.#fails = 0;
      this.#passes++;
      if (!this.#healthy && this.#passes >= s.healthyThreshold) this.#flip(true, detail);
    } else {
      this.#passes = 0;
      this.#fails++;
      if (this.#healthy && this.#fails >= s.unhealthyThreshold) this.#flip(false, detail);
    }
    this.#schedule(s.intervalMs);
  }

  #flip(healthy: boolean, detail: string): void {
    this.#healthy = healthy;
    this.#log?.info({ upstream: this.#endpoint.key, probe: detail }, healthy ? 'health check: endpoint healthy again' : 'health check: endpoint unhealthy');
    this.#report(healthy);
  }
}

/**
 * Probes every endpoint of every cluster that has a `healthCheck`, and keeps
 * the set of endpoints that failed. `onChange` gets that whole set after each
 * change (small: only failing endpoints are in it).
 */
export class ActiveHealthChecker {
  readonly #probers = new Map<string, Prober>();
  readonly #unhealthy = new Set<string>();
  readonly #onChange: (unhealthy: ReadonlySet<string>) => void;
  readonly #log: Logger | undefined;

  constructor(onChange: (unhealthy: ReadonlySet<string>) => void, log?: Logger) {
    this.#onChange = onChange;
    this.#log = log;
  }

  /** Endpoint ids ({@link endpointId}) that active checks hold unhealthy. */
  get unhealthy(): ReadonlySet<string> {
    return this.#unhealthy;
  }

  /** Follow a new snapshot: start probes for new endpoints, stop those of endpoints or checks that left. */
  update(clusters: readonly Cluster[], endpoints: CompiledEndpoints): void {
    const wanted = new Set<string>();
    for (const c of clusters) {
      if (c.healthCheck === undefined) continue;
      const settings = settingsOf(c.protocol, c.healthCheck);
      const set = endpoints.clusters.get(c.name);
      for (const ep of [...(set?.ready ?? []), ...(set?.serving ?? [])]) {
        const id = endpointId(c.name, ep.key);
        wanted.add(id);
        const existing = this.#probers.get(id);
        if (existing !== undefined && existing.settings.key === settings.key) continue;
        existing?.stop();
        this.#probers.set(id, new Prober(settings, ep, !this.#unhealthy.has(id), (healthy) => {
          if (healthy) this.#unhealthy.delete(id);
          else this.#unhealthy.add(id);
          this.#onChange(this.#unhealthy);
        }, this.#log?.child({ cluster: c.name })));
      }
    }
    let dropped = false;
    for (const [id, prober] of this.#probers) {
      if (wanted.has(id)) continue;
      prober.stop();
      this.#probers.delete(id);
      dropped = this.#unhealthy.delete(id) || dropped;
    }
    if (dropped) this.#onChange(this.#unhealthy);
  }

  /** Stop every probe. */
  close(): void {
    for (const p of this.#probers.values()) p.stop();
    this.#probers.clear();
  }
}
