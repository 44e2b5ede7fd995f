/**
 * Real HTTP backends on 127.0.0.1:0 for dataplane tests. The default handler
 * echoes what it received (which backend, method, URL, headers, the client
 * port it saw, body size and sha256 — hashed while streaming, never
 * buffered) and can be told by query parameters to be slow, hang, stream a
 * large response or send hop-by-hop headers.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createServer as createNetServer } from 'node:net';
import type { Endpoint } from '../../dataplane/snapshot/schema.ts';

/** What a backend saw of one request. */
export interface RecordedRequest {
  backend: string;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  /** Port of the connection the request came on: equal ports mean a reused connection. */
  remotePort: number;
  bodyBytes: number;
  bodySha256: string;
}

/** A running test backend. */
export interface Backend {
  readonly name: string;
  readonly port: number;
  readonly server: Server;
  /** Requests fully received, in order. */
  readonly requests: RecordedRequest[];
  /** Snapshot endpoint for this backend. */
  endpoint(overrides?: Partial<Endpoint>): Endpoint;
  /** Resolves when the next request's head arrives (before its body). */
  nextRequest(): Promise<IncomingMessage>;
  close(): Promise<void>;
}

/** Custom handler; return true when it handled the request. */
export type BackendHandler = (req: IncomingMessage, res: ServerResponse, record: RecordedRequest) => boolean | void;

function echo(req: IncomingMessage, res: ServerResponse, record: RecordedRequest, sockets: Set<Socket>): void {
  const q = new URL(req.url ?? '/', 'http://x').searchParams;
  if (q.has('hang')) {
    // Never answer; the socket is destroyed when the backend closes.
    sockets.add(req.socket);
    return;
  }
  const send = (): void => {
    if (q.has('hop')) {
      res.setHeader('connection', 'x-upstream-private');
      res.setHeader('x-upstream-private', 'must not reach the client');
      res.setHeader('keep-alive', 'timeout=30');
      res.setHeader('proxy-connection', 'keep-alive');
      res.setHeader('x-upstream-public', 'visible');
    }
    res.setHeader('x-backend', record.backend);
    const chunks = Number(q.get('chunks') ?? 0);
    if (chunks > 0) {
      const size = Number(q.get('chunkSize') ?? 65536);
      const interval = Number(q.get('interval') ?? 0);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let sent = 0;
      const chunk = Buffer.alloc(size, 'x');
      const next = (): void => {
        if (res.destroyed) return;
        if (sent === chunks) {
          res.end();
          return;
        }
        sent++;
        const ok = res.write(chunk);
        if (interval > 0) setTimeout(next, interval);
        else if (ok) setImmediate(next);
        else res.once('drain', next);
      };
      next();
      return;
    }
    const body = JSON.stringify(record);
    res.writeHead(Number(q.get('status') ?? 200), { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const delay = Number(q.get('delay') ?? 0);
  if (delay > 0) setTimeout(send, delay);
  else send();
}

/** Start a backend; without a handler it runs the echo described above. */
export async function startBackend(name: string, handler?: BackendHandler, host = '127.0.0.1'): Promise<Backend> {
  const requests: RecordedRequest[] = [];
  const headWaiters: ((req: IncomingMessage) => void)[] = [];
  const hanging = new Set<Socket>();
  const server = createServer((req, res) => {
    headWaiters.shift()?.(req);
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      const record: RecordedRequest = {
        backend: name,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        remotePort: req.socket.remotePort ?? 0,
        bodyBytes: bytes,
        bodySha256: hash.digest('hex'),
      };
      requests.push(record);
      if (handler?.(req, res, record) === true) return;
      echo(req, res, record, hanging);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    server,
    requests,
    endpoint: (overrides = {}) => ({ address: '127.0.0.1', port, ready: true, serving: true, terminating: false, ...overrides }),
    nextRequest: () => new Promise((resolve) => headWaiters.push(resolve)),
    close: () => new Promise((resolve) => {
      for (const s of hanging) s.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** A port on 127.0.0.1 that nothing listens on (bound once, then released). */
export async function closedPort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}
