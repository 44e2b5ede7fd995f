// What a dataplane process loads of Node itself. An ES module import of
// node:http builds its namespace, whose WebSocket/CloseEvent/MessageEvent
// getters load Node's bundled undici and its web streams and worker_threads:
// ~13 MiB of RSS per process for nothing the dataplane uses
// (dataplane/node-http.ts). A new `import { x } from 'node:http'` anywhere in
// the dataplane brings that back; this catches it.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The built-in modules a fresh Node process has loaded after importing `modules`. */
function builtinsAfterImporting(modules: string[]): string[] {
  const script = `${modules.map((m) => `await import(${JSON.stringify(m)});`).join(' ')}
process.stdout.write(JSON.stringify(process.moduleLoadList));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return (JSON.parse(r.stdout) as string[]).filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length));
}

describe('built-in modules a dataplane process loads', () => {
  it('the dataplane (server, admin, cluster) does not load Node\'s bundled undici', () => {
    const loaded = builtinsAfterImporting(['./dataplane/start.ts', './dataplane/cluster/primary.ts', './dataplane/cluster/worker.ts']);
    // The program did load: its HTTP server and TLS are there.
    expect(loaded).toContain('_http_server');
    expect(loaded).toContain('tls');
    expect(loaded).not.toContain('internal/deps/undici/undici');
  });

  it('an ES module import of node:http would load it (what the test above guards against)', () => {
    expect(builtinsAfterImporting(['node:http'])).toContain('internal/deps/undici/undici');
  });
});
