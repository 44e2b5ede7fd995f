/**
 * Informer recovery on a real API server with real RBAC: a controller started
 * without permission to list Secrets waits (not ready, retrying with backoff)
 * instead of building from a partial view, and recovers on its own once the
 * permission is granted — no restart needed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RbacAuthorizationV1Api } from '@kubernetes/client-node';
import type { V1PolicyRule } from '@kubernetes/client-node';
import { startKube } from '../tools/kube.ts';
import type { KubeEnv } from '../tools/kube.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { eventually, spawnLogged } from '../helpers/logged-process.ts';
import type { LoggedProcess } from '../helpers/logged-process.ts';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../controller/main.ts', import.meta.url));
const read = ['get', 'list', 'watch'];

describe('controller RBAC and informer recovery', () => {
  let env: KubeEnv;
  let rbac: RbacAuthorizationV1Api;
  let ctl: LoggedProcess;
  let dp: DataplaneChild;

  beforeAll(async () => {
    env = await startKube({ users: [{ name: 'pyserve-controller' }], crdsDir: fileURLToPath(new URL('../../crds/', import.meta.url)) });
    rbac = env.kc.makeApiClient(RbacAuthorizationV1Api);
    dp = await spawnDataplane({ token: 'tok' });
  }, 30 * 60_000);

  afterAll(async () => {
    await ctl?.stop('SIGKILL');
    await dp?.stop('SIGKILL');
    await env?.stop();
  });

  const role = async (rules: V1PolicyRule[]) => {
    const body = { metadata: { name: 'pyserve-controller' }, rules };
    await rbac.replaceClusterRole({ name: 'pyserve-controller', body }).catch(() => rbac.createClusterRole({ body }));
  };

  it('waits for the missing permission, then syncs without a restart', async () => {
    const withoutSecrets: V1PolicyRule[] = [
      { apiGroups: ['networking.k8s.io'], resources: ['ingresses', 'ingressclasses'], verbs: read },
      { apiGroups: ['networking.k8s.io'], resources: ['ingresses/status'], verbs: ['update'] },
      { apiGroups: [''], resources: ['services'], verbs: read },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: read },
      { apiGroups: ['pyserve.io'], resources: ['routes'], verbs: read },
      { apiGroups: ['pyserve.io'], resources: ['routes/status'], verbs: ['update'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
    ];
    await role(withoutSecrets);
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: 'pyserve-controller' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'pyserve-controller' },
        subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'pyserve-controller' }],
      },
    });
    const kubeconfig = join(env.tmpDir, 'controller.kubeconfig');
    await writeFile(kubeconfig, env.kubeConfigFor('pyserve-controller').exportConfig());
    ctl = spawnLogged('controller', [MAIN, 'controller', '--kubeconfig', kubeconfig, '--dataplane-service', 'default/pyserve-admin',
      '--leader-elect=false', '--metrics-host', '127.0.0.1', '--metrics-port', '0'], { PYSERVE_PUSH_TOKEN: 'tok' });

    const failed = await ctl.waitForLog((l) => l.kind === 'Secret' && l.msg === 'watch failed; restarting', 30_000);
    expect(String(failed.err)).toMatch(/403|forbidden/i);
    // Still syncing: it has not built anything.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(ctl.logs.some((l) => l.msg === 'informers synced')).toBe(false);

    await role([...withoutSecrets, { apiGroups: [''], resources: ['secrets'], verbs: read }]);
    const { ms } = await eventually(async () => ctl.logs.some((l) => l.msg === 'controller running'), 60_000, 'the controller to sync after the grant', 100);
    console.log(`informer recovered ${ms.toFixed(0)} ms after the permission was granted`);
    expect(ctl.logs.some((l) => l.msg === 'snapshot built')).toBe(true);
  });
});
