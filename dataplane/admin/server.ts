// The admin listener: snapshot push/read (token protected), probes and
// metrics (open, for kubelet and Prometheus). It runs on its own port so a
// traffic flood or a drain never hides the dataplane's state.
import { createServer } from '../node-http.ts';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ApplyResult, ConfigStore } from '../config/store.ts';
import type { Snapshot } from '../snapshot/schema.ts';
import { CompileError } from '../config/compile.ts';
import type { DataplaneMetrics, RejectReason } from '../observability/metrics.ts';
import { validateSnapshot } from '../snapshot/validate.ts';
import { bearerTokenCheck } from './auth.ts';
import { declaredTooLarge, readBounded } from './body.ts';
import type { UpstreamsReport } from '../upstream/report.ts';

/** Options of {@link createAdminServer}. */
export interface AdminServerOptions {
  /** Bearer token for /v1/snapshot; undefined disables the check (`--insecure-admin`). */
  token: string | undefined;
  /** Largest accepted snapshot body in bytes. */
  maxSnapshotBytes: number;
  /** Source of GET /v1/snapshot and /readyz; its `apply` takes pushes unless `commit` is set. */
  store: Pick<ConfigStore, 'current'> & Partial<Pick<ConfigStore, 'apply'>>;
  /**
   * Apply a validated snapshot some other way (the cluster primary: compile
   * check, then every worker). Throws `CompileError` for a 400.
   */
  commit?: (snapshot: Snapshot) => Promise<ApplyResult>;
  metrics: DataplaneMetrics;
  /** Render /metrics some other way (the cluster primary aggregates its workers). */
  renderMetrics?: () => Promise<string>;
  log: Logger;
  /** Whether the dataplane is draining (readiness turns false). */
  isDraining(): boolean;
  /** Body of GET /v1/upstreams: endpoint health, ejections and load. */
  upstreams?: () => UpstreamsReport | Promise<UpstreamsReport>;
}

// After refusing an oversized body, keep discarding what the client is still
// sending for this long so it can read the 413 (as nginx's lingering close),
// then cut the connection.
const LINGER_MS = 2_000;

function json(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra });
  res.end(text);
}

function text(res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

/** Create (but do not start) the admin server. */
export function createAdminServer(opts: AdminServerOptions): Server {
  const authorized = bearerTokenCheck(opts.token);
  const { store, metrics, log } = opts;

  const unauthorized = (res: ServerResponse): void =>
    json(res, 401, { error: 'missing or invalid bearer token' }, { 'www-authenticate': 'Bearer' });

  const tooLarge = (req: IncomingMessage, res: ServerResponse): void => {
    metrics.snapshotRejected.inc({ reason: 'too_large' });
    log.warn({ limit: opts.maxSnapshotBytes }, 'snapshot rejected: body too large');
    json(res, 413, { error: 'snapshot too large', problems: [`body exceeds ${opts.maxSnapshotBytes} bytes`] });
    if (!req.complete) {
      const cut = setTimeout(() => req.socket.destroy(), LINGER_MS);
      cut.unref();
      req.once('end', () => clearTimeout(cut));
      req.socket.once('close', () => clearTimeout(cut));
    }
  };

  const reject = (res: ServerResponse, reason: RejectReason, error: string, problems: string[]): void => {
    metrics.snapshotRejected.inc({ reason });
    log.warn({ reason, problems: problems.slice(0, 20) }, `snapshot rejected: ${error}`);
    json(res, 400, { error, problems });
  };

  const putSnapshot = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const read = await readBounded(req, opts.maxSnapshotBytes);
    if (!read.ok) {
      if (read.reason === 'too_large') tooLarge(req, res);
      else res.destroy();
      return;
    }
    const started = performance.now();
    let input: unknown;
    try {
      input = JSON.parse(read.body.toString('utf8'));
    } catch (err) {
      reject(res, 'bad_json', 'body is not valid JSON', [(err as Error).message]);
      return;
    }
    // Checked against the routing served now: an unchanged routing section is not validated again.
    const validated = validateSnapshot(input, { servingRoutingHash: store.current?.routing.hash });
    if (!validated.ok) {
      reject(res, 'invalid', 'invalid snapshot', validated.problems);
      return;
    }
    const snap = validated.snapshot;
    let result;
    try {
      result = opts.commit !== undefined ? await opts.commit(snap) : store.apply!(snap);
    } catch (err) {
      if (err instanceof CompileError) {
        reject(res, 'invalid', 'snapshot does not compile', err.problems);
        return;
      }
      throw err;
    }
    metrics.snapshotApply.observe((performance.now() - started) / 1000);
    metrics.snapshotGeneration.set(snap.generation);
    log.info({ generation: snap.generation, routingHash: snap.routing.hash, endpointsHash: snap.endpoints.hash, ...result }, 'snapshot applied');
    json(res, 200, { generation: snap.generation, routingHash: snap.routing.hash, endpointsHash: snap.endpoints.hash, applied: result.applied });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?', 1)[0];
    const method = req.method ?? 'GET';
    const read = method === 'GET' || method === 'HEAD';
    switch (path) {
      case '/healthz':
        if (!read) return text(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
        return text(res, 200, 'ok\n');
      case '/readyz': {
        if (!read) return text(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
        if (opts.isDraining()) return text(res, 503, 'draining\n');
        if (store.current === undefined) return text(res, 503, 'no snapshot applied yet\n');
        return text(res, 200, 'ready\n');
      }
      case '/metrics': {
        if (!read) return text(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
        const body = opts.renderMetrics !== undefined ? await opts.renderMetrics() : await metrics.registry.metrics();
        return text(res, 200, body, { 'content-type': metrics.registry.contentType });
      }
      case '/v1/snapshot': {
        // The token is checked before a single body byte is read.
        if (!authorized(req.headers.authorization)) return unauthorized(res);
        if (method === 'PUT') return putSnapshot(req, res);
        if (!read) return json(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD, PUT' });
        const cur = store.current;
        if (cur === undefined) return json(res, 404, { error: 'no snapshot applied yet' });
        return json(res, 200, { generation: cur.generation, routingHash: cur.routing.hash, endpointsHash: cur.endpoints.hash });
      }
      case '/v1/upstreams': {
        // Token protected like the snapshot: it lists every backend address.
        if (!authorized(req.headers.authorization)) return unauthorized(res);
        if (!read) return json(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
        return json(res, 200, opts.upstreams !== undefined ? await opts.upstreams() : { clusters: [] });
      }
      default:
        return json(res, 404, { error: 'not found' });
    }
  };

  const server = createServer((req, res) => {
    req.on('error', () => undefined);
    handle(req, res).catch((err: unknown) => {
      log.error({ err }, 'admin request failed');
      if (!res.headersSent) json(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });

  // Answer `Expect: 100-continue` pushes (curl sends it for large bodies)
  // without inviting the body when the token or the declared size is wrong.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === '/v1/snapshot') {
      if (!authorized(req.headers.authorization)) return unauthorized(res);
      if (req.method === 'PUT' && declaredTooLarge(req, opts.maxSnapshotBytes)) return tooLarge(req, res);
    }
    res.writeContinue();
    server.emit('request', req, res);
  });
  return server;
}
