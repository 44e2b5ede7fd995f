/**
 * `pyserve` command line. Subcommands:
 *   local       manifests from a folder → a dataplane started here (no cluster needed)
 *   controller  the in-cluster controller
 */
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { runLocal } from './local/run-local.ts';
import { packageRoot } from './package-root.ts';
import { DEMO_BACKENDS } from './local/demo-backends.ts';
import { CONTROLLER_USAGE, UsageError, controllerCommand } from './controller-cli.ts';

const USAGE = `usage: pyserve <command> [options]

commands:
  local     serve Kubernetes manifests from a folder, no cluster needed
            --dir <folder>          manifests to serve (watched for changes)
            --demo                  serve examples/demo with two built-in backends
            --host <addr>           traffic listen address (default 127.0.0.1)
            --port <n>              traffic port (default 8080; 0 picks a free one)
            --controller-name <s>   IngressClass controller (default pyserve.io/ingress-controller)
            --resync-seconds <n>    re-check the dataplane every n seconds (default 5)
            --log-level <level>     pino level (default info)
${CONTROLLER_USAGE}`;

const DEMO_DIR = join(packageRoot(), 'examples', 'demo');

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'local') return await local(rest);
    if (command === 'controller') return await controllerCommand(rest);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`pyserve ${command}: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  process.stderr.write(command && command !== 'help' && command !== '--help' ? `unknown command "${command}"\n\n${USAGE}` : USAGE);
  return command && command !== 'help' && command !== '--help' ? 2 : 0;
}

async function local(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: 'string' },
      demo: { type: 'boolean', default: false },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8080' },
      'controller-name': { type: 'string', default: 'pyserve.io/ingress-controller' },
      'resync-seconds': { type: 'string', default: '5' },
      'log-level': { type: 'string', default: 'info' },
    },
    strict: true,
  });
  const dir = values.dir ? resolve(values.dir) : values.demo ? DEMO_DIR : undefined;
  if (!dir) {
    process.stderr.write(`pyserve local: --dir <folder> or --demo is required\n\n${USAGE}`);
    return 2;
  }
  const port = Number(values.port);
  const resyncSeconds = Number(values['resync-seconds']);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`pyserve local: --port must be 0-65535, got "${values.port}"\n`);
    return 2;
  }
  if (!(resyncSeconds > 0)) {
    process.stderr.write(`pyserve local: --resync-seconds must be positive, got "${values['resync-seconds']}"\n`);
    return 2;
  }
  const log = pino({ level: values['log-level'], base: { component: 'controller' } });
  const run = await runLocal({
    dir,
    demo: values.demo,
    trafficHost: values.host,
    trafficPort: port,
    controllerName: values['controller-name'],
    resyncSeconds,
  }, log);

  log.info({ trafficPort: run.trafficPort, adminUrl: run.adminUrl, dir }, 'local mode ready');
  const base = `http://${values.host.includes(':') ? `[${values.host}]` : values.host}:${run.trafficPort}`;
  process.stderr.write(`\nPyServe local mode: serving ${dir}\n  traffic  ${base}\n  admin    ${run.adminUrl} (metrics: ${run.adminUrl}/metrics)\n`);
  if (values.demo) {
    process.stderr.write(`  demo backends: ${DEMO_BACKENDS.map((b) => `${b.name} on 127.0.0.1:${b.port}`).join(', ')}\n\n`
      + `Try:\n  curl ${base}/blue\n  curl ${base}/green/anything\n  curl -H 'Host: green.localhost' ${base}/\n`
      + `Edit the files in ${dir}; changes apply as you save.\n\n`);
  }

  const stop = async (): Promise<void> => {
    log.info('shutting down');
    await run.stop();
  };
  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const onSignal = () => {
      if (stopping) return;
      stopping = true;
      void stop().then(() => resolveExit(0));
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    void run.dataplaneExited.then((code) => {
      if (stopping) return;
      log.error({ code }, 'dataplane exited unexpectedly');
      stopping = true;
      void run.stop().then(() => resolveExit(1));
    });
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`pyserve: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
