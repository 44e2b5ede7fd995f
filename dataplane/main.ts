// Process entry point: options, start, signals. With `--workers 1` one
// process does everything; otherwise this process is the cluster primary
// (cluster/primary.ts: admin API, no traffic) or one of its traffic workers
// (cluster/worker.ts), which node:cluster starts from this same file.
import cluster from 'node:cluster';
import { startDataplane } from './start.ts';
import { startPrimary } from './cluster/primary.ts';
import { startWorker } from './cluster/worker.ts';
import { OptionsError, parseOptions, usage } from './options.ts';
import { createLoggers } from './observability/log.ts';

let options;
try {
  options = parseOptions(process.argv.slice(2), process.env);
} catch (err) {
  if (!(err instanceof OptionsError)) throw err;
  process.stderr.write(`pyserve dataplane: ${err.message}\n\n${usage()}`);
  process.exit(2);
}
if (options === undefined) {
  process.stdout.write(usage());
  process.exit(0);
}

const loggers = createLoggers(options.logLevel, undefined, { accessLog: options.accessLog });
const { log } = loggers;

/**
 * Every exit goes through here: buffered access lines are written first. (The
 * loggers also flush on the process's 'exit' event; this keeps it explicit.)
 */
function exit(code: number): never {
  loggers.flush();
  process.exit(code);
}

process.on('uncaughtException', (err) => {
  log.fatal({ err }, 'uncaught exception');
  exit(1);
});
process.on('unhandledRejection', (err) => {
  log.fatal({ err }, 'unhandled rejection');
  exit(1);
});

let dataplane: { close(): Promise<void> } | undefined;
let firstSignalAt: number | undefined;
// A worker is told to drain by its primary (or finds it gone); once is enough.
const workerShutdown = (): void => {
  if (dataplane === undefined) exit(0);
  if (firstSignalAt === undefined) onSignal('SIGTERM');
};
try {
  if (cluster.isWorker) dataplane = await startWorker(options, loggers, workerShutdown);
  else if (options.workers > 1) dataplane = await startPrimary(options, loggers);
  else dataplane = await startDataplane({ ...options, loggers });
} catch (err) {
  log.fatal({ err }, 'dataplane failed to start');
  exit(1);
}

function onSignal(signal: NodeJS.Signals): void {
  if (firstSignalAt !== undefined) {
    // A terminal's Ctrl-C reaches the whole process group, so a parent that
    // forwards it too (local mode) makes a duplicate arrive at once: ignore
    // those. A later signal means the operator will not wait for the drain.
    if (Date.now() - firstSignalAt < 1_000) return;
    log.warn({ signal }, 'second signal: exiting without waiting for the drain');
    exit(1);
  }
  firstSignalAt = Date.now();
  log.info({ signal }, 'shutting down');
  dataplane!.close().then(() => exit(0), (err: unknown) => {
    log.error({ err }, 'shutdown failed');
    exit(1);
  });
}
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);
