/**
 * One API server for many test files: with test/tools/kube-global-setup.ts in
 * vitest's `globalSetup`, getKube() connects to the server it started (~one start per
 * run instead of one per file); without it, getKube() starts a server for this file.
 *
 *   let env: KubeEnv;
 *   beforeAll(async () => { env = await getKube(); }, 60 * 60_000);
 *   afterAll(() => env?.stop());   // a no-op for the shared server
 *
 * Files that share a server must not collide: put objects in env.createNamespace().
 */
import { inject } from 'vitest';
import { connectKube, startKube } from './kube.ts';
import type { KubeEnv, KubeEnvInfo, StartKubeOptions } from './kube.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pyserveKube?: KubeEnvInfo;
  }
}

/** The shared server if the globalSetup provided one, else a fresh one (opts apply only then). */
export async function getKube(opts?: StartKubeOptions): Promise<KubeEnv> {
  const shared = inject('pyserveKube');
  if (shared) {
    const env = connectKube(shared);
    if (opts?.crdsDir) await env.installCrds(opts.crdsDir);
    return env;
  }
  return startKube(opts);
}
