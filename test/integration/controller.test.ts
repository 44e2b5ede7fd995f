/**
 * The controller against a real kube-apiserver and etcd, real dataplane
 * processes and real backends: informers → translate → push → traffic, the
 * endpoint fast path, push discovery, Events, status, and leader failover.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, DiscoveryV1Api, NetworkingV1Api } from '@kubernetes/client-node';
import { getKube } from '../tools/kube-shared.ts';
import type { KubeEnv } from '../tools/kube.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { http, echoed } from '../helpers/http.ts';
import { getSnapshotState } from '../helpers/snapshots.ts';
import { spawnController } from '../helpers/controller.ts';
import type { ControllerChild } from '../helpers/controller.ts';
import { eventually } from '../helpers/logged-process.ts';
import { routableLocalAddress } from '../helpers/net.ts';
import { adminSlice as kubeAdminSlice, backendSlice as kubeBackendSlice } from '../helpers/kube-objects.ts';

const TOKEN = 'push-token-' + randomBytes(6).toString('hex');
const suffix = randomBytes(3).toString('hex');
const CLASS = `pyserve-${suffix}`;
const CONTROLLER_NAME = `pyserve.io/test-${suffix}`;
// EndpointSlices may not hold loopback addresses; everything listens here instead.
const IP = routableLocalAddress();

let env: KubeEnv;
let ns: string;
let core: CoreV1Api;
let disc: DiscoveryV1Api;
let net: NetworkingV1Api;
let custom: CustomObjectsApi;
let blue: Backend;
let green: Backend;
const dataplanes: DataplaneChild[] = [];
const controllers: ControllerChild[] = [];

const adminSlice = (name: string, dp: DataplaneChild, ready: boolean) => kubeAdminSlice(ns, IP, name, dp.adminPort, ready);
// Every test backend listens on its own port, so a slice holds one of them.
const backendSlice = (name: string, service: string, backend: Backend) => kubeBackendSlice(ns, IP, name, service, backend.port);

async function startController(podName: string, extra: string[] = []): Promise<ControllerChild> {
  const c = await spawnController([
    '--kubeconfig', env.kubeconfigPath,
    '--namespaces', ns,
    '--controller-name', CONTROLLER_NAME,
    '--dataplane-service', `${ns}/pyserve-admin`,
    '--publish-address', '192.0.2.10',
    '--leader-election-namespace', ns,
    '--lease-duration-seconds', '6',
    '--resync-seconds', '1',
    '--log-level', 'debug',
    ...extra,
  ], { PYSERVE_PUSH_TOKEN: TOKEN, POD_NAME: podName });
  controllers.push(c);
  return c;
}

/** A dataplane whose admin API listens where its EndpointSlice says. */
const startDataplane = (adminPort = 0) => spawnDataplane({ token: TOKEN, args: ['--admin-host', IP, '--admin-port', String(adminPort)] });

const adminUrl = (dp: DataplaneChild) => `http://${IP}:${dp.adminPort}`;
const get = (dp: DataplaneChild, host: string, path = '/') => http(`${dp.trafficUrl}${path}`, { headers: { host } });

beforeAll(async () => {
  env = await getKube({ crdsDir: new URL('../../crds/', import.meta.url).pathname });
  ns = await env.createNamespace('ctl');
  core = env.kc.makeApiClient(CoreV1Api);
  disc = env.kc.makeApiClient(DiscoveryV1Api);
  net = env.kc.makeApiClient(NetworkingV1Api);
  custom = env.kc.makeApiClient(CustomObjectsApi);
  blue = await startBackend('blue', undefined, IP);
  green = await startBackend('green', undefined, IP);
  for (let i = 0; i < 2; i++) dataplanes.push(await startDataplane());

  await net.createIngressClass({ body: { metadata: { name: CLASS }, spec: { controller: CONTROLLER_NAME } } });
  await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'pyserve-admin' }, spec: { ports: [{ name: 'admin', port: 9901 }] } } });
  // Not ready yet, as a fresh dataplane pod is: it must still get a snapshot.
  for (const [i, dp] of dataplanes.entries()) await disc.createNamespacedEndpointSlice({ namespace: ns, body: adminSlice(`dp-${i}`, dp, false) });
  await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'web' }, spec: { ports: [{ name: 'http', port: 80 }] } } });
  await disc.createNamespacedEndpointSlice({ namespace: ns, body: backendSlice('web-1', 'web', blue) });
  await net.createNamespacedIngress({
    namespace: ns,
    body: {
      metadata: { name: 'app' },
      spec: {
        ingressClassName: CLASS,
        rules: [{ host: 'app.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { name: 'http' } } } }] } }],
      },
    },
  });
  await startController('ctl-a');
}, 30 * 60_000);

afterAll(async () => {
  await Promise.all(controllers.map((c) => c.stop('SIGKILL')));
  await Promise.all(dataplanes.map((d) => d.stop('SIGKILL')));
  await blue?.close();
  await green?.close();
  await net?.deleteIngressClass({ name: CLASS }).catch(() => undefined);
  await env?.stop();
});

describe('controller on a real API server', () => {
  it('serves an Ingress on every dataplane, including not-ready ones', async () => {
    for (const dp of dataplanes) {
      const { value } = await eventually(async () => {
        const r = await get(dp, 'app.test', '/hello');
        return r.status === 200 && r;
      }, 15_000, 'the Ingress to be served');
      expect(echoed(value).backend).toBe('blue');
      const state = await getSnapshotState(adminUrl(dp), { token: TOKEN });
      expect(state.status).toBe(200);
    }
  });

  it('serves a new Ingress on both dataplanes within 2 seconds; an edit reroutes; a delete gives 404', async () => {
    const ingress = (path: string) => ({
      metadata: { name: 'timed' },
      spec: { ingressClassName: CLASS, rules: [{ host: 'timed.test', http: { paths: [{ path, pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] },
    });
    const t0 = performance.now();
    await net.createNamespacedIngress({ namespace: ns, body: ingress('/one') });
    for (const dp of dataplanes) await eventually(async () => (await get(dp, 'timed.test', '/one')).status === 200, 5_000, 'timed.test on every dataplane', 10);
    const ms = performance.now() - t0;
    console.log(`a new Ingress was served by both dataplanes ${ms.toFixed(0)} ms after the API write`);
    expect(ms).toBeLessThan(2_000);

    // A patch, not read-modify-replace: the controller writes this Ingress's status meanwhile.
    await net.patchNamespacedIngress({ namespace: ns, name: 'timed', body: [{ op: 'replace', path: '/spec/rules/0/http/paths/0/path', value: '/two' }] });
    await eventually(async () => (await get(dataplanes[1]!, 'timed.test', '/two')).status === 200, 5_000, 'the edit');
    expect((await get(dataplanes[1]!, 'timed.test', '/one')).status).toBe(404);

    await net.deleteNamespacedIngress({ namespace: ns, name: 'timed' });
    for (const dp of dataplanes) await eventually(async () => (await get(dp, 'timed.test', '/two')).status === 404, 5_000, 'the delete');
  });

  it('writes Ingress status.loadBalancer from --publish-address', async () => {
    await eventually(async () => {
      const ing = await net.readNamespacedIngressStatus({ namespace: ns, name: 'app' });
      return ing.status?.loadBalancer?.ingress?.[0]?.ip === '192.0.2.10';
    }, 15_000, 'ingress status');
  });

  it('applies an EndpointSlice change through the fast path, well under a second', async () => {
    const before = (await getSnapshotState(adminUrl(dataplanes[0]!), { token: TOKEN })).json as { routingHash: string; endpointsHash: string };
    const t0 = performance.now();
    await disc.replaceNamespacedEndpointSlice({ namespace: ns, name: 'web-1', body: backendSlice('web-1', 'web', green) });
    for (const dp of dataplanes) {
      await eventually(async () => echoed(await get(dp, 'app.test')).backend === 'green', 10_000, 'traffic to move to green', 10);
    }
    const ms = performance.now() - t0;
    console.log(`endpoint change reached traffic on both dataplanes in ${ms.toFixed(0)} ms`);
    const after = (await getSnapshotState(adminUrl(dataplanes[0]!), { token: TOKEN })).json as { routingHash: string; endpointsHash: string };
    expect(after.routingHash).toBe(before.routingHash);
    expect(after.endpointsHash).not.toBe(before.endpointsHash);
    // The holdoff is 100 ms; anything near the max delay (1 s) means the fast path did not run.
    expect(ms).toBeLessThan(3_000);
  });

  it('fails only the broken route, with a Warning Event naming the reason and field', async () => {
    await net.createNamespacedIngress({
      namespace: ns,
      body: {
        metadata: { name: 'broken' },
        spec: {
          ingressClassName: CLASS,
          rules: [{ host: 'broken.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'missing', port: { number: 80 } } } }] } }],
        },
      },
    });
    const { value: event } = await eventually(async () => {
      const list = await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=broken' });
      return list.items.find((e) => e.reason === 'ServiceNotFound');
    }, 15_000, 'a ServiceNotFound event');
    expect(event.type).toBe('Warning');
    expect(event.involvedObject.kind).toBe('Ingress');
    expect(event.message).toMatch(/backend\.service/);
    await eventually(async () => (await get(dataplanes[0]!, 'broken.test')).status === 503, 10_000, 'broken.test to answer 503');
    expect((await get(dataplanes[0]!, 'app.test')).status).toBe(200);
    // Deduplicated: later builds do not repeat the event.
    await net.createNamespacedIngress({
      namespace: ns,
      body: { metadata: { name: 'other' }, spec: { ingressClassName: CLASS, rules: [{ host: 'other.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] } },
    });
    await eventually(async () => (await get(dataplanes[0]!, 'other.test')).status === 200, 10_000, 'other.test');
    const again = await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=broken' });
    expect(again.items.filter((e) => e.reason === 'ServiceNotFound')).toHaveLength(1);
  });

  it('pushes to a new dataplane within a second, and re-pushes one that restarted empty', async () => {
    const dp = await startDataplane();
    dataplanes.push(dp);
    const t0 = performance.now();
    await disc.createNamespacedEndpointSlice({ namespace: ns, body: adminSlice('dp-new', dp, false) });
    await eventually(async () => (await get(dp, 'app.test')).status === 200, 10_000, 'the new dataplane to serve', 10);
    const ms = performance.now() - t0;
    console.log(`new dataplane served ${ms.toFixed(0)} ms after its EndpointSlice appeared`);
    expect(ms).toBeLessThan(3_000);

    // Same admin port, empty state: only the resync can notice.
    const port = dp.adminPort;
    await dp.stop();
    const fresh = await startDataplane(port);
    dataplanes.push(fresh);
    await eventually(async () => (await get(fresh, 'app.test')).status === 200, 10_000, 'the restarted dataplane to be re-pushed');
  });

  it('exposes per-target generations in its metrics', async () => {
    const text = await (await fetch(`${controllers[0]!.metricsUrl}/metrics`)).text();
    expect(text).toMatch(/pyserve_controller_target_generation\{target="dp-0"\} \d+/);
    expect(text).toMatch(/pyserve_controller_push_total\{target="dp-1",outcome="applied"\} \d+/);
    expect(text).toMatch(/pyserve_controller_leader 1/);
  });

  it('fails over to another replica within 15 seconds when the leader dies', async () => {
    const lease = env.kc.makeApiClient(CoordinationV1Api);
    const b = await startController('ctl-b');
    expect((await lease.readNamespacedLease({ namespace: ns, name: 'pyserve-controller' })).spec?.holderIdentity).toBe('ctl-a');
    const t0 = performance.now();
    await controllers[0]!.stop('SIGKILL');
    const { ms } = await eventually(async () => {
      const l = await lease.readNamespacedLease({ namespace: ns, name: 'pyserve-controller' });
      return l.spec?.holderIdentity === 'ctl-b';
    }, 20_000, 'ctl-b to take the lease', 200);
    console.log(`leader failover took ${(performance.now() - t0).toFixed(0)} ms`);
    expect(ms).toBeLessThan(15_000);
    // The new leader pushes: a change made now reaches traffic.
    await disc.replaceNamespacedEndpointSlice({ namespace: ns, name: 'web-1', body: backendSlice('web-1', 'web', blue) });
    await eventually(async () => echoed(await get(dataplanes[0]!, 'app.test')).backend === 'blue', 10_000, 'traffic back on blue via ctl-b');
    expect(b.logs.some((l) => l.msg === 'became leader')).toBe(true);
    // The standby now writes status too.
    await net.createNamespacedIngress({
      namespace: ns,
      body: { metadata: { name: 'after-failover' }, spec: { ingressClassName: CLASS, rules: [{ host: 'late.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] } },
    });
    await eventually(async () => {
      const ing = await net.readNamespacedIngressStatus({ namespace: ns, name: 'after-failover' });
      return ing.status?.loadBalancer?.ingress?.[0]?.ip === '192.0.2.10';
    }, 15_000, 'ctl-b to write status');
  });

  it('serves a Route and reports Accepted, ResolvedRefs and Programmed with observedGeneration', async () => {
    const route = (name: string, spec: unknown) => custom.createNamespacedCustomObject({
      group: 'pyserve.io', version: 'v1alpha1', namespace: ns, plural: 'routes',
      body: { apiVersion: 'pyserve.io/v1alpha1', kind: 'Route', metadata: { name }, spec },
    });
    await route('api', {
      ingressClassName: CLASS,
      hostnames: ['api.test'],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/v1' }, method: 'GET', headers: [{ name: 'x-canary', value: 'yes' }] }], backends: [{ name: 'web', port: 80 }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/v1' } }], backends: [{ name: 'missing', port: 80 }] },
      ],
    });
    await eventually(async () => (await get(dataplanes[0]!, 'api.test', '/v1/x').then((r) => r.status)) === 503, 10_000, 'the Route to be served');
    const canary = await http(`${dataplanes[0]!.trafficUrl}/v1/x`, { headers: { host: 'api.test', 'x-canary': 'yes' } });
    expect(canary.status).toBe(200);

    type Conditions = { type: string; status: string; reason: string; observedGeneration: number }[];
    const read = async () => (await custom.getNamespacedCustomObjectStatus({ group: 'pyserve.io', version: 'v1alpha1', namespace: ns, plural: 'routes', name: 'api' })) as { metadata: { generation: number }; status?: { conditions?: Conditions } };
    const { value: st } = await eventually(async () => {
      const r = await read();
      const c = r.status?.conditions ?? [];
      return c.find((x) => x.type === 'Programmed')?.status === 'True' && r;
    }, 15_000, 'Programmed=True');
    const byType = Object.fromEntries((st.status!.conditions ?? []).map((c) => [c.type, c]));
    expect(byType.Accepted).toMatchObject({ status: 'True', reason: 'Accepted', observedGeneration: st.metadata.generation });
    expect(byType.ResolvedRefs).toMatchObject({ status: 'False', reason: 'BackendNotFound' });
    expect(byType.Programmed).toMatchObject({ status: 'True', observedGeneration: st.metadata.generation });

    // Fixing the reference bumps the generation; status follows it.
    await custom.patchNamespacedCustomObject({
      group: 'pyserve.io', version: 'v1alpha1', namespace: ns, plural: 'routes', name: 'api',
      body: [{ op: 'replace', path: '/spec/rules/1/backends/0/name', value: 'web' }],
    });
    await eventually(async () => {
      const r = await read();
      const c = Object.fromEntries((r.status?.conditions ?? []).map((x) => [x.type, x]));
      return r.metadata.generation === 2 && c.ResolvedRefs?.status === 'True' && c.ResolvedRefs.observedGeneration === 2 && c.Programmed?.status === 'True';
    }, 15_000, 'ResolvedRefs=True at generation 2');
    expect((await get(dataplanes[0]!, 'api.test', '/v1/x')).status).toBe(200);
  });

  it('rejects invalid Routes at the API server with a clear message', async () => {
    const create = (spec: unknown) => custom.createNamespacedCustomObject({
      group: 'pyserve.io', version: 'v1alpha1', namespace: ns, plural: 'routes',
      body: { apiVersion: 'pyserve.io/v1alpha1', kind: 'Route', metadata: { name: `r-${randomBytes(3).toString('hex')}` }, spec },
    });
    await expect(create({ rules: [{ backends: [{ name: 'web', port: 80 }] }] })).resolves.toBeTruthy();
    const bad = async (spec: unknown, message: RegExp) => {
      const err = await create(spec).then(() => undefined, (e: unknown) => e as { code?: number; body?: string });
      expect(err?.code).toBe(422);
      expect((JSON.parse(String(err?.body)) as { message: string }).message).toMatch(message);
    };
    await bad({ rules: [{ matches: [{ path: { type: 'PathPrefix', value: 'no-slash' } }], backends: [{ name: 'web', port: 80 }] }] }, /must start with "\/"/);
    await bad({ rules: [{ backends: [{ name: 'web', port: 80, weight: 0 }] }] }, /at least one backend needs a weight above 0/);
    await bad({ hostnames: ['Bad_Host'], rules: [{ backends: [{ name: 'web', port: 80 }] }] }, /hostnames/);
    await bad({ rules: [] }, /rules/);
    // A spec-level CEL rule: proves the harness installs rules nested under `properties`.
    await bad({ hostnames: ['a.test', 'a.test'], rules: [{ backends: [{ name: 'web', port: 80 }] }] }, /hostnames must be unique/);
  });
});
