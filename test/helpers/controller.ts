/** Spawn `pyserve controller` as a child process, as it runs in a pod. */
import { fileURLToPath } from 'node:url';
import { spawnLogged } from './logged-process.ts';
import type { LoggedProcess } from './logged-process.ts';

const MAIN = fileURLToPath(new URL('../../controller/main.ts', import.meta.url));

export interface ControllerChild extends LoggedProcess {
  metricsUrl: string;
}

export async function spawnController(args: string[], env: Record<string, string>, startTimeoutMs = 30_000): Promise<ControllerChild> {
  const p = spawnLogged(`controller ${env.POD_NAME ?? ''}`, [MAIN, 'controller', '--metrics-host', '127.0.0.1', '--metrics-port', '0', ...args], env);
  const exitedEarly = p.exited.then(({ code }) => {
    throw new Error(`controller exited with ${code} before running; stderr: ${p.stderr().slice(-3000)}`);
  });
  const line = await Promise.race([p.waitForLog((l) => l.msg === 'controller running', startTimeoutMs), exitedEarly]);
  exitedEarly.catch(() => undefined);
  return { ...p, metricsUrl: `http://127.0.0.1:${line.metricsPort as number}` };
}
