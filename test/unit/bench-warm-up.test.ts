// The bench's warm-up client (bench/lib/warm-up.ts): it must send what wrk
// sends, and end with no request in flight, which is its whole point.
import { createServer } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { responseLength, warmUp } from '../../bench/lib/warm-up.ts';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

describe('responseLength', () => {
  it('frames by Content-Length, and waits for the whole body', () => {
    const r = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
    expect(responseLength(r)).toBe(r.length);
    expect(responseLength(r.subarray(0, r.length - 1))).toBe(-1);
    expect(responseLength(Buffer.concat([r, Buffer.from('HTTP/1.1 2')]))).toBe(r.length);
    expect(responseLength(Buffer.from('HTTP/1.1 200 OK\r\nContent-Len'))).toBe(-1);
  });

  it('frames chunked bodies to the end of the last chunk', () => {
    const r = Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\na\r\n0123456789\r\n0\r\n\r\n');
    expect(responseLength(r)).toBe(r.length);
    for (const cut of [1, 2, 5, 12]) expect(responseLength(r.subarray(0, r.length - cut))).toBe(-1);
  });

  it('refuses a response it cannot frame', () => {
    expect(() => responseLength(Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody'))).toThrow(/neither/);
    expect(() => responseLength(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'))).toThrow(/chunk size/);
  });
});

describe('warmUp', () => {
  it('sends wrk\'s request, and every connection ends after its last response with a FIN', async () => {
    let requests = 0;
    const heads = new Set<string>();
    const aborted: string[] = [];
    const server = createServer((req, res) => {
      requests++;
      heads.add(`${req.method} ${req.url} HTTP/${req.httpVersion} ${JSON.stringify(req.rawHeaders)}`);
      // Some responses chunked, some with a length, some slow enough to be in flight at the deadline.
      setTimeout(() => (requests % 2 === 0 ? res.end('x'.repeat(300)) : writeChunked(res)), requests % 7);
    });
    server.on('connection', (socket) => {
      let ended = false;
      socket.on('end', () => (ended = true));
      socket.on('close', () => {
        if (!ended) aborted.push('closed without a FIN from the client');
      });
    });
    server.on('request', (_req, res: ServerResponse) => {
      res.on('close', () => {
        if (!res.writableFinished) aborted.push('a response cut off');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => server.close(() => r())));
    const { port } = server.address() as AddressInfo;

    const r = await warmUp(`http://127.0.0.1:${port}/large?x=1`, 0.5, 16);
    expect(r.errors).toBe(0);
    expect(r.requests).toBe(requests);
    expect(r.requests).toBeGreaterThan(100);
    expect([...heads]).toEqual([`GET /large?x=1 HTTP/1.1 ["Host","127.0.0.1:${port}"]`]);
    // The server sees each connection end; give the last closes a moment.
    await new Promise((res) => setTimeout(res, 100));
    expect(aborted).toEqual([]);
  });

  it('counts a connection the server cuts off mid-response as an error', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-length': 100 });
      res.write('short');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => server.close(() => r())));
    const { port } = server.address() as AddressInfo;
    const r = await warmUp(`http://127.0.0.1:${port}/`, 0.2, 3);
    expect(r).toEqual({ requests: 0, errors: 3 });
  });
});

function writeChunked(res: ServerResponse): void {
  res.write('abc');
  res.end('defgh');
}
