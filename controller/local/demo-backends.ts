/**
 * Two tiny backends for `npm start`, so a newcomer sees real proxying without
 * writing a server. Each answers with its name and what it received, which
 * makes routing and forwarding headers visible with a plain curl.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';

/** Ports the demo manifests in examples/demo point at. */
export const DEMO_BACKENDS = [
  { name: 'blue', port: 18081 },
  { name: 'green', port: 18082 },
] as const;

export async function startDemoBackends(host = '127.0.0.1'): Promise<{ close(): Promise<void> }> {
  const servers: Server[] = [];
  for (const b of DEMO_BACKENDS) {
    const server = createServer((req, res) => {
      const body = JSON.stringify({
        backend: b.name,
        method: req.method,
        url: req.url,
        host: req.headers.host,
        requestId: req.headers['x-request-id'],
        forwardedFor: req.headers['x-forwarded-for'],
      }, null, 2) + '\n';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(err.code === 'EADDRINUSE'
          ? new Error(`demo backend "${b.name}" cannot listen on ${host}:${b.port}: the port is in use`)
          : err);
      });
      server.listen(b.port, host, resolve);
    });
    servers.push(server);
  }
  return {
    close: async () => {
      await Promise.all(servers.map((s) => new Promise<void>((r) => {
        s.close(() => r());
        s.closeAllConnections();
      })));
    },
  };
}
