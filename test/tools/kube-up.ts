/**
 * Starts the test API server by hand, for poking at it or running the controller
 * against it:  node test/tools/kube-up.ts [crds-dir]
 * Prints the kubeconfig to use; Ctrl-C stops both processes and removes the temp folder.
 */
import { startKube } from './kube.ts';

const env = await startKube({ crdsDir: process.argv[2] });
process.stdout.write([
  `API server ready in ${env.startupMs} ms: ${env.server}`,
  `logs: ${env.tmpDir}/{etcd,kube-apiserver}.log`,
  `export KUBECONFIG=${env.kubeconfigPath}`,
  'Ctrl-C to stop.',
  '',
].join('\n'));
const shutdown = () => { env.stop().then(() => process.exit(0), () => process.exit(1)); };
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
setInterval(() => undefined, 1 << 30);
