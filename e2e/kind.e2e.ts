/**
 * End to end on kind: the real image, installed by the real chart, routing real
 * HTTP to a real backend through the dataplane's Service.
 *
 *   npx vitest run --config e2e/vitest.config.ts
 *
 * Needs Docker and kind (and helm, or Go to build it with
 * scripts/test-tools/build-helm-tools.sh); it fails, never skips, without them.
 * Not run by this repository's CI (no Docker engine there): docs/e2e.md has a
 * GitHub Actions workflow for users' CI.
 *
 * Env: PYSERVE_E2E_CLUSTER     use this existing kind cluster; it must map
 *                               127.0.0.1:PYSERVE_E2E_HOST_PORT to node port 30080
 *      PYSERVE_E2E_IMAGE       use this image (already loaded into kind) instead of building
 *      PYSERVE_E2E_HOST_PORT   host port for the traffic NodePort (default 38080)
 *      PYSERVE_E2E_KEEP=1      keep the cluster and release afterwards (for debugging)
 *      HELM                    helm binary (default: helm on PATH, else build-helm-tools.sh)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppsV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, NetworkingV1Api, PatchStrategy } from '@kubernetes/client-node';
import type { KubernetesObject, V1Deployment } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CLUSTER = process.env.PYSERVE_E2E_CLUSTER ?? 'pyserve-e2e';
const OWN_CLUSTER = !process.env.PYSERVE_E2E_CLUSTER;
const KEEP = process.env.PYSERVE_E2E_KEEP === '1';
const HOST_PORT = Number(process.env.PYSERVE_E2E_HOST_PORT ?? 38080);
const NODE_PORT = 30080;
const RELEASE = 'pyserve';
const SYSTEM_NS = 'pyserve-system';
const APP_NS = 'e2e-app';
const HOST = 'echo.e2e.test';
// The Kubernetes project's own e2e test server: `netexec` answers /hostname with the pod name.
const ECHO_IMAGE = 'registry.k8s.io/e2e-test-images/agnhost:2.53';
const FIELD_MANAGER = 'pyserve-e2e';

let work: string;
let kubeconfigPath: string;
let kc: KubeConfig;
let objects: KubernetesObjectApi;
let helm: string;
let image: string;

// ---------------------------------------------------------------------------

interface Exec { code: number; stdout: string }

/** Runs a command with its stderr on the console (progress of builds and pulls). */
function run(cmd: string, args: readonly string[], opts: { allowFail?: boolean; input?: string } = {}): Promise<Exec> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.on('error', (err) => reject(new Error(`${cmd}: ${err.message} (is it installed and on PATH?)`)));
    child.on('close', (code) => {
      if (code !== 0 && !opts.allowFail) reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}\n${stdout.slice(-4000)}`));
      else resolve({ code: code ?? -1, stdout });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

async function findHelm(): Promise<string> {
  if (process.env.HELM) return process.env.HELM;
  const onPath = await run('helm', ['version', '--short'], { allowFail: true }).catch(() => undefined);
  if (onPath?.code === 0) return 'helm';
  const built = await run('bash', [join(ROOT, 'scripts/test-tools/build-helm-tools.sh')]);
  return join(built.stdout.trim().split('\n').at(-1)!, 'helm');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(500);
  }
}

interface Reply { status: number; body: string }

/** One request on a fresh connection, so every request is routed by kube-proxy anew. */
async function get(path: string, host = HOST): Promise<Reply> {
  const res = await fetch(`http://127.0.0.1:${HOST_PORT}${path}`, {
    headers: { host, connection: 'close' },
    signal: AbortSignal.timeout(5_000),
  });
  return { status: res.status, body: await res.text() };
}

const apply = (o: KubernetesObject) => objects.patch(o, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);

async function rolledOut(namespace: string, name: string): Promise<true | undefined> {
  const d = await kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ name, namespace });
  const want = d.spec?.replicas ?? 1;
  const s = d.status;
  const done = (s?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0)
    && s?.updatedReplicas === want && s?.readyReplicas === want && s?.availableReplicas === want && s?.replicas === want;
  return done ? true : undefined;
}

async function dumpDiagnostics(): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  for (const namespace of [SYSTEM_NS, APP_NS]) {
    const pods = await core.listNamespacedPod({ namespace }).catch(() => undefined);
    for (const p of pods?.items ?? []) {
      const name = p.metadata!.name!;
      const phase = `${p.status?.phase} ready=${p.status?.containerStatuses?.map((c) => c.ready).join(',')}`;
      const log = await core.readNamespacedPodLog({ name, namespace, tailLines: 80 }).catch((e: unknown) => `(no log: ${String(e)})`);
      process.stderr.write(`\n===== ${namespace}/${name} (${phase}) =====\n${log}\n`);
    }
  }
}

// ---------------------------------------------------------------------------

function echoApp(): KubernetesObject[] {
  const labels = { app: 'echo' };
  const deployment: V1Deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'echo', namespace: APP_NS },
    spec: {
      replicas: 2,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [{
            name: 'echo',
            image: ECHO_IMAGE,
            args: ['netexec', '--http-port=8080'],
            ports: [{ name: 'http', containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 2 },
          }],
        },
      },
    },
  };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: APP_NS } },
    deployment,
    {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo', namespace: APP_NS },
      spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
    } as KubernetesObject,
    ingress([{ path: '/', backend: 'echo' }]),
  ];
}

function ingress(paths: { path: string; backend: string }[]): KubernetesObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: 'echo', namespace: APP_NS },
    spec: {
      ingressClassName: 'pyserve',
      rules: [{
        host: HOST,
        http: { paths: paths.map((p) => ({ path: p.path, pathType: 'Prefix', backend: { service: { name: p.backend, port: { name: 'http' } } } })) },
      }],
    },
  } as KubernetesObject;
}

async function pushToken(): Promise<string> {
  const secret = await kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name: `${RELEASE}-push-token`, namespace: SYSTEM_NS });
  return Buffer.from(secret.data!.token!, 'base64').toString('utf8');
}

/** `registry:5000/name:tag` → repository and tag (the tag is after the last colon past the last slash). */
function splitImage(ref: string): { repository: string; tag: string } {
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? { repository: ref.slice(0, colon), tag: ref.slice(colon + 1) } : { repository: ref, tag: 'latest' };
}

async function helmInstall(): Promise<void> {
  const values = {
    image: { ...splitImage(image), pullPolicy: 'Never' },
    controller: { publishAddress: '127.0.0.1' },
    dataplane: { service: { type: 'NodePort', nodePorts: { http: NODE_PORT } } },
  };
  const file = join(work, 'values.yaml');
  writeFileSync(file, stringify(values));
  await run(helm, [
    'upgrade', '--install', RELEASE, join(ROOT, 'charts/pyserve'),
    '--namespace', SYSTEM_NS, '--create-namespace',
    '--kubeconfig', kubeconfigPath,
    '-f', file,
    // Dataplane pods are ready only after the controller's first push: waiting for
    // the release is already a check that the two halves found each other.
    '--wait', '--timeout', '5m',
  ]);
}

// ---------------------------------------------------------------------------

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'pyserve-e2e-'));
  await run('docker', ['version', '--format', '{{.Server.Version}}']).catch((err: unknown) => {
    throw new Error(`the e2e suite needs a running Docker engine: ${String(err)}`);
  });
  await run('kind', ['version']);
  helm = await findHelm();

  if (OWN_CLUSTER) {
    const config = {
      kind: 'Cluster',
      apiVersion: 'kind.x-k8s.io/v1alpha4',
      nodes: [{
        role: 'control-plane',
        extraPortMappings: [{ containerPort: NODE_PORT, hostPort: HOST_PORT, listenAddress: '127.0.0.1', protocol: 'TCP' }],
      }],
    };
    writeFileSync(join(work, 'kind.yaml'), stringify(config));
    await run('kind', ['delete', 'cluster', '--name', CLUSTER], { allowFail: true });
    await run('kind', ['create', 'cluster', '--name', CLUSTER, '--config', join(work, 'kind.yaml'), '--wait', '180s']);
  }
  kubeconfigPath = join(work, 'kubeconfig');
  writeFileSync(kubeconfigPath, (await run('kind', ['get', 'kubeconfig', '--name', CLUSTER])).stdout, { mode: 0o600 });
  kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  objects = KubernetesObjectApi.makeApiClient(kc);

  image = process.env.PYSERVE_E2E_IMAGE ?? 'pyserve:e2e';
  if (!process.env.PYSERVE_E2E_IMAGE) await run('docker', ['build', '-t', image, ROOT]);
  await run('kind', ['load', 'docker-image', image, '--name', CLUSTER]);
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && kc) await dumpDiagnostics();
});

afterAll(async () => {
  if (!KEEP) {
    // Best effort: a failed setup may have left nothing (or no kind) to clean up.
    if (OWN_CLUSTER) await run('kind', ['delete', 'cluster', '--name', CLUSTER], { allowFail: true }).catch(() => undefined);
    else if (kubeconfigPath && helm) {
      await run(helm, ['uninstall', RELEASE, '--namespace', SYSTEM_NS, '--kubeconfig', kubeconfigPath, '--wait'], { allowFail: true }).catch(() => undefined);
    }
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('PyServe on kind', () => {
  it('installs with helm, and the dataplane turns ready once the controller has pushed', async () => {
    await helmInstall();
    const dataplane = await kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ name: `${RELEASE}-dataplane`, namespace: SYSTEM_NS });
    expect(dataplane.status?.readyReplicas).toBe(2);
  });

  it('routes an Ingress to its backend through the dataplane Service', async () => {
    for (const o of echoApp()) await apply(o);
    await until('the echo backend', 180_000, () => rolledOut(APP_NS, 'echo'));
    const reply = await until('a routed reply', 60_000, async () => {
      const r = await get('/hostname');
      return r.status === 200 ? r : undefined;
    });
    expect(reply.body).toMatch(/^echo-/);
  });

  it('writes the published address into the Ingress status', async () => {
    const net = kc.makeApiClient(NetworkingV1Api);
    const ip = await until('Ingress status', 60_000, async () => {
      const ing = await net.readNamespacedIngress({ name: 'echo', namespace: APP_NS });
      return ing.status?.loadBalancer?.ingress?.[0]?.ip;
    });
    expect(ip).toBe('127.0.0.1');
  });

  it('answers hosts that no Ingress names with 404, and applies an Ingress change', async () => {
    expect((await get('/hostname', 'nobody.e2e.test')).status).toBe(404);
    // A path to a Service that does not exist fails only that route.
    await apply(ingress([{ path: '/', backend: 'echo' }, { path: '/missing', backend: 'does-not-exist' }]));
    await until('the new route', 30_000, async () => ((await get('/missing')).status === 503 ? true : undefined));
    expect((await get('/hostname')).status).toBe(200);
  });

  it('keeps serving through a rolling restart of the dataplane', async () => {
    const restartedAt = new Date().toISOString();
    await objects.patch({
      apiVersion: 'apps/v1', kind: 'Deployment',
      metadata: { name: `${RELEASE}-dataplane`, namespace: SYSTEM_NS },
      spec: { template: { metadata: { annotations: { 'pyserve.io/restartedAt': restartedAt } } } },
    } as KubernetesObject, undefined, undefined, `${FIELD_MANAGER}-restart`, true, PatchStrategy.ServerSideApply);

    const failures: string[] = [];
    let sent = 0;
    const deadline = Date.now() + 4 * 60_000;
    // Requests until the rollout is done, then on through the last old pod's
    // preStop sleep and drain (5 s + 15 s with the chart's defaults).
    let doneAt: number | undefined;
    while (Date.now() < deadline && (doneAt === undefined || Date.now() - doneAt < 25_000)) {
      sent++;
      try {
        const r = await get('/hostname');
        if (r.status !== 200) failures.push(`HTTP ${r.status}: ${r.body.slice(0, 200)}`);
      } catch (err) {
        failures.push(String(err));
      }
      if (doneAt === undefined && sent % 10 === 0 && await rolledOut(SYSTEM_NS, `${RELEASE}-dataplane`)) doneAt = Date.now();
      await sleep(50);
    }
    expect(doneAt, 'the rollout finished').toBeDefined();
    expect(sent).toBeGreaterThan(50);
    expect(failures).toEqual([]);
  });

  it('keeps the push token across helm upgrade', async () => {
    const before = await pushToken();
    await helmInstall();
    expect(await pushToken()).toBe(before);
    expect((await get('/hostname')).status).toBe(200);
  });
});
