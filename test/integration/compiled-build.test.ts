/**
 * The compiled build (`npm run build`, tsconfig.build.json) is what the image
 * and the Helm chart run. Built here into a scratch folder inside the project
 * (so `node_modules` and package.json resolve as they do for dist/), never
 * from a stale dist/: the chart's programs exist in it, its dataplane serves
 * with the chart's Node flags in a worker cluster (workers inheriting them),
 * and its local mode starts the compiled dataplane, not the sources.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DATAPLANE_NODE_FLAGS } from '../../dataplane/process-defaults.ts';
import { startBackend } from '../helpers/backends.ts';
import { compileProject, PROJECT_ROOT } from '../helpers/compiled-build.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { echoed, http } from '../helpers/http.ts';
import { eventually, spawnLogged } from '../helpers/logged-process.ts';
import type { LoggedProcess } from '../helpers/logged-process.ts';
import { applySnapshot, forward, prefix, snapshot, vhost } from '../helpers/snapshots.ts';

const ROOT = PROJECT_ROOT;
const CHART = path.join(ROOT, 'charts', 'pyserve');

let out: string;
let backend: Backend;

beforeAll(async () => {
  // Inside the project, in a gitignored folder (see compileProject).
  out = path.join(ROOT, '.cache', `build-test-${process.pid}`);
  compileProject(out);
  backend = await startBackend('compiled');
}, 120_000);

afterAll(async () => {
  await backend?.close();
  if (out !== undefined) await rm(out, { recursive: true, force: true });
});

/** The chart's default values. */
function chartValues(): { dataplane: { nodeFlags: string[] } } {
  return parse(readFileSync(path.join(CHART, 'values.yaml'), 'utf8')) as { dataplane: { nodeFlags: string[] } };
}

/** Process ids whose parent is `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
    try {
      // Field 4 of /proc/<pid>/stat, after the parenthesised command name.
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
    } catch {
      return false; // exited meanwhile
    }
  }).map(Number);
}

const cmdline = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');

describe('compiled build', () => {
  it('holds every program the chart and the image start', () => {
    const templates = readdirSync(path.join(CHART, 'templates')).map((f) => readFileSync(path.join(CHART, 'templates', f), 'utf8')).join('\n');
    const programs = [...templates.matchAll(/^\s*- (dist\/\S+\.js)\s*$/gm)].map((m) => m[1]!);
    expect(programs.sort()).toEqual(['dist/controller/main.js', 'dist/dataplane/main.js']);
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    programs.push(...[...dockerfile.matchAll(/"(dist\/[^"]+\.js)"/g)].map((m) => m[1]!));
    for (const p of programs) expect(existsSync(path.join(out, p.slice('dist/'.length))), p).toBe(true);
  });

  describe('dataplane with the chart\'s Node flags and --workers 2', () => {
    let dp: DataplaneChild;

    beforeAll(async () => {
      dp = await spawnDataplane({ main: path.join(out, 'dataplane', 'main.js'), nodeFlags: chartValues().dataplane.nodeFlags, args: ['--workers', '2'] });
    }, 30_000);

    afterAll(async () => {
      await dp?.stop();
    });

    it('serves a pushed snapshot', async () => {
      await applySnapshot(dp.adminUrl, snapshot(1, [vhost('app', ['*'], [forward('r', prefix('/'), 'svc')])], { svc: [backend.endpoint()] }));
      const r = await http(`${dp.trafficUrl}/hello`);
      expect(r.status).toBe(200);
      expect(echoed(r).backend).toBe('compiled');
    });

    it('every worker runs compiled, with the Node flags it was started with', async () => {
      const flags = chartValues().dataplane.nodeFlags;
      expect(flags.length).toBeGreaterThan(0);
      let workers: number[] = [];
      await eventually(async () => (workers = childrenOf(dp.child.pid!)).length === 2, 10_000, 'two workers');
      for (const pid of [dp.child.pid!, ...workers]) {
        const argv = cmdline(pid);
        expect(argv.slice(1, 1 + flags.length)).toEqual(flags);
        expect(argv[1 + flags.length]).toBe(path.join(out, 'dataplane', 'main.js'));
      }
    });
  });

  describe('local mode', () => {
    let dir: string;
    let proc: LoggedProcess | undefined;

    afterAll(async () => {
      await proc?.stop();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    });

    it('starts the compiled dataplane and serves a folder', async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'pyserve-compiled-'));
      await writeFile(path.join(dir, 'app.yaml'), `apiVersion: v1
kind: Service
metadata:
  name: app
  annotations:
    pyserve.io/endpoints: "127.0.0.1:${backend.port}"
spec:
  ports:
    - name: http
      port: 80
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: app
spec:
  defaultBackend:
    service:
      name: app
      port:
        name: http
`);
      proc = spawnLogged('local', [path.join(out, 'controller', 'main.js'), 'local', '--dir', dir, '--port', '0']);
      const ready = await proc.waitForLog((l) => l.msg === 'local mode ready', 20_000);
      const r = await http(`http://127.0.0.1:${ready.trafficPort as number}/x`);
      expect(r.status).toBe(200);
      expect(echoed(r).backend).toBe('compiled');
      const dataplanes = childrenOf(proc.child.pid!).map(cmdline).filter((argv) => argv.some((a) => a.includes(`${path.sep}dataplane${path.sep}main.`)));
      // Node's flags (dataplane/process-defaults.ts), then the program: the compiled one.
      expect(dataplanes.map((argv) => argv.slice(1, 2 + DATAPLANE_NODE_FLAGS.length))).toEqual([[...DATAPLANE_NODE_FLAGS, path.join(out, 'dataplane', 'main.js')]]);
    }, 30_000);
  });
});
