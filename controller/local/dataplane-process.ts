/**
 * Local mode runs the real dataplane as a child process and pushes to it over
 * its admin API, exactly as the controller does in a cluster. Nothing is
 * short-circuited in-process, so local mode exercises the whole path.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { OWN_EXTENSION } from '../package-root.ts';
import { DATAPLANE_MALLOC_ENV, DATAPLANE_NODE_FLAGS } from '../../dataplane/process-defaults.ts';

/** A running dataplane child. */
export interface DataplaneProcess {
  trafficPort: number;
  adminPort: number;
  adminUrl: string;
  token: string;
  child: ChildProcess;
  /** SIGTERM, then wait for exit (the dataplane drains first). */
  stop(): Promise<number | null>;
}

export interface DataplaneProcessOptions {
  trafficHost: string;
  trafficPort: number;
  /** Called with every stdout line that is not the listening announcement (access logs). */
  onLog?: (line: string) => void;
  extraArgs?: string[];
  /** Admin token; a random one by default. */
  token?: string;
  /** Admin listen port; 0 (default) picks a free one. */
  adminPort?: number;
}

// The dataplane of the same build: sources with sources, compiled with compiled.
const DATAPLANE_MAIN = fileURLToPath(new URL(`../../dataplane/main${OWN_EXTENSION}`, import.meta.url));

/** Start the dataplane and resolve once it announced its ports. */
export function startDataplaneProcess(opts: DataplaneProcessOptions): Promise<DataplaneProcess> {
  const token = opts.token ?? randomBytes(24).toString('base64url');
  const child = spawn(process.execPath, [
    // As the chart starts it (dataplane.nodeFlags' default).
    ...DATAPLANE_NODE_FLAGS,
    DATAPLANE_MAIN,
    '--host', opts.trafficHost,
    '--traffic-port', String(opts.trafficPort),
    // Local mode has no fixed HTTPS port to claim (two local runs must not collide); the
    // dataplane's `listening` line tells which one it got.
    '--https-port', '0',
    '--admin-host', '127.0.0.1',
    '--admin-port', String(opts.adminPort ?? 0),
    // One process is plenty for local use and starts fastest; extraArgs may override.
    '--workers', '1',
    ...(opts.extraArgs ?? []),
  ], {
    // The chart's malloc settings (dataplane.mallocEnv), unless this shell sets its own.
    // The token travels by environment so it never shows in `ps`.
    env: { ...DATAPLANE_MALLOC_ENV, ...process.env, PYSERVE_ADMIN_TOKEN: token },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  return new Promise((resolve, reject) => {
    let announced = false;
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (!announced) {
        try {
          const rec = JSON.parse(line) as { msg?: string; trafficPort?: number; adminPort?: number };
          if (rec.msg === 'listening' && rec.trafficPort && rec.adminPort) {
            announced = true;
            resolve({
              trafficPort: rec.trafficPort,
              adminPort: rec.adminPort,
              adminUrl: `http://127.0.0.1:${rec.adminPort}`,
              token,
              child,
              stop: async () => {
                if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
                return exited;
              },
            });
            return;
          }
        } catch {
          // Not JSON: pass it on like any other line.
        }
      }
      opts.onLog?.(line);
    });
    void exited.then((code) => {
      if (!announced) reject(new Error(`dataplane exited with code ${code} before listening`));
    });
  });
}
