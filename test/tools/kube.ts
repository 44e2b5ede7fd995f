/**
 * A real Kubernetes API server for tests: etcd + kube-apiserver, built from the Go
 * module proxy by scripts/test-tools/build-kube.sh and cached outside the repository.
 *
 *   const env = await startKube();
 *   const core = env.kc.makeApiClient(CoreV1Api);
 *   ...
 *   await env.stop();
 *
 * A server this process started can also be taken down and brought back, and can get
 * more API servers on the same etcd (an HA control plane), for outage tests:
 *
 *   await env.stopApiServer();                   // SIGKILL; etcd keeps running
 *   const b = await env.startExtraApiServer();   // another port, same etcd/certs/tokens
 *   await b.kc.makeApiClient(CoreV1Api)...;      // writes while the first one is down
 *   await env.startApiServer();                  // same port, certs and flags; waits for /readyz
 *
 * Nothing but the API server runs (no kubelet, scheduler or controller-manager), so
 * Pods never start, EndpointSlices are not generated (tests create them) and deleted
 * namespaces stay Terminating. Authentication is by static bearer tokens; the admin
 * token is in group system:masters, which RBAC always allows.
 *
 * Env: PYSERVE_KUBE_BIN_DIR              use kube-apiserver and etcd from this folder (no build)
 *      PYSERVE_TOOLS_CACHE               cache root of build-kube.sh (~/.cache/pyserve-tools)
 *      PYSERVE_KUBE_STARTUP_TIMEOUT_MS   how long to wait for /readyz (default 90000)
 *      PYSERVE_KUBE_KEEP=1               keep the temp folder (logs, etcd data) after stop()
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { X509Certificate, generateKeyPairSync, randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, openSync, closeSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiextensionsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { V1CustomResourceDefinition } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const BUILD_SCRIPT = path.join(repoRoot, 'scripts/test-tools/build-kube.sh');

/** A user that authenticates with a static bearer token. */
export interface KubeUser {
  name: string;
  /** Generated when omitted. */
  token?: string;
  groups?: string[];
}

export interface StartKubeOptions {
  /** Default RBAC: least-privilege checks are real; the admin user bypasses it (system:masters). */
  authorizationMode?: 'RBAC' | 'AlwaysAllow';
  /** Extra static-token users besides `admin`, e.g. a controller with only its chart's RBAC. */
  users?: KubeUser[];
  /** Appended to kube-apiserver's flags (a later flag wins). */
  extraApiServerArgs?: string[];
  /** Install these CustomResourceDefinitions before returning (see installCrds). */
  crdsDir?: string;
  /** How long to wait for /readyz, in ms. */
  startupTimeoutMs?: number;
  /** Keep the temp folder after stop(). */
  keep?: boolean;
}

/** What a test needs to reach the server: plain data, so it can cross process boundaries. */
export interface KubeEnvInfo {
  kubeconfigPath: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** The admin bearer token (group system:masters). */
  token: string;
  /** PEM of the CA that signed the server's certificate. */
  caPem: string;
  /** Every static-token user, admin first. */
  users: Required<KubeUser>[];
  /** Temp folder: etcd data, certs, etcd.log, kube-apiserver.log. */
  tmpDir: string;
  /** Milliseconds from spawning etcd to a ready API server. */
  startupMs: number;
}

export interface KubeEnv extends KubeEnvInfo {
  /** Admin KubeConfig, loaded from kubeconfigPath. */
  kc: KubeConfig;
  /** A KubeConfig that authenticates as one of `users` (by name). */
  kubeConfigFor(user: string): KubeConfig;
  /**
   * Creates every CustomResourceDefinition in dir/*.yaml (or replaces it), waits until
   * each is Established and its served versions answer a list; returns their names.
   */
  installCrds(dir: string): Promise<string[]>;
  /** Creates a namespace with a unique name starting with prefix; returns its name. */
  createNamespace(prefix?: string): Promise<string>;
  /**
   * Kills every server it started — etcd, the API server and any extra API servers
   * (their process groups, SIGKILL) — and removes the temp folder. Idempotent.
   */
  stop(): Promise<void>;
}

/**
 * A server started by this process (startKube), as opposed to one it only connects to
 * (connectKube, the shared server of kube-shared.ts): its API server can be stopped and
 * restarted, and more API servers can join its etcd. stop() kills all of them.
 */
export interface OwnedKubeEnv extends KubeEnv {
  /**
   * Kills the API server at `server` (its process group) and waits until it has exited;
   * etcd and extra API servers keep running. SIGKILL (the default) is a crash: every
   * connection is reset at once. SIGTERM is kube-apiserver's graceful shutdown; it is
   * followed by SIGKILL after `graceMs` (default 30000). Throws if it is not running.
   */
  stopApiServer(opts?: { signal?: 'SIGKILL' | 'SIGTERM'; graceMs?: number }): Promise<void>;
  /**
   * Starts the API server again on the same port with the same flags, certificates,
   * tokens and etcd (so `kc`, `kubeconfigPath` and `caPem` stay valid) and waits for
   * /readyz and the default namespace, as startKube does. Its log is appended to
   * kube-apiserver.log. Throws if it is running, or with the log's tail if it fails.
   */
  startApiServer(opts?: { startupTimeoutMs?: number }): Promise<{ readyMs: number }>;
  /** Whether the API server at `server` is running (false between stopApiServer and startApiServer). */
  apiServerRunning(): boolean;
  /**
   * Starts one more kube-apiserver on the same etcd, on a new free loopback port, with
   * the same flags, serving certificate, CA and tokens: a second member of an HA control
   * plane. Objects written through either server are the same objects.
   */
  startExtraApiServer(opts?: { startupTimeoutMs?: number }): Promise<ExtraApiServer>;
}

/** A further API server on the same etcd; see OwnedKubeEnv.startExtraApiServer. */
export interface ExtraApiServer {
  /** e.g. kube-apiserver-2; its log is <tmpDir>/<name>.log. */
  name: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** Admin kubeconfig pointing at this server only. */
  kubeconfigPath: string;
  /** Admin KubeConfig, loaded from kubeconfigPath. */
  kc: KubeConfig;
  /** A KubeConfig for one of the env's static-token users, pointing at this server. */
  kubeConfigFor(user: string): KubeConfig;
  logPath: string;
  /** Milliseconds from spawning it to ready. */
  startupMs: number;
  /** Kills it (SIGKILL) and waits for the exit. Idempotent; the env's stop() kills it too. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------
// Binaries

let binDirPromise: Promise<string> | undefined;

/**
 * The folder holding kube-apiserver and etcd: PYSERVE_KUBE_BIN_DIR, or the cache of
 * build-kube.sh, which builds them first when missing (minutes, once per machine).
 */
export function ensureKubeBinaries(): Promise<string> {
  binDirPromise ??= findOrBuild().catch((err: unknown) => {
    binDirPromise = undefined;
    throw err;
  });
  return binDirPromise;
}

async function findOrBuild(): Promise<string> {
  const given = process.env.PYSERVE_KUBE_BIN_DIR;
  if (given) {
    for (const bin of ['kube-apiserver', 'etcd']) {
      if (!existsSync(path.join(given, bin))) throw new Error(`PYSERVE_KUBE_BIN_DIR=${given} has no ${bin}`);
    }
    return given;
  }
  // Instant when cached; a cold build streams its progress to stderr.
  const child = spawn('bash', [BUILD_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-20_000);
    process.stderr.write(d);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const dir = out.trim().split('\n').pop() ?? '';
  if (code !== 0 || !dir || !existsSync(path.join(dir, 'kube-apiserver')) || !existsSync(path.join(dir, 'etcd'))) {
    throw new Error(`${BUILD_SCRIPT} failed (exit ${code}); cannot start a real API server.\n${lastLines(err, 40)}`);
  }
  return dir;
}

// ---------------------------------------------------------------------------------
// Start / stop

/** Starts etcd and kube-apiserver on free loopback ports and waits until the server is ready. */
export async function startKube(opts: StartKubeOptions = {}): Promise<OwnedKubeEnv> {
  const binDir = await ensureKubeBinaries();
  let lastErr: unknown;
  // A free port can be taken between probing and binding; one retry covers that race.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      return await startOnce(binDir, opts);
    } catch (err) {
      lastErr = err;
      if (!(err instanceof StartError && err.portClash)) break;
    }
  }
  throw lastErr;
}

class StartError extends Error {
  portClash: boolean;
  constructor(message: string, portClash: boolean) {
    super(message);
    this.portClash = portClash;
  }
}

interface Proc {
  name: string;
  child: ChildProcess;
  logPath: string;
  exited: Promise<void>;
  exitCode: number | null | undefined;
}

async function startOnce(binDir: string, opts: StartKubeOptions): Promise<OwnedKubeEnv> {
  const t0 = performance.now();
  const tmpDir = await mkdtemp(path.join(os.tmpdir(), 'pyserve-kube-'));
  const keep = opts.keep ?? process.env.PYSERVE_KUBE_KEEP === '1';
  /** Every process ever launched; those still running have exitCode undefined. */
  const procs: Proc[] = [];
  let stopped = false;

  // The watchdog reads the live process groups from this file when this process dies,
  // so servers started (or restarted) later are covered too, and an exited server's
  // recycled pid is not.
  const pgidsPath = path.join(tmpDir, 'pgids');
  const writePgids = () => {
    if (stopped) return;
    const live = procs.filter((p) => p.exitCode === undefined && p.child.pid).map((p) => `-${p.child.pid}`);
    try {
      writeFileSync(`${pgidsPath}.tmp`, live.join(' ') + '\n');
      renameSync(`${pgidsPath}.tmp`, pgidsPath);
    } catch { /* the folder is gone: stop() ran */ }
  };
  const track = (p: Proc): Proc => {
    procs.push(p);
    writePgids();
    void p.exited.then(writePgids);
    return p;
  };
  writePgids();
  const watchdog: ChildProcess = startWatchdog(pgidsPath, keep ? undefined : tmpDir);

  const killAll = () => {
    for (const p of procs) {
      if (p.exitCode === undefined && p.child.pid) {
        try { process.kill(-p.child.pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    }
  };
  const onExit = () => killAll();
  process.on('exit', onExit);

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // The data is thrown away, so there is nothing to shut down gracefully: the
    // apiserver's SIGTERM path waits seconds for in-flight watches to drain.
    for (const p of procs) p.child.ref(); // keep the loop alive until they are reaped
    killAll();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(procs.map((p) => p.exited)),
      new Promise((resolve) => { timer = setTimeout(resolve, 10_000); }),
    ]);
    clearTimeout(timer);
    process.off('exit', onExit);
    if (watchdog.pid) {
      try { process.kill(-watchdog.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    if (!keep) await rm(tmpDir, { recursive: true, force: true });
  };

  try {
    const [etcdClient, etcdPeer, securePort] = (await freePorts(3)) as [number, number, number];
    const token = randomBytes(24).toString('hex');
    const users: Required<KubeUser>[] = [
      { name: 'admin', token, groups: ['system:masters'] },
      ...(opts.users ?? []).map((u) => ({ name: u.name, token: u.token ?? randomBytes(24).toString('hex'), groups: u.groups ?? [] })),
    ];
    await writeFile(path.join(tmpDir, 'tokens.csv'), users.map((u) =>
      `${u.token},${u.name},${u.name},"${u.groups.join(',')}"`).join('\n') + '\n', { mode: 0o600 });
    const sa = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    await writeFile(path.join(tmpDir, 'sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(path.join(tmpDir, 'sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));

    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const peerUrl = `http://127.0.0.1:${etcdPeer}`;
    const etcd = track(launch('etcd', path.join(binDir, 'etcd'), [
      '--name=test',
      `--data-dir=${path.join(tmpDir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=test=${peerUrl}`,
      // Throwaway data: skip fsync, which is most of etcd's latency on a shared disk.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ], tmpDir));

    const certDir = path.join(tmpDir, 'certs');
    const apiServerArgs = (port: number) => [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${port}`,
      // The first server writes a self-signed CA and a serving cert for 127.0.0.1 here;
      // a restarted or extra server finds them and serves the same ones.
      `--cert-dir=${certDir}`,
      `--token-auth-file=${path.join(tmpDir, 'tokens.csv')}`,
      `--authorization-mode=${opts.authorizationMode ?? 'RBAC'}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${path.join(tmpDir, 'sa.pub')}`,
      `--service-account-signing-key-file=${path.join(tmpDir, 'sa.key')}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      // No controller-manager creates ServiceAccounts; no kubelet runs Pods.
      '--disable-admission-plugins=ServiceAccount',
      '--allow-privileged=true',
      // The "kubernetes" Endpoints would name a loopback address, which validation refuses.
      '--endpoint-reconciler-type=none',
      // Faster start: no priority-and-fairness bootstrap objects to wait for.
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      '--v=1',
      ...(opts.extraApiServerArgs ?? []),
    ];
    const apiServerBin = path.join(binDir, 'kube-apiserver');
    let api = track(launch('kube-apiserver', apiServerBin, apiServerArgs(securePort), tmpDir));

    const server = `https://127.0.0.1:${securePort}`;
    const timeoutMs = opts.startupTimeoutMs ?? Number(process.env.PYSERVE_KUBE_STARTUP_TIMEOUT_MS ?? 90_000);
    await waitReady(server, token, procs, timeoutMs);
    const caPem = extractCa(readFileSync(path.join(certDir, 'apiserver.crt'), 'utf8'));

    const kubeconfigPath = path.join(tmpDir, 'kubeconfig');
    await writeFile(kubeconfigPath, kubeconfigYaml(server, caPem, users[0]!), { mode: 0o600 });
    const info: KubeEnvInfo = {
      kubeconfigPath, server, token, caPem, users, tmpDir, startupMs: Math.round(performance.now() - t0),
    };
    const base = connectKube(info, stop);

    const assertLive = (what: string) => {
      if (stopped) throw new Error(`${what}: the env was stopped`);
      if (etcd.exitCode !== undefined) throw new Error(`${what}: etcd exited (code ${etcd.exitCode}); see ${etcd.logPath}`);
    };
    /** Launch a kube-apiserver on `port` and wait until it is ready; kill it and throw with its log's tail if not. */
    const launchApiServer = async (name: string, port: number, startupTimeoutMs: number | undefined): Promise<Proc> => {
      const logPath = path.join(tmpDir, `${name}.log`);
      const logStart = safeRead(logPath).length;
      if (logStart) appendFileSync(logPath, `\n--- pyserve kube harness: starting ${name} again on port ${port} at ${new Date().toISOString()} ---\n`);
      const proc = track(launch(name, apiServerBin, apiServerArgs(port), tmpDir));
      try {
        await waitReady(`https://127.0.0.1:${port}`, token, [etcd, proc], startupTimeoutMs ?? timeoutMs);
        return proc;
      } catch (err) {
        await killProc(proc, 'SIGKILL', 0);
        const log = safeRead(logPath).slice(logStart);
        const msg = err instanceof Error ? err.message : String(err);
        throw new StartError(`${name}: ${msg}\n--- ${name} (${logPath}) ---\n${lastLines(log, 30)}`, /address already in use/i.test(log));
      }
    };
    let extraCount = 0;
    let apiStarting = false;

    const env: OwnedKubeEnv = {
      ...base,
      apiServerRunning: () => api.exitCode === undefined,
      async stopApiServer({ signal = 'SIGKILL', graceMs = 30_000 } = {}) {
        assertLive('stopApiServer');
        if (api.exitCode !== undefined) throw new Error('stopApiServer: the API server is not running');
        await killProc(api, signal, graceMs);
      },
      async startApiServer({ startupTimeoutMs } = {}) {
        assertLive('startApiServer');
        if (apiStarting || api.exitCode === undefined) throw new Error('startApiServer: the API server is already running');
        apiStarting = true;
        const started = performance.now();
        try {
          api = await launchApiServer('kube-apiserver', securePort, startupTimeoutMs);
        } finally {
          apiStarting = false;
        }
        return { readyMs: Math.round(performance.now() - started) };
      },
      async startExtraApiServer({ startupTimeoutMs } = {}) {
        assertLive('startExtraApiServer');
        const name = `kube-apiserver-${++extraCount + 1}`;
        const started = performance.now();
        let proc: Proc | undefined;
        let port = 0;
        // As in startKube: a free port can be taken between probing and binding.
        for (let attempt = 0; !proc; attempt++) {
          [port] = (await freePorts(1)) as [number];
          try {
            proc = await launchApiServer(name, port, startupTimeoutMs);
          } catch (err) {
            if (!(err instanceof StartError && err.portClash) || attempt > 0) throw err;
          }
        }
        const extraServer = `https://127.0.0.1:${port}`;
        const kubeconfigPath = path.join(tmpDir, `kubeconfig-${name}`);
        await writeFile(kubeconfigPath, kubeconfigYaml(extraServer, caPem, users[0]!), { mode: 0o600 });
        const kc = new KubeConfig();
        kc.loadFromFile(kubeconfigPath);
        const p = proc;
        return {
          name,
          server: extraServer,
          kubeconfigPath,
          kc,
          logPath: p.logPath,
          startupMs: Math.round(performance.now() - started),
          kubeConfigFor: (user: string) => kubeConfigForUser({ ...info, server: extraServer }, user),
          stop: () => killProc(p, 'SIGKILL', 0),
        };
      },
    };
    if (opts.crdsDir) await env.installCrds(opts.crdsDir);
    return env;
  } catch (err) {
    const tails = procs.map((p) => `--- ${p.name} (${p.logPath}) ---\n${lastLines(safeRead(p.logPath), 30)}`).join('\n');
    const portClash = procs.some((p) => /address already in use/i.test(safeRead(p.logPath)));
    await stop().catch(() => undefined);
    const msg = err instanceof Error ? err.message : String(err);
    throw new StartError(`startKube: ${msg}\n${tails}`, portClash);
  }
}

/**
 * A KubeEnv for a server started elsewhere (e.g. by the vitest globalSetup in
 * kube-global-setup.ts). Its stop() does nothing unless `stop` is given.
 */
export function connectKube(info: KubeEnvInfo, stop: () => Promise<void> = async () => undefined): KubeEnv {
  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfigPath);
  let nsCounter = 0;
  return {
    ...info,
    kc,
    stop,
    kubeConfigFor: (name: string) => kubeConfigForUser(info, name),
    installCrds: (dir: string) => installCrds(kc, dir),
    async createNamespace(prefix = 'test') {
      const name = `${prefix}-${process.pid}-${++nsCounter}-${randomBytes(3).toString('hex')}`.toLowerCase().slice(0, 63);
      await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
      return name;
    },
  };
}

function kubeConfigForUser(info: Pick<KubeEnvInfo, 'server' | 'caPem' | 'users'>, name: string): KubeConfig {
  const user = info.users.find((u) => u.name === name);
  if (!user) throw new Error(`no static-token user ${name}; pass it in StartKubeOptions.users`);
  const userKc = new KubeConfig();
  userKc.loadFromString(kubeconfigYaml(info.server, info.caPem, user));
  return userKc;
}

// ---------------------------------------------------------------------------------
// CRDs

/** Creates or replaces every CustomResourceDefinition in dir/*.yaml and waits until each is served. */
export async function installCrds(kc: KubeConfig, dir: string, timeoutMs = 30_000): Promise<string[]> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const files = existsSync(dir) ? (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort() : [];
  const crds: V1CustomResourceDefinition[] = [];
  for (const file of files) {
    const docs = parseAllDocuments(await readFile(path.join(dir, file), 'utf8'));
    if (!Array.isArray(docs)) continue;
    for (const doc of docs) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]!.message}`);
      const obj = doc.toJS() as V1CustomResourceDefinition | null;
      if (obj == null) continue;
      if (obj.kind !== 'CustomResourceDefinition') {
        throw new Error(`${file}: expected kind CustomResourceDefinition, got ${String(obj.kind)}`);
      }
      crds.push(obj);
    }
  }
  // Sent as raw JSON: client-node's typed models drop `x-kubernetes-validations`
  // (CEL rules) nested under `properties`, so the typed create would install a CRD
  // without them and validation tests would pass for the wrong reason.
  for (const body of crds) {
    const name = body.metadata?.name ?? '';
    const created = await rawRequest(kc, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', body);
    if (created.status === 409) {
      const existing = await api.readCustomResourceDefinition({ name });
      body.metadata = { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion };
      const replaced = await rawRequest(kc, 'PUT', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`, body);
      if (replaced.status >= 300) throw new Error(`CRD ${name} rejected (HTTP ${replaced.status}): ${replaced.body}`);
    } else if (created.status >= 300) {
      throw new Error(`CRD ${name} rejected (HTTP ${created.status}): ${created.body}`);
    }
  }
  const deadline = Date.now() + timeoutMs;
  for (const body of crds) {
    const name = body.metadata?.name ?? '';
    for (;;) {
      const crd = await api.readCustomResourceDefinition({ name });
      const conds = crd.status?.conditions ?? [];
      if (conds.some((c) => c.type === 'Established' && c.status === 'True')) break;
      const rejected = conds.find((c) => c.type === 'NamesAccepted' && c.status === 'False');
      if (rejected) throw new Error(`CRD ${name}: names not accepted: ${rejected.message ?? ''}`);
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established after ${timeoutMs} ms: ${JSON.stringify(conds)}`);
      await sleep(100);
    }
  }
  // Established is not enough: after every change to a CRD the server rebuilds the
  // resource's storage and answers 429 "storage is (re)initializing" for a moment.
  // Return only once every served version lists.
  const custom = kc.makeApiClient(CustomObjectsApi);
  for (const body of crds) {
    const { group, names, versions } = body.spec;
    for (const v of versions.filter((x) => x.served)) {
      for (;;) {
        const status = await custom.listClusterCustomObject({ group, version: v.name, plural: names.plural, limit: 1 })
          .then(() => 200, (err: unknown) => errorCode(err) ?? 0);
        if (status === 200) break;
        if (Date.now() > deadline) throw new Error(`${names.plural}.${group}/${v.name} not served after ${timeoutMs} ms (last HTTP ${status})`);
        await sleep(100);
      }
    }
  }
  return crds.map((c) => c.metadata?.name ?? '');
}

/** One JSON request to the API server with the KubeConfig's credentials, body sent as is. */
export async function rawRequest(kc: KubeConfig, method: string, apiPath: string, body?: unknown): Promise<{ status: number; body: string }> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('rawRequest: the KubeConfig has no current cluster');
  const url = new URL(apiPath, cluster.server);
  const opts: https.RequestOptions = { method, headers: { 'content-type': 'application/json', accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(url, opts, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.once('error', reject);
    req.end(payload);
  });
}

/** The HTTP status of a client-node ApiException, if it is one. */
export function errorCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

// ---------------------------------------------------------------------------------
// Helpers

function launch(name: string, bin: string, args: string[], dir: string): Proc {
  const logPath = path.join(dir, `${name}.log`);
  const fd = openSync(logPath, 'a');
  // Own process group, so stop() (and the watchdog) can kill it with all its children.
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const proc: Proc = { name, child, logPath, exitCode: undefined, exited: Promise.resolve() };
  proc.exited = new Promise((resolve) => {
    child.on('exit', (code) => { proc.exitCode = code; resolve(); });
    child.on('error', (err) => {
      proc.exitCode = null;
      safeAppend(logPath, `spawn failed: ${err.message}\n`);
      resolve();
    });
  });
  child.unref();
  return proc;
}

/** Signal a process's group and wait for it to exit; SIGKILL after graceMs if it has not. */
async function killProc(p: Proc, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (p.exitCode !== undefined || !p.child.pid) return;
  p.child.ref(); // keep the loop alive until it is reaped
  try { process.kill(-p.child.pid, signal); } catch { /* already gone */ }
  if (signal !== 'SIGKILL') {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      p.exited.then(() => true),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), graceMs); }),
    ]);
    clearTimeout(timer);
    if (exited) return;
    try { process.kill(-p.child.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  await p.exited;
}

/**
 * A detached shell that kills the servers and removes the temp folder if this
 * process dies without calling stop() (a crashed or killed test worker), so no
 * orphaned API server keeps eating the machine's two cores. The process groups to
 * kill are read from pgidsFile at that moment (kept current by startOnce).
 */
function startWatchdog(pgidsFile: string, tmpDir: string | undefined): ChildProcess {
  const script = [
    'parent=$1; pgids=$2; tmp=$3',
    'while kill -0 "$parent" 2>/dev/null; do sleep 1; done',
    'groups=$(cat -- "$pgids" 2>/dev/null)',
    'if [ -n "$groups" ]; then kill -TERM -- $groups 2>/dev/null; sleep 3; kill -KILL -- $groups 2>/dev/null; fi',
    '[ -n "$tmp" ] && rm -rf -- "$tmp"',
    'exit 0',
  ].join('\n');
  const child = spawn('bash', ['-c', script, 'kube-watchdog', String(process.pid), pgidsFile, tmpDir ?? ''], {
    detached: true, stdio: 'ignore',
  });
  child.unref();
  return child;
}

async function freePorts(n: number): Promise<number[]> {
  // Hold all listeners open together so the ports are distinct.
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  })));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

async function waitReady(server: string, token: string, procs: Proc[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // /readyz covers etcd, RBAC bootstrap and the CRD informers; the default namespace
  // comes from a separate controller a moment later, and tests use it at once.
  for (const probe of ['/readyz', '/api/v1/namespaces/default']) {
    for (;;) {
      const dead = procs.find((p) => p.exitCode !== undefined);
      if (dead) throw new Error(`${dead.name} exited (code ${dead.exitCode}) before the API server was ready`);
      const res = await httpsGet(server + probe, token).catch((err: Error) => ({ status: 0, body: err.message }));
      if (res.status === 200) break;
      if (Date.now() > deadline) {
        throw new Error(`API server not ready after ${timeoutMs} ms; last ${probe}: ${res.status} ${res.body.slice(0, 2_000)}`);
      }
      await sleep(100);
    }
  }
}

function httpsGet(url: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // The CA is not known until the server has written it; this probe only polls.
    const req = https.get(url, { headers: { authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** The server writes its certificate followed by the CA that signed it; keep the CA. */
function extractCa(chainPem: string): string {
  const blocks = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
  const ca = blocks.find((b) => new X509Certificate(b).ca);
  return ca ?? chainPem;
}

function kubeconfigYaml(server: string, caPem: string, user: Required<KubeUser>): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'pyserve-test', cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
    users: [{ name: user.name, user: { token: user.token } }],
    contexts: [{ name: 'pyserve-test', context: { cluster: 'pyserve-test', user: user.name, namespace: 'default' } }],
    'current-context': 'pyserve-test',
  });
}

function safeRead(file: string): string {
  try { return readFileSync(file, 'utf8'); } catch { return ''; }
}

function safeAppend(file: string, text: string): void {
  try { writeFile(file, text, { flag: 'a' }).catch(() => undefined); } catch { /* ignore */ }
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
