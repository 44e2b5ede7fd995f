// A traffic worker of the cluster (see cluster/primary.ts). It runs the same
// dataplane as a single process minus the admin listener: it asks the primary
// for the shared default certificate, applies the current snapshot, and only
// then binds its traffic sockets, so a replacement never answers 503 for a
// config the others serve.
import cluster from 'node:cluster';
import { startDataplane } from '../start.ts';
import type { RunningDataplane } from '../start.ts';
import type { DataplaneOptions } from '../options.ts';
import type { DataplaneLoggers } from '../observability/log.ts';
import type { DataplaneMetrics } from '../observability/metrics.ts';
import type { ConfigStore } from '../config/store.ts';
import { CompileError } from '../config/compile.ts';
import { BIND_ENV, isPyserveMessage } from './protocol.ts';
import type { BindPlan, ListenMode, ToPrimary, ToWorker } from './protocol.ts';
import type { GeneratedCertificate } from '../tls/x509.ts';
import { upstreamsReport } from '../upstream/report.ts';

// libuv refuses SO_REUSEPORT where the kernel does not balance connections.
const REUSEPORT_UNSUPPORTED = new Set(['ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Start this worker. `onShutdown` runs when the primary asks for a drain or
 * goes away; it should close the returned dataplane and exit.
 */
export async function startWorker(options: DataplaneOptions, loggers: DataplaneLoggers, onShutdown: () => void): Promise<RunningDataplane> {
  const id = cluster.worker?.id ?? 0;
  const log = loggers.log.child({ worker: id });
  const access = loggers.access.child({ worker: id });
  const plan = JSON.parse(process.env[BIND_ENV] ?? 'null') as BindPlan | null;
  if (plan === null) throw new Error(`cluster worker started without ${BIND_ENV}`);
  const send = (m: ToPrimary): void => {
    if (process.connected) process.send!(m);
  };

  let store: ConfigStore | undefined;
  let verdicts: ReadonlySet<string> = new Set();
  let metrics: DataplaneMetrics | undefined;
  let gotCertificate: ((c: GeneratedCertificate) => void) | undefined;
  const certificate = new Promise<GeneratedCertificate>((resolve) => (gotCertificate = resolve));
  let gotInitial: (() => void) | undefined;
  const initial = new Promise<void>((resolve) => (gotInitial = resolve));

  process.on('message', (raw: unknown) => {
    if (!isPyserveMessage(raw)) return;
    const m = raw as ToWorker;
    switch (m.type) {
      case 'pyserve:init':
        gotCertificate?.(m.defaultCertificate);
        return;
      case 'pyserve:snapshot': {
        if (store === undefined) return;
        if (m.snapshot !== null) {
          try {
            const result = store.apply(m.snapshot);
            metrics?.snapshotGeneration.set(m.snapshot.generation);
            log.debug({ generation: m.snapshot.generation, ...result }, 'snapshot applied');
          } catch (err) {
            const problems = err instanceof CompileError ? err.problems : [(err as Error).message];
            log.warn({ generation: m.snapshot.generation, problems: problems.slice(0, 20) }, 'snapshot rejected');
            send({ type: 'pyserve:applied', seq: m.seq, ok: false, problems });
            return;
          }
        }
        send({ type: 'pyserve:applied', seq: m.seq, ok: true });
        gotInitial?.();
        return;
      }
      case 'pyserve:metrics':
        if (metrics === undefined) return;
        void metrics.registry.getMetricsAsJSON().then((json) => send({ type: 'pyserve:metrics', seq: m.seq, metrics: json }));
        return;
      case 'pyserve:health':
        // Kept by the health state even before the snapshot naming these endpoints arrives.
        verdicts = new Set(m.unhealthy);
        store?.health.setActiveVerdicts(verdicts);
        return;
      case 'pyserve:upstreams':
        send({ type: 'pyserve:upstreams', seq: m.seq, report: upstreamsReport(store?.current?.upstreams) });
        return;
      case 'pyserve:shutdown':
        onShutdown();
        return;
    }
  });
  // The primary is gone (crashed, or killed after its drain): drain and leave too.
  process.on('disconnect', onShutdown);

  send({ type: 'pyserve:init' });
  const defaultCertificate = await certificate;

  let mode: ListenMode | undefined;
  const host = options.trafficHost;
  const dataplane = await startDataplane({
    ...options,
    // --access-log reaches each worker on its own command line (node:cluster forks with the primary's argv).
    loggers: { ...loggers, log, access },
    defaultCertificate,
    worker: {
      async beforeListen(parts) {
        store = parts.store;
        store.health.setActiveVerdicts(verdicts);
        metrics = parts.metrics;
        send({ type: 'pyserve:hello' });
        await initial;
      },
      async listen(bind, which) {
        const target = plan[which];
        if (mode !== 'shared') {
          try {
            const port = await bind(target.bound ?? target.requested, host, { reusePort: true, exclusive: true });
            mode = 'reuseport';
            return port;
          } catch (err) {
            if (!REUSEPORT_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
            log.info({ code: (err as NodeJS.ErrnoException).code }, 'SO_REUSEPORT unavailable: sharing the primary\'s listening socket');
            mode = 'shared';
          }
        }
        // node:cluster's shared handle, keyed by the requested port, so every worker gets the same one.
        return bind(target.requested, host, { exclusive: false });
      },
    },
  });
  send({ type: 'pyserve:listening', trafficPort: dataplane.trafficPort, httpsPort: dataplane.httpsPort, mode: mode ?? 'shared' });
  log.debug({ trafficPort: dataplane.trafficPort, httpsPort: dataplane.httpsPort, mode, pid: process.pid }, 'worker listening');
  return dataplane;
}
