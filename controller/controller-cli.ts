/**
 * `pyserve controller`: flags (with environment fallbacks for the chart) →
 * {@link runController}.
 */
import { parseArgs } from 'node:util';
import { readFileSync, existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { pino } from 'pino';
import { runController } from './k8s/run-controller.ts';
import type { ControllerOptions, NamespacedName } from './k8s/run-controller.ts';
import type { BackendRef } from './translate/index.ts';
import { IntFlagError, parseIntFlag } from '../dataplane/int-flag.ts';

export const CONTROLLER_USAGE = `  controller  run in a cluster: watch the API server, push to dataplanes
            --kubeconfig <file>              (default: in-cluster, then $KUBECONFIG)
            --namespaces <a,b>               namespaces to watch (default: all)
            --controller-name <s>            (default pyserve.io/ingress-controller)
            --ingress-class <name>           only this IngressClass name (default: any of ours)
            --watch-ingress-without-class    serve Ingresses that name no class
            --default-backend <ns/svc:port>  for requests no Ingress matches
            --dataplane-service <ns/name>    admin Service of the dataplanes (required)
            --admin-port-name <name>         its port name (default admin)
            --push-token-file <file>         token for the dataplane admin API ($PYSERVE_PUSH_TOKEN)
            --publish-service <ns/name>      traffic Service whose address goes into Ingress status
            --publish-address <a,b>          explicit addresses for Ingress status
            --leader-elect=<bool>            (default true)
            --leader-election-namespace <ns> (default: the pod's namespace)
            --leader-election-id <name>      Lease name (default pyserve-controller)
            --lease-duration-seconds <n>     (default 10)
            --holdoff-ms <n> --max-delay-ms <n>   debounce (default 100 / 1000)
            --resync-seconds <n>             re-check dataplanes (default 5)
            --metrics-port <n>               /metrics /healthz /readyz (default 9902)
            --log-level <level>
`;

const SA_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export class UsageError extends Error {}

function namespacedName(flag: string, v: string | undefined): NamespacedName | undefined {
  if (!v) return undefined;
  const m = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(v);
  if (!m) throw new UsageError(`${flag} must be <namespace>/<name>, got "${v}"`);
  return { namespace: m[1]!, name: m[2]! };
}

function int(flag: string, v: string, min: number, max?: number): number {
  try {
    return parseIntFlag(v, min, max);
  } catch (err) {
    if (err instanceof IntFlagError) throw new UsageError(`${flag} ${err.message}`);
    throw err;
  }
}

/** Parse `pyserve controller` flags. Throws {@link UsageError} with a clear message. */
export function parseControllerArgs(args: string[], env: NodeJS.ProcessEnv = process.env): ControllerOptions & { logLevel: string } {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      kubeconfig: { type: 'string' },
      namespaces: { type: 'string', default: '' },
      'controller-name': { type: 'string', default: 'pyserve.io/ingress-controller' },
      'ingress-class': { type: 'string' },
      'watch-ingress-without-class': { type: 'boolean', default: false },
      'default-backend': { type: 'string' },
      'dataplane-service': { type: 'string' },
      'admin-port-name': { type: 'string', default: 'admin' },
      'push-token-file': { type: 'string' },
      'publish-service': { type: 'string' },
      'publish-address': { type: 'string', default: '' },
      'leader-elect': { type: 'string', default: 'true' },
      'leader-election-namespace': { type: 'string' },
      'leader-election-id': { type: 'string', default: 'pyserve-controller' },
      'lease-duration-seconds': { type: 'string', default: '10' },
      'holdoff-ms': { type: 'string', default: '100' },
      'max-delay-ms': { type: 'string', default: '1000' },
      'resync-seconds': { type: 'string', default: '5' },
      'metrics-host': { type: 'string', default: '0.0.0.0' },
      'metrics-port': { type: 'string', default: '9902' },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  const dataplaneService = namespacedName('--dataplane-service', values['dataplane-service']);
  if (!dataplaneService) throw new UsageError('--dataplane-service <namespace>/<name> is required');
  let pushToken = env.PYSERVE_PUSH_TOKEN ?? '';
  if (values['push-token-file']) pushToken = readFileSync(values['push-token-file'], 'utf8').trim();
  if (!pushToken) throw new UsageError('a push token is required: --push-token-file <file> or $PYSERVE_PUSH_TOKEN');

  let defaultBackend: BackendRef | undefined;
  if (values['default-backend']) {
    const m = /^([a-z0-9-]+)\/([a-z0-9.-]+):([a-z0-9-]+)$/.exec(values['default-backend']);
    if (!m) throw new UsageError(`--default-backend must be <namespace>/<service>:<port>, got "${values['default-backend']}"`);
    defaultBackend = { namespace: m[1]!, name: m[2]!, port: /^\d+$/.test(m[3]!) ? Number(m[3]) : m[3]! };
  }
  const leaderElect = values['leader-elect'] !== 'false';
  const podNamespace = env.POD_NAMESPACE ?? (existsSync(SA_NAMESPACE) ? readFileSync(SA_NAMESPACE, 'utf8').trim() : undefined);
  const leaseNamespace = values['leader-election-namespace'] ?? podNamespace ?? dataplaneService.namespace;
  const leaseDurationSeconds = int('--lease-duration-seconds', values['lease-duration-seconds'], 2);
  const holdoffMs = int('--holdoff-ms', values['holdoff-ms'], 0);
  const maxDelayMs = int('--max-delay-ms', values['max-delay-ms'], 1);
  if (maxDelayMs < holdoffMs) throw new UsageError('--max-delay-ms must be >= --holdoff-ms');
  return {
    kubeconfig: values.kubeconfig,
    namespaces: values.namespaces.split(',').map((s) => s.trim()).filter(Boolean),
    controllerName: values['controller-name'],
    ingressClass: values['ingress-class'],
    watchIngressWithoutClass: values['watch-ingress-without-class'],
    defaultBackend,
    dataplaneService,
    adminPortName: values['admin-port-name'],
    pushToken,
    publishService: namespacedName('--publish-service', values['publish-service']),
    publishAddresses: values['publish-address'].split(',').map((s) => s.trim()).filter(Boolean),
    leaderElect,
    leaseNamespace,
    leaseName: values['leader-election-id'],
    identity: env.POD_NAME ?? hostname(),
    leaseDurationSeconds,
    holdoffMs,
    maxDelayMs,
    resyncMs: int('--resync-seconds', values['resync-seconds'], 1) * 1000,
    metricsHost: values['metrics-host'],
    metricsPort: int('--metrics-port', values['metrics-port'], 0, 65535),
    logLevel: values['log-level'],
  };
}

/** Run until SIGTERM/SIGINT; resolves with the exit code. */
export async function controllerCommand(args: string[]): Promise<number> {
  const opts = parseControllerArgs(args);
  const log = pino({ level: opts.logLevel, base: { component: 'controller', identity: opts.identity } });
  const running = await runController(opts, log);
  log.info({ metricsPort: running.metricsPort }, 'controller running');
  return new Promise((resolve) => {
    const onSignal = () => {
      log.info('shutting down');
      void running.stop().then(() => resolve(0));
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
}
