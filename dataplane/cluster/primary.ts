// The cluster primary: it serves no traffic. It owns the admin API, checks
// each pushed snapshot once by compiling it into its own ConfigStore (no
// listeners), fans it out to every worker over IPC and answers 200 only after
// every live worker applied it. It replaces workers that die, gives each new
// one the current snapshot before that worker binds its traffic sockets,
// aggregates the workers' metrics, and drains them all on shutdown.
//
// Ports: the first worker binds the requested ports (0 = any free one) and
// reports what it got; every later worker binds those same ports with
// SO_REUSEPORT. Where SO_REUSEPORT is unavailable, workers fall back to
// node:cluster's shared handle (the primary holds the socket, keyed by the
// requested port, so port 0 also gives every worker the same port).
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { createAdminServer } from '../admin/server.ts';
import { CompileError, DEFAULT_TIMEOUTS } from '../config/compile.ts';
import { ConfigStore } from '../config/store.ts';
import type { ActiveConfig, ApplyResult } from '../config/store.ts';
import { DEFAULT_LIMITS } from '../limits/defaults.ts';
import { DEFAULT_COMPRESSION } from '../middleware/compression.ts';
import type { DataplaneLoggers } from '../observability/log.ts';
import { createMetrics } from '../observability/metrics.ts';
import type { DataplaneOptions } from '../options.ts';
import { listen } from '../server/listen.ts';
import type { Snapshot } from '../snapshot/schema.ts';
import { createCertificate } from '../tls/x509.ts';
import { PoolRegistry } from '../upstream/pool.ts';
import { BIND_ENV, isPyserveMessage } from './protocol.ts';
import type { BindPlan, MetricsJson, ToPrimary, ToWorker } from './protocol.ts';
import { ActiveHealthChecker } from '../upstream/active-health.ts';
import { mergeReports, upstreamsReport } from '../upstream/report.ts';
import type { UpstreamsReport } from '../upstream/report.ts';

/** A worker's longest wait to apply one snapshot before it is replaced. */
const APPLY_TIMEOUT_MS = 30_000;
/** A worker's longest answer time for /metrics; slower ones are left out. */
const METRICS_TIMEOUT_MS = 5_000;

interface WorkerState {
  readonly worker: Worker;
  /** forked → hello (has the current snapshot, gets every push) → listening. */
  phase: 'forked' | 'hello' | 'listening';
  readonly startedAt: number;
  /** Replies awaited from this worker, by sequence number; called with undefined when it exits. */
  readonly waiting: Map<number, (m: ToPrimary | undefined) => void>;
  listening?: (m: Extract<ToPrimary, { type: 'pyserve:listening' }>) => void;
}

/** The running primary. */
export interface RunningPrimary {
  readonly trafficPort: number;
  readonly httpsPort: number;
  readonly adminPort: number;
  /** Readiness false, every worker drains and exits, then the admin listener stops. */
  close(): Promise<void>;
}

/** Fork `options.workers` traffic workers and serve the admin API. */
export async function startPrimary(options: DataplaneOptions, loggers: DataplaneLoggers): Promise<RunningPrimary> {
  const { log, announce } = loggers;
  const token = options.adminToken === '' ? undefined : options.adminToken;
  const metrics = createMetrics({ gc: options.gcMetrics });
  // The compile check: built like a worker's store, minus TLS and listeners.
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const pools = new PoolRegistry();
  // The primary alone probes health-checked endpoints and hands the verdicts to every worker.
  const checker = new ActiveHealthChecker((unhealthy) => {
    check.health.setActiveVerdicts(unhealthy);
    for (const w of workers.values()) send(w, { type: 'pyserve:health', unhealthy: [...unhealthy] });
  }, log);
  const check = new ConfigStore(pools, { ...DEFAULT_TIMEOUTS, ...options.timeouts }, {
    onUpstreams: (config) => checker.update(config.routing.clusters, config.endpoints),
    features: {
      maxBodyBytes: limits.maxBodyBytes,
      clientBodyTimeoutMs: limits.clientBodyTimeoutMs,
      compression: { ...DEFAULT_COMPRESSION, ...options.compression },
    },
  });
  // One default certificate for every worker, so clients see the same one on every connection.
  const defaultCertificate = createCertificate({
    commonName: 'PyServe Default Certificate',
    organization: 'PyServe',
    altNames: ['pyserve.invalid'],
  });

  const workers = new Map<number, WorkerState>();
  let committed: { snapshot: Snapshot; config: ActiveConfig } | undefined;
  let draining = false;
  let seq = 0;
  let plan: BindPlan = { traffic: { requested: options.trafficPort }, https: { requested: options.httpsPort } };

  // Pushes and new workers' first snapshot run one at a time, so a worker
  // never misses a push and never gets them out of order.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn);
    chain = run.catch(() => undefined);
    return run;
  };

  const send = (state: WorkerState, m: ToWorker): boolean => {
    if (!state.worker.isConnected()) return false;
    state.worker.send(m);
    return true;
  };

  /** Ask one worker and wait for its reply; undefined when it exits or times out. */
  const ask = (state: WorkerState, m: ToWorker & { seq: number }, timeoutMs: number): Promise<ToPrimary | undefined> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        state.waiting.delete(m.seq);
        resolve(undefined);
      }, timeoutMs);
      state.waiting.set(m.seq, (reply) => {
        clearTimeout(timer);
        state.waiting.delete(m.seq);
        resolve(reply);
      });
      if (!send(state, m)) state.waiting.get(m.seq)?.(undefined);
    });

  /** Send a snapshot and wait for the worker to apply it. A worker that hangs is replaced. */
  const deliver = async (state: WorkerState, snapshot: Snapshot | null): Promise<{ ok: boolean; problems?: string[] }> => {
    const reply = await ask(state, { type: 'pyserve:snapshot', seq: ++seq, snapshot }, APPLY_TIMEOUT_MS);
    if (reply === undefined) {
      // Exited meanwhile, or stuck: either way its replacement starts from the current snapshot.
      if (state.worker.isConnected()) {
        log.error({ worker: state.worker.id }, 'worker did not apply the snapshot in time: replacing it');
        state.worker.process.kill('SIGKILL');
      }
      return { ok: true };
    }
    return reply.type === 'pyserve:applied' ? { ok: reply.ok, problems: reply.problems } : { ok: false, problems: ['unexpected reply'] };
  };

  const commit = (pushed: Snapshot): Promise<ApplyResult> => serial(async () => {
    const prev = committed;
    // The same routing hash means the same routing: hand workers, and those
    // started later, the section already validated, never a pushed one that
    // was accepted unchecked (or as just its hash) for keeping it.
    const snapshot = prev !== undefined && pushed.routing.hash === prev.snapshot.routing.hash ? { ...pushed, routing: prev.snapshot.routing } : pushed;
    // Throws CompileError (→ 400) before any worker sees the snapshot.
    const result = check.apply(snapshot);
    const targets = [...workers.values()].filter((w) => w.phase !== 'forked');
    const outcomes = await Promise.all(targets.map(async (w) => ({ w, ...(await deliver(w, snapshot)) })));
    const failed = outcomes.filter((o) => !o.ok);
    if (failed.length === 0) {
      committed = { snapshot, config: check.current! };
      return result;
    }
    // A worker refused what the primary compiled (it should not happen: same
    // code, same flags). Roll the others back so all serve the same config.
    const problems = [...new Set(failed.flatMap((o) => o.problems ?? []))];
    log.error({ generation: snapshot.generation, workers: failed.map((o) => o.w.worker.id), problems: problems.slice(0, 20) }, 'a worker refused the snapshot: rolling back');
    if (prev !== undefined) {
      check.apply(prev.snapshot);
      await Promise.all(outcomes.filter((o) => o.ok).map((o) => deliver(o.w, prev.snapshot)));
    } else {
      // Nothing to roll back to: restart the workers that took it; they start empty.
      for (const o of outcomes) if (o.ok) o.w.worker.process.kill('SIGKILL');
    }
    throw new CompileError(problems.length > 0 ? problems : ['a worker refused the snapshot']);
  });

  const renderMetrics = async (): Promise<string> => {
    const live = [...workers.values()].filter((w) => w.phase !== 'forked');
    const replies = await Promise.all(live.map((w) => ask(w, { type: 'pyserve:metrics', seq: ++seq }, METRICS_TIMEOUT_MS)));
    const sets: MetricsJson[] = [await metrics.registry.getMetricsAsJSON()];
    for (const r of replies) if (r?.type === 'pyserve:metrics') sets.push(r.metrics);
    return AggregatorRegistry.aggregate(sets).metrics();
  };

  const renderUpstreams = async (): Promise<UpstreamsReport> => {
    const live = [...workers.values()].filter((w) => w.phase !== 'forked');
    const replies = await Promise.all(live.map((w) => ask(w, { type: 'pyserve:upstreams', seq: ++seq }, METRICS_TIMEOUT_MS)));
    const reports = replies.flatMap((r) => (r?.type === 'pyserve:upstreams' ? [r.report] : []));
    return mergeReports(upstreamsReport(committed?.config.upstreams), reports);
  };

  let restartDelayMs = 0;
  const fork = (): WorkerState => {
    const worker = cluster.fork({ [BIND_ENV]: JSON.stringify(plan) });
    const state: WorkerState = { worker, phase: 'forked', startedAt: Date.now(), waiting: new Map() };
    workers.set(worker.id, state);
    // IPC to a worker that is going away (EPIPE); its 'exit' handles the rest.
    worker.on('error', (err) => log.warn({ worker: worker.id, err }, 'worker IPC error'));
    worker.on('message', (raw: unknown) => {
      if (!isPyserveMessage(raw)) return;
      const m = raw as ToPrimary;
      switch (m.type) {
        case 'pyserve:init':
          send(state, { type: 'pyserve:init', defaultCertificate });
          if (checker.unhealthy.size > 0) send(state, { type: 'pyserve:health', unhealthy: [...checker.unhealthy] });
          return;
        case 'pyserve:hello':
          // Its first snapshot goes through the same queue as pushes.
          void serial(async () => {
            const r = await deliver(state, committed?.snapshot ?? null);
            if (!r.ok) {
              log.error({ worker: worker.id, problems: r.problems?.slice(0, 20) }, 'worker refused the current snapshot: replacing it');
              worker.process.kill('SIGKILL');
              return;
            }
            if (state.phase === 'forked') state.phase = 'hello';
          });
          return;
        case 'pyserve:listening':
          state.phase = 'listening';
          log.info({ worker: worker.id, pid: worker.process.pid, trafficPort: m.trafficPort, httpsPort: m.httpsPort, mode: m.mode, generation: committed?.snapshot.generation }, 'worker started');
          state.listening?.(m);
          return;
        case 'pyserve:applied':
        case 'pyserve:metrics':
        case 'pyserve:upstreams':
          state.waiting.get(m.seq)?.(m);
          return;
      }
    });
    worker.on('exit', (code, signal) => {
      workers.delete(worker.id);
      for (const done of [...state.waiting.values()]) done(undefined);
      if (draining) return;
      const quick = Date.now() - state.startedAt < 5_000;
      // A worker that keeps dying at start is restarted ever more slowly (up to 5 s).
      restartDelayMs = quick ? Math.min(Math.max(restartDelayMs * 2, 100), 5_000) : 0;
      log.error({ worker: worker.id, pid: worker.process.pid, code, signal, restartInMs: restartDelayMs }, 'worker exited: replacing it');
      setTimeout(() => {
        if (!draining) fork();
      }, restartDelayMs).unref();
    });
    return state;
  };

  /** Resolve once `state` listens; reject if it exits first. */
  const listening = (state: WorkerState): Promise<Extract<ToPrimary, { type: 'pyserve:listening' }>> =>
    new Promise((resolve, reject) => {
      state.listening = resolve;
      state.worker.once('exit', (code, signal) => reject(new Error(`worker ${state.worker.id} exited (${signal ?? code}) before listening`)));
    });

  let trafficPort: number;
  let httpsPort: number;
  let adminPort: number;
  const admin = createAdminServer({
    token,
    maxSnapshotBytes: options.maxSnapshotBytes,
    store: { get current() { return committed?.config; } },
    commit,
    renderMetrics,
    upstreams: renderUpstreams,
    metrics,
    log,
    // Not ready while draining or while no worker accepts traffic.
    isDraining: () => draining || ![...workers.values()].some((w) => w.phase === 'listening'),
  });
  if (token === undefined) log.warn('admin API runs WITHOUT a token (--insecure-admin): anyone who reaches it can reconfigure traffic');

  const stopWorkers = async (): Promise<void> => {
    draining = true;
    const exits = [...workers.values()].map((s) => new Promise<void>((resolve) => {
      if (s.worker.isDead()) return resolve();
      s.worker.once('exit', () => resolve());
      if (!send(s, { type: 'pyserve:shutdown' })) s.worker.process.kill('SIGTERM');
    }));
    // Workers cut their own connections at the drain timeout; this is the backstop.
    const backstop = setTimeout(() => {
      for (const s of workers.values()) s.worker.process.kill('SIGKILL');
    }, options.drainTimeoutMs + 10_000);
    await Promise.all(exits);
    clearTimeout(backstop);
  };

  try {
    const first = fork();
    const got = await listening(first);
    plan = { traffic: { requested: options.trafficPort, bound: got.trafficPort }, https: { requested: options.httpsPort, bound: got.httpsPort } };
    trafficPort = got.trafficPort;
    httpsPort = got.httpsPort;
    const rest: WorkerState[] = [];
    for (let i = 1; i < options.workers; i++) rest.push(fork());
    await Promise.all(rest.map(listening));
    adminPort = await listen(admin, options.adminPort, options.adminHost);
  } catch (err) {
    await stopWorkers();
    admin.close();
    throw err;
  }
  // Written at once: parents wait for it. (The primary serves no traffic, so it writes no access lines.)
  announce.info({ trafficPort, httpsPort, adminPort, workers: options.workers }, 'listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      checker.close();
      log.info({ workers: workers.size, drainTimeoutMs: options.drainTimeoutMs }, 'draining workers');
      await stopWorkers();
      await new Promise<void>((resolve) => {
        admin.close(() => resolve());
        admin.closeAllConnections();
      });
      await pools.closeAll(1_000);
      log.info('stopped');
    })();
    return closing;
  };
  return { trafficPort, httpsPort, adminPort, close };
}
