/**
 * The Helm chart in charts/pyserve, rendered by a real helm and checked four ways:
 *
 * 1. `helm lint --strict` and `helm template` over the defaults and a few value
 *    variations (and renders that must fail, fail with the chart's message);
 * 2. kubeconform -strict on every render, against JSON schemas generated here from
 *    the OpenAPI document of a real Kubernetes release (see {@link writeKubeconformSchemas});
 * 3. assertions on the parsed manifests: least-privilege RBAC, pod hardening,
 *    probes, the push-token wiring, and the flags the programs are started with;
 * 4. against a real kube-apiserver (test/tools/kube.ts): every rendered object
 *    passes a server-side-apply dry run, and the RBAC objects, applied for real,
 *    grant the controller's ServiceAccount what it needs and nothing else, as the
 *    server's own authorizer answers SubjectAccessReviews.
 *
 * helm, kubeconform and the OpenAPI document come from
 * scripts/test-tools/build-helm-tools.sh: built from the Go module proxy on the
 * first run (minutes), cached after that.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMap, isSeq, parse, parseAllDocuments, parseDocument } from 'yaml';
import type { Node as YamlNode } from 'yaml';
import { AuthorizationV1Api } from '@kubernetes/client-node';
import type {
  KubernetesObject, V1ClusterRole, V1ClusterRoleBinding, V1Container, V1Deployment, V1IngressClass,
  V1PodDisruptionBudget, V1PolicyRule, V1Role, V1RoleBinding, V1Secret, V1Service, V1ServiceAccount,
} from '@kubernetes/client-node';
import { DATAPLANE_MALLOC_ENV, DATAPLANE_NODE_FLAGS } from '../../dataplane/process-defaults.ts';
import { getKube } from '../tools/kube-shared.ts';
import type { KubeEnv } from '../tools/kube.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHART = join(ROOT, 'charts/pyserve');
const BUILD_SCRIPT = join(ROOT, 'scripts/test-tools/build-helm-tools.sh');
const RELEASE = 'pyserve';
const NAMESPACE = 'pyserve-system';
const TOKEN_DIR = '/etc/pyserve/token';

interface Tools { helm: string; kubeconform: string; openapi: string; kubernetesVersion: string }
interface Exec { code: number; stdout: string; stderr: string }
type Values = Record<string, unknown>;

let tools: Tools;
let work: string;
let schemaDir: string;

function exec(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; stderrToConsole?: boolean } = {}): Promise<Exec> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', opts.stderrToConsole ? 'inherit' : 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function buildTools(): Promise<Tools> {
  // The script answers at once when its cache is warm; its progress goes straight
  // to the console so a cold build (minutes) does not look hung.
  const r = await exec('bash', [BUILD_SCRIPT], { stderrToConsole: true });
  if (r.code !== 0) throw new Error(`${BUILD_SCRIPT} failed with exit code ${r.code}`);
  const dir = r.stdout.trim().split('\n').at(-1)!;
  return {
    helm: join(dir, 'helm'),
    kubeconform: join(dir, 'kubeconform'),
    openapi: join(dir, 'kubernetes-openapi.json'),
    kubernetesVersion: readFileSync(join(dir, 'kubernetes-version'), 'utf8').trim(),
  };
}

// ---------------------------------------------------------------------------
// OpenAPI v2 → kubeconform schemas

type Schema = { [key: string]: unknown };

const isObject = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * kubeconform normally downloads per-kind JSON schemas from GitHub, which this
 * project's machines cannot reach, and `-ignore-missing-schemas` would turn every
 * check into a pass. So the schemas are made here, from the swagger.json that
 * Kubernetes generates from its own API server and ships in the k8s.io/kubernetes
 * module, the way kubeconform's openapi2jsonschema.py makes the published
 * "-standalone-strict" set:
 *
 * - one file per group/version/kind, named as kubeconform looks them up
 *   (`deployment-apps-v1.json`, `service-v1.json`), holding the kind's schema
 *   plus every definition it reaches, under the same `#/definitions/` pointers;
 * - `additionalProperties: false` on every object schema that lists properties,
 *   so a misspelt or misplaced field is an error (what -strict promises);
 * - IntOrString and Quantity accept what the API server accepts: a string or a number.
 *
 * Unlike the published set, null is not allowed for optional fields: the chart
 * has no reason to render one.
 */
function writeKubeconformSchemas(openapiPath: string, outDir: string): number {
  const swagger = JSON.parse(readFileSync(openapiPath, 'utf8')) as { definitions: Record<string, Schema> };
  const defs = swagger.definitions;
  const fixed = new Map<string, Schema>();
  const fix = (name: string): Schema => {
    let s = fixed.get(name);
    if (!s) {
      s = name === 'io.k8s.apimachinery.pkg.api.resource.Quantity'
        ? { oneOf: [{ type: 'string' }, { type: 'number' }] }
        : strictify(defs[name]!) as Schema;
      fixed.set(name, s);
    }
    return s;
  };
  const refsOf = (node: unknown, out: Set<string>): void => {
    if (Array.isArray(node)) for (const n of node) refsOf(n, out);
    else if (isObject(node)) {
      for (const [k, v] of Object.entries(node)) {
        if (k === '$ref' && typeof v === 'string' && v.startsWith('#/definitions/')) {
          const name = v.slice('#/definitions/'.length);
          if (!out.has(name)) {
            out.add(name);
            refsOf(defs[name], out);
          }
        } else refsOf(v, out);
      }
    }
  };

  mkdirSync(outDir, { recursive: true });
  let written = 0;
  for (const [name, def] of Object.entries(defs)) {
    const gvks = def['x-kubernetes-group-version-kind'] as { group: string; version: string; kind: string }[] | undefined;
    const props = def.properties as Schema | undefined;
    if (!gvks || !props?.apiVersion || !props.kind) continue;
    const reached = new Set<string>();
    refsOf(def, reached);
    const definitions: Schema = {};
    for (const r of [...reached].sort()) definitions[r] = fix(r);
    for (const { group, version, kind } of gvks) {
      const suffix = group ? `-${group.split('.')[0]!.toLowerCase()}-${version}` : `-${version}`;
      const file = join(outDir, `${kind.toLowerCase()}${suffix}.json`);
      // The same GVK can appear on a few meta types (e.g. DeleteOptions); the
      // first real definition wins and the rest are not resources anyway.
      if (existsSync(file)) continue;
      writeFileSync(file, JSON.stringify({ ...fix(name), definitions }));
      written++;
    }
  }
  return written;
}

function strictify(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strictify);
  if (!isObject(node)) return node;
  if (node.format === 'int-or-string') return { oneOf: [{ type: 'string' }, { type: 'integer' }] };
  const out: Schema = {};
  for (const [k, v] of Object.entries(node)) {
    // `properties` maps field names to schemas: recurse into the values only, so
    // a field literally named "format" or "$ref" is left alone.
    out[k] = k === 'properties' && isObject(v)
      ? Object.fromEntries(Object.entries(v).map(([f, s]) => [f, strictify(s)]))
      : strictify(v);
  }
  if (isObject(out.properties) && !('additionalProperties' in out)) out.additionalProperties = false;
  return out;
}

// ---------------------------------------------------------------------------
// Rendering

interface Render { text: string; objects: KubernetesObject[]; file: string }

function helmEnv(): NodeJS.ProcessEnv {
  // Keep helm off the developer's own config, caches and clusters.
  return {
    PATH: process.env.PATH,
    HOME: work,
    HELM_CACHE_HOME: join(work, 'helm-cache'),
    HELM_CONFIG_HOME: join(work, 'helm-config'),
    HELM_DATA_HOME: join(work, 'helm-data'),
    KUBECONFIG: join(work, 'no-kubeconfig'),
  };
}

let renders = 0;
function valuesFile(values: Values): string {
  const file = join(work, `values-${renders++}.yaml`);
  writeFileSync(file, JSON.stringify(values)); // JSON is YAML
  return file;
}

interface Target { release?: string; namespace?: string }

async function helmTemplate(values: Values, extra: readonly string[] = [], to: Target = {}): Promise<Exec> {
  return exec(tools.helm, [
    'template', to.release ?? RELEASE, CHART, '--namespace', to.namespace ?? NAMESPACE, '-f', valuesFile(values), ...extra,
  ], { env: helmEnv() });
}

async function render(values: Values = {}, extra: readonly string[] = [], to: Target = {}): Promise<Render> {
  const r = await helmTemplate(values, extra, to);
  expect(r.stderr, 'helm template stderr').toBe('');
  expect(r.code, r.stderr).toBe(0);
  const objects = parseAllDocuments(r.stdout)
    .map((d) => {
      expect(d.errors, 'rendered YAML parses').toEqual([]);
      return d.toJS() as KubernetesObject | null;
    })
    .filter((o): o is KubernetesObject => o !== null);
  const file = join(work, `render-${renders++}.yaml`);
  writeFileSync(file, r.stdout);
  return { text: r.stdout, objects, file };
}

function all<T extends KubernetesObject>(objs: readonly KubernetesObject[], kind: string): T[] {
  return objs.filter((o) => o.kind === kind) as T[];
}

function one<T extends KubernetesObject>(objs: readonly KubernetesObject[], kind: string, name: string): T {
  const found = objs.filter((o) => o.kind === kind && o.metadata?.name === name);
  expect(found.map((o) => `${o.kind}/${o.metadata?.name}`), `exactly one ${kind}/${name}`).toEqual([`${kind}/${name}`]);
  return found[0] as T;
}

/** The one object of this kind labelled with this component (names depend on the release name). */
function byComponent<T extends KubernetesObject>(objs: readonly KubernetesObject[], kind: string, component: string): T {
  const found = objs.filter((o) => o.kind === kind && o.metadata?.labels?.['app.kubernetes.io/component'] === component);
  expect(found, `one ${kind} for the ${component}`).toHaveLength(1);
  return found[0] as T;
}

const controllerOf = (objs: readonly KubernetesObject[]) => one<V1Deployment>(objs, 'Deployment', `${RELEASE}-controller`);
const dataplaneOf = (objs: readonly KubernetesObject[]) => one<V1Deployment>(objs, 'Deployment', `${RELEASE}-dataplane`);
const containerOf = (d: V1Deployment): V1Container => {
  expect(d.spec!.template.spec!.containers).toHaveLength(1);
  return d.spec!.template.spec!.containers[0]!;
};

/** `--name=value` flags as a map; a bare `--flag` maps to ''. */
function flags(args: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const a of args) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (match) m.set(match[1]!, match[2] ?? '');
  }
  return m;
}

interface KubeconformResult {
  resources: { kind: string; name: string; status: string; msg?: string; validationErrors?: { path: string; msg: string }[] }[];
  summary: { valid: number; invalid: number; errors: number; skipped: number };
}

async function kubeconform(file: string, extra: readonly string[] = []): Promise<KubeconformResult & { code: number }> {
  const r = await exec(tools.kubeconform, [
    '-strict', '-summary', '-verbose', '-output', 'json',
    '-schema-location', join(schemaDir, '{{ .ResourceKind }}{{ .KindSuffix }}.json'),
    ...extra, file,
  ]);
  return { ...(JSON.parse(r.stdout) as KubeconformResult), code: r.code };
}

const describeResult = (r: KubeconformResult) => r.resources
  .filter((x) => x.status !== 'statusValid' && x.status !== 'statusSkipped')
  .map((x) => `${x.kind}/${x.name}: ${x.status} ${x.msg ?? ''} ${JSON.stringify(x.validationErrors ?? [])}`)
  .join('\n');

// ---------------------------------------------------------------------------

const VARIANTS: readonly { name: string; values: Values }[] = [
  { name: 'defaults', values: {} },
  {
    name: 'NodePort with fixed node ports',
    values: { dataplane: { service: { type: 'NodePort', nodePorts: { http: 30080, https: 30443 }, externalTrafficPolicy: 'Local' } } },
  },
  { name: 'existing push-token Secret', values: { pushToken: { existingSecret: 'my-push-token', secretKey: 'push' }, dataplane: { podAnnotations: { 'example.com/team': 'edge' } } } },
  {
    name: 'namespace list and more replicas',
    values: { controller: { namespaces: ['team-a', 'team-b', NAMESPACE], replicaCount: 3 }, dataplane: { replicaCount: 4 } },
  },
  {
    name: 'ClusterIP, one controller, default class, no secrets access',
    values: {
      controller: { replicaCount: 1, leaderElection: { enabled: false }, defaultBackend: 'web/fallback:http', publishAddress: '203.0.113.10', watchIngressWithoutClass: true },
      dataplane: { replicaCount: 1, service: { type: 'ClusterIP' } },
      ingressClass: { default: true },
      rbac: { secrets: false },
      image: { repository: 'registry.example/pyserve', digest: `sha256:${'a'.repeat(64)}` },
    },
  },
  {
    name: 'LoadBalancer options and ServiceMonitors',
    values: {
      dataplane: { service: { loadBalancerClass: 'example.com/lb', loadBalancerSourceRanges: ['198.51.100.0/24'], ipFamilyPolicy: 'PreferDualStack', annotations: { 'example.com/lb-type': 'nlb' } } },
      metrics: { serviceMonitor: { enabled: true, labels: { release: 'prometheus' } } },
    },
  },
];

beforeAll(async () => {
  tools = await buildTools();
  work = mkdtempSync(join(tmpdir(), 'pyserve-helm-'));
  schemaDir = join(work, 'schemas');
  const n = writeKubeconformSchemas(tools.openapi, schemaDir);
  // A few hundred kinds in any recent release; far fewer means the document changed shape.
  expect(n).toBeGreaterThan(200);
}, 30 * 60_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('helm lint and template', () => {
  it.each(VARIANTS)('helm lint --strict passes: $name', async ({ values }) => {
    const r = await exec(tools.helm, ['lint', '--strict', CHART, '--namespace', NAMESPACE, '-f', valuesFile(values)], { env: helmEnv() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('0 chart(s) failed');
  });

  it('workers: a number needs no CPU limit; auto follows the default CPU limit of 2', async () => {
    const args = async (values: Values): Promise<string[]> => {
      const { objects } = await render(values);
      return dataplaneOf(objects).spec!.template.spec!.containers[0]!.args ?? [];
    };
    const fixed = await args({ dataplane: { workers: 3, resources: { limits: { cpu: null } } } });
    expect(fixed).toContain('--workers=3');
    // auto is the dataplane's own default, so no flag: it reads the cgroup's CPU limit.
    expect((await args({})).filter((a) => a.startsWith('--workers'))).toEqual([]);
  });

  it('accessLog and gcMetrics turn into --access-log=off and --gc-metrics=on, defaults into no flag', async () => {
    const args = async (values: Values): Promise<string[]> => {
      const { objects } = await render(values);
      return dataplaneOf(objects).spec!.template.spec!.containers[0]!.args ?? [];
    };
    const switched = await args({ dataplane: { accessLog: false, gcMetrics: true } });
    expect(switched).toContain('--access-log=off');
    expect(switched).toContain('--gc-metrics=on');
    expect((await args({})).filter((a) => /^--(access-log|gc-metrics)/.test(a))).toEqual([]);
  });

  it('renders NOTES.txt with how to reach the release', async () => {
    const r = await exec(tools.helm, [
      'install', RELEASE, CHART, '--namespace', NAMESPACE, '--dry-run=client', '-f', valuesFile({ dataplane: { service: { type: 'NodePort' } } }),
    ], { env: helmEnv() });
    expect(r.code, r.stderr).toBe(0);
    const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
    expect(notes).toContain('2 replica(s) of deployment/pyserve-dataplane, traffic through service/pyserve-dataplane (NodePort)');
    expect(notes).toContain('kubectl -n pyserve-system get service pyserve-dataplane -o jsonpath=\'{.spec.ports[?(@.name=="http")].nodePort}\'');
  });

  it.each([
    [{ dataplane: { terminationGracePeriodSeconds: 20 } }, 'must exceed dataplane.preStopSleepSeconds + dataplane.drainTimeoutMs/1000 (20)'],
    [{ controller: { leaderElection: { enabled: false } } }, 'controller.leaderElection.enabled=false needs controller.replicaCount=1'],
    [{ serviceAccount: { create: false } }, 'serviceAccount.create=false needs'],
    [{ controller: { replicas: 3 } }, 'replicas'],
    [{ dataplane: { service: { type: 'ExternalName' } } }, "at '/dataplane/service/type': value must be one of"],
    [{ controller: { defaultBackend: 'just-a-name' } }, 'defaultBackend'],
    [{ metrics: { serviceMonitor: { enabled: true } }, controller: { metricsService: { enabled: false } } }, 'needs controller.metricsService.enabled'],
    // null deletes the chart's default, as `--set dataplane.resources.limits.cpu=null` does.
    [{ dataplane: { resources: { limits: { cpu: null } } } }, 'dataplane.workers=auto needs dataplane.resources.limits.cpu'],
  ])('refuses %j', async (values, message) => {
    const r = await helmTemplate(values);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
  });
});

describe('kubeconform against Kubernetes OpenAPI schemas', () => {
  it.each(VARIANTS)('every rendered object is valid: $name', async ({ values }) => {
    const { file, objects } = await render(values);
    const monitors = all(objects, 'ServiceMonitor').length;
    // The one kind without a schema here: ServiceMonitor is a Prometheus Operator
    // CRD, not part of Kubernetes; its shape is asserted further down instead.
    const r = await kubeconform(file, monitors ? ['-skip', 'ServiceMonitor'] : []);
    expect(describeResult(r)).toBe('');
    expect(r.summary).toEqual({ valid: objects.length - monitors, invalid: 0, errors: 0, skipped: monitors });
    expect(r.code).toBe(0);
  });

  it('validates the shipped CRDs too (helm template --include-crds)', async () => {
    const { file, objects } = await render({}, ['--include-crds']);
    const crds = all(objects, 'CustomResourceDefinition');
    expect(crds.map((c) => c.metadata!.name)).toContain('routes.pyserve.io');
    const r = await kubeconform(file);
    expect(describeResult(r)).toBe('');
    expect(r.summary.valid).toBe(objects.length);
  });

  it('the schemas reject what the API server would: unknown fields, wrong types, missing required fields', async () => {
    const file = join(work, 'broken.yaml');
    writeFileSync(file, [
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: typo}\nspec:\n  replica: 2\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: i}]}',
      'apiVersion: v1\nkind: Service\nmetadata: {name: wrong-type}\nspec:\n  ports: [{port: eighty}]',
      'apiVersion: v1\nkind: Service\nmetadata: {name: misplaced}\nspec:\n  ports: [{port: 80}]\n  readinessProbe: {}',
      'apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: no-verbs}\nrules: [{apiGroups: [""], resources: [pods]}]',
      'apiVersion: v1\nkind: Service\nmetadata: {name: fine}\nspec:\n  ports: [{port: 80, targetPort: http}]',
    ].join('\n---\n'));
    const r = await kubeconform(file);
    const status = Object.fromEntries(r.resources.map((x) => [x.name, x.status]));
    expect(status).toEqual({ typo: 'statusInvalid', 'wrong-type': 'statusInvalid', misplaced: 'statusInvalid', 'no-verbs': 'statusInvalid', fine: 'statusValid' });
    expect(r.code).not.toBe(0);
  });
});

describe('rendered manifests (default values)', () => {
  let objects: KubernetesObject[];
  beforeAll(async () => {
    ({ objects } = await render());
  });

  it('renders exactly the expected objects', () => {
    const names = objects.map((o) => `${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`).sort();
    expect(names).toEqual([
      'ClusterRole//pyserve-controller',
      'ClusterRole//pyserve-controller-namespaced',
      'ClusterRoleBinding//pyserve-controller',
      'ClusterRoleBinding//pyserve-controller-namespaced',
      'Deployment/pyserve-system/pyserve-controller',
      'Deployment/pyserve-system/pyserve-dataplane',
      'IngressClass//pyserve',
      'PodDisruptionBudget/pyserve-system/pyserve-controller',
      'PodDisruptionBudget/pyserve-system/pyserve-dataplane',
      'Role/pyserve-system/pyserve-controller',
      'RoleBinding/pyserve-system/pyserve-controller',
      'Secret/pyserve-system/pyserve-push-token',
      'Service/pyserve-system/pyserve-controller-metrics',
      'Service/pyserve-system/pyserve-dataplane',
      'Service/pyserve-system/pyserve-dataplane-admin',
      'ServiceAccount/pyserve-system/pyserve-controller',
      'ServiceAccount/pyserve-system/pyserve-dataplane',
    ]);
  });

  it('RBAC grants exactly what the controller needs, with no wildcards', () => {
    const rules = (o: { rules?: V1PolicyRule[] }) => o.rules ?? [];
    const tuples = (rs: V1PolicyRule[]) => rs.flatMap((r) => (r.apiGroups ?? []).flatMap((g) => (r.resources ?? []).flatMap((res) => r.verbs.map((v) => {
      const names = r.resourceNames?.length ? `[${r.resourceNames.join(',')}]` : '';
      return `${g || 'core'}/${res}${names}:${v}`;
    })))).sort();
    for (const o of [...all<V1ClusterRole>(objects, 'ClusterRole'), ...all<V1Role>(objects, 'Role')]) {
      for (const r of rules(o)) {
        for (const field of [r.verbs, r.resources ?? [], r.apiGroups ?? []]) expect(field, `${o.kind}/${o.metadata!.name}`).not.toContain('*');
        expect(r.nonResourceURLs ?? []).toEqual([]);
      }
    }
    const read = ['get', 'list', 'watch'];
    const grant = (gr: string, verbs: string[]) => verbs.map((v) => `${gr}:${v}`);
    expect(tuples(rules(one<V1ClusterRole>(objects, 'ClusterRole', 'pyserve-controller')))).toEqual(grant('networking.k8s.io/ingressclasses', read).sort());
    expect(tuples(rules(one<V1ClusterRole>(objects, 'ClusterRole', 'pyserve-controller-namespaced')))).toEqual([
      ...grant('networking.k8s.io/ingresses', read),
      ...grant('pyserve.io/routes', read),
      ...grant('core/services', read),
      ...grant('discovery.k8s.io/endpointslices', read),
      ...grant('core/secrets', read),
      ...grant('networking.k8s.io/ingresses/status', ['update', 'patch']),
      ...grant('pyserve.io/routes/status', ['update', 'patch']),
      ...grant('core/events', ['create', 'patch']),
      ...grant('events.k8s.io/events', ['create', 'patch']),
    ].sort());
    expect(tuples(rules(one<V1Role>(objects, 'Role', 'pyserve-controller')))).toEqual([
      'coordination.k8s.io/leases:create',
      ...grant('coordination.k8s.io/leases[pyserve-controller]', ['get', 'update']),
      ...grant('core/services', read),
      ...grant('discovery.k8s.io/endpointslices', read),
    ].sort());
    // Every binding names the controller's ServiceAccount and nothing else.
    const bindings = [...all<V1ClusterRoleBinding>(objects, 'ClusterRoleBinding'), ...all<V1RoleBinding>(objects, 'RoleBinding')];
    expect(bindings).toHaveLength(3);
    for (const b of bindings) {
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'pyserve-controller', namespace: NAMESPACE }]);
      expect(b.roleRef.name).toBe(b.metadata!.name);
    }
  });

  it('the dataplane ServiceAccount has no bindings and no API token', () => {
    const sa = one<V1ServiceAccount>(objects, 'ServiceAccount', 'pyserve-dataplane');
    expect(sa.automountServiceAccountToken).toBe(false);
    expect(dataplaneOf(objects).spec!.template.spec!.automountServiceAccountToken).toBe(false);
    expect(dataplaneOf(objects).spec!.template.spec!.serviceAccountName).toBe('pyserve-dataplane');
    expect(controllerOf(objects).spec!.template.spec!.serviceAccountName).toBe('pyserve-controller');
  });

  it('every container is hardened and has resources', () => {
    for (const d of all<V1Deployment>(objects, 'Deployment')) {
      const pod = d.spec!.template.spec!;
      expect(pod.securityContext, d.metadata!.name).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.securityContext!.runAsUser).toBeGreaterThan(0);
      expect(pod.initContainers ?? []).toEqual([]);
      for (const c of pod.containers) {
        expect(c.securityContext, c.name).toEqual({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        });
        expect(c.resources?.requests, c.name).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
        expect(c.resources?.limits, c.name).toMatchObject({ memory: expect.any(String) });
        // A read-only root needs somewhere to write.
        expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
        expect(c.image).toBe('pyserve:0.1.0');
      }
    }
  });

  it('the dataplane is probed on the admin port: /readyz for readiness, /healthz for liveness', () => {
    const d = dataplaneOf(objects);
    const c = containerOf(d);
    const admin = c.ports!.find((p) => p.name === 'admin')!;
    expect(admin.containerPort).toBe(9901);
    expect(c.readinessProbe!.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(c.livenessProbe!.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(flags(c.args!).get('admin-port')).toBe(String(admin.containerPort));
    expect(c.ports!.map((p) => [p.name, p.containerPort])).toEqual([['http', 8080], ['https', 8443], ['admin', 9901]]);
    expect(flags(c.args!).get('traffic-port')).toBe('8080');
  });

  it('a terminating dataplane leaves the endpoints, then drains, within its grace period', () => {
    const pod = dataplaneOf(objects).spec!.template.spec!;
    const c = pod.containers[0]!;
    const sleep = c.lifecycle!.preStop!.sleep!.seconds;
    expect(sleep).toBeGreaterThan(0);
    const drainMs = Number(flags(c.args!).get('drain-timeout-ms'));
    expect(drainMs).toBe(15000);
    expect(pod.terminationGracePeriodSeconds!).toBeGreaterThan(sleep + drainMs / 1000);
    // Rollouts add a ready pod before removing one.
    expect(dataplaneOf(objects).spec!.strategy!.rollingUpdate).toEqual({ maxUnavailable: 0, maxSurge: 1 });
  });

  it('starts each program with the documented flags', () => {
    const controller = containerOf(controllerOf(objects));
    expect(controller.command).toBeUndefined(); // the image's entrypoint is node
    expect(controller.args).toEqual([
      'dist/controller/main.js',
      'controller',
      '--controller-name=pyserve.io/ingress-controller',
      '--ingress-class=pyserve',
      '--dataplane-service=pyserve-system/pyserve-dataplane-admin',
      `--push-token-file=${TOKEN_DIR}/token`,
      '--publish-service=pyserve-system/pyserve-dataplane',
      '--leader-elect=true',
      '--leader-election-namespace=pyserve-system',
      '--leader-election-id=pyserve-controller',
      '--metrics-port=9902',
      '--log-level=info',
    ]);
    expect(controller.ports).toEqual([{ name: 'metrics', containerPort: 9902, protocol: 'TCP' }]);
    expect(controller.readinessProbe!.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(controller.livenessProbe!.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(controller.env!.map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath])).toEqual([['POD_NAME', 'metadata.name'], ['POD_NAMESPACE', 'metadata.namespace']]);
    expect(containerOf(dataplaneOf(objects)).args).toEqual([
      // Node's flags before the program, from dataplane.nodeFlags.
      '--max-semi-space-size=4',
      '--no-allocation-site-pretenuring',
      '--invocation-count-for-turbofan=600',
      '--no-async-context-frame',
      '--no-node-snapshot',
      'dist/dataplane/main.js',
      '--traffic-port=8080',
      '--admin-port=9901',
      `--admin-token-file=${TOKEN_DIR}/token`,
      '--drain-timeout-ms=15000',
      '--log-level=info',
    ]);
  });

  it('the flags name objects the chart actually renders', () => {
    const f = flags(containerOf(controllerOf(objects)).args!);
    const admin = one<V1Service>(objects, 'Service', f.get('dataplane-service')!.split('/')[1]!);
    const traffic = one<V1Service>(objects, 'Service', f.get('publish-service')!.split('/')[1]!);
    const podLabels = dataplaneOf(objects).spec!.template.metadata!.labels!;
    for (const svc of [admin, traffic]) expect(podLabels).toMatchObject(svc.spec!.selector!);
    const klass = one<V1IngressClass>(objects, 'IngressClass', f.get('ingress-class')!);
    expect(klass.spec!.controller).toBe(f.get('controller-name'));
    expect(klass.metadata!.annotations?.['ingressclass.kubernetes.io/is-default-class']).toBeUndefined();
    const lease = one<V1Role>(objects, 'Role', 'pyserve-controller').rules!.find((r) => r.resourceNames);
    expect(lease!.resourceNames).toEqual([f.get('leader-election-id')]);
  });

  it('the admin Service exposes only the port named admin, and only ready pods', () => {
    const admin = one<V1Service>(objects, 'Service', 'pyserve-dataplane-admin');
    expect(admin.spec!.type).toBe('ClusterIP');
    expect(admin.spec!.publishNotReadyAddresses).toBe(false);
    expect(admin.spec!.ports).toEqual([{ name: 'admin', port: 9901, targetPort: 'admin', protocol: 'TCP', appProtocol: 'http' }]);
  });

  it('the traffic Service is a LoadBalancer with http 80 and https 443 on the named container ports', () => {
    const traffic = one<V1Service>(objects, 'Service', 'pyserve-dataplane');
    expect(traffic.spec!.type).toBe('LoadBalancer');
    expect(traffic.spec!.ports!.map((p) => [p.name, p.port, p.targetPort, p.nodePort])).toEqual([['http', 80, 'http', undefined], ['https', 443, 'https', undefined]]);
  });

  it('both sides read the token from the chart\'s Secret, and roll together when it changes', () => {
    const secret = one<V1Secret>(objects, 'Secret', 'pyserve-push-token');
    const token = Buffer.from(secret.data!.token!, 'base64').toString('utf8');
    expect(token).toMatch(/^[A-Za-z0-9]{48}$/);
    const checksum = createHash('sha256').update(token).digest('hex');
    for (const d of [controllerOf(objects), dataplaneOf(objects)]) {
      const pod = d.spec!.template;
      expect(pod.spec!.volumes).toContainEqual({
        name: 'push-token',
        secret: { secretName: 'pyserve-push-token', defaultMode: 0o440, items: [{ key: 'token', path: 'token' }] },
      });
      expect(pod.spec!.containers[0]!.volumeMounts).toContainEqual({ name: 'push-token', mountPath: TOKEN_DIR, readOnly: true });
      // One token per render: the annotation hashes the value in the Secret.
      expect(pod.metadata!.annotations!['checksum/push-token']).toBe(checksum);
    }
  });

  it('PodDisruptionBudgets and topology spread select their own pods', () => {
    for (const d of [controllerOf(objects), dataplaneOf(objects)]) {
      const labels = d.spec!.template.metadata!.labels!;
      expect(labels).toMatchObject(d.spec!.selector.matchLabels!);
      const pdb = one<V1PodDisruptionBudget>(objects, 'PodDisruptionBudget', d.metadata!.name!);
      expect(pdb.spec!.selector!.matchLabels).toEqual(d.spec!.selector.matchLabels);
      expect(pdb.spec!.maxUnavailable).toBe(1);
      const spread = d.spec!.template.spec!.topologySpreadConstraints!;
      expect(spread.length).toBeGreaterThan(0);
      for (const c of spread) {
        expect(c.labelSelector!.matchLabels).toEqual(d.spec!.selector.matchLabels);
        expect(c.whenUnsatisfiable).toBe('ScheduleAnyway');
      }
    }
    // The two selectors must not overlap, or each PDB would count the other's pods.
    expect(controllerOf(objects).spec!.selector.matchLabels).not.toEqual(dataplaneOf(objects).spec!.selector.matchLabels);
  });
});

describe('rendered manifests (value variations)', () => {
  const variant = (name: string) => VARIANTS.find((v) => v.name === name)!.values;

  it('NodePort: fixed node ports on the traffic Service', async () => {
    const { objects } = await render(variant('NodePort with fixed node ports'));
    const traffic = one<V1Service>(objects, 'Service', 'pyserve-dataplane');
    expect(traffic.spec!.type).toBe('NodePort');
    expect(traffic.spec!.externalTrafficPolicy).toBe('Local');
    expect(traffic.spec!.ports!.map((p) => [p.name, p.nodePort])).toEqual([['http', 30080], ['https', 30443]]);
  });

  it('existingSecret: no Secret rendered, both sides mount the named one and key', async () => {
    const { objects } = await render(variant('existing push-token Secret'));
    expect(all(objects, 'Secret')).toEqual([]);
    for (const d of [controllerOf(objects), dataplaneOf(objects)]) {
      expect(d.spec!.template.spec!.volumes).toContainEqual({
        name: 'push-token',
        secret: { secretName: 'my-push-token', defaultMode: 0o440, items: [{ key: 'push', path: 'token' }] },
      });
      expect(d.spec!.template.metadata!.annotations?.['checksum/push-token']).toBeUndefined();
    }
    expect(controllerOf(objects).spec!.template.metadata!.annotations).toBeUndefined();
    expect(dataplaneOf(objects).spec!.template.metadata!.annotations).toEqual({ 'example.com/team': 'edge' });
    expect(flags(containerOf(controllerOf(objects)).args!).get('push-token-file')).toBe(`${TOKEN_DIR}/token`);
  });

  it('namespace list: the controller watches those, and its rights stop there', async () => {
    const { objects } = await render(variant('namespace list and more replicas'));
    expect(flags(containerOf(controllerOf(objects)).args!).get('namespaces')).toBe(`team-a,team-b,${NAMESPACE}`);
    expect(controllerOf(objects).spec!.replicas).toBe(3);
    expect(dataplaneOf(objects).spec!.replicas).toBe(4);
    // Only the cluster-scoped IngressClass read stays cluster-wide.
    expect(all<V1ClusterRoleBinding>(objects, 'ClusterRoleBinding').map((b) => b.roleRef.name)).toEqual(['pyserve-controller']);
    const bindings = all<V1RoleBinding>(objects, 'RoleBinding').map((b) => `${b.metadata!.namespace}/${b.metadata!.name}->${b.roleRef.kind}/${b.roleRef.name}`).sort();
    expect(bindings).toEqual([
      'pyserve-system/pyserve-controller->Role/pyserve-controller',
      'pyserve-system/pyserve-controller-namespaced->ClusterRole/pyserve-controller-namespaced',
      'team-a/pyserve-controller-namespaced->ClusterRole/pyserve-controller-namespaced',
      'team-b/pyserve-controller-namespaced->ClusterRole/pyserve-controller-namespaced',
    ]);
  });

  it('ClusterIP, one controller: no leader election, no PDBs, default class, fixed address, digest', async () => {
    const { objects } = await render(variant('ClusterIP, one controller, default class, no secrets access'));
    const f = flags(containerOf(controllerOf(objects)).args!);
    expect(f.get('leader-elect')).toBe('false');
    expect(f.has('leader-election-id')).toBe(false);
    expect(f.get('default-backend')).toBe('web/fallback:http');
    expect(f.get('publish-address')).toBe('203.0.113.10');
    expect(f.has('publish-service')).toBe(false);
    expect(f.get('watch-ingress-without-class')).toBe('');
    expect(all(objects, 'PodDisruptionBudget')).toEqual([]);
    expect(one<V1Service>(objects, 'Service', 'pyserve-dataplane').spec!.type).toBe('ClusterIP');
    expect(one<V1IngressClass>(objects, 'IngressClass', 'pyserve').metadata!.annotations).toEqual({ 'ingressclass.kubernetes.io/is-default-class': 'true' });
    const namespaced = one<V1ClusterRole>(objects, 'ClusterRole', 'pyserve-controller-namespaced');
    expect(namespaced.rules!.flatMap((r) => r.resources)).not.toContain('secrets');
    expect(containerOf(dataplaneOf(objects)).image).toBe(`registry.example/pyserve@sha256:${'a'.repeat(64)}`);
  });

  it('ServiceMonitors scrape the controller metrics port and the dataplane admin port', async () => {
    const { objects } = await render(variant('LoadBalancer options and ServiceMonitors'));
    const traffic = one<V1Service>(objects, 'Service', 'pyserve-dataplane');
    expect(traffic.spec).toMatchObject({ loadBalancerClass: 'example.com/lb', loadBalancerSourceRanges: ['198.51.100.0/24'], ipFamilyPolicy: 'PreferDualStack' });
    type Monitor = KubernetesObject & { spec: { selector: { matchLabels: Record<string, string> }; namespaceSelector: unknown; endpoints: { port: string; path: string }[] } };
    const monitors = all<Monitor>(objects, 'ServiceMonitor');
    expect(monitors.map((m) => m.apiVersion)).toEqual(['monitoring.coreos.com/v1', 'monitoring.coreos.com/v1']);
    const services = all<V1Service>(objects, 'Service');
    for (const m of monitors) {
      expect(m.metadata!.labels).toMatchObject({ release: 'prometheus' });
      expect(m.spec.namespaceSelector).toEqual({ matchNames: [NAMESPACE] });
      // Each selects exactly one Service, and that Service has the scraped port.
      const selected = services.filter((s) => Object.entries(m.spec.selector.matchLabels).every(([k, v]) => s.metadata!.labels?.[k] === v));
      expect(selected, m.metadata!.name).toHaveLength(1);
      expect(m.spec.endpoints).toHaveLength(1);
      expect(selected[0]!.spec!.ports!.map((p) => p.name)).toContain(m.spec.endpoints[0]!.port);
      expect(m.spec.endpoints[0]!.path).toBe('/metrics');
    }
    expect(monitors.map((m) => m.spec.endpoints[0]!.port).sort()).toEqual(['admin', 'metrics']);
  });

  it('a long release name still yields valid names (63-character limit)', async () => {
    const r = await exec(tools.helm, ['template', 'a'.repeat(53), CHART, '--namespace', NAMESPACE], { env: helmEnv() });
    expect(r.code, r.stderr).toBe(0);
    const objects = parseAllDocuments(r.stdout).map((d) => d.toJS() as KubernetesObject | null).filter((o): o is KubernetesObject => o !== null);
    for (const o of objects) expect(o.metadata!.name!.length, o.metadata!.name).toBeLessThanOrEqual(63);
  });
});

describe('chart files', () => {
  it('every key in values.yaml has a comment, and the schema knows it', () => {
    const doc = parseDocument(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as Schema;
    const missingComment: string[] = [];
    const missingSchema: string[] = [];
    const walk = (node: YamlNode | null, path: string, schemaNode: Schema | undefined, inherited: boolean): void => {
      if (!isMap(node)) return;
      node.items.forEach((pair, i) => {
        const key = String((pair.key as { value: unknown }).value);
        // The yaml parser hangs a map's first comment on the map, not on its first key.
        const commented = Boolean((pair.key as YamlNode).commentBefore) || (i === 0 && (Boolean(node.commentBefore) || inherited));
        if (!commented) missingComment.push(path + key);
        const props = schemaNode?.properties as Record<string, Schema> | undefined;
        const child = props?.[key];
        // Free-form objects (securityContext, resources, annotations) are typed by Kubernetes, not the chart.
        if (schemaNode && props && !child) missingSchema.push(path + key);
        const value = pair.value as YamlNode | null;
        if (!isSeq(value)) walk(value, `${path}${key}.`, child?.properties ? child : undefined, Boolean(value?.commentBefore));
      });
    };
    walk(doc.contents as YamlNode, '', schema, Boolean(doc.commentBefore));
    expect(missingComment).toEqual([]);
    expect(missingSchema).toEqual([]);
  });

  it('dataplane.nodeFlags defaults to the flags local mode starts its dataplane with', () => {
    const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as { dataplane: { nodeFlags: string[] } };
    expect(values.dataplane.nodeFlags).toEqual([...DATAPLANE_NODE_FLAGS]);
  });

  it('dataplane.mallocEnv defaults to the malloc settings local mode uses, and the container gets them before extraEnv', async () => {
    const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as { dataplane: { mallocEnv: Record<string, string> } };
    expect(values.dataplane.mallocEnv).toEqual({ ...DATAPLANE_MALLOC_ENV });
    const mallocEnv = Object.entries(DATAPLANE_MALLOC_ENV).sort().map(([name, value]) => ({ name, value }));
    const envOf = async (v: Values): Promise<unknown> => containerOf(dataplaneOf((await render(v)).objects)).env;
    expect(await envOf({})).toEqual(mallocEnv);
    expect(await envOf({ dataplane: { extraEnv: [{ name: 'A', value: 'b' }] } })).toEqual([...mallocEnv, { name: 'A', value: 'b' }]);
    // Helm merges maps: null, not {}, turns the defaults off.
    expect(await envOf({ dataplane: { mallocEnv: null } })).toBeUndefined();
    expect(await envOf({ dataplane: { mallocEnv: { MALLOC_TRIM_THRESHOLD_: null } } })).toEqual(mallocEnv.filter((e) => e.name !== 'MALLOC_TRIM_THRESHOLD_'));
  });

  it('the chart ships crds/ byte for byte (npm run crds writes both)', () => {
    const yamls = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort() : []);
    const root = yamls(join(ROOT, 'crds'));
    expect(yamls(join(CHART, 'crds'))).toEqual(root);
    for (const f of root) expect(readFileSync(join(CHART, 'crds', f), 'utf8'), f).toBe(readFileSync(join(ROOT, 'crds', f), 'utf8'));
  });

  it('Chart.yaml: apiVersion v2, appVersion matches package.json', () => {
    const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { apiVersion: string; appVersion: string };
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(chart.apiVersion).toBe('v2');
    expect(chart.appVersion).toBe(pkg.version);
  });
});

describe('against a real kube-apiserver', () => {
  let env: KubeEnv;
  // Cluster-scoped objects created for real, removed afterwards: the server may be
  // shared with other test files.
  const created: KubernetesObject[] = [];
  // Unique names, so a shared server or a rerun never collides.
  const suffix = `${process.pid}-${Date.now().toString(36)}`;

  beforeAll(async () => {
    env = await getKube({ crdsDir: join(ROOT, 'crds') });
  }, 60 * 60_000); // a cold build of kube-apiserver takes many minutes on two cores

  afterAll(async () => {
    for (const o of created.reverse()) await kubeRequest('DELETE', await objectPath(o)).catch(() => undefined);
    await env?.stop();
  }, 30_000);

  /**
   * Raw HTTP rather than client-node's KubernetesObjectApi: that one serializes
   * through its generated model classes, which silently drop fields they do not
   * know, so an unknown field would never reach the server to be rejected.
   */
  function kubeRequest(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(new URL(path, env.server), {
        method,
        ca: env.caPem,
        headers: { authorization: `Bearer ${env.token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': contentType }) },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => { text += d; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }

  const discovery = new Map<string, Promise<{ name: string; kind: string; namespaced: boolean }[]>>();
  /** The object's URL, from the server's own discovery (kind → resource name and scope). */
  async function objectPath(o: KubernetesObject): Promise<string> {
    const base = o.apiVersion!.includes('/') ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
    if (!discovery.has(base)) {
      discovery.set(base, kubeRequest('GET', base).then((r) => (JSON.parse(r.body) as { resources: { name: string; kind: string; namespaced: boolean }[] }).resources));
    }
    const resource = (await discovery.get(base)!).find((r) => r.kind === o.kind && !r.name.includes('/'));
    if (!resource) throw new Error(`the server does not serve ${o.apiVersion} ${o.kind}`);
    const ns = resource.namespaced ? `/namespaces/${o.metadata!.namespace}` : '';
    return `${base}${ns}/${resource.name}/${o.metadata!.name}`;
  }

  /** Server-side apply with fieldValidation=Strict: unknown or duplicate fields are errors, not warnings. */
  async function apply(o: KubernetesObject, dryRun: boolean): Promise<{ status: number; body: string }> {
    const query = `?fieldManager=pyserve-chart-test&force=true&fieldValidation=Strict${dryRun ? '&dryRun=All' : ''}`;
    return kubeRequest('PATCH', (await objectPath(o)) + query, o, 'application/apply-patch+yaml');
  }

  async function rejections(objects: readonly KubernetesObject[]): Promise<string[]> {
    const failed: string[] = [];
    for (const o of objects) {
      const r = await apply(o, true);
      if (r.status >= 300) failed.push(`${o.kind}/${o.metadata?.name}: HTTP ${r.status} ${r.body}`);
    }
    return failed;
  }

  it('the pinned schemas describe the same Kubernetes release as this server', () => {
    const pin = /KUBE_VERSION=\$\{KUBE_VERSION:-(v[0-9.]+)\}/.exec(readFileSync(join(ROOT, 'scripts/test-tools/build-kube.sh'), 'utf8'));
    expect(pin?.[1], 'build-kube.sh and build-helm-tools.sh pin the same release').toBe(tools.kubernetesVersion);
  });

  it.each(VARIANTS)('accepts every rendered object (server-side apply, dry run): $name', async ({ values }) => {
    const namespace = await env.createNamespace('chart');
    const extraNamespaces = [await env.createNamespace('team'), await env.createNamespace('team')];
    // The namespace-list variant names namespaces that must exist; point it at real ones.
    const v = structuredClone(values) as { controller?: { namespaces?: string[] } };
    if (v.controller?.namespaces) v.controller.namespaces = [...extraNamespaces, namespace];
    const { objects } = await render(v, ['--include-crds'], { release: `chart-${suffix}`, namespace });
    // ServiceMonitor's CRD belongs to the Prometheus Operator and is not installed here.
    const applicable = objects.filter((o) => o.kind !== 'ServiceMonitor');
    expect(applicable.length).toBeGreaterThan(10);
    expect(await rejections(applicable)).toEqual([]);
  });

  it('the dry run is strict: it rejects an unknown field the way kubeconform does', async () => {
    const namespace = await env.createNamespace('chart');
    const release = `strict-${suffix}`;
    const { objects } = await render({}, [], { release, namespace });
    const deployment = byComponent<V1Deployment>(objects, 'Deployment', 'dataplane');
    // A probe one level too high: valid YAML, plausible, and wrong.
    Object.assign(deployment.spec!.template.spec!, { readinessProbe: { httpGet: { path: '/readyz', port: 'admin' } } });
    const failed = await rejections([deployment]);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toContain('readinessProbe');
  });

  it('RBAC, applied for real, lets the controller do its job and nothing more', async () => {
    const namespace = await env.createNamespace('chart');
    const [watched, unwatched] = [await env.createNamespace('team'), await env.createNamespace('team')];
    const can = await rbacChecker(namespace, `rbac-${suffix}`, {});

    // Watching all namespaces (the default).
    for (const ns of [watched!, unwatched!, namespace]) {
      for (const verb of ['get', 'list', 'watch']) {
        for (const [group, resource] of [['networking.k8s.io', 'ingresses'], ['', 'services'], ['discovery.k8s.io', 'endpointslices'], ['', 'secrets'], ['pyserve.io', 'routes']] as const) {
          expect(await can(verb, group, resource, ns), `${verb} ${resource} in ${ns}`).toBe(true);
        }
      }
      for (const verb of ['update', 'patch']) {
        expect(await can(verb, 'networking.k8s.io', 'ingresses', ns, { subresource: 'status' })).toBe(true);
        expect(await can(verb, 'pyserve.io', 'routes', ns, { subresource: 'status' })).toBe(true);
      }
      expect(await can('create', '', 'events', ns)).toBe(true);
      expect(await can('create', 'events.k8s.io', 'events', ns)).toBe(true);
    }
    expect(await can('list', 'networking.k8s.io', 'ingressclasses')).toBe(true);
    expect(await can('create', 'coordination.k8s.io', 'leases', namespace)).toBe(true);
    expect(await can('update', 'coordination.k8s.io', 'leases', namespace, { name: 'pyserve-controller' })).toBe(true);

    // And nothing else: no writes to specs, no other kinds, no other Leases.
    const denied: [string, string, string, string | undefined, { subresource?: string; name?: string }?][] = [
      ['update', 'networking.k8s.io', 'ingresses', watched],
      ['delete', 'networking.k8s.io', 'ingresses', watched],
      ['create', 'networking.k8s.io', 'ingresses', watched],
      ['update', 'pyserve.io', 'routes', watched],
      ['update', '', 'services', watched],
      ['create', '', 'secrets', watched],
      ['update', '', 'secrets', watched],
      ['list', '', 'pods', watched],
      ['list', '', 'configmaps', watched],
      ['create', '', 'pods', namespace],
      ['create', 'networking.k8s.io', 'ingressclasses', undefined],
      ['list', '', 'nodes', undefined],
      ['list', '', 'namespaces', undefined],
      ['create', 'coordination.k8s.io', 'leases', watched],
      ['update', 'coordination.k8s.io', 'leases', namespace, { name: 'someone-elses-lease' }],
      ['delete', 'coordination.k8s.io', 'leases', namespace, { name: 'pyserve-controller' }],
      ['delete', '', 'events', watched],
      ['create', 'rbac.authorization.k8s.io', 'clusterroles', undefined],
      ['update', '', 'services', watched, { subresource: 'status' }],
    ];
    for (const [verb, group, resource, ns, extra] of denied) {
      expect(await can(verb, group, resource, ns, extra), `${verb} ${group}/${resource}${extra?.subresource ? `/${extra.subresource}` : ''} in ${ns ?? 'cluster'}`).toBe(false);
    }
  });

  it('RBAC with a namespace list stops at those namespaces (and its own)', async () => {
    const namespace = await env.createNamespace('chart');
    const [watched, unwatched] = [await env.createNamespace('team'), await env.createNamespace('team')];
    const can = await rbacChecker(namespace, `rbacns-${suffix}`, { controller: { namespaces: [watched] }, rbac: { secrets: false } });
    for (const [group, resource] of [['networking.k8s.io', 'ingresses'], ['', 'services'], ['discovery.k8s.io', 'endpointslices'], ['pyserve.io', 'routes']] as const) {
      expect(await can('watch', group, resource, watched), `${resource} in the watched namespace`).toBe(true);
      expect(await can('watch', group, resource, unwatched), `${resource} elsewhere`).toBe(false);
    }
    expect(await can('patch', 'networking.k8s.io', 'ingresses', watched, { subresource: 'status' })).toBe(true);
    expect(await can('patch', 'networking.k8s.io', 'ingresses', unwatched, { subresource: 'status' })).toBe(false);
    expect(await can('create', '', 'events', unwatched)).toBe(false);
    // rbac.secrets=false: no Secrets anywhere.
    expect(await can('get', '', 'secrets', watched)).toBe(false);
    // Its own namespace: the dataplane Services' endpoints and the Lease, even unlisted.
    expect(await can('watch', 'discovery.k8s.io', 'endpointslices', namespace)).toBe(true);
    expect(await can('watch', '', 'services', namespace)).toBe(true);
    expect(await can('watch', 'networking.k8s.io', 'ingresses', namespace)).toBe(false);
    expect(await can('update', 'coordination.k8s.io', 'leases', namespace, { name: 'pyserve-controller' })).toBe(true);
    expect(await can('list', 'networking.k8s.io', 'ingressclasses')).toBe(true);
  });

  /** Applies the chart's ServiceAccounts and RBAC objects for real; answers SubjectAccessReviews for the controller. */
  async function rbacChecker(namespace: string, release: string, values: Values) {
    const { objects } = await render(values, [], { release, namespace });
    const rbacKinds = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);
    for (const o of objects.filter((x) => rbacKinds.has(x.kind!))) {
      const r = await apply(o, false);
      expect(r.status, r.body).toBeLessThan(300);
      if (!o.metadata?.namespace) created.push(o);
    }
    const authz = env.kc.makeApiClient(AuthorizationV1Api);
    const user = `system:serviceaccount:${namespace}:${byComponent(objects, 'ServiceAccount', 'controller').metadata!.name}`;
    const can = async (verb: string, group: string, resource: string, ns?: string, extra: { subresource?: string; name?: string } = {}): Promise<boolean> => {
      const review = await authz.createSubjectAccessReview({
        body: {
          spec: {
            user,
            groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
            resourceAttributes: { verb, group, resource, namespace: ns, ...extra },
          },
        },
      });
      return review.status?.allowed === true;
    };
    // RBAC reaches the authorizer through an informer: wait until every binding
    // (the lease Role's last) is in effect before asking about denials.
    const deadline = Date.now() + 10_000;
    while (!(await can('update', 'coordination.k8s.io', 'leases', namespace, { name: 'pyserve-controller' })
      && await can('list', 'networking.k8s.io', 'ingressclasses'))) {
      if (Date.now() > deadline) throw new Error('the chart\'s RBAC never took effect');
      await new Promise((r) => setTimeout(r, 100));
    }
    return can;
  }
});
