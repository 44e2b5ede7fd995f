/**
 * API server outage, against a real control plane: two kube-apiservers on one etcd
 * (A and B, an HA pair), the controller as a child process talking to A only, two
 * real dataplanes and real backends.
 *
 * The requirement: "stopping the API server for 30 seconds: dataplanes keep serving
 * the last snapshot; when it returns, the controller resyncs and applies changes made
 * meanwhile." A is killed for 30 s while traffic is polled on both dataplanes every
 * 500 ms (no request may fail, and all of them still reach the old backend); meanwhile
 * the EndpointSlice is edited and an Ingress is added through B. When A is back, both
 * changes must reach traffic on both dataplanes within RESYNC_BOUND_MS.
 *
 * Owns its API server (startKube, never the shared one): it kills it. Never skipped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { request } from 'undici';
import { CoreV1Api, DiscoveryV1Api, NetworkingV1Api } from '@kubernetes/client-node';
import type { V1Ingress } from '@kubernetes/client-node';
import { startKube } from '../tools/kube.ts';
import type { ExtraApiServer, OwnedKubeEnv } from '../tools/kube.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnController } from '../helpers/controller.ts';
import type { ControllerChild } from '../helpers/controller.ts';
import { eventually } from '../helpers/logged-process.ts';
import { routableLocalAddress } from '../helpers/net.ts';
import { adminSlice as kubeAdminSlice, backendSlice } from '../helpers/kube-objects.ts';

/** How long API server A stays down (the 30 seconds). */
const OUTAGE_MS = 30_000;
/** Traffic probe period on each dataplane. */
const POLL_MS = 500;
/**
 * From A answering /readyz again to both changes served by both dataplanes. What the
 * controller needs: its informers' next retry (watcher.ts: a doubling backoff capped at
 * 5 s, so ≤ 5 s), a watch or relist (~100 ms), the debounce (100 ms holdoff, 1 s max)
 * and a push (~10 ms); in parallel, the next Lease retry (every 2 s with the default
 * 10 s Lease; it lost leadership 6.6 s into the outage) to lead and push again. That is
 * ≤ ~6.5 s; 15 s leaves room for a loaded two-core machine. It can also be ~0: A takes
 * requests as soon as its port is open, before /readyz passes.
 */
const RESYNC_BOUND_MS = 15_000;
/**
 * Failed retries per watched kind while A is down: a 200 ms doubling backoff capped at
 * 5 s makes ~11 in 30 s. A broken backoff retrying every 200 ms makes ~150.
 */
const MAX_RETRIES_PER_KIND = 20;

const TOKEN = 'push-token-' + randomBytes(6).toString('hex');
const suffix = randomBytes(3).toString('hex');
const CLASS = `pyserve-${suffix}`;
const CONTROLLER_NAME = `pyserve.io/outage-${suffix}`;
// EndpointSlices may not hold loopback addresses; backends and admin APIs listen here.
const IP = routableLocalAddress();

let env: OwnedKubeEnv;
let apiB: ExtraApiServer;
let ns: string;
let blue: Backend;
let green: Backend;
let controller: ControllerChild;
const dataplanes: DataplaneChild[] = [];

const adminSlice = (name: string, dp: DataplaneChild) => kubeAdminSlice(ns, IP, name, dp.adminPort, true);
const webSlice = (backend: Backend) => backendSlice(ns, IP, 'web-1', 'web', backend.port);

function ingress(name: string, host: string): V1Ingress {
  return {
    metadata: { name },
    spec: {
      ingressClassName: CLASS,
      rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { name: 'http' } } } }] } }],
    },
  };
}

interface Probe {
  status: number;
  backend?: string;
  error?: string;
}

/** One GET through a dataplane, with a timeout: a hung request is a failure too. */
async function probe(dp: DataplaneChild, host: string): Promise<Probe> {
  try {
    const res = await request(`${dp.trafficUrl}/outage`, { headers: { host }, headersTimeout: 2_000, bodyTimeout: 2_000 });
    const text = await res.body.text();
    const backend = res.statusCode === 200 ? (JSON.parse(text) as { backend: string }).backend : undefined;
    return { status: res.statusCode, backend };
  } catch (err) {
    return { status: 0, error: err instanceof Error ? err.message : String(err) };
  }
}

type Phase = 'before' | 'outage' | 'restarting' | 'resyncing';
interface Sample extends Probe {
  at: number;
  phase: Phase;
  dp: number;
}

/** Polls app.test on every dataplane every POLL_MS until stopped, labelling samples with the phase. */
function startTraffic() {
  const samples: Sample[] = [];
  let phase: Phase = 'before';
  let running = true;
  const loop = (async () => {
    while (running) {
      const tick = performance.now();
      const p = phase;
      await Promise.all(dataplanes.map(async (dp, i) => {
        samples.push({ ...(await probe(dp, 'app.test')), at: performance.now(), phase: p, dp: i });
      }));
      await sleep(Math.max(0, POLL_MS - (performance.now() - tick)));
    }
  })();
  return {
    samples,
    setPhase: (p: Phase) => { phase = p; },
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const failed = (s: Probe) => s.status !== 200 || s.error !== undefined;

function refused(server: string): Promise<string> {
  const port = Number(new URL(server).port);
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1', () => { sock.destroy(); resolve('connected'); });
    sock.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

beforeAll(async () => {
  env = await startKube({ crdsDir: new URL('../../crds/', import.meta.url).pathname });
  ns = await env.createNamespace('outage');
  const core = env.kc.makeApiClient(CoreV1Api);
  const disc = env.kc.makeApiClient(DiscoveryV1Api);
  const net = env.kc.makeApiClient(NetworkingV1Api);
  blue = await startBackend('blue', undefined, IP);
  green = await startBackend('green', undefined, IP);
  for (let i = 0; i < 2; i++) {
    dataplanes.push(await spawnDataplane({ token: TOKEN, args: ['--admin-host', IP, '--admin-port', '0'] }));
  }

  await net.createIngressClass({ body: { metadata: { name: CLASS }, spec: { controller: CONTROLLER_NAME } } });
  await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'pyserve-admin' }, spec: { ports: [{ name: 'admin', port: 9901 }] } } });
  for (const [i, dp] of dataplanes.entries()) await disc.createNamespacedEndpointSlice({ namespace: ns, body: adminSlice(`dp-${i}`, dp) });
  await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'web' }, spec: { ports: [{ name: 'http', port: 80 }] } } });
  await disc.createNamespacedEndpointSlice({ namespace: ns, body: webSlice(blue) });
  await net.createNamespacedIngress({ namespace: ns, body: ingress('app', 'app.test') });

  // B before the outage, so its start-up is not part of the timed window.
  apiB = await env.startExtraApiServer();
  console.log(`API server A ready in ${env.startupMs} ms (${env.server}); B in ${apiB.startupMs} ms (${apiB.server})`);

  // Only A's address: the controller cannot see what is written through B until A is back.
  // Default Lease (10 s) and resync (5 s), as deployed.
  controller = await spawnController([
    '--kubeconfig', env.kubeconfigPath,
    '--namespaces', ns,
    '--controller-name', CONTROLLER_NAME,
    '--dataplane-service', `${ns}/pyserve-admin`,
    '--publish-address', '192.0.2.10',
    '--leader-election-namespace', ns,
  ], { PYSERVE_PUSH_TOKEN: TOKEN, POD_NAME: 'ctl-outage' });
}, 30 * 60_000);

afterAll(async () => {
  await controller?.stop('SIGKILL');
  await Promise.all(dataplanes.map((d) => d.stop('SIGKILL')));
  await blue?.close();
  await green?.close();
  await env?.stop();
});

describe('API server outage', () => {
  let traffic: ReturnType<typeof startTraffic>;
  let downAt = 0;

  it('serves the Ingress on both dataplanes before the outage', async () => {
    for (const dp of dataplanes) {
      await eventually(async () => (await probe(dp, 'app.test')).backend === 'blue', 20_000, 'app.test via blue');
    }
    expect(controller.logs.some((l) => l.msg === 'became leader')).toBe(true);
  });

  it(`keeps serving the last snapshot on both dataplanes while API server A is down for ${OUTAGE_MS / 1000} s; changes go through B`, async () => {
    traffic = startTraffic();
    await sleep(2 * POLL_MS);
    const logsBefore = controller.logs.length;

    traffic.setPhase('outage');
    await env.stopApiServer();
    downAt = performance.now();
    expect(env.apiServerRunning()).toBe(false);
    expect(await refused(env.server)).toBe('ECONNREFUSED');

    // The changes, through B: the backend moves from blue to green; a new host appears.
    const discB = apiB.kc.makeApiClient(DiscoveryV1Api);
    const netB = apiB.kc.makeApiClient(NetworkingV1Api);
    await discB.replaceNamespacedEndpointSlice({ namespace: ns, name: 'web-1', body: webSlice(green) });
    await netB.createNamespacedIngress({ namespace: ns, body: ingress('added', 'added.test') });
    expect((await discB.readNamespacedEndpointSlice({ namespace: ns, name: 'web-1' })).ports?.[0]?.port).toBe(green.port);

    await sleep(OUTAGE_MS - (performance.now() - downAt) - 1_000);
    // The last snapshot, still: the new host is unknown to both dataplanes.
    for (const dp of dataplanes) expect((await probe(dp, 'added.test')).status).toBe(404);
    await sleep(OUTAGE_MS - (performance.now() - downAt));

    expect(controller.child.exitCode).toBeNull();
    expect(controller.child.signalCode).toBeNull();
    const outage = traffic.samples.filter((s) => s.phase === 'outage');
    const bad = outage.filter((s) => failed(s) || s.backend !== 'blue');
    const perDp = dataplanes.map((_, i) => outage.filter((s) => s.dp === i).map((s) => s.at));
    const maxGap = Math.max(...perDp.map((ts) => Math.max(...ts.slice(1).map((t, k) => t - ts[k]!))));
    const watchFailures = controller.logs.slice(logsBefore).filter((l) => l.msg === 'watch failed; restarting');
    const retries = watchFailures.map((l) => Number(l.retryInMs));
    const perKind = new Map<string, number>();
    for (const l of watchFailures) perKind.set(String(l.kind), (perKind.get(String(l.kind)) ?? 0) + 1);
    console.log(`outage: ${outage.length} requests over ${(OUTAGE_MS / 1000).toFixed(0)} s on ${dataplanes.length} dataplanes, ${bad.length} failed or off the last snapshot, `
      + `longest gap between probes ${maxGap.toFixed(0)} ms; controller logged ${watchFailures.length} watch failures over ${perKind.size} kinds `
      + `(at most ${Math.max(...perKind.values())} per kind; retry delays ${Math.min(...retries)}–${Math.max(...retries)} ms)`
      + `${controller.logs.slice(logsBefore).some((l) => l.msg === 'lost leadership') ? ', lost leadership' : ''}`);
    expect(bad).toEqual([]);
    // Polled throughout: one probe per dataplane at least every ~POLL_MS.
    for (const ts of perDp) expect(ts.length).toBeGreaterThanOrEqual(OUTAGE_MS / POLL_MS / 2);
    expect(maxGap).toBeLessThan(5 * POLL_MS);
    // It noticed (so the test did take its API server away), stayed up, and backed off.
    expect(watchFailures.length).toBeGreaterThan(0);
    expect(Math.max(...perKind.values())).toBeLessThanOrEqual(MAX_RETRIES_PER_KIND);
  }, OUTAGE_MS + 60_000);

  it(`resyncs when A is back: both changes reach traffic on both dataplanes within ${RESYNC_BOUND_MS / 1000} s`, async () => {
    expect(downAt).toBeGreaterThan(0);
    traffic.setPhase('restarting');
    const restartAt = performance.now();
    const logsBefore = controller.logs.length;
    const { readyMs } = await env.startApiServer();
    traffic.setPhase('resyncing');
    const readyAt = performance.now();
    const readyWall = Date.now();

    const applied = async () => {
      for (const dp of dataplanes) {
        if ((await probe(dp, 'app.test')).backend !== 'green') return false;
        const added = await probe(dp, 'added.test');
        if (added.status !== 200 || added.backend !== 'green') return false;
      }
      return true;
    };
    const { ms } = await eventually(applied, RESYNC_BOUND_MS + 30_000, 'both changes on both dataplanes', 100);
    const doneAt = performance.now();
    await traffic.stop();

    const afterReady = doneAt - readyAt;
    // From the controller's own log (pino's epoch-ms `time`): A takes requests once its
    // port is open, before /readyz passes, so this can be negative.
    const built = controller.logs.slice(logsBefore).find((l) => l.msg === 'snapshot built');
    const builtVsReady = built ? `${Number(built.time) - readyWall} ms` : 'n/a';
    console.log(`A was down ${((restartAt - downAt) / 1000).toFixed(1)} s and took ${readyMs} ms to be ready again; `
      + `both changes reached both dataplanes ${afterReady.toFixed(0)} ms after A was ready (${(doneAt - restartAt).toFixed(0)} ms after restarting it; `
      + `${(doneAt - downAt).toFixed(0)} ms after it went down); the controller built the new snapshot at ${builtVsReady} relative to A's readiness`);
    expect(ms).toBeLessThanOrEqual(afterReady + 1);
    expect(afterReady).toBeLessThan(RESYNC_BOUND_MS);

    // No request failed at any point: before, during, restarting, resyncing.
    const bad = traffic.samples.filter(failed);
    console.log(`traffic: ${traffic.samples.length} requests in all, ${bad.length} failed`);
    expect(bad).toEqual([]);

    // The same controller process did it, and leads again.
    expect(controller.child.exitCode).toBeNull();
    expect(controller.child.signalCode).toBeNull();
    await eventually(async () => /pyserve_controller_leader 1/.test(await (await fetch(`${controller.metricsUrl}/metrics`)).text()), 10_000, 'the controller to lead again');
  }, 180_000);
});
