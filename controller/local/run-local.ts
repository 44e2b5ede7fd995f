/**
 * Local mode: manifests from a folder instead of an API server, pushed to a
 * dataplane this process starts itself. The embedded default of PyServe and
 * the fastest way to try a config.
 */
import type { Logger } from 'pino';
import { translate } from '../translate/index.ts';
import type { ClusterState, TranslateOptions } from '../translate/types.ts';
import type { Snapshot } from '../../dataplane/snapshot/schema.ts';
import { Pusher } from '../push/pusher.ts';
import { FolderSource } from './folder-source.ts';
import type { LocatedObject } from './parse-manifests.ts';
import { startDataplaneProcess } from './dataplane-process.ts';
import { startDemoBackends } from './demo-backends.ts';

/** Options of {@link runLocal}. */
export interface LocalOptions {
  /** Folder of Kubernetes YAML (Ingress, IngressClass, Service, EndpointSlice). */
  dir: string;
  trafficHost: string;
  trafficPort: number;
  /** Start the two demo backends that examples/demo points at. */
  demo: boolean;
  /** IngressClass controller name PyServe answers to. */
  controllerName: string;
  /** Seconds between re-checks that the dataplane still has the current snapshot. */
  resyncSeconds: number;
}

/** A running local mode. */
export interface LocalRun {
  trafficPort: number;
  adminUrl: string;
  /** Resolves after the current folder content has been applied (or rejected). */
  reloaded(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves when the dataplane child exits (normally only after stop()). */
  dataplaneExited: Promise<number | null>;
}

export async function runLocal(opts: LocalOptions, log: Logger): Promise<LocalRun> {
  const demo = opts.demo ? await startDemoBackends() : undefined;
  const dataplane = await startDataplaneProcess({
    trafficHost: opts.trafficHost,
    trafficPort: opts.trafficPort,
    onLog: (line) => process.stdout.write(line + '\n'),
  }).catch(async (err: unknown) => {
    await demo?.close();
    throw err;
  });
  const dataplaneExited = new Promise<number | null>((resolve) => dataplane.child.once('exit', (code) => resolve(code)));
  const pusher = new Pusher({ token: dataplane.token, maxAttempts: 3 });
  pusher.setTargets([{ id: 'local-dataplane', url: dataplane.adminUrl }]);

  const source = new FolderSource(opts.dir);
  const translateOptions: TranslateOptions = {
    controllerName: opts.controllerName,
    // Nobody else serves a local folder, so an Ingress without a class is ours.
    watchIngressWithoutClass: true,
    generation: 0,
  };
  let generation = 0;
  let current: Snapshot | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;

  const reload = async (): Promise<void> => {
    const scan = await source.scan();
    for (const w of scan.warnings) log.warn({ file: w.file, line: w.line, column: w.column }, w.message);
    for (const p of scan.problems) log.error({ file: p.file, line: p.line, column: p.column }, `${p.file}:${p.line}:${p.column}: ${p.message}`);
    for (const f of scan.keptPrevious) log.warn({ file: f }, `${f}: keeping its last good content until the problems above are fixed`);

    const state = toClusterState(scan.objects);
    const result = translate(state, { ...translateOptions, generation: generation + 1 });
    const where = locator(scan.objects);
    for (const f of result.failures) {
      const loc = where(f.object.kind, f.object.namespace, f.object.name);
      log.warn({ object: f.object, field: f.field, reason: f.reason, file: loc?.file, line: loc?.line },
        `${loc ? `${loc.file}:${loc.line}: ` : ''}${f.object.kind} ${f.object.namespace}/${f.object.name} ${f.field}: ${f.reason}: ${f.message}`);
    }
    const next = result.snapshot;
    if (current && current.routing.hash === next.routing.hash && current.endpoints.hash === next.endpoints.hash) return;
    generation = next.generation;
    current = next;
    await pushCurrent();
  };

  const pushCurrent = async (): Promise<void> => {
    if (!current) return;
    for (const r of await pusher.push(current)) {
      if (r.outcome === 'applied') log.info({ target: r.target, generation: r.generation }, 'snapshot applied');
      else if (r.outcome === 'rejected') log.error({ target: r.target, problems: r.problems }, 'dataplane rejected the snapshot; it keeps serving the previous one');
      else if (r.outcome === 'unreachable') log.error({ target: r.target, error: r.error }, 'dataplane unreachable');
    }
  };

  // Reloads are serialized: a change during a reload queues exactly one more.
  let queued = false;
  const schedule = (): Promise<void> => {
    if (queued) return running;
    queued = true;
    running = running.then(async () => {
      queued = false;
      if (stopped) return;
      try {
        await reload();
      } catch (err) {
        log.error({ err }, 'reload failed; the dataplane keeps its last good snapshot');
      }
    });
    return running;
  };

  await schedule();
  source.watch(() => void schedule());
  // A resync catches a dataplane that lost its state (pusher skips when hashes match).
  const resync = setInterval(() => {
    running = running.then(pushCurrent).catch((err: unknown) => log.error({ err }, 'resync failed'));
  }, opts.resyncSeconds * 1000);
  resync.unref();

  return {
    trafficPort: dataplane.trafficPort,
    adminUrl: dataplane.adminUrl,
    dataplaneExited,
    reloaded: () => running,
    stop: async () => {
      stopped = true;
      clearInterval(resync);
      source.close();
      await running;
      await dataplane.stop();
      await pusher.close();
      await demo?.close();
    },
  };
}

function toClusterState(objects: LocatedObject[]): ClusterState {
  const of = (kind: string) => objects.filter((o) => o.object.kind === kind).map((o) => o.object);
  return {
    ingresses: of('Ingress'),
    ingressClasses: of('IngressClass'),
    services: of('Service'),
    endpointSlices: of('EndpointSlice'),
    secrets: of('Secret'),
  } as unknown as ClusterState;
}

function locator(objects: LocatedObject[]) {
  const index = new Map<string, LocatedObject>();
  for (const o of objects) index.set(`${o.object.kind}/${o.object.metadata.namespace ?? ''}/${o.object.metadata.name}`, o);
  return (kind: string, namespace: string, name: string) => index.get(`${kind}/${namespace}/${name}`);
}
