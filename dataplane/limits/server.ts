// The connection cap of the traffic listeners. (The head, URI and timeout
// limits are applied by the HTTP/1.1 server itself, server/h1/.)
import type { Server as NetServer } from 'node:net';
import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';

/**
 * Cap the connections of the listening sockets at `maxConnections` (0: no
 * cap). Node accepts a connection over the cap and closes it at once; each
 * such drop is counted in `pyserve_connections_dropped_total`.
 */
export function applyConnectionLimit(listeners: readonly NetServer[], maxConnections: number, registry?: Registry): void {
  if (maxConnections <= 0) return;
  const dropped = registry === undefined ? undefined : new Counter({
    name: 'pyserve_connections_dropped_total',
    help: 'Client connections closed on accept because the process already had max-connections open.',
    registers: [registry],
  });
  for (const l of listeners) {
    l.maxConnections = maxConnections;
    l.on('drop', () => dropped?.inc());
  }
}
