/**
 * Propagation latency on a real API server (test/tools/kube.ts): the time
 * from issuing a write (a new Ingress, a replaced EndpointSlice) to the
 * dataplane serving traffic that reflects it. The controller and dataplane
 * run as in a pod; `background` Ingresses already exist, so the controller
 * translates a cluster of that size on every change.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, DiscoveryV1Api, NetworkingV1Api } from '@kubernetes/client-node';
import type { V1EndpointSlice, V1Ingress } from '@kubernetes/client-node';
import { Agent, request } from 'undici';
import { startKube } from '../../test/tools/kube.ts';
import type { KubeEnv } from '../../test/tools/kube.ts';
import { startBackend } from '../../test/helpers/backends.ts';
import type { Backend } from '../../test/helpers/backends.ts';
import { spawnController } from '../../test/helpers/controller.ts';
import type { ControllerChild } from '../../test/helpers/controller.ts';
import { routableLocalAddress } from '../../test/helpers/net.ts';
import { freePorts, round, sleep, waitForPort } from '../lib/proc.ts';
import type { Proc } from '../lib/proc.ts';
import type { Propagation } from '../lib/types.ts';
import { PYSERVE_TOKEN, startPyServeProcess } from '../peers/index.ts';
import type { BenchEnv } from '../peers/index.ts';

export interface PropagationOptions {
  samples: number;
  /** Ingresses created before sampling. */
  background: number;
  log: (msg: string) => void;
}

const CRDS = fileURLToPath(new URL('../../crds/', import.meta.url));

export async function runPropagation(env: BenchEnv, o: PropagationOptions): Promise<Propagation> {
  let IP: string;
  try {
    IP = routableLocalAddress();
  } catch (err) {
    return { available: false, reason: (err as Error).message };
  }
  const suffix = randomBytes(3).toString('hex');
  const CLASS = `pyserve-bench-${suffix}`;
  const CONTROLLER_NAME = `pyserve.io/bench-${suffix}`;
  let kube: KubeEnv | undefined;
  let dataplane: Proc | undefined;
  let controller: ControllerChild | undefined;
  const backends: Backend[] = [];
  const agent = new Agent({ connections: 4 });
  try {
    const t0 = performance.now();
    kube = await startKube({ crdsDir: CRDS });
    o.log(`propagation: API server ready in ${Math.round(performance.now() - t0)} ms`);
    const ns = await kube.createNamespace('bench');
    const core = kube.kc.makeApiClient(CoreV1Api);
    const disc = kube.kc.makeApiClient(DiscoveryV1Api);
    const net = kube.kc.makeApiClient(NetworkingV1Api);
    const blue = await startBackend('blue', undefined, IP);
    const green = await startBackend('green', undefined, IP);
    backends.push(blue, green);

    const [trafficPort, adminPort] = await freePorts(2);
    dataplane = await startPyServeProcess(env.serverCpus, trafficPort!, adminPort!, ['--admin-host', IP]);
    await waitForPort(adminPort!, dataplane, IP);
    const trafficUrl = `http://127.0.0.1:${trafficPort}`;

    const slice = (name: string, service: string, port: number, address: string, b: Backend[]): V1EndpointSlice => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name, namespace: ns, labels: { 'kubernetes.io/service-name': service } },
      addressType: 'IPv4',
      ports: [{ name: service === 'pyserve-admin' ? 'admin' : 'http', port, protocol: 'TCP' }],
      endpoints: b.map(() => ({ addresses: [address], conditions: { ready: true } })),
    });
    const ingress = (name: string, host: string): V1Ingress => ({
      metadata: { name, namespace: ns },
      spec: { ingressClassName: CLASS, rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { name: 'http' } } } }] } }] },
    });

    await net.createIngressClass({ body: { metadata: { name: CLASS }, spec: { controller: CONTROLLER_NAME } } });
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'pyserve-admin' }, spec: { ports: [{ name: 'admin', port: 9901 }] } } });
    await disc.createNamespacedEndpointSlice({ namespace: ns, body: slice('dp-0', 'pyserve-admin', adminPort!, IP, [blue]) });
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'web' }, spec: { ports: [{ name: 'http', port: 80 }] } } });
    await disc.createNamespacedEndpointSlice({ namespace: ns, body: slice('web-1', 'web', blue.port, IP, [blue]) });

    // Background Ingresses, written a few at a time as an apply of many manifests would.
    const tb = performance.now();
    for (let i = 0; i < o.background; i += 20) {
      await Promise.all(Array.from({ length: Math.min(20, o.background - i) }, (_, k) =>
        net.createNamespacedIngress({ namespace: ns, body: ingress(`bg-${i + k}`, `bg-${i + k}.bench.test`) })));
    }
    if (o.background > 0) o.log(`propagation: ${o.background} background Ingresses written in ${Math.round(performance.now() - tb)} ms`);
    await net.createNamespacedIngress({ namespace: ns, body: ingress('app', 'app.bench.test') });

    controller = await spawnController([
      '--kubeconfig', kube.kubeconfigPath,
      '--namespaces', ns,
      '--controller-name', CONTROLLER_NAME,
      '--dataplane-service', `${ns}/pyserve-admin`,
      '--leader-election-namespace', ns,
      // spawnController waits for the info-level "controller running" line.
      '--log-level', 'info',
    ], { PYSERVE_PUSH_TOKEN: PYSERVE_TOKEN, POD_NAME: `bench-${suffix}` }, 60_000);

    // What the last probe saw, for the error when a wait times out.
    let lastSeen = 'no answer yet';
    const get = async (host: string): Promise<{ status: number; backend: string | undefined }> => {
      let res;
      try {
        res = await request(`${trafficUrl}/`, { headers: { host }, dispatcher: agent, headersTimeout: 5_000, bodyTimeout: 5_000 });
      } catch (err) {
        lastSeen = `${host}: ${(err as Error).message}`;
        throw err;
      }
      const text = await res.body.text();
      let backend: string | undefined;
      try {
        backend = (JSON.parse(text) as { backend?: string }).backend;
      } catch {
        backend = undefined;
      }
      lastSeen = `${host}: ${res.statusCode} ${text.slice(0, 200).replace(/\s+/g, ' ')}`;
      return { status: res.statusCode, backend };
    };
    const until = async (pred: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> => {
      const deadline = performance.now() + timeoutMs;
      while (!(await pred().catch(() => false))) {
        if (performance.now() > deadline) {
          throw new Error(`propagation: timed out waiting for ${what}\n${await diagnosis(lastSeen, dataplane!, controller!, `http://${IP}:${adminPort}`)}`);
        }
        await sleep(5);
      }
    };
    const tInit = performance.now();
    await until(async () => (await get('app.bench.test')).status === 200, 'the first Ingress to be served', 120_000);
    o.log(`propagation: controller start → first traffic ${Math.round(performance.now() - tInit)} ms`);

    const ingressToTrafficMs: number[] = [];
    const endpointsToTrafficMs: number[] = [];
    for (let k = 0; k < o.samples; k++) {
      const host = `probe-${k}.bench.test`;
      const ti = performance.now();
      await net.createNamespacedIngress({ namespace: ns, body: ingress(`probe-${k}`, host) });
      await until(async () => (await get(host)).status === 200, `Ingress ${host}`);
      ingressToTrafficMs.push(round(performance.now() - ti, 1));

      const target = k % 2 === 0 ? green : blue;
      const te = performance.now();
      await disc.replaceNamespacedEndpointSlice({ namespace: ns, name: 'web-1', body: slice('web-1', 'web', target.port, IP, [target]) });
      await until(async () => (await get('app.bench.test')).backend === target.name, `traffic to move to ${target.name}`);
      endpointsToTrafficMs.push(round(performance.now() - te, 1));
      // Past the controller's debounce, so samples do not merge into one build.
      await sleep(300);
    }
    o.log(`propagation: Ingress → traffic ${ingressToTrafficMs.join(', ')} ms; EndpointSlice → traffic ${endpointsToTrafficMs.join(', ')} ms`);
    await net.deleteIngressClass({ name: CLASS }).catch(() => undefined);
    return { available: true, ingressToTrafficMs, endpointsToTrafficMs, background: o.background };
  } finally {
    await agent.close();
    await controller?.stop('SIGKILL');
    await dataplane?.stop();
    await Promise.all(backends.map((b) => b.close()));
    await kube?.stop();
  }
}

/**
 * What a timed-out wait says about each part, so a failure on a CI machine
 * can be read from its log alone: the last probe, the dataplane's snapshot
 * and stderr, the controller's warnings, errors and last log lines.
 */
async function diagnosis(lastSeen: string, dataplane: Proc, controller: ControllerChild, adminUrl: string): Promise<string> {
  const lines = [`last probe: ${lastSeen}`];
  const exited = dataplane.child.exitCode ?? dataplane.child.signalCode;
  lines.push(`dataplane: ${exited === null ? 'running' : `exited (${exited})`}`);
  try {
    const res = await request(`${adminUrl}/v1/snapshot`, { headers: { authorization: `Bearer ${PYSERVE_TOKEN}` }, headersTimeout: 5_000, bodyTimeout: 5_000 });
    lines.push(`dataplane snapshot: ${res.statusCode} ${(await res.body.text()).slice(0, 300)}`);
  } catch (err) {
    lines.push(`dataplane snapshot: ${(err as Error).message}`);
  }
  const stderr = dataplane.stderr().trim();
  if (stderr !== '') lines.push(`dataplane stderr: ${stderr.slice(-2_000)}`);
  // Its warnings and errors, and the last lines whatever their level.
  const tail = controller.logs.filter((l, i) => i >= controller.logs.length - 8 || (typeof l.level === 'number' && l.level >= 40)).slice(-20);
  lines.push(`controller: ${controller.logs.length} log lines${tail.length < controller.logs.length ? `, these among them` : ''}:`);
  for (const l of tail) lines.push(`  ${JSON.stringify(l).slice(0, 800)}`);
  const cerr = controller.stderr().trim();
  if (cerr !== '') lines.push(`controller stderr: ${cerr.slice(-2_000)}`);
  return lines.join('\n');
}
