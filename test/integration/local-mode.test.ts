/**
 * Local mode end to end: `pyserve local` as a child process, manifests in a
 * temp folder, a real backend, edits picked up by the watcher, broken files
 * reported with file and line while the last good config keeps serving.
 * Also `npm start`'s demo exactly as a newcomer runs it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DATAPLANE_MALLOC_ENV, DATAPLANE_NODE_FLAGS } from '../../dataplane/process-defaults.ts';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { http, echoed, curl } from '../helpers/http.ts';
import { eventually, spawnLogged } from '../helpers/logged-process.ts';
import type { LoggedProcess } from '../helpers/logged-process.ts';

const MAIN = fileURLToPath(new URL('../../controller/main.ts', import.meta.url));

const service = (name: string, port: number) => `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  annotations:
    pyserve.io/endpoints: "127.0.0.1:${port}"
spec:
  ports:
    - name: http
      port: 80
`;

const ingress = (paths: [string, string][]) => `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: site
spec:
  rules:
    - host: local.test
      http:
        paths:
${paths.map(([p, svc]) => `          - path: ${p}
            pathType: Prefix
            backend:
              service:
                name: ${svc}
                port:
                  name: http`).join('\n')}
`;

describe('pyserve local', () => {
  let dir: string;
  let a: Backend;
  let b: Backend;
  let proc: LoggedProcess;
  let base: string;
  const get = (path: string, host = 'local.test') => http(`${base}${path}`, { headers: { host } });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pyserve-local-'));
    a = await startBackend('a');
    b = await startBackend('b');
    await writeFile(join(dir, 'services.yaml'), `${service('svc-a', a.port)}---\n${service('svc-b', b.port)}`);
    await writeFile(join(dir, 'ingress.yaml'), ingress([['/a', 'svc-a']]));
    proc = spawnLogged('local', [MAIN, 'local', '--dir', dir, '--port', '0']);
    const ready = await proc.waitForLog((l) => l.msg === 'local mode ready', 20_000);
    base = `http://127.0.0.1:${ready.trafficPort as number}`;
  });

  afterAll(async () => {
    await proc?.stop();
    await a?.close();
    await b?.close();
    await rm(dir, { recursive: true, force: true });
  });

  // A workstation has far more memory than a pod: without the chart's flags V8
  // would size the dataplane's young generation from it (dataplane/process-defaults.ts).
  it('starts its dataplane with the Node flags and malloc settings the chart uses', async () => {
    const children = readFileSync(`/proc/${proc.child.pid}/task/${proc.child.pid}/children`, 'utf8').trim().split(/\s+/);
    const isDataplane = (argv: string[]): boolean => argv.some((a) => /dataplane[/\\]main\.[jt]s$/.test(a));
    const argvs = children.map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'));
    const dataplane = argvs.find(isDataplane);
    expect(dataplane, JSON.stringify(argvs)).toBeDefined();
    const main = dataplane!.findIndex((a) => /dataplane[/\\]main\.[jt]s$/.test(a));
    expect(dataplane!.slice(1, main)).toEqual([...DATAPLANE_NODE_FLAGS]);
    expect(DATAPLANE_NODE_FLAGS).toContain('--max-semi-space-size=4');
    // This test's own environment sets no MALLOC_* variable, so the defaults apply.
    const pid = children[argvs.findIndex(isDataplane)]!;
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    for (const [name, value] of Object.entries(DATAPLANE_MALLOC_ENV)) expect(environ).toContain(`${name}=${value}`);
    expect(Object.keys(DATAPLANE_MALLOC_ENV)).toContain('MALLOC_MMAP_THRESHOLD_');
  });

  it('serves the folder', async () => {
    const r = await get('/a/x');
    expect(r.status).toBe(200);
    expect(echoed(r).backend).toBe('a');
    expect((await get('/b')).status).toBe(404);
  });

  it('applies an edit as the file is saved', async () => {
    await writeFile(join(dir, 'ingress.yaml'), ingress([['/a', 'svc-a'], ['/b', 'svc-b']]));
    const { ms } = await eventually(async () => (await get('/b/1')).status === 200, 5_000, 'the edit to apply');
    console.log(`edit applied in ${ms.toFixed(0)} ms`);
    expect(echoed(await get('/b/1')).backend).toBe('b');
  });

  it('reports a broken file with its line and keeps serving its last good content', async () => {
    await writeFile(join(dir, 'ingress.yaml'), ingress([['/a', 'svc-a'], ['/b', 'svc-b']]).replace('pathType: Prefix', 'pathType: Sometimes'));
    const line = await proc.waitForLog((l) => l.file === 'ingress.yaml' && l.level === 50, 5_000);
    expect(line.line).toBe(11);
    expect(String(line.msg)).toMatch(/^ingress\.yaml:11:\d+: Ingress spec\.rules\.0\.http\.paths\.0\.pathType/);
    await proc.waitForLog((l) => l.file === 'ingress.yaml' && String(l.msg).includes('keeping its last good content'), 5_000);
    expect((await get('/a')).status).toBe(200);
    expect((await get('/b')).status).toBe(200);

    await writeFile(join(dir, 'ingress.yaml'), 'apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: [\n');
    await proc.waitForLog((l) => l.file === 'ingress.yaml' && String(l.msg).includes('YAML syntax'), 5_000);
    expect((await get('/b')).status).toBe(200);
  });

  it('fails only the route whose Service is missing, naming file and line', async () => {
    await writeFile(join(dir, 'ingress.yaml'), ingress([['/a', 'svc-a'], ['/b', 'svc-b']]));
    await writeFile(join(dir, 'extra.yaml'), ingress([['/c', 'nope']]).replace('name: site', 'name: extra').replace('local.test', 'extra.test'));
    const warn = await proc.waitForLog((l) => l.reason === 'ServiceNotFound', 5_000);
    expect(String(warn.msg)).toMatch(/^extra\.yaml:1: Ingress default\/extra spec\.rules\[0\]\.http\.paths\[0\]\.backend/);
    await eventually(async () => (await get('/c', 'extra.test')).status === 503, 5_000, '503 for the broken route');
    expect((await get('/a')).status).toBe(200);
  });

  it('removes the objects of a deleted file', async () => {
    await rm(join(dir, 'extra.yaml'));
    await eventually(async () => (await get('/c', 'extra.test')).status === 404, 5_000, 'extra.test to go away');
  });
});

describe('npm start demo', () => {
  it('serves the documented routes on 127.0.0.1:8080 within 10 seconds', async () => {
    const t0 = performance.now();
    // Exactly what `npm start` runs (package.json "start"), minus npm itself.
    const demo = spawnLogged('demo', [MAIN, 'local', '--demo']);
    try {
      await eventually(async () => (await http('http://127.0.0.1:8080/blue')).status === 200, 10_000, 'the demo to serve');
      expect(performance.now() - t0).toBeLessThan(10_000);
      expect(echoed(await http('http://127.0.0.1:8080/blue')).backend).toBe('blue');
      expect(echoed(await http('http://127.0.0.1:8080/green/anything')).backend).toBe('green');
      expect(echoed(await http('http://127.0.0.1:8080/greenery')).backend).toBe('blue');
      const viaCurl = await curl('http://127.0.0.1:8080/', ['-H', 'Host: green.localhost']);
      expect(viaCurl.status).toBe(200);
      expect(JSON.parse(viaCurl.body).backend).toBe('green');
    } finally {
      expect((await demo.stop('SIGTERM')).code).toBe(0);
    }
  });
});
