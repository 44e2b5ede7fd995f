/**
 * The in-cluster controller: informers → debounced translation → push to the
 * dataplanes → status and Events.
 *
 * Every replica watches and translates, so a new leader has a warm cache and
 * the current snapshot the moment it wins. Only the leader pushes and writes
 * status: replicas whose caches differ for a moment must not flip dataplanes
 * between two configs. Dataplanes keep serving their last snapshot while no
 * controller is leading, so a failover costs update latency, never traffic.
 */
import { KubeConfig } from '@kubernetes/client-node';
import type { KubernetesObject, V1EndpointSlice, V1Ingress, V1Service } from '@kubernetes/client-node';
import { DiscoveryV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { translate, translateEndpoints } from '../translate/index.ts';
import type { ClusterState, TranslateResult, BackendRef } from '../translate/index.ts';
import { sectionHash } from '../../dataplane/snapshot/hash.ts';
import type { Snapshot } from '../../dataplane/snapshot/schema.ts';
import { Pusher } from '../push/pusher.ts';
import type { PushResult } from '../push/pusher.ts';
import { Debouncer } from '../debounce.ts';
import type { ChangeKind } from '../debounce.ts';
import { ResourceWatcher } from './watcher.ts';
import type { ResourceSpec, WatchEvent } from './watcher.ts';
import { resourceSpecs } from './resources.ts';
import { LeaderElector } from './leader.ts';
import { EventRecorder } from './events.ts';
import type { WarningEvent } from './events.ts';
import { IngressStatusWriter, publishAddresses } from './ingress-status.ts';
import { RouteStatusWriter } from './route-status.ts';
import type { DesiredCondition } from './route-status.ts';
import type { RouteObject } from '../api/route.ts';
import { targetsFromSlices } from './targets.ts';
import { controllerMetrics, startHealthServer } from './metrics.ts';

/** A namespaced object name. */
export interface NamespacedName {
  namespace: string;
  name: string;
}

/** Options of {@link runController}; see `pyserve controller --help`. */
export interface ControllerOptions {
  /** Path to a kubeconfig; absent means in-cluster config (or $KUBECONFIG / ~/.kube/config). */
  kubeconfig?: string;
  /** Namespaces to watch; empty means all. */
  namespaces: string[];
  controllerName: string;
  ingressClass?: string;
  watchIngressWithoutClass: boolean;
  defaultBackend?: BackendRef;
  /** The dataplane admin Service; its EndpointSlices are the push targets. */
  dataplaneService: NamespacedName;
  adminPortName: string;
  pushToken: string;
  /** Traffic Service whose load-balancer address goes into Ingress status. */
  publishService?: NamespacedName;
  /** Explicit addresses for Ingress status; win over `publishService`. */
  publishAddresses: string[];
  leaderElect: boolean;
  leaseNamespace: string;
  leaseName: string;
  identity: string;
  leaseDurationSeconds: number;
  holdoffMs: number;
  maxDelayMs: number;
  /** Re-check every target this often; catches a dataplane that restarted empty. */
  resyncMs: number;
  metricsHost: string;
  metricsPort: number;
}

/** Handle on a running controller (used by the CLI and tests). */
export interface RunningController {
  metricsPort: number;
  isLeader(): boolean;
  /** The newest snapshot built (undefined before the initial sync). */
  current(): Snapshot | undefined;
  lastResult(): TranslateResult | undefined;
  /** Results of the last push per target. */
  lastPush(): readonly PushResult[];
  stop(): Promise<void>;
}

export async function runController(opts: ControllerOptions, log: Logger): Promise<RunningController> {
  const kc = new KubeConfig();
  if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
  else kc.loadFromDefault();

  const metrics = controllerMetrics();
  const specs = resourceSpecs(kc);
  const ns = opts.namespaces.length ? opts.namespaces : undefined;
  let synced = false;
  let stopped = false;
  const debouncer = new Debouncer({ holdoffMs: opts.holdoffMs, maxDelayMs: opts.maxDelayMs }, (kinds) => build(kinds));
  const onEvent = (kind: ChangeKind) => (_e: WatchEvent, _o: KubernetesObject) => {
    if (synced) debouncer.notify(kind);
  };
  const ingresses = new ResourceWatcher(kc, specs.ingresses, ns, onEvent('routing'), log);
  const ingressClasses = new ResourceWatcher(kc, specs.ingressClasses, undefined, onEvent('routing'), log);
  const services = new ResourceWatcher(kc, specs.services, ns, onEvent('routing'), log);
  const endpointSlices = new ResourceWatcher(kc, specs.endpointSlices, ns, onEvent('endpoints'), log);
  const secrets = new ResourceWatcher(kc, specs.secrets, ns, onEvent('routing'), log);
  const routes = new ResourceWatcher(kc, specs.routes, ns, onEvent('routing'), log);

  // The dataplane's own Services may live outside the watched namespaces; watch just them.
  const disc = kc.makeApiClient(DiscoveryV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const adminSelector = `kubernetes.io/service-name=${opts.dataplaneService.name}`;
  const adminSlices = new ResourceWatcher<V1EndpointSlice>(kc, {
    kind: 'EndpointSlice(dataplane)',
    path: () => `/apis/discovery.k8s.io/v1/namespaces/${opts.dataplaneService.namespace}/endpointslices`,
    list: () => disc.listNamespacedEndpointSlice({ namespace: opts.dataplaneService.namespace, labelSelector: adminSelector }),
    labelSelector: adminSelector,
  }, undefined, () => void onTargetsChanged(), log);
  const publish = opts.publishService;
  const publishWatcher = publish
    ? new ResourceWatcher<V1Service>(kc, {
      kind: 'Service(publish)',
      path: () => `/api/v1/namespaces/${publish.namespace}/services`,
      list: () => core.listNamespacedService({ namespace: publish.namespace, fieldSelector: `metadata.name=${publish.name}` }),
      fieldSelector: `metadata.name=${publish.name}`,
    } satisfies ResourceSpec<V1Service>, undefined, () => void writeStatuses(), log)
    : undefined;

  const pusher = new Pusher({ token: opts.pushToken });
  const events = new EventRecorder(kc, 'pyserve-controller', opts.identity, log);
  const statusWriter = new IngressStatusWriter(kc, log);
  const routeStatusWriter = new RouteStatusWriter(kc, log);
  let leader = !opts.leaderElect;
  let generation = 0;
  let current: Snapshot | undefined;
  let result: TranslateResult | undefined;
  let lastPush: PushResult[] = [];
  /** Routing hash of the snapshot `lastPush` is about. */
  let pushedRoutingHash: string | undefined;
  let pushing: Promise<void> = Promise.resolve();

  const state = (): ClusterState => ({
    ingresses: ingresses.list(),
    ingressClasses: ingressClasses.list(),
    services: services.list(),
    endpointSlices: endpointSlices.list(),
    routes: routes.list(),
    secrets: secrets.list(),
  });

  async function build(kinds: ReadonlySet<ChangeKind>): Promise<void> {
    if (stopped) return;
    const started = performance.now();
    let next: Snapshot;
    if (current && result && !kinds.has('routing')) {
      // Endpoint fast path: routing is untouched, so only the endpoints section is rebuilt.
      const endpoints = translateEndpoints(current.routing.clusters, state());
      if (sectionHash(endpoints) === current.endpoints.hash) return;
      next = { ...current, generation: generation + 1, endpoints: { hash: sectionHash(endpoints), ...endpoints } };
      metrics.translate.observe({ kind: 'endpoints' }, (performance.now() - started) / 1000);
    } else {
      result = translate(state(), {
        controllerName: opts.controllerName,
        ingressClassName: opts.ingressClass,
        defaultBackend: opts.defaultBackend,
        watchIngressWithoutClass: opts.watchIngressWithoutClass,
        generation: generation + 1,
      });
      metrics.translate.observe({ kind: 'full' }, (performance.now() - started) / 1000);
      metrics.failures.set(result.failures.length);
      next = result.snapshot;
      if (leader) void reportFailures(result);
      if (current && current.routing.hash === next.routing.hash && current.endpoints.hash === next.endpoints.hash) {
        if (leader) void writeStatuses();
        return;
      }
    }
    generation = next.generation;
    current = next;
    metrics.generation.set(generation);
    log.info({ generation, routingHash: next.routing.hash.slice(0, 12), endpointsHash: next.endpoints.hash.slice(0, 12), fastPath: !kinds.has('routing') }, 'snapshot built');
    if (leader) {
      await pushNow();
      void writeStatuses();
    }
  }

  /** Push the current snapshot to every target; serialized so results stay in order. */
  function pushNow(): Promise<void> {
    pushing = pushing.then(async () => {
      const snap = current;
      if (!snap || !leader || stopped) return;
      const results = await pusher.push(snap);
      lastPush = results;
      pushedRoutingHash = snap.routing.hash;
      for (const r of results) {
        metrics.pushes.inc({ target: r.target, outcome: r.outcome });
        if (r.generation !== undefined) metrics.targetGeneration.set({ target: r.target }, r.generation);
        if (r.outcome === 'applied') log.info({ target: r.target, generation: r.generation }, 'snapshot applied');
        else if (r.outcome === 'rejected') log.error({ target: r.target, problems: r.problems }, 'dataplane rejected the snapshot');
        else if (r.outcome === 'unreachable') log.warn({ target: r.target, error: r.error }, 'dataplane unreachable');
      }
      await writeRouteStatuses();
    });
    return pushing;
  }

  function onTargetsChanged(): void {
    const targets = targetsFromSlices(adminSlices.list(), opts.adminPortName);
    const before = pusher.targets.map((t) => t.url).join(',');
    pusher.setTargets(targets);
    metrics.targets.set(targets.length);
    if (targets.map((t) => t.url).join(',') !== before) {
      log.info({ targets: targets.map((t) => t.id) }, 'dataplane targets changed');
      void pushNow();
    } else if (synced) {
      // A readiness flip on a known target can mean it restarted: let the pusher check.
      void pushNow();
    }
  }

  async function writeStatuses(): Promise<void> {
    if (!leader || !result || stopped) return;
    const svc = publishWatcher?.list()[0];
    const addresses = publishAddresses(svc, opts.publishAddresses);
    if (!addresses.length) return;
    const accepted = new Set(result.statuses.filter((s) => s.accepted).map((s) => `${s.namespace}/${s.name}`));
    const targets = ingresses.list().filter((i: V1Ingress) => accepted.has(`${i.metadata?.namespace}/${i.metadata?.name}`));
    const written = await statusWriter.sync(targets, addresses);
    if (written) log.info({ written }, 'ingress status updated');
  }

  /** Route conditions: the translator's Accepted and ResolvedRefs, plus Programmed from the last push. */
  async function writeRouteStatuses(): Promise<void> {
    if (!leader || !result || stopped || !result.routeStatuses.length) return;
    const programmed = programmedCondition();
    const cached = new Map<string, RouteObject>();
    for (const r of routes.list()) cached.set(`${r.metadata?.namespace}/${r.metadata?.name}`, r);
    await Promise.all(result.routeStatuses.map(async (rs) => {
      const obj = cached.get(`${rs.namespace}/${rs.name}`);
      // The cache may hold a newer generation than the one translated: its status waits for that build.
      if (!obj || (obj.metadata?.generation ?? 0) !== rs.generation) return;
      const accepted = rs.conditions[0].status === 'True';
      const conditions: DesiredCondition[] = [...rs.conditions, accepted
        ? programmed
        : { type: 'Programmed', status: 'False', reason: 'Invalid', message: 'the Route was not accepted' }];
      await routeStatusWriter.write(obj, conditions);
    }));
  }

  function programmedCondition(): DesiredCondition {
    if (!current || pushedRoutingHash !== current.routing.hash) {
      return { type: 'Programmed', status: 'Unknown', reason: 'Pending', message: 'the snapshot has not been pushed yet' };
    }
    if (!lastPush.length) {
      return { type: 'Programmed', status: 'False', reason: 'NoDataplanes', message: `no dataplane endpoints found for Service ${opts.dataplaneService.namespace}/${opts.dataplaneService.name}` };
    }
    const bad = lastPush.filter((r) => r.outcome !== 'applied' && r.outcome !== 'unchanged');
    if (bad.length) {
      return { type: 'Programmed', status: 'False', reason: 'PushFailed', message: bad.map((r) => `${r.target}: ${r.outcome}`).join('; ') };
    }
    return { type: 'Programmed', status: 'True', reason: 'Programmed', message: `applied by ${lastPush.length} dataplane(s)` };
  }

  async function reportFailures(r: TranslateResult): Promise<void> {
    const lookup = new Map<string, KubernetesObject>();
    // Listed items carry no `kind`, so the key says which cache they came from.
    for (const o of ingresses.list()) lookup.set(`Ingress|${o.metadata?.namespace}/${o.metadata?.name}`, o);
    for (const o of services.list()) lookup.set(`Service|${o.metadata?.namespace}/${o.metadata?.name}`, o);
    for (const o of routes.list()) lookup.set(`Route|${o.metadata?.namespace}/${o.metadata?.name}`, o);
    const warnings: WarningEvent[] = r.failures.map((f) => {
      const obj = lookup.get(`${f.object.kind}|${f.object.namespace}/${f.object.name}`);
      return {
        target: {
          apiVersion: f.object.kind === 'Service' ? 'v1' : f.object.kind === 'Route' ? 'pyserve.io/v1alpha1' : 'networking.k8s.io/v1',
          kind: f.object.kind,
          namespace: f.object.namespace,
          name: f.object.name,
          uid: obj?.metadata?.uid,
          resourceVersion: obj?.metadata?.resourceVersion,
        },
        reason: f.reason,
        message: `${f.field}: ${f.message}`,
      };
    });
    await events.sync(warnings);
  }

  const elector = opts.leaderElect
    ? new LeaderElector(kc, {
      namespace: opts.leaseNamespace,
      name: opts.leaseName,
      identity: opts.identity,
      leaseDurationSeconds: opts.leaseDurationSeconds,
      retryPeriodMs: Math.max(500, Math.floor((opts.leaseDurationSeconds * 1000) / 5)),
      renewDeadlineMs: Math.floor(opts.leaseDurationSeconds * 1000 * 0.66),
    }, (isLeader) => {
      leader = isLeader;
      metrics.leader.set(isLeader ? 1 : 0);
      if (isLeader && synced) {
        void pushNow();
        void writeStatuses();
        if (result) void reportFailures(result);
      }
    }, log)
    : undefined;
  metrics.leader.set(leader ? 1 : 0);

  const health: Server = await startHealthServer(opts.metricsHost, opts.metricsPort, metrics.registry, () => synced);
  const healthPort = (health.address() as { port: number }).port;

  elector?.start();
  await Promise.all([ingresses, ingressClasses, services, endpointSlices, secrets, routes, adminSlices, publishWatcher].map((w) => w?.start()));
  log.info('informers synced');
  synced = true;
  onTargetsChanged();
  debouncer.notify('routing');
  await debouncer.idle();

  const resync = setInterval(() => {
    if (leader) void pushNow();
  }, opts.resyncMs);
  resync.unref();

  return {
    metricsPort: healthPort,
    isLeader: () => leader,
    current: () => current,
    lastResult: () => result,
    lastPush: () => lastPush,
    stop: async () => {
      stopped = true;
      clearInterval(resync);
      debouncer.close();
      await elector?.stop();
      await Promise.all([ingresses, ingressClasses, services, endpointSlices, secrets, routes, adminSlices, publishWatcher].map((w) => w?.stop()));
      await pushing;
      await pusher.close();
      await new Promise<void>((r) => health.close(() => r()));
    },
  };
}
