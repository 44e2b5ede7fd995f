// The chart's `dataplane.accessLog` value: on by default (no flag rendered),
// `false` renders `--access-log=off`, which the dataplane's own parser turns
// into `accessLog: false`; anything but a boolean is refused by the schema.
// helm comes from scripts/test-tools/build-helm-tools.sh (cached after its
// first run), as in helm-chart.test.ts.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { V1Deployment } from '@kubernetes/client-node';
import { parseOptions } from '../../dataplane/options.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHART = join(ROOT, 'charts/pyserve');
let helm: string;

beforeAll(() => {
  const r = spawnSync('bash', [join(ROOT, 'scripts/test-tools/build-helm-tools.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 30 * 60_000 });
  if (r.status !== 0) throw new Error(`build-helm-tools.sh failed (exit ${r.status})`);
  helm = join(r.stdout.trim().split('\n').at(-1)!, 'helm');
}, 30 * 60_000);

function template(...set: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(helm, ['template', 'pyserve', CHART, '--namespace', 'pyserve-system', '--set', 'pushToken.existingSecret=t', ...set.flatMap((s) => ['--set', s])], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function dataplaneArgs(...set: string[]): string[] {
  const r = template(...set);
  expect(r.code, r.stderr).toBe(0);
  const deployments = parseAllDocuments(r.stdout).map((d) => d.toJS() as V1Deployment | null).filter((o) => o?.kind === 'Deployment');
  const dataplane = deployments.find((d) => d!.spec!.template.spec!.containers[0]!.args?.includes('dist/dataplane/main.js'));
  const args = dataplane!.spec!.template.spec!.containers[0]!.args!;
  // From the program on: Node's own flags (dataplane.nodeFlags) come before it.
  return args.slice(args.indexOf('dist/dataplane/main.js'));
}

describe('dataplane.accessLog', () => {
  it('is on by default: no flag, and the dataplane logs', () => {
    const args = dataplaneArgs();
    expect(args.filter((a) => a.startsWith('--access-log'))).toEqual([]);
    expect(parseOptions(args.slice(1).filter((a) => !a.startsWith('--admin-token-file')), { PYSERVE_ADMIN_TOKEN: 't' })!.accessLog).toBe(true);
  });

  it('false renders --access-log=off, which the dataplane reads as off', () => {
    const args = dataplaneArgs('dataplane.accessLog=false');
    expect(args.filter((a) => a.startsWith('--access-log'))).toEqual(['--access-log=off']);
    expect(parseOptions(args.slice(1).filter((a) => !a.startsWith('--admin-token-file')), { PYSERVE_ADMIN_TOKEN: 't' })!.accessLog).toBe(false);
  });

  it('true renders no flag', () => {
    expect(dataplaneArgs('dataplane.accessLog=true').filter((a) => a.startsWith('--access-log'))).toEqual([]);
  });

  it('the schema refuses a non-boolean', () => {
    const r = template('dataplane.accessLog=off');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/accessLog/);
  });
});
