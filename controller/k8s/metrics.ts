/**
 * Controller metrics and health endpoints. A dedicated registry keeps these
 * apart from anything a library registers globally.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function controllerMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'pyserve_controller_' });
  return {
    registry,
    pushes: new Counter({
      name: 'pyserve_controller_push_total',
      help: 'Snapshot pushes per dataplane target and outcome (applied, unchanged, rejected, unreachable).',
      labelNames: ['target', 'outcome'] as const,
      registers: [registry],
    }),
    targetGeneration: new Gauge({
      name: 'pyserve_controller_target_generation',
      help: 'Snapshot generation each dataplane target reported after the last push.',
      labelNames: ['target'] as const,
      registers: [registry],
    }),
    generation: new Gauge({ name: 'pyserve_controller_generation', help: 'Generation of the newest snapshot built.', registers: [registry] }),
    translate: new Histogram({
      name: 'pyserve_controller_translate_seconds',
      help: 'Time to translate cluster state, by kind of build (full or endpoints).',
      labelNames: ['kind'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    failures: new Gauge({ name: 'pyserve_controller_translation_failures', help: 'Failures in the newest translation.', registers: [registry] }),
    leader: new Gauge({ name: 'pyserve_controller_leader', help: '1 while this replica holds the leader Lease.', registers: [registry] }),
    targets: new Gauge({ name: 'pyserve_controller_targets', help: 'Dataplane push targets discovered.', registers: [registry] }),
  };
}
export type ControllerMetrics = ReturnType<typeof controllerMetrics>;

/** `/metrics`, `/healthz` and `/readyz` (ready once the informers have synced). */
export function startHealthServer(host: string, port: number, registry: Registry, ready: () => boolean): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    if (path === '/readyz') {
      const ok = ready();
      return void res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready\n' : 'waiting for the initial sync\n');
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
