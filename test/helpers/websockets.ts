/**
 * WebSocket test pieces: an upstream built on `ws` (echo, server pushes,
 * refusals, recorded handshakes and close codes) and small promise helpers
 * around the `ws` client.
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type { RawData } from 'ws';
import type { Endpoint } from '../../dataplane/snapshot/schema.ts';

/** What the WebSocket backend saw of one handshake. */
export interface SeenHandshake {
  url: string;
  headers: IncomingHttpHeaders;
}

/** A running WebSocket backend. */
export interface WsBackend {
  readonly port: number;
  readonly server: Server;
  readonly wss: WebSocketServer;
  /** Handshakes accepted, in order. */
  readonly handshakes: SeenHandshake[];
  /** Close codes the backend received, in order. */
  readonly closes: { code: number; reason: string }[];
  /** Resolves with the next close the backend sees. */
  nextClose(): Promise<{ code: number; reason: string }>;
  endpoint(overrides?: Partial<Endpoint>): Endpoint;
  close(): Promise<void>;
}

/**
 * Start a backend. Paths: `/deny…` answers 403 instead of upgrading;
 * `Upgrade: x-echo` (any path) switches to a raw byte echo;
 * anything else upgrades and echoes each message back (text stays text,
 * binary stays binary). A text message `push:N` is answered with N
 * messages `n`. Plain HTTP requests get `plain <url>`.
 */
export async function startWsBackend(): Promise<WsBackend> {
  const handshakes: SeenHandshake[] = [];
  const closes: { code: number; reason: string }[] = [];
  const closeWaiters: ((c: { code: number; reason: string }) => void)[] = [];
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`plain ${req.url}`);
  });
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: true,
    handleProtocols: (protocols) => (protocols.has('chat') ? 'chat' : false),
  });
  server.on('upgrade', (req, socket, head) => {
    if (req.headers.upgrade === 'x-echo') {
      // A protocol that is not WebSocket: raw bytes echoed after the 101.
      socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: x-echo\r\n\r\n');
      if (head.length > 0) socket.write(head);
      socket.pipe(socket);
      return;
    }
    if (req.url?.startsWith('/deny')) {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 6\r\nx-denied-by: backend\r\n\r\ndenied');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      handshakes.push({ url: req.url ?? '', headers: req.headers });
      ws.on('message', (data: RawData, isBinary: boolean) => {
        const text = isBinary ? '' : String(data);
        if (text.startsWith('push:')) {
          for (let i = 0; i < Number(text.slice(5)); i++) ws.send(String(i));
          return;
        }
        ws.send(data, { binary: isBinary });
      });
      ws.on('close', (code, reason) => {
        const c = { code, reason: String(reason) };
        closes.push(c);
        closeWaiters.shift()?.(c);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    server,
    wss,
    handshakes,
    closes,
    nextClose: () => new Promise((resolve) => closeWaiters.push(resolve)),
    endpoint: (overrides = {}) => ({ address: '127.0.0.1', port, ready: true, serving: true, terminating: false, ...overrides }),
    close: () => new Promise((resolve) => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Open a client and wait for the handshake; rejects with the HTTP status on a refused upgrade. */
export function openWs(url: string, protocols?: string[], options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => reject(Object.assign(new Error(`unexpected response ${res.statusCode}`), { status: res.statusCode, headers: res.headers, body })));
    });
    ws.once('error', reject);
  });
}

/** The next message a client receives. */
export function nextMessage(ws: WebSocket, timeoutMs = 5_000): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message in time')), timeoutMs);
    ws.once('message', (data: RawData, isBinary: boolean) => {
      clearTimeout(timer);
      resolve({ data: Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]), isBinary });
    });
  });
}

/** Send a message and wait for its echo. */
export async function roundTrip(ws: WebSocket, payload: string | Buffer): Promise<{ data: Buffer; isBinary: boolean }> {
  const reply = nextMessage(ws);
  ws.send(payload);
  return reply;
}

/** Resolves when the client is closed, with the code and reason it saw. */
export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.reject(new Error('already closed'));
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
}
