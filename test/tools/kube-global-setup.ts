/**
 * vitest globalSetup: starts one real API server for the whole run and hands its
 * connection data to test files (read it with getKube() from kube-shared.ts).
 * Enable with `globalSetup: ['test/tools/kube-global-setup.ts']` in a vitest config.
 * Users `controller` (no groups: grant it RBAC in the test) and `admin` exist.
 */
import type { TestProject } from 'vitest/node';
import { startKube } from './kube.ts';
import './kube-shared.ts';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = await startKube({ users: [{ name: 'controller', groups: [] }] });
  project.provide('pyserveKube', {
    kubeconfigPath: env.kubeconfigPath,
    server: env.server,
    token: env.token,
    caPem: env.caPem,
    users: env.users,
    tmpDir: env.tmpDir,
    startupMs: env.startupMs,
  });
  return () => env.stop();
}
