import type { Server } from 'node:net';

/** Extra `server.listen` options (cluster workers: `reusePort` with `exclusive`). */
export interface ListenExtra {
  /** SO_REUSEPORT: every worker binds its own socket and the kernel spreads connections. */
  reusePort?: boolean;
  /** In a cluster worker, bind here instead of sharing the primary's handle. */
  exclusive?: boolean;
}

/** Listen and resolve with the bound port (the real one when `port` is 0). */
export function listen(server: Server, port: number, host: string, extra?: ListenExtra): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
    };
    if (extra === undefined) server.listen(port, host, done);
    else server.listen({ port, host, ...extra }, done);
  });
}
