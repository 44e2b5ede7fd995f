/**
 * The real-API-server harness (test/tools/kube.ts) against a real kube-apiserver and
 * etcd: the resources the controller watches round-trip through client-node, an
 * informer sees an add, the server's own validation answers 422, RBAC is enforced,
 * and the repository's CRDs are accepted and served.
 *
 * Never skipped: when the binaries are not cached, startKube builds them (minutes on
 * a cold machine), and a failed build fails this file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import {
  ApiextensionsV1Api, CoreV1Api, CustomObjectsApi, DiscoveryV1Api, NetworkingV1Api, VersionApi, makeInformer,
} from '@kubernetes/client-node';
import type { V1Service } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { errorCode, startKube } from '../tools/kube.ts';
import type { KubeEnv } from '../tools/kube.ts';
import { getKube } from '../tools/kube-shared.ts';

const crdsDir = fileURLToPath(new URL('../../crds/', import.meta.url));

let env: KubeEnv;

beforeAll(async () => {
  // The run's shared server when kube-global-setup.ts is configured, else our own.
  env = await getKube({ users: [{ name: 'controller', groups: [] }] });
  console.log(`kube-harness: API server ready in ${env.startupMs} ms at ${env.server}`);
}, 60 * 60_000); // a cold build of kube-apiserver takes many minutes on two cores

afterAll(async () => {
  await env?.stop();
}, 30_000);

describe('real kube-apiserver harness', () => {
  it('serves the pinned release with a verified TLS connection', async () => {
    const version = await env.kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
    expect(env.kc.getCurrentCluster()?.skipTLSVerify).toBeFalsy();
  });

  it('round-trips Namespace, Service, EndpointSlice, IngressClass and Ingress', async () => {
    const core = env.kc.makeApiClient(CoreV1Api);
    const net = env.kc.makeApiClient(NetworkingV1Api);
    const disc = env.kc.makeApiClient(DiscoveryV1Api);
    const namespace = await env.createNamespace('harness');
    const className = `pyserve-${namespace}`;

    await core.createNamespacedService({
      namespace,
      body: { metadata: { name: 'web' }, spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
    });
    await disc.createNamespacedEndpointSlice({
      namespace,
      body: {
        metadata: { name: 'web-1', labels: { 'kubernetes.io/service-name': 'web' } },
        addressType: 'IPv4',
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
        // Only stored, never dialled: a documentation address (TEST-NET-1), since the
        // real validation refuses loopback endpoints (see the 422 test below).
        endpoints: [{ addresses: ['192.0.2.10'], conditions: { ready: true } }],
      },
    });
    await net.createIngressClass({
      body: { metadata: { name: className }, spec: { controller: 'pyserve.io/ingress-controller' } },
    });
    await net.createNamespacedIngress({
      namespace,
      body: {
        metadata: { name: 'web' },
        spec: {
          ingressClassName: className,
          rules: [{
            host: 'example.test',
            http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { name: 'http' } } } }] },
          }],
        },
      },
    });

    const namespaces = await core.listNamespace();
    expect(namespaces.items.map((n) => n.metadata?.name)).toEqual(expect.arrayContaining(['default', namespace]));

    const services = await core.listNamespacedService({ namespace });
    expect(services.items.map((s) => s.metadata?.name)).toEqual(['web']);
    // The server allocated a ClusterIP from --service-cluster-ip-range.
    expect(services.items[0]?.spec?.clusterIP).toMatch(/^10\.0\.0\.\d+$/);

    const slices = await disc.listNamespacedEndpointSlice({ namespace, labelSelector: 'kubernetes.io/service-name=web' });
    expect(slices.items.map((s) => s.endpoints?.[0]?.addresses)).toEqual([['192.0.2.10']]);

    const classes = await net.listIngressClass();
    expect(classes.items.find((c) => c.metadata?.name === className)?.spec?.controller).toBe('pyserve.io/ingress-controller');

    const ingresses = await net.listNamespacedIngress({ namespace });
    expect(ingresses.items.map((i) => i.spec?.rules?.[0]?.host)).toEqual(['example.test']);
  });

  it('delivers watch events to an informer', async () => {
    const core = env.kc.makeApiClient(CoreV1Api);
    const namespace = await env.createNamespace('informer');
    const informer = makeInformer<V1Service>(
      env.kc, `/api/v1/namespaces/${namespace}/services`, () => core.listNamespacedService({ namespace }),
    );
    const added = new Promise<V1Service>((resolve) => {
      informer.on('add', (svc) => { if (svc.metadata?.name === 'watched') resolve(svc); });
    });
    const errors: unknown[] = [];
    informer.on('error', (err) => { errors.push(err); });
    await informer.start();
    try {
      await core.createNamespacedService({
        namespace,
        body: { metadata: { name: 'watched' }, spec: { ports: [{ port: 80 }] } },
      });
      const svc = await withTimeout(added, 10_000, 'informer add event');
      expect(svc.metadata?.namespace).toBe(namespace);
      expect(informer.list(namespace).map((s) => s.metadata?.name)).toEqual(['watched']);
      expect(errors).toEqual([]);
    } finally {
      await informer.stop();
    }
  });

  it('rejects an invalid object with 422 from the real validation', async () => {
    const core = env.kc.makeApiClient(CoreV1Api);
    const err = await core.createNamespacedService({
      namespace: 'default',
      body: { metadata: { name: 'Not_A_DNS_Label' }, spec: { ports: [{ port: 80 }] } },
    }).then(() => undefined, (e: unknown) => e);
    expect(errorCode(err)).toBe(422);
    expect(String((err as { body?: unknown }).body)).toContain('Invalid value');
  });

  it('refuses EndpointSlices that point at loopback, unlike a fake API server', async () => {
    // Tests whose backends listen on 127.0.0.1 cannot describe them with a real
    // EndpointSlice: use an address of a test host in a network namespace instead.
    const disc = env.kc.makeApiClient(DiscoveryV1Api);
    const err = await disc.createNamespacedEndpointSlice({
      namespace: 'default',
      body: {
        metadata: { name: 'loopback' },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['127.0.0.1'] }],
      },
    }).then(() => undefined, (e: unknown) => e);
    expect(errorCode(err)).toBe(422);
    expect(String((err as { body?: unknown }).body)).toContain('may not be in the loopback range');
  });

  it('enforces RBAC for users outside system:masters', async () => {
    const core = env.kubeConfigFor('controller').makeApiClient(CoreV1Api);
    const err = await core.listNamespacedService({ namespace: 'default' }).then(() => undefined, (e: unknown) => e);
    expect(errorCode(err)).toBe(403);
  });

  it("installs the repository's CRDs and serves them", async () => {
    const names = await env.installCrds(crdsDir);
    // Installing again replaces in place.
    expect(await env.installCrds(crdsDir)).toEqual(names);
    const custom = env.kc.makeApiClient(CustomObjectsApi);
    const ext = env.kc.makeApiClient(ApiextensionsV1Api);
    for (const name of names) {
      const [plural, ...group] = name.split('.');
      const crd = await ext.readCustomResourceDefinition({ name });
      const version = crd.spec.versions.find((v) => v.storage)?.name ?? '';
      const list = (crd.spec.scope === 'Namespaced'
        ? await custom.listNamespacedCustomObject({ group: group.join('.'), version, namespace: 'default', plural: plural! })
        : await custom.listClusterCustomObject({ group: group.join('.'), version, plural: plural! })) as { items: unknown[] };
      expect(list.items).toEqual([]);
    }
  });
});

describe('startKube lifecycle', () => {
  it('stop() kills the servers and removes the temp folder', async () => {
    const own = await startKube();
    const core = own.kc.makeApiClient(CoreV1Api);
    expect((await core.readNamespace({ name: 'default' })).metadata?.name).toBe('default');
    await own.stop();
    await own.stop(); // idempotent
    expect(existsSync(own.tmpDir)).toBe(false);
    const port = Number(new URL(own.server).port);
    const refused = await new Promise<string>((resolve) => {
      const sock = connect(port, '127.0.0.1', () => { sock.destroy(); resolve('connected'); });
      sock.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    expect(refused).toBe('ECONNREFUSED');
  }, 120_000);

  it('fails fast with the tail of the server log when kube-apiserver cannot start', async () => {
    const err = await startKube({ extraApiServerArgs: ['--no-such-flag'] }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).toMatch(/kube-apiserver exited/);
    expect(message).toContain('unknown flag: --no-such-flag');
    const tmpDir = /\((\/[^)]*)\/kube-apiserver\.log\)/.exec(message)?.[1];
    expect(tmpDir && existsSync(tmpDir)).toBe(false);
  }, 120_000);
});

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms); }),
  ]);
}
