// PyServe's HTTP/1.1 server (dataplane/server/h1/) on its own, behind a
// plain `net` listener, with small handlers and real clients: raw sockets
// that send exact bytes (pipelining, framing, malformed requests, stalls),
// undici for ordinary keep-alive traffic and large bodies, and curl for
// Expect: 100-continue. Covers keep-alive and HTTP/1.0, pipelining order,
// response framing, request bodies and backpressure, discarding an unread
// body, lingering close, Expect and CONNECT, refusals, the three timeouts,
// aborts on either side, upgrades and closeIdleConnections.
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { connect as netConnect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type { OutgoingHttpHeaders } from 'node:http';
import { finished, pipeline, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { H1Request } from '../../dataplane/server/h1/request.ts';
import type { H1Response } from '../../dataplane/server/h1/response.ts';
import { H1Server } from '../../dataplane/server/h1/server.ts';
import type { H1ServerOptions } from '../../dataplane/server/h1/server.ts';
import { eventually } from '../helpers/logged-process.ts';

const execFileP = promisify(execFile);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const until = (cond: () => boolean, what: string, timeoutMs = 1_500): Promise<unknown> => eventually(async () => cond(), timeoutMs, what, 5);

type Handler = (req: H1Request, res: H1Response) => void;
type Limits = H1ServerOptions['limits'];

const LIMITS: Limits = { maxHeaderBytes: 16_384, maxUriBytes: 4_096, clientHeaderTimeoutMs: 10_000, clientRequestTimeoutMs: 0, keepAliveTimeoutMs: 5_000 };

interface Harness {
  readonly server: H1Server;
  readonly port: number;
  /** Statuses onRefused reported, in order. */
  readonly refused: number[];
  /** Server-side sockets, in order of acceptance. */
  readonly sockets: Socket[];
}

interface ServeOptions {
  limits?: Partial<Limits>;
  onCheckContinue?: Handler;
}

/** An H1Server behind `net.createServer` on 127.0.0.1, an ephemeral port. */
async function serve(onRequest: Handler, opts: ServeOptions = {}): Promise<Harness> {
  const refused: number[] = [];
  // As the dataplane's handler does: a request's 'error' (the client went
  // away) is expected. (Without a listener it would be an uncaught exception,
  // see 'H1Server: process safety'.)
  const listening = (h: Handler): Handler => (req, res) => {
    req.on('error', () => undefined);
    h(req, res);
  };
  const checkContinue = opts.onCheckContinue;
  const server = new H1Server({
    limits: { ...LIMITS, ...opts.limits },
    onRequest: listening(onRequest),
    ...(checkContinue === undefined ? {} : { onCheckContinue: listening(checkContinue) }),
    onRefused: (status) => refused.push(status),
  });
  const sockets: Socket[] = [];
  const listener = createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    sockets.push(s);
    server.accept(s);
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close();
    for (const s of sockets) s.destroy();
    listener.close(() => r());
  }));
  return { server, port: (listener.address() as AddressInfo).port, refused, sockets };
}

// --- raw clients -----------------------------------------------------------

interface Client {
  readonly socket: Socket;
  /** Every byte received. */
  data: Buffer;
  /** The server sent FIN. */
  ended: boolean;
  closed: boolean;
  /** Error codes the socket emitted (ECONNRESET, ...). */
  readonly errors: string[];
  readonly text: string;
}

async function dial(port: number, allowHalfOpen = false): Promise<Client> {
  const socket = netConnect({ port, host: '127.0.0.1', allowHalfOpen, noDelay: true });
  const client: Client = {
    socket, data: Buffer.alloc(0), ended: false, closed: false, errors: [],
    get text() {
      return this.data.toString('latin1');
    },
  };
  socket.on('data', (d: Buffer) => (client.data = Buffer.concat([client.data, d])));
  socket.on('end', () => (client.ended = true));
  socket.on('close', () => (client.closed = true));
  socket.on('error', (err: NodeJS.ErrnoException) => client.errors.push(err.code ?? err.message));
  cleanups.push(() => {
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return client;
}

/** A response as a raw client read it. */
interface Resp {
  status: number;
  reason: string;
  /** Lower-case names; repeated fields joined with ', '. */
  headers: Record<string, string>;
  /** Field names in order, lower case. */
  names: string[];
  body: string;
  /** Trailer lines after a chunked body. */
  trailers: string[];
  framing: 'none' | 'length' | 'chunked' | 'close';
}

/**
 * Split received bytes into responses. `noBody` lists the indexes of HEAD
 * answers; a response without framing takes the rest (complete once `eof`).
 */
function readResponses(data: Buffer, opts: { noBody?: number[]; eof?: boolean } = {}): { list: Resp[]; incomplete: boolean } {
  const s = data.toString('latin1');
  const list: Resp[] = [];
  let pos = 0;
  while (pos < s.length) {
    const end = s.indexOf('\r\n\r\n', pos);
    if (end < 0) return { list, incomplete: true };
    const lines = s.slice(pos, end).split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) (.*)$/.exec(lines[0]!);
    if (m === null) throw new Error(`not a status line: ${JSON.stringify(lines[0])}`);
    const r: Resp = { status: Number(m[1]), reason: m[2]!, headers: {}, names: [], body: '', trailers: [], framing: 'none' };
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      r.names.push(name);
      r.headers[name] = r.headers[name] === undefined ? value : `${r.headers[name]}, ${value}`;
    }
    let p = end + 4;
    if (opts.noBody?.includes(list.length) || r.status < 200 || r.status === 204 || r.status === 304) {
      r.framing = 'none';
    } else if (r.headers['transfer-encoding'] !== undefined) {
      r.framing = 'chunked';
      for (;;) {
        const le = s.indexOf('\r\n', p);
        if (le < 0) return { list, incomplete: true };
        const size = parseInt(s.slice(p, le).split(';')[0]!, 16);
        p = le + 2;
        if (size === 0) {
          for (;;) {
            const te = s.indexOf('\r\n', p);
            if (te < 0) return { list, incomplete: true };
            const line = s.slice(p, te);
            p = te + 2;
            if (line === '') break;
            r.trailers.push(line);
          }
          break;
        }
        if (s.length < p + size + 2) return { list, incomplete: true };
        r.body += s.slice(p, p + size);
        if (s.slice(p + size, p + size + 2) !== '\r\n') throw new Error('chunk data not followed by CRLF');
        p += size + 2;
      }
    } else if (r.headers['content-length'] !== undefined) {
      r.framing = 'length';
      const n = Number(r.headers['content-length']);
      if (s.length < p + n) return { list, incomplete: true };
      r.body = s.slice(p, p + n);
      p += n;
    } else {
      r.framing = 'close';
      r.body = s.slice(p);
      p = s.length;
      if (opts.eof !== true) return { list, incomplete: true };
    }
    list.push(r);
    pos = p;
  }
  return { list, incomplete: false };
}

/** Wait for `n` complete responses on `c`. */
async function responses(c: Client, n: number, opts: { noBody?: number[]; timeoutMs?: number } = {}): Promise<Resp[]> {
  await until(() => readResponses(c.data, opts).list.length >= n, `${n} responses (got ${JSON.stringify(c.text.slice(0, 300))})`, opts.timeoutMs);
  return readResponses(c.data, opts).list;
}

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: h\r\n${extra}\r\n`;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Hash the request body and answer with the hex digest and the byte count. */
const hashingHandler: Handler = (req, res) => {
  const hash = createHash('sha256');
  let n = 0;
  req.on('data', (c: Buffer) => {
    n += c.length;
    hash.update(c);
  });
  req.on('end', () => res.end(`${hash.digest('hex')} ${n} ${req.headers['transfer-encoding'] ?? req.headers['content-length']}`));
};

function agent(opts: ConstructorParameters<typeof Agent>[0] = {}): Agent {
  const a = new Agent(opts);
  cleanups.push(() => a.destroy());
  return a;
}

// ---------------------------------------------------------------------------

describe('H1Server: keep-alive and HTTP/1.0', () => {
  it('serves two requests on one socket (raw), leaving it open', async () => {
    const seen: string[] = [];
    const h = await serve((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.httpVersion} ${req.socket.remotePort}`);
      res.end(`hi ${req.url}`);
    });
    const c = await dial(h.port);
    c.socket.write(get('/1'));
    const [r1] = await responses(c, 1);
    expect(r1).toMatchObject({ status: 200, reason: 'OK', body: 'hi /1', framing: 'length', headers: { 'content-length': '5', 'keep-alive': 'timeout=5' } });
    expect(r1!.headers.connection).toBeUndefined();
    c.socket.write(get('/2'));
    const list = await responses(c, 2);
    expect(list[1]).toMatchObject({ status: 200, body: 'hi /2' });
    const port = c.socket.localPort;
    expect(seen).toEqual([`GET /1 1.1 ${port}`, `GET /2 1.1 ${port}`]);
    expect([c.ended, c.closed, h.server.connections]).toEqual([false, false, 1]);
  });

  // Regression: a body that arrived whole in one read, over the request's
  // buffer (push refused more), paused the socket; the stream ended right
  // after, so the consumer never asked for more and the socket stayed paused:
  // the next request on the connection was never read.
  it('after a body that filled the request buffer in one read, the next request on the socket is served', async () => {
    const h = await serve((req, res) => {
      let n = 0;
      // Not reading at first: the whole body lands in the request's buffer.
      setTimeout(() => {
        req.on('data', (c: Buffer) => (n += c.length));
        req.on('end', () => res.end(`got ${n}`));
      }, req.method === 'POST' ? 300 : 0);
    });
    const c = await dial(h.port);
    const body = 'b'.repeat(100_000);
    c.socket.write(`POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const [r1] = await responses(c, 1);
    expect(r1).toMatchObject({ status: 200, body: 'got 100000' });
    c.socket.write(get('/next'));
    const list = await responses(c, 2, { timeoutMs: 2_000 });
    expect(list[1]).toMatchObject({ status: 200, body: 'got 0' });
  });

  it('undici reuses one connection for sequential requests', async () => {
    const ports = new Set<number | undefined>();
    const h = await serve((req, res) => {
      ports.add(req.socket.remotePort);
      res.end(req.url);
    });
    const dispatcher = agent({ connections: 1 });
    for (const path of ['/a', '/b', '/c']) {
      const r = await request(`http://127.0.0.1:${h.port}${path}`, { dispatcher });
      expect(r.statusCode).toBe(200);
      expect(await r.body.text()).toBe(path);
    }
    expect(ports.size).toBe(1);
    expect(h.sockets).toHaveLength(1);
  });

  it('HTTP/1.0 without keep-alive: a body of unknown length is delimited by the close', async () => {
    const h = await serve((req, res) => {
      res.write(`abc ${req.httpVersion} `);
      res.end('def');
    });
    const c = await dial(h.port);
    c.socket.write('GET / HTTP/1.0\r\n\r\n');
    await until(() => c.closed, 'the server to close');
    const { list, incomplete } = readResponses(c.data, { eof: true });
    expect(incomplete).toBe(false);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ status: 200, framing: 'close', body: 'abc 1.0 def', headers: { connection: 'close' } });
    expect(list[0]!.headers['transfer-encoding']).toBeUndefined();
    expect(list[0]!.headers['keep-alive']).toBeUndefined();
  });

  it('HTTP/1.0 without keep-alive and a known length: Content-Length and close', async () => {
    const h = await serve((_req, res) => res.end('hello'));
    const c = await dial(h.port);
    c.socket.write('GET / HTTP/1.0\r\n\r\n');
    await until(() => c.closed, 'the server to close');
    const { list } = readResponses(c.data, { eof: true });
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ status: 200, framing: 'length', body: 'hello', headers: { 'content-length': '5', connection: 'close' } });
  });

  it('HTTP/1.0 with Connection: keep-alive and a length: kept, said so, and reused', async () => {
    const h = await serve((req, res) => res.end(`hi ${req.url}`));
    const c = await dial(h.port);
    c.socket.write('GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    const [r1] = await responses(c, 1);
    expect(r1).toMatchObject({ body: 'hi /1', headers: { connection: 'keep-alive', 'keep-alive': 'timeout=5', 'content-length': '5' } });
    c.socket.write('GET /2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    const list = await responses(c, 2);
    expect(list[1]!.body).toBe('hi /2');
    expect(c.closed).toBe(false);
  });

  it('HTTP/1.0 with Connection: keep-alive but a body of unknown length: closed after it', async () => {
    const h = await serve((_req, res) => {
      res.write('a');
      res.end('b');
    });
    const c = await dial(h.port);
    c.socket.write('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    await until(() => c.closed, 'the server to close');
    const { list } = readResponses(c.data, { eof: true });
    expect(list[0]).toMatchObject({ framing: 'close', body: 'ab', headers: { connection: 'close' } });
  });
});

describe('H1Server: pipelining', () => {
  it('three requests in one write get three responses in order, each handled after the previous response finished', async () => {
    const log: string[] = [];
    const h = await serve((req, res) => {
      log.push(`start ${req.url}`);
      res.on('finish', () => log.push(`finish ${req.url}`));
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        // The first is the slowest: a server handling them in parallel would answer /2 first.
        setTimeout(() => res.end(`${req.url} ${body}`), req.url === '/1' ? 60 : 5);
      });
    });
    const c = await dial(h.port);
    c.socket.write(get('/1') + 'POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc' + get('/3'));
    const list = await responses(c, 3);
    expect(list.map((r) => r.body)).toEqual(['/1 ', '/2 abc', '/3 ']);
    await until(() => log.length === 6, 'six log entries');
    expect(log).toEqual(['start /1', 'finish /1', 'start /2', 'finish /2', 'start /3', 'finish /3']);
    expect(c.closed).toBe(false);
  });
});

describe('H1Server: response framing', () => {
  it('end(body) without headers gets a Content-Length; write() then end() gets chunked', async () => {
    const h = await serve((req, res) => {
      if (req.url === '/whole') {
        res.end('hello world');
      } else {
        res.write('hello ');
        res.write(Buffer.from('wor'));
        res.end('ld');
      }
    });
    const c = await dial(h.port);
    c.socket.write(get('/whole') + get('/parts'));
    const [whole, parts] = await responses(c, 2);
    expect(whole).toMatchObject({ framing: 'length', body: 'hello world', headers: { 'content-length': '11' } });
    expect(whole!.headers['transfer-encoding']).toBeUndefined();
    expect(parts).toMatchObject({ framing: 'chunked', body: 'hello world', headers: { 'transfer-encoding': 'chunked' } });
    expect(parts!.headers['content-length']).toBeUndefined();
  });

  it('a large body written in one end() arrives whole with its length', async () => {
    const big = randomBytes(3 * 1024 * 1024);
    const h = await serve((_req, res) => res.end(big));
    const r = await request(`http://127.0.0.1:${h.port}/`, { dispatcher: agent() });
    expect(r.headers['content-length']).toBe(String(big.length));
    expect(sha256(Buffer.from(await r.body.arrayBuffer()))).toBe(sha256(big));
  });

  it('HEAD gets the head only, whatever the handler writes; the connection stays in sync', async () => {
    const h = await serve((req, res) => {
      if (req.url === '/len') res.setHeader('content-length', 5);
      res.end('hello');
    });
    const c = await dial(h.port);
    c.socket.write(`HEAD /len HTTP/1.1\r\nHost: h\r\n\r\nHEAD /nolen HTTP/1.1\r\nHost: h\r\n\r\n${get('/get')}`);
    const list = await responses(c, 3, { noBody: [0, 1] });
    expect(list.map((r) => [r.status, r.body])).toEqual([[200, ''], [200, ''], [200, 'hello']]);
    expect(list[0]!.headers['content-length']).toBe('5');
    expect(list[1]!.headers['transfer-encoding']).toBeUndefined();
    // Nothing after the GET's body: no stray bytes from the HEAD bodies.
    const afterHeads = c.text.indexOf('hello');
    expect(afterHeads).toBe(c.text.length - 5);
  });

  it('204 and 304 have no body and no framing headers; the connection stays in sync', async () => {
    const h = await serve((req, res) => {
      if (req.url === '/204') {
        res.writeHead(204);
        res.write('dropped');
        res.end('ignored');
      } else if (req.url === '/304') {
        res.writeHead(304, { etag: '"x"' });
        res.end('ignored');
      } else {
        res.end('next');
      }
    });
    const c = await dial(h.port);
    c.socket.write(get('/204') + get('/304') + get('/next'));
    const list = await responses(c, 3);
    expect(list.map((r) => [r.status, r.body])).toEqual([[204, ''], [304, ''], [200, 'next']]);
    for (const r of list.slice(0, 2)) {
      expect(r.headers['content-length']).toBeUndefined();
      expect(r.headers['transfer-encoding']).toBeUndefined();
    }
    expect(list[1]!.headers.etag).toBe('"x"');
    expect(c.text).not.toContain('ignored');
    expect(c.text).not.toContain('dropped');
  });

  it('addTrailers on a chunked response sends them after the last chunk', async () => {
    const h = await serve((_req, res) => {
      res.setHeader('trailer', 'x-checksum');
      res.write('ab');
      res.addTrailers({ 'x-checksum': 'abc123', 'x-two': ['1', '2'] });
      res.end('cd');
    });
    const c = await dial(h.port);
    c.socket.write(get('/') + get('/'));
    const list = await responses(c, 2);
    expect(list[0]).toMatchObject({ framing: 'chunked', body: 'abcd', trailers: ['x-checksum: abc123', 'x-two: 1', 'x-two: 2'] });
    expect(list[1]!.body).toBe('abcd');
  });

  it('Connection: close set by the handler closes after the response; a pipelined request is not answered', async () => {
    const urls: string[] = [];
    const h = await serve((req, res) => {
      urls.push(req.url);
      res.setHeader('Connection', 'close');
      res.end('bye');
    });
    const c = await dial(h.port);
    c.socket.write(get('/1') + get('/2'));
    await until(() => c.closed, 'the server to close');
    const { list } = readResponses(c.data);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ body: 'bye', headers: { connection: 'close' } });
    expect(list[0]!.headers['keep-alive']).toBeUndefined();
    expect(urls).toEqual(['/1']);
  });

  it('Connection: close from the client: answered with connection: close, then closed', async () => {
    const h = await serve((_req, res) => res.end('ok'));
    const c = await dial(h.port);
    c.socket.write(get('/', 'Connection: close\r\n'));
    await until(() => c.closed, 'the server to close');
    expect(readResponses(c.data).list[0]).toMatchObject({ body: 'ok', headers: { connection: 'close' } });
  });

  it('a client that half-closes after its request still gets the response, then the connection closes', async () => {
    const h = await serve((_req, res) => setTimeout(() => res.end('late'), 30));
    const c = await dial(h.port, true);
    c.socket.end(get('/'));
    await until(() => c.ended, 'the server to finish');
    expect(readResponses(c.data).list).toMatchObject([{ status: 200, body: 'late', headers: { connection: 'close' } }]);
  });

  // Regression: end()'s chunk was once recognised by value, so with earlier
  // writes still buffered (the socket needs draining) an earlier equal chunk
  // was taken as the last: the chunked body ended there and the later chunks
  // went out raw, read by the client as the next response.
  it('end(chunk) after buffered writes of an equal chunk: the chunked body ends after the last chunk', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024, 'a');
    const h = await serve((_req, res) => {
      res.write(big);
      // The socket needs draining now: these wait in the socket's buffer.
      res.write('x');
      res.write('y');
      res.end('x');
    });
    const c = await dial(h.port);
    c.socket.write(get('/'));
    await until(() => c.data.length >= big.length + 60, 'the big chunk', 3_000);
    await sleep(100);
    expect(c.text.slice(-40)).toBe(`${'a'.repeat(15)}\r\n1\r\nx\r\n1\r\ny\r\n1\r\nx\r\n0\r\n\r\n`);
  });

  it('a date header is sent, and a handler-set one is kept', async () => {
    const h = await serve((req, res) => {
      if (req.url === '/own') res.setHeader('Date', 'Thu, 01 Jan 1970 00:00:00 GMT');
      res.end();
    });
    const c = await dial(h.port);
    c.socket.write(get('/') + get('/own'));
    const [auto, own] = await responses(c, 2);
    expect(Math.abs(Date.parse(auto!.headers.date!) - Date.now())).toBeLessThan(5_000);
    expect(own!.headers.date).toBe('Thu, 01 Jan 1970 00:00:00 GMT');
    expect(own!.names.filter((n) => n === 'date')).toHaveLength(1);
  });

  it('writeFieldLines: the lines go out as given, framed by the length given; headers set before are merged in; getHeaders reads them', async () => {
    const lines = 'X-A: 1\r\nSet-Cookie: a=1\r\nset-cookie:  b=2\r\n';
    const object = (): OutgoingHttpHeaders => ({ 'x-a': '1', 'set-cookie': ['a=1', 'b=2'], 'content-length': '5' });
    const seen: OutgoingHttpHeaders[] = [];
    const h = await serve((req, res) => {
      if (req.url === '/prior') res.setHeader('X-Prior', 'p');
      res.writeFieldLines(200, lines, req.url === '/dated', 5, object);
      seen.push(res.getHeaders());
      res.end(req.method === 'HEAD' ? undefined : 'hello');
    });
    const c = await dial(h.port);
    c.socket.write(get('/') + get('/prior') + `HEAD / HTTP/1.1\r\nHost: h\r\n\r\n` + get('/dated'));
    const [plain, prior, headOnly, dated] = await responses(c, 4, { noBody: [2] });
    expect(plain).toMatchObject({ status: 200, body: 'hello', framing: 'length', headers: { 'x-a': '1', 'set-cookie': 'a=1, b=2', 'content-length': '5' } });
    expect(c.text).toContain(`HTTP/1.1 200 OK\r\n${lines}date: `);
    expect(plain!.names.slice(0, 4)).toEqual(['x-a', 'set-cookie', 'set-cookie', 'date']);
    expect(prior).toMatchObject({ body: 'hello', headers: { 'x-prior': 'p', 'x-a': '1', 'set-cookie': 'a=1, b=2', 'content-length': '5' } });
    expect(headOnly).toMatchObject({ body: '', headers: { 'content-length': '5' } });
    // The caller said its lines hold a Date: none is added.
    expect(dated!.names).not.toContain('date');
    expect(seen[0]).toEqual(object());
    expect(seen[1]).toEqual({ 'x-prior': 'p', ...object() });
  });

  it('headers set by the handler go out in their values, repeated ones as separate lines; its framing headers do not', async () => {
    const h = await serve((_req, res) => {
      res.setHeader('X-One', 'a');
      res.appendHeader('set-cookie', 'a=1');
      res.appendHeader('set-cookie', 'b=2');
      res.setHeader('transfer-encoding', 'gzip');
      res.writeHead(201, 'Made', { 'x-two': 2 });
      res.end('x');
    });
    const c = await dial(h.port);
    c.socket.write(get('/'));
    const [r] = await responses(c, 1);
    expect(r).toMatchObject({ status: 201, reason: 'Made', body: 'x', framing: 'length', headers: { 'x-one': 'a', 'x-two': '2', 'set-cookie': 'a=1, b=2' } });
    expect(r!.names.filter((n) => n === 'set-cookie')).toHaveLength(2);
    expect(r!.headers['transfer-encoding']).toBeUndefined();
  });
});

describe('H1Server: request bodies', () => {
  it('a 5 MiB Content-Length body is read whole by the handler (undici)', async () => {
    const h = await serve(hashingHandler);
    const body = randomBytes(5 * 1024 * 1024);
    const r = await request(`http://127.0.0.1:${h.port}/up`, { method: 'POST', body, dispatcher: agent() });
    expect(await r.body.text()).toBe(`${sha256(body)} ${body.length} ${body.length}`);
  });

  it('a 5 MiB chunked body is read whole by the handler (undici, a stream of unknown length)', async () => {
    const h = await serve(hashingHandler);
    const body = randomBytes(5 * 1024 * 1024);
    const pieces = Array.from({ length: 80 }, (_, i) => body.subarray(i * 65_536, (i + 1) * 65_536));
    const r = await request(`http://127.0.0.1:${h.port}/up`, { method: 'POST', body: Readable.from(pieces), dispatcher: agent() });
    expect(await r.body.text()).toBe(`${sha256(body)} ${body.length} chunked`);
  });

  it('a chunked body with extensions and trailers, sent byte by byte (raw)', async () => {
    const h = await serve(hashingHandler);
    const c = await dial(h.port);
    const wire = 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n';
    for (const ch of wire) {
      c.socket.write(ch);
      await sleep(0);
    }
    const [r] = await responses(c, 1);
    expect(r!.body).toBe(`${sha256(Buffer.from('abcde'))} 5 chunked`);
  });

  it('backpressure: a handler that does not read leaves the body in the client, not in the server', async () => {
    const total = 32 * 1024 * 1024;
    let held: H1Request | undefined;
    let heldRes: H1Response | undefined;
    const h = await serve((req, res) => {
      held = req;
      heldRes = res;
    });
    const c = await dial(h.port);
    const body = randomBytes(total);
    c.socket.write(`POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ${total}\r\n\r\n`);
    c.socket.write(body);
    await until(() => held !== undefined, 'the request');
    // Wait until the server stops reading: it must, long before the body is in.
    let last = -1;
    await eventually(async () => {
      const now = held!.socket.bytesRead;
      const stable = now === last;
      last = now;
      return stable;
    }, 3_000, 'the server to stop reading', 100);
    expect(held!.socket.bytesRead).toBeLessThan(2 * 1024 * 1024);
    // The client's write is blocked on it.
    expect(c.socket.writableLength).toBeGreaterThan(0);
    // Reading resumes the flow and the whole body arrives.
    hashingHandler(held!, heldRes!);
    const [r] = await responses(c, 1, { timeoutMs: 5_000 });
    expect(r!.body).toBe(`${sha256(body)} ${total} ${total}`);
  });

  it('a client that stops sending the body being discarded is closed after clientBodyTimeoutMs', async () => {
    const h = await serve((_req, res) => {
      res.writeHead(404, { 'content-length': 4 });
      res.end('nope');
    }, { limits: { clientBodyTimeoutMs: 300 } });
    const c = await dial(h.port);
    c.socket.write('POST /reject HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\nxxxx');
    const [r1] = await responses(c, 1);
    expect(r1).toMatchObject({ status: 404, body: 'nope' });
    const started = performance.now();
    await until(() => c.closed, 'the server to close the stalled connection', 3_000);
    expect(performance.now() - started).toBeGreaterThanOrEqual(200);
  });

  it('a response before the body was read: the rest of it is discarded and the next request on the socket works', async () => {
    const seen: string[] = [];
    const h = await serve((req, res) => {
      seen.push(req.url);
      if (req.url === '/reject') {
        res.writeHead(404, { 'content-length': 4 });
        res.end('nope');
      } else {
        res.end(`ok ${req.url}`);
      }
    });
    const c = await dial(h.port);
    const size = 1024 * 1024;
    c.socket.write(`POST /reject HTTP/1.1\r\nHost: h\r\nContent-Length: ${size}\r\n\r\n${'x'.repeat(1000)}`);
    const [r1] = await responses(c, 1);
    expect(r1).toMatchObject({ status: 404, body: 'nope' });
    expect(r1!.headers.connection).toBeUndefined();
    // The rest of the body (which looks like requests), then a real one.
    const rest = Buffer.alloc(size - 1000, get('/smuggled'));
    c.socket.write(rest);
    c.socket.write(get('/next'));
    const list = await responses(c, 2);
    expect(list[1]).toMatchObject({ status: 200, body: 'ok /next' });
    expect(seen).toEqual(['/reject', '/next']);
    expect(c.closed).toBe(false);
  });

  it('lingering close: a 413 with connection: close while the client uploads 10 MiB is read whole, without a reset', async () => {
    const h = await serve((_req, res) => {
      res.writeHead(413, { connection: 'close', 'content-type': 'text/plain', 'content-length': 14 });
      res.end('body too large');
    });
    const c = await dial(h.port, true);
    const total = 10 * 1024 * 1024;
    c.socket.write(`PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: ${total}\r\n\r\n`);
    const piece = randomBytes(64 * 1024);
    // Upload everything, as a client that only reads once it has sent its request does.
    for (let sent = 0; sent < total && !c.closed; sent += piece.length) {
      if (!c.socket.write(piece)) await new Promise<void>((r) => c.socket.once('drain', r));
    }
    c.socket.end();
    await until(() => c.closed, 'the connection to close', 3_000);
    expect(c.errors).toEqual([]);
    expect(c.ended).toBe(true);
    const { list, incomplete } = readResponses(c.data);
    expect(incomplete).toBe(false);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ status: 413, body: 'body too large', headers: { connection: 'close' } });
  });
});

describe('H1Server: Expect and CONNECT', () => {
  it('Expect: 100-continue goes to onCheckContinue; writeContinue sends the 100, then the body comes', async () => {
    const calls: string[] = [];
    const h = await serve(() => calls.push('onRequest'), {
      onCheckContinue: (req, res) => {
        calls.push(`onCheckContinue ${req.headers.expect}`);
        res.writeContinue();
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => res.end(`got ${body}`));
      },
    });
    const c = await dial(h.port);
    c.socket.write('POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
    await until(() => c.text.length > 0, 'the 100');
    expect(c.text).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    expect(calls).toEqual(['onCheckContinue 100-continue']);
    c.socket.write('hello');
    const list = await responses(c, 2);
    expect(list.map((r) => [r.status, r.body])).toEqual([[100, ''], [200, 'got hello']]);
  });

  it('without onCheckContinue the server sends the 100 itself (curl waits for it)', async () => {
    const h = await serve(hashingHandler);
    const url = `http://127.0.0.1:${h.port}/`;
    const { stdout, stderr } = await execFileP('curl', ['-sS', '-v', '--http1.1', '--expect100-timeout', '20', '-H', 'Expect: 100-continue', '--data-binary', 'hello', url], { timeout: 5_000 });
    expect(stderr).toMatch(/< HTTP\/1\.1 100 Continue/);
    expect(stdout).toBe(`${sha256(Buffer.from('hello'))} 5 5`);
  });

  it('Expect: anything else gets 417 and the connection closes', async () => {
    const calls: string[] = [];
    const h = await serve(() => calls.push('onRequest'), { onCheckContinue: () => calls.push('onCheckContinue') });
    const c = await dial(h.port);
    // Without a body: with one, the refusal crashes the process (see 'H1Server: process safety').
    c.socket.write('GET / HTTP/1.1\r\nHost: h\r\nExpect: foo\r\n\r\n');
    await until(() => c.closed, 'the server to close');
    expect(readResponses(c.data).list).toMatchObject([{ status: 417, headers: { connection: 'close' } }]);
    expect(calls).toEqual([]);
    expect(h.refused).toEqual([417]);
  });

  it('CONNECT gets 405 and the connection closes', async () => {
    const calls: string[] = [];
    const h = await serve(() => calls.push('onRequest'));
    const c = await dial(h.port);
    c.socket.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    await until(() => c.closed, 'the server to close');
    expect(readResponses(c.data).list).toMatchObject([{ status: 405, headers: { connection: 'close' } }]);
    expect(calls).toEqual([]);
    expect(h.refused).toEqual([405]);
  });

  // RFC 9110 §10.1.1: an HTTP/1.0 request's expectation is ignored (as node:http).
  it('Expect: 100-continue on an HTTP/1.0 request is ignored: the request is handled, no 100', async () => {
    const calls: string[] = [];
    const h = await serve((req, res) => {
      calls.push('onRequest');
      res.end(`handled ${req.httpVersion}`);
    }, { onCheckContinue: () => calls.push('onCheckContinue') });
    const c = await dial(h.port);
    // Without a body: with one, the 417 crashes the process (see 'H1Server: process safety').
    c.socket.write('GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n');
    await until(() => c.closed, 'the server to close');
    const { list } = readResponses(c.data, { eof: true });
    expect(list.map((r) => [r.status, r.body])).toEqual([[200, 'handled 1.0']]);
    expect(calls).toEqual(['onRequest']);
  });

  // Regression: a final response to an `Expect: 100-continue` request sent
  // without the 100 once kept the connection, and the server waited to
  // discard a body the client may never send: the client's next request was
  // swallowed as that body (node:http closes such connections).
  it('a final response without 100 Continue to an Expect: 100-continue request closes the connection', async () => {
    const h = await serve(() => undefined, {
      onCheckContinue: (_req, res) => {
        res.writeHead(413, { 'content-length': 2 });
        res.end('no');
      },
    });
    const c = await dial(h.port);
    c.socket.write('POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n');
    const [r] = await responses(c, 1);
    expect(r).toMatchObject({ status: 413, body: 'no' });
    expect(r!.headers.connection).toBe('close');
    await until(() => c.ended, 'the server to close', 1_000);
  });
});

// The server in a child process, so that an uncaught exception shows as a
// crash of that process rather than of the test runner.
const SERVER_MODULE = pathToFileURL(fileURLToPath(new URL('../../dataplane/server/h1/server.ts', import.meta.url))).href;

/**
 * Run an H1Server whose onRequest body is `handler`; a client sends `wire`,
 * then (after `abortAfterMs`, if given) destroys its socket. Resolves with
 * the first line the client received once the process exited by itself;
 * rejects when the process fails (an uncaught exception exits with 1).
 */
async function isolated(handler: string, wire: string, abortAfterMs?: number): Promise<string> {
  const script = `
    import { connect, createServer } from 'node:net';
    import { H1Server } from ${JSON.stringify(SERVER_MODULE)};
    const server = new H1Server({ limits: ${JSON.stringify(LIMITS)}, onRequest: (req, res) => { ${handler} } });
    const listener = createServer({ allowHalfOpen: true }, (s) => server.accept(s));
    listener.listen(0, '127.0.0.1', () => {
      const c = connect(listener.address().port, '127.0.0.1', () => c.write(${JSON.stringify(wire)}));
      let got = '';
      c.on('data', (d) => (got += d));
      c.on('error', () => undefined);
      ${abortAfterMs === undefined ? '' : `setTimeout(() => c.destroy(), ${abortAfterMs});`}
      c.on('close', () => setTimeout(() => {
        console.log(JSON.stringify(got.split('\\r\\n')[0]));
        server.close();
        listener.close();
      }, 100));
    });
  `;
  const { stdout } = await execFileP(process.execPath, ['--input-type=module', '-e', script], { timeout: 5_000 });
  return JSON.parse(stdout.trim()) as string;
}

describe('H1Server: process safety', () => {
  it('the isolated harness works: a plain request is answered and the process exits by itself', async () => {
    expect(await isolated("res.end('ok');", 'GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n')).toBe('HTTP/1.1 200 OK');
  });

  // Regression: a request refused before any handler saw it (CONNECT, an
  // unsupported Expect) with a body was destroyed with an error nobody
  // listened to: an uncaught exception, and the dataplane exited with 1.
  // Like node:http's IncomingMessage, the request emits 'error' only to listeners.
  it('CONNECT with a body is refused with 405 without crashing the process', async () => {
    expect(await isolated("res.end('ok');", 'CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\nContent-Length: 1\r\n\r\n')).toBe('HTTP/1.1 405 Method Not Allowed');
  });

  it('Expect: foo with a body is refused with 417 without crashing the process', async () => {
    expect(await isolated("res.end('ok');", 'POST / HTTP/1.1\r\nHost: h\r\nExpect: foo\r\nContent-Length: 5\r\n\r\nhello')).toBe('HTTP/1.1 417 Expectation Failed');
  });

  // The same root cause with a handler written against node:http that does
  // not listen for the request's errors: the client leaving mid-body crashes.
  it('a client leaving mid-body does not crash a process whose handler ignores request errors', async () => {
    expect(await isolated('', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc', 50)).toBe('');
  });
});

describe('H1Server: refusals', () => {
  const cases: [string, string, number, Partial<Limits>?][] = [
    ['a space before a colon', 'GET / HTTP/1.1\r\nHost : h\r\n\r\n', 400],
    ['a bare LF', 'GET / HTTP/1.1\nHost: h\n\n', 400],
    ['a missing Host', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['Transfer-Encoding with Content-Length', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n', 400],
    ['gzip, chunked', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501],
    ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: h\r\n\r\n', 505],
    ['a target over maxUriBytes', `GET /${'a'.repeat(300)} HTTP/1.1\r\nHost: h\r\n\r\n`, 414, { maxUriBytes: 256 }],
    ['a head over maxHeaderBytes', `GET / HTTP/1.1\r\nHost: h\r\n${'X-A: 123456789\r\n'.repeat(100)}\r\n`, 431, { maxHeaderBytes: 1_024 }],
    ['a bad chunk size', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
  ];

  it.each(cases)('%s: answered with its status and connection: close, then closed; onRefused told', async (_name, wire, status, limits) => {
    const calls: string[] = [];
    const h = await serve((req) => {
      calls.push(req.url);
      req.resume();
    }, { limits: limits ?? {} });
    const c = await dial(h.port);
    c.socket.write(wire);
    await until(() => c.closed, 'the server to close');
    const { list, incomplete } = readResponses(c.data);
    expect(incomplete).toBe(false);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ status, headers: { connection: 'close', 'content-type': 'text/plain; charset=utf-8' } });
    expect(list[0]!.body).toMatch(new RegExp(`^${status} `));
    expect(h.refused).toEqual([status]);
    expect(c.errors).toEqual([]);
    // The bad chunk size comes after the head: the handler saw that request.
    expect(calls).toEqual(status === 400 && wire.includes('zz') ? ['/'] : []);
  });

  it('a malformed request after a good one on the same socket: the good one answered, then 400 and close', async () => {
    const h = await serve((_req, res) => res.end('fine'));
    const c = await dial(h.port);
    c.socket.write(`${get('/')}GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n`);
    await until(() => c.closed, 'the server to close');
    expect(readResponses(c.data).list.map((r) => [r.status, r.headers.connection])).toEqual([[200, undefined], [400, 'close']]);
    expect(h.refused).toEqual([400]);
  });
});

describe('H1Server: timeouts', () => {
  it('a head not complete within clientHeaderTimeoutMs gets 408 and the connection closes', async () => {
    const h = await serve(() => undefined, { limits: { clientHeaderTimeoutMs: 300 } });
    const c = await dial(h.port);
    const started = Date.now();
    c.socket.write('GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ');
    await until(() => c.closed, 'the server to close');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1_200);
    expect(readResponses(c.data).list).toMatchObject([{ status: 408, headers: { connection: 'close' } }]);
    expect(h.refused).toEqual([408]);
  });

  it('a connection that sends nothing is refused at the head timeout too', async () => {
    const h = await serve(() => undefined, { limits: { clientHeaderTimeoutMs: 300 } });
    const c = await dial(h.port);
    await until(() => c.closed, 'the server to close');
    expect(readResponses(c.data).list.map((r) => r.status)).toEqual([408]);
  });

  it('a keep-alive connection idle past keepAliveTimeoutMs (plus node:http\'s 1 s grace) is closed silently', async () => {
    const h = await serve((_req, res) => res.end('ok'), { limits: { keepAliveTimeoutMs: 300 } });
    const c = await dial(h.port);
    c.socket.write(get('/'));
    const [r] = await responses(c, 1);
    // Under a second: no timeout= hint (it would read 0).
    expect(r!.headers['keep-alive']).toBeUndefined();
    const answered = Date.now();
    const bytes = c.data.length;
    await sleep(500);
    expect(c.closed).toBe(false);
    await until(() => c.closed, 'the idle connection to close', 1_500);
    const elapsed = Date.now() - answered;
    expect(elapsed).toBeGreaterThanOrEqual(1_250);
    expect(elapsed).toBeLessThan(1_900);
    expect(c.data.length).toBe(bytes);
    expect(h.refused).toEqual([]);
  });

  it('a body that stalls past clientRequestTimeoutMs gets 408; the handler\'s request errors', async () => {
    const reqErrors: (number | undefined)[] = [];
    let got = '';
    const h = await serve((req) => {
      req.on('data', (d: Buffer) => (got += d.toString()));
      req.on('error', (err) => reqErrors.push((err as Error & { status?: number }).status));
    }, { limits: { clientRequestTimeoutMs: 400 } });
    const c = await dial(h.port);
    c.socket.write('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc');
    await until(() => c.closed, 'the server to close');
    expect(got).toBe('abc');
    expect(readResponses(c.data).list).toMatchObject([{ status: 408, headers: { connection: 'close' } }]);
    expect(reqErrors).toEqual([408]);
    expect(h.refused).toEqual([408]);
  });
});

describe('H1Server: aborts', () => {
  it('the client going away mid-body: req errors with ECONNRESET, res closes unfinished', async () => {
    const events: string[] = [];
    let req0: H1Request | undefined;
    const h = await serve((req, res) => {
      req0 = req;
      req.on('data', () => events.push('data'));
      req.on('error', (err) => events.push(`req error ${(err as NodeJS.ErrnoException).code}`));
      res.on('close', () => events.push(`res close finished=${res.writableFinished}`));
    });
    const c = await dial(h.port);
    c.socket.write('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n0123456789');
    await until(() => events.includes('data'), 'the first body bytes');
    c.socket.destroy();
    await until(() => events.length >= 3, 'req error and res close');
    expect(events).toEqual(['data', 'req error ECONNRESET', 'res close finished=false']);
    expect([req0!.complete, req0!.destroyed]).toEqual([false, true]);
    await until(() => h.server.connections === 0, 'the server to forget the connection');
  });

  it('res.destroy() mid-response cuts the connection: the client gets a partial chunked body and a close', async () => {
    const h = await serve((_req, res) => {
      res.write('partial');
      setTimeout(() => res.destroy(), 30);
    });
    const c = await dial(h.port);
    c.socket.write(get('/'));
    await until(() => c.closed, 'the server to cut the connection');
    const { list, incomplete } = readResponses(c.data);
    expect(list).toEqual([]);
    expect(incomplete).toBe(true);
    expect(c.text).toContain('transfer-encoding: chunked');
    expect(c.text).toContain('7\r\npartial\r\n');
    expect(c.text).not.toContain('0\r\n\r\n');
  });

  it('a body shorter than its Content-Length: the connection is destroyed after what was written, the client sees an incomplete body', async () => {
    const resErrors: string[] = [];
    const h = await serve((_req, res) => {
      res.on('error', (err) => resErrors.push((err as NodeJS.ErrnoException).code ?? ''));
      res.writeHead(200, { 'content-length': 10 });
      res.write('abc');
      setTimeout(() => res.end(), 20);
    });
    const c = await dial(h.port);
    c.socket.write(get('/') + get('/'));
    await until(() => c.closed, 'the server to cut the connection');
    const { list, incomplete } = readResponses(c.data);
    expect([list.length, incomplete]).toEqual([0, true]);
    expect(c.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(c.text.endsWith('\r\n\r\nabc')).toBe(true);
    expect(resErrors).toEqual(['ERR_HTTP_CONTENT_LENGTH_MISMATCH']);
  });

  it('end(body) shorter than its Content-Length: the connection is destroyed, no complete response', async () => {
    const resErrors: string[] = [];
    const h = await serve((_req, res) => {
      res.on('error', (err) => resErrors.push((err as NodeJS.ErrnoException).code ?? ''));
      res.writeHead(200, { 'content-length': 10 });
      res.end('abc');
    });
    const c = await dial(h.port);
    c.socket.write(get('/') + get('/'));
    await until(() => c.closed, 'the server to cut the connection');
    expect(readResponses(c.data).list).toEqual([]);
    expect(resErrors).toEqual(['ERR_HTTP_CONTENT_LENGTH_MISMATCH']);
  });

  it('a body longer than its Content-Length: refused, the connection is destroyed', async () => {
    const resErrors: string[] = [];
    const h = await serve((_req, res) => {
      res.on('error', (err) => resErrors.push((err as NodeJS.ErrnoException).code ?? ''));
      res.writeHead(200, { 'content-length': 2 });
      res.end('abcdef');
    });
    const c = await dial(h.port);
    c.socket.write(get('/'));
    await until(() => c.closed, 'the server to cut the connection');
    expect(readResponses(c.data).list).toEqual([]);
    expect(c.text).not.toContain('abcdef');
    expect(resErrors).toEqual(['ERR_HTTP_CONTENT_LENGTH_MISMATCH']);
  });
});

describe('H1Server: upgrade', () => {
  const UPGRADE = 'GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: echo\r\n\r\n';

  it('hands an upgrade request over with its socket and the bytes after the head; the server forgets it', async () => {
    const calls: string[] = [];
    const h = await serve(() => calls.push('onRequest'));
    const upgrades: { url: string; upgrade: unknown; head: string }[] = [];
    h.server.on('upgrade', (req: H1Request, socket: Socket, head: Buffer) => {
      upgrades.push({ url: req.url, upgrade: req.headers.upgrade, head: head.toString() });
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
      socket.on('data', (d: Buffer) => socket.write(d));
    });
    const c = await dial(h.port);
    c.socket.write(`${UPGRADE}EARLY`);
    await until(() => upgrades.length === 1, 'the upgrade event');
    expect(upgrades).toEqual([{ url: '/ws', upgrade: 'echo', head: 'EARLY' }]);
    expect(calls).toEqual([]);
    expect(h.server.connections).toBe(0);
    // Not the server's any more: closing its connections leaves it alone.
    h.server.closeAllConnections();
    h.server.closeIdleConnections();
    c.socket.write('ping');
    await until(() => c.text.endsWith('ping'), 'the echo');
    expect(c.text).toBe('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nping');
    expect(c.closed).toBe(false);
  });

  it('with shouldUpgradeCallback false, or no upgrade listener, the request goes to onRequest', async () => {
    const urls: string[] = [];
    const h = await serve((req, res) => {
      urls.push(`${req.url} ${req.headers.upgrade}`);
      res.end('plain');
    });
    // No listener yet.
    const c1 = await dial(h.port);
    c1.socket.write(UPGRADE);
    expect((await responses(c1, 1))[0]!.body).toBe('plain');

    let asked = 0;
    h.server.on('upgrade', (_req: H1Request, socket: Socket) => socket.destroy());
    h.server.shouldUpgradeCallback = (req) => {
      asked++;
      return req.headers.upgrade === 'websocket';
    };
    const c2 = await dial(h.port);
    c2.socket.write(UPGRADE);
    expect((await responses(c2, 1))[0]!.body).toBe('plain');
    expect(asked).toBe(1);
    expect(urls).toEqual(['/ws echo', '/ws echo']);
    // The connection carries on as HTTP.
    c2.socket.write(get('/after'));
    expect((await responses(c2, 2))[1]!.body).toBe('plain');
  });

  it('an upgrade request with a body is not handed over', async () => {
    const urls: string[] = [];
    const h = await serve((req, res) => {
      urls.push(req.url);
      req.resume();
      req.on('end', () => res.end('plain'));
    });
    h.server.on('upgrade', (_req: H1Request, socket: Socket) => socket.destroy());
    const c = await dial(h.port);
    c.socket.write('POST /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\nContent-Length: 2\r\n\r\nhi');
    expect((await responses(c, 1))[0]!.body).toBe('plain');
    expect(urls).toEqual(['/ws']);
  });

  // Regression: the hand-off once left the socket flowing with no 'data'
  // listener, so bytes arriving before the 'upgrade' listener attached its
  // own were dropped (node:http stops the flow).
  it('bytes sent after the head, before the upgrade listener reads, are not lost', async () => {
    const h = await serve(() => undefined);
    let received = '';
    h.server.on('upgrade', (_req: H1Request, socket: Socket, head: Buffer) => {
      received += head.toString();
      // An upgrade handler that first does something asynchronous (connects upstream).
      setTimeout(() => socket.on('data', (d: Buffer) => (received += d.toString())), 100);
    });
    const c = await dial(h.port);
    c.socket.write(UPGRADE);
    await sleep(30);
    c.socket.write('frame');
    await sleep(150);
    expect(received).toBe('frame');
  });
});

describe('H1Server: closeIdleConnections', () => {
  it('closes connections between requests and fresh ones, not one with a request in flight', async () => {
    let pending: H1Response | undefined;
    const h = await serve((req, res) => {
      if (req.url === '/slow') pending = res;
      else res.end('quick');
    });
    const idle = await dial(h.port);
    idle.socket.write(get('/quick'));
    await responses(idle, 1);
    const busy = await dial(h.port);
    busy.socket.write(get('/slow'));
    const fresh = await dial(h.port);
    await until(() => pending !== undefined && h.server.connections === 3, 'three connections, one busy');

    const idleBytes = idle.data.length;
    h.server.closeIdleConnections();
    await until(() => idle.closed && fresh.closed, 'the idle connections to close');
    // Closed silently: nothing after the one response.
    expect(idle.data.length).toBe(idleBytes);
    expect(fresh.data.length).toBe(0);
    await sleep(50);
    expect(busy.closed).toBe(false);
    expect(h.server.connections).toBe(1);

    pending!.end('slow done');
    const [r] = await responses(busy, 1);
    expect(r!.body).toBe('slow done');
    // Now it is idle too.
    h.server.closeIdleConnections();
    await until(() => busy.closed, 'the now idle connection to close');
    expect(busy.text.endsWith('slow done')).toBe(true);
  });

  it('closeAllConnections closes a connection with a request in flight', async () => {
    const closes: boolean[] = [];
    const h = await serve((_req, res) => res.on('close', () => closes.push(res.writableFinished)));
    const c = await dial(h.port);
    c.socket.write(get('/'));
    await until(() => h.server.connections === 1 && h.sockets.length === 1, 'the request');
    await sleep(20);
    h.server.closeAllConnections();
    await until(() => c.closed && closes.length === 1, 'the close');
    expect(closes).toEqual([false]);
    expect(c.data.length).toBe(0);
  });
});

describe('H1Server: invalid response heads', () => {
  it('writeHead with a CR/LF in a header value throws ERR_INVALID_CHAR before anything is sent; the handler can answer 500', async () => {
    const codes: string[] = [];
    const h = await serve((_req, res) => {
      try {
        res.writeHead(200, { 'x-bad': 'a\r\nx-injected: 1' });
      } catch (err) {
        codes.push((err as NodeJS.ErrnoException).code ?? '');
        codes.push(`headersSent=${res.headersSent}`);
        // Drop the refused value, as a handler that knows which one it was can.
        res.removeHeader('x-bad');
        res.writeHead(500, { 'content-length': 5 });
        res.end('error');
      }
    });
    const c = await dial(h.port);
    c.socket.write(get('/'));
    const [r] = await responses(c, 1);
    expect(codes).toEqual(['ERR_INVALID_CHAR', 'headersSent=false']);
    expect(r).toMatchObject({ status: 500, body: 'error' });
    expect(c.text).not.toContain('x-injected');
  });

  // The head is written as latin1, which keeps a character's low byte:
  // U+010A would leave as LF and split the response (node:http refuses it too).
  it('a header value above latin1 throws ERR_INVALID_CHAR, from writeHead and from setHeader', async () => {
    const codes: string[] = [];
    const h = await serve((_req, res) => {
      for (const f of [() => res.writeHead(200, { 'x-bad': 'a\u010ax-injected: 1' }), () => res.setHeader('x-bad', '\u010d\u010a')]) {
        try {
          f();
        } catch (err) {
          codes.push((err as NodeJS.ErrnoException).code ?? '');
        }
      }
      res.writeHead(200, { 'content-length': 2, 'x-latin1': 'caf\xe9' });
      res.end('ok');
    });
    const c = await dial(h.port);
    c.socket.write(get('/'));
    const [r] = await responses(c, 1);
    expect(codes).toEqual(['ERR_INVALID_CHAR', 'ERR_INVALID_CHAR']);
    expect(r).toMatchObject({ status: 200, body: 'ok' });
    expect(c.text).toContain('x-latin1: caf\xe9\r\n');
    expect(c.text).not.toContain('x-injected');
  });

  it('writeCheckedHead renders what writeHead renders, over headers set before; a bad status still throws', async () => {
    const codes: string[] = [];
    const h = await serve((req, res) => {
      try {
        (res as H1Response).writeCheckedHead(1000, {});
      } catch (err) {
        codes.push((err as NodeJS.ErrnoException).code ?? '');
      }
      res.setHeader('x-set', 'before');
      const headers = { 'content-length': 2, 'x-a': '1', 'set-cookie': ['a=1', 'b=2'] };
      if (req.url === '/checked') (res as H1Response).writeCheckedHead(201, headers);
      else res.writeHead(201, headers);
      res.end('ok');
    });
    const c = await dial(h.port);
    c.socket.write(get('/checked') + get('/plain'));
    const [a, b] = await responses(c, 2);
    expect(codes).toEqual(['ERR_HTTP_INVALID_STATUS_CODE', 'ERR_HTTP_INVALID_STATUS_CODE']);
    expect(a).toMatchObject({ status: 201, body: 'ok' });
    const heads = c.text.split('\r\n\r\nok').slice(0, 2);
    // Identical but for the Date line.
    expect(heads[0]!.replace(/date: .*\r\n/, '')).toBe(heads[1]!.replace(/date: .*\r\n/, ''));
    expect(heads[0]).toContain('x-set: before\r\nx-a: 1\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n');
    expect(b!.status).toBe(201);
  });

  it('a header name that is not a token throws ERR_INVALID_HTTP_TOKEN; a bad status ERR_HTTP_INVALID_STATUS_CODE', async () => {
    const codes: string[] = [];
    const h = await serve((_req, res) => {
      for (const f of [() => res.writeHead(99), () => res.writeHead(200, { 'bad name': 'x' })]) {
        try {
          f();
        } catch (err) {
          codes.push((err as NodeJS.ErrnoException).code ?? '');
        }
      }
      res.removeHeader('bad name');
      res.writeHead(500);
      res.end();
    });
    const c = await dial(h.port);
    c.socket.write(get('/'));
    const [r] = await responses(c, 1);
    expect(codes).toEqual(['ERR_HTTP_INVALID_STATUS_CODE', 'ERR_INVALID_HTTP_TOKEN']);
    expect(r!.status).toBe(500);
  });

  // Regression: writeHead once kept the headers it refused, so every later
  // writeHead/end threw too (node:http stores nothing).
  it('after writeHead threw on a CR/LF value, writeHead(500) works without removing the header first', async () => {
    const codes: string[] = [];
    const h = await serve((_req, res) => {
      try {
        res.writeHead(200, { 'x-bad': 'a\r\nb' });
      } catch (err) {
        codes.push((err as NodeJS.ErrnoException).code ?? '');
      }
      try {
        res.writeHead(500, { 'content-length': 5 });
        res.end('error');
      } catch (err) {
        codes.push((err as NodeJS.ErrnoException).code ?? '');
        res.destroy();
      }
    });
    const c = await dial(h.port);
    c.socket.write(get('/'));
    await until(() => codes.length > 0 && (c.closed || readResponses(c.data).list.length > 0), 'an answer or a close');
    expect(codes).toEqual(['ERR_INVALID_CHAR']);
    expect(readResponses(c.data).list.map((r) => r.status)).toEqual([500]);
  });
});

describe('H1Response: lent chunks (http1/sink.ts LENDING)', () => {
  it('takes a lent chunk to the kernel inside writeLent and says so; refilling it at once does not change what is sent', async () => {
    const verdicts: boolean[] = [];
    const h = await serve((_req, res) => {
      const chunk = Buffer.alloc(16 * 1024, 'a');
      res.writeHead(200, { 'content-length': String(chunk.length * 2) });
      expect(res.lendable()).toBe(true);
      verdicts.push(res.writeLent(chunk, false));
      chunk.fill('b');
      expect(res.lendable()).toBe(true);
      verdicts.push(res.writeLent(chunk, true));
      chunk.fill('z');
    });
    const c = await dial(h.port);
    c.socket.write(get('/'));
    const [r] = await responses(c, 1);
    expect(r!.body).toBe('a'.repeat(16 * 1024) + 'b'.repeat(16 * 1024));
    expect(verdicts).toEqual([true, true]);
  });

  it('answers false once the socket holds the chunk (a client that does not read), and is not lendable then', async () => {
    const piece = 64 * 1024;
    const kept: Buffer[] = [];
    let lendableAfter: boolean | undefined;
    let pieces = 0;
    const h = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': String(piece * 400) });
      // Until the kernel's buffers are full and a write completes only in part.
      for (; pieces < 400; pieces++) {
        const chunk = Buffer.alloc(piece, pieces % 251);
        if (!res.writeLent(chunk, false)) {
          kept.push(chunk);
          lendableAfter = res.lendable();
          return;
        }
        chunk.fill(0xee);
      }
    });
    const c = await dial(h.port);
    c.socket.pause();
    c.socket.write(get('/'));
    await until(() => kept.length === 1, 'a write the socket kept', 5_000);
    expect(lendableAfter).toBe(false);
    c.socket.resume();
    await until(() => c.data.length >= (pieces + 1) * piece, 'the bytes written so far');
    const body = c.data.subarray(c.data.indexOf('\r\n\r\n') + 4);
    // Every piece arrived as written; the kept one too.
    for (let i = 0; i <= pieces; i++) expect(body.subarray(i * piece, (i + 1) * piece).every((b) => b === i % 251)).toBe(true);
  });
});

// H1Response is no stream.Writable (server/h1/response.ts): these hold it to
// what pipeline(), Readable.pipe and the proxy use of one.
describe('H1Response: the stream surface', () => {
  it('write and end callbacks, then finish, then close; a write after end is an error its callback hears too', async () => {
    const log: string[] = [];
    let wrote = false;
    const h = await serve((_req, res) => {
      res.on('error', (err) => log.push(`error ${(err as NodeJS.ErrnoException).code}`));
      res.on('finish', () => log.push(`finish ended=${res.writableEnded} finished=${res.writableFinished}`));
      res.on('close', () => log.push(`close finished=${res.writableFinished} destroyed=${res.destroyed}`));
      res.write('a', () => (wrote = true));
      res.end('b', () => log.push('end cb'));
      log.push(`after end ended=${res.writableEnded} finished=${res.writableFinished}`);
      res.write('c', (err) => log.push(`late write cb ${(err as NodeJS.ErrnoException | undefined)?.code}`));
    });
    const c = await dial(h.port);
    c.socket.write(get('/'));
    const [r] = await responses(c, 1);
    await until(() => log.length >= 6 && wrote, 'the events');
    expect(r).toMatchObject({ status: 200, body: 'ab', framing: 'chunked' });
    expect(log).toEqual([
      'after end ended=true finished=false',
      'finish ended=true finished=true',
      'end cb',
      'close finished=true destroyed=true',
      'error ERR_STREAM_WRITE_AFTER_END',
      'late write cb ERR_STREAM_WRITE_AFTER_END',
    ]);
  });

  it('is an EventEmitter without a listener table until its first listener', async () => {
    const seen: unknown[] = [];
    const h = await serve((_req, res) => {
      seen.push(res instanceof EventEmitter, res.listenerCount('close'), res.eventNames(), res.emit('drain'));
      const onFinish = (): number => seen.push('finish');
      res.prependListener('finish', onFinish);
      seen.push(res.listenerCount('finish'), res.listeners('finish').length);
      res.on('close', () => seen.push('close'));
      res.end('ok');
    });
    const c = await dial(h.port);
    c.socket.write(get('/'));
    await responses(c, 1);
    await until(() => seen.includes('close'), 'close');
    expect(seen).toEqual([true, 0, [], false, 1, 1, 'finish', 'close']);
  });

  it('onClose hooks run once, in order, with their argument, before the close listeners, for a finished and for a destroyed response', async () => {
    const log: string[] = [];
    const h = await serve((req, res) => {
      res.on('close', () => log.push(`${req.url} listener`));
      res.onClose(() => log.push(`${req.url} hook 1 finished=${res.writableFinished}`));
      res.onClose((url) => log.push(`${url} hook 2`), req.url);
      if (req.url === '/cut') {
        res.write('partial');
        setTimeout(() => res.destroy(), 10);
      } else {
        res.end('ok');
      }
    });
    const c = await dial(h.port);
    c.socket.write(get('/whole') + get('/cut'));
    await until(() => log.length === 6, 'both responses to close');
    await sleep(50);
    expect(log).toEqual(['/whole hook 1 finished=true', '/whole hook 2', '/whole listener', '/cut hook 1 finished=false', '/cut hook 2', '/cut listener']);
  });

  it('an error nobody listens for (a body shorter than its Content-Length, a write after end) closes the response, not the process', async () => {
    const closed: string[] = [];
    const h = await serve((req, res) => {
      res.onClose(() => closed.push(`${req.url} finished=${res.writableFinished}`));
      if (req.url === '/late') {
        res.end('done');
        res.write('more');
        return;
      }
      res.writeHead(200, { 'content-length': 10 });
      res.end('abc');
    });
    const c = await dial(h.port);
    c.socket.write(get('/late') + get('/short'));
    await until(() => closed.length === 2 && c.closed, 'both responses to close and the connection to be cut');
    expect(closed).toEqual(['/late finished=true', '/short finished=false']);
    expect(readResponses(c.data).list.map((r) => r.body)).toEqual(['done']);
  });

  it('pipeline() into a response completes without error; it and finished() report ERR_STREAM_PREMATURE_CLOSE when the client leaves mid-body', async () => {
    const results: string[] = [];
    const h = await serve((req, res) => {
      const source = req.url === '/whole'
        ? Readable.from(['one ', 'two ', 'three'])
        : new Readable({ read() {} });
      if (req.url === '/cut') source.push('first piece');
      pipeline(source, res, (err) => results.push(`pipeline ${req.url} ${(err as NodeJS.ErrnoException | undefined)?.code ?? 'ok'}`));
      finished(res, (err) => results.push(`finished ${req.url} ${(err as NodeJS.ErrnoException | undefined)?.code ?? 'ok'}`));
    });
    const c = await dial(h.port);
    c.socket.write(get('/whole'));
    const [r] = await responses(c, 1);
    expect(r!.body).toBe('one two three');
    await until(() => results.length === 2, 'the first pipeline');
    c.socket.write(get('/cut'));
    await until(() => c.text.includes('first piece'), 'the first piece of /cut');
    // A reset: after a FIN alone the half-open connection waits for the response.
    c.socket.resetAndDestroy();
    await until(() => results.length === 4, 'the second pipeline');
    expect(results.sort()).toEqual(['finished /cut ERR_STREAM_PREMATURE_CLOSE', 'finished /whole ok', 'pipeline /cut ERR_STREAM_PREMATURE_CLOSE', 'pipeline /whole ok']);
  });

  it('write() answers false with the socket full, and drain follows once the client reads; finish waits for the socket to take the last bytes', async () => {
    const size = 16 * 1024 * 1024;
    const log: string[] = [];
    let res0: H1Response | undefined;
    const h = await serve((req, res) => {
      if (req.url === '/next') {
        log.push('next request');
        res.end('next');
        return;
      }
      res0 = res;
      res.writeHead(200, { 'content-length': String(size * 2) });
      res.on('drain', () => log.push('drain'));
      res.on('finish', () => log.push('finish'));
      log.push(`write ${res.write(Buffer.alloc(size, 'a'))} needDrain=${res.writableNeedDrain}`);
    });
    const c = await dial(h.port);
    c.socket.pause();
    c.socket.write(get('/') + get('/next'));
    await until(() => log.length > 0, 'the first write');
    await sleep(200);
    expect(log).toEqual(['write false needDrain=true']);
    c.socket.resume();
    await until(() => log.includes('drain'), 'drain', 5_000);
    expect(res0!.writableNeedDrain).toBe(false);
    c.socket.pause();
    res0!.end(Buffer.alloc(size, 'b'));
    await sleep(200);
    // The socket still holds most of the last bytes: not finished, and the next request waits.
    expect([res0!.writableEnded, res0!.writableFinished, res0!.writableNeedDrain]).toEqual([true, false, true]);
    expect(log).toEqual(['write false needDrain=true', 'drain']);
    c.socket.resume();
    const [big, next] = await responses(c, 2, { timeoutMs: 10_000 });
    expect(big!.body.length).toBe(size * 2);
    expect(big!.body.endsWith('b')).toBe(true);
    expect(next!.body).toBe('next');
    expect(log).toEqual(['write false needDrain=true', 'drain', 'finish', 'next request']);
  });
});
