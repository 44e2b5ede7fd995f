// One rung of bench/ladder.ts: a minimal server on PORT, built from the
// compiled tree at ROOT, that answers a canned 13 bytes or proxies to the
// bench backend with PyServe's HTTP/1.1 client. Usage:
//   node rung.ts MODE PORT BACKEND_PORT ROOT
// MODE: node-canned | h1-canned | node-proxy | h1-proxy
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as PoolModule from '../../dataplane/upstream/h1/pool.ts';
import type * as ServerModule from '../../dataplane/server/h1/server.ts';

const [mode, portArg, backendArg, root] = process.argv.slice(2);
const port = Number(portArg);
const backendPort = Number(backendArg);
const load = async <T>(rel: string): Promise<T> => (await import(pathToFileURL(path.join(root!, rel)).href)) as T;

interface Res {
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  end(body?: Buffer): unknown;
  statusCode: number;
}
type Handler = (req: { method?: string; url?: string }, res: Res) => void;

const BODY = Buffer.from('hello world!\n');
const canned: Handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
};

let handler: Handler = canned;
if (mode!.endsWith('-proxy')) {
  const { H1Pool } = await load<typeof PoolModule>('dataplane/upstream/h1/pool.js');
  const pool = new H1Pool({ address: '127.0.0.1', port: backendPort, tls: false, connectTimeoutMs: 5_000, keepAliveTimeoutMs: 4_000 });
  handler = (req, res) => {
    pool.exchange({ method: req.method!, path: req.url!, headers: ['host', 'backend'], body: null, headersTimeout: 60_000, bodyTimeout: 60_000 }, {
      onHead(head) {
        res.writeHead(head.status, { 'content-type': 'text/plain', 'content-length': String(head.contentLength) });
        return res as never;
      },
      onEnd() {},
      onError() {
        res.statusCode = 502;
        res.end();
      },
    });
  };
}

if (mode!.startsWith('node-')) {
  createHttpServer((req: IncomingMessage, res: ServerResponse) => handler(req, res as unknown as Res)).listen(port, '127.0.0.1');
} else {
  const { H1Server } = await load<typeof ServerModule>('dataplane/server/h1/server.js');
  const server = new H1Server({
    limits: { maxHeaderBytes: 32_768, maxUriBytes: 8_192, clientHeaderTimeoutMs: 60_000, clientRequestTimeoutMs: 0, keepAliveTimeoutMs: 75_000 },
    onRequest: (req, res) => handler(req, res as unknown as Res),
  });
  createNetServer({ noDelay: true }, (socket) => server.accept(socket)).listen(port, '127.0.0.1');
}
process.on('SIGTERM', () => process.exit(0));
