// WebSocket proxying through the real dataplane process, with the `ws` client
// and a `ws` upstream: HTTP/1.1 Upgrade pass-through, refusals, the idle
// timeout, snapshot swaps during an open socket, a route removed under one,
// shutdown with close code 1001, a non-WebSocket upgrade, and RFC 8441
// (WebSocket over HTTP/2 extended CONNECT) from a node:http2 client.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect as h2connect } from 'node:http2';
import type { ClientHttp2Stream } from 'node:http2';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { rawExchange } from '../helpers/http.ts';
import { applySnapshot, direct, exact, forward, prefix, snapshot, vhost } from '../helpers/snapshots.ts';
import type { Route, Snapshot } from '../../dataplane/snapshot/schema.ts';
import { closed, openWs, roundTrip, startWsBackend } from '../helpers/websockets.ts';
import type { WsBackend } from '../helpers/websockets.ts';

let dp: DataplaneChild;
let backend: WsBackend;
let downPort: number;
let wsUrl: string;

function routes(extra: Route[] = []): Route[] {
  return [
    forward('ws-idle', prefix('/idle'), 'ws', { websocketIdleMs: 600 }),
    forward('ws-removable', prefix('/removable'), 'ws'),
    forward('ws-deny', prefix('/deny'), 'ws'),
    forward('ws-nobackend', prefix('/nobackend'), 'empty'),
    forward('ws-down', prefix('/down'), 'down'),
    direct('ws-direct', exact('/direct'), 200, 'direct answer'),
    ...extra,
    forward('ws', prefix('/ws'), 'ws'),
    forward('plain', prefix('/plain'), 'ws'),
  ];
}

function config(generation: number, opts: { extra?: Route[]; withoutRemovable?: boolean; spare?: boolean } = {}): Snapshot {
  let rs = routes(opts.extra);
  if (opts.withoutRemovable === true) rs = rs.filter((r) => r.name !== 'ws-removable');
  return snapshot(generation, [vhost('all', ['*'], rs)], {
    ws: [backend.endpoint()],
    empty: [],
    down: [{ address: '127.0.0.1', port: downPort, ready: true, serving: true, terminating: false }],
    // Endpoint-only changes: a spare endpoint of an unrelated cluster comes and goes.
    spare: opts.spare === true ? [{ address: '127.0.0.1', port: downPort, ready: true, serving: true, terminating: false }] : [],
  });
}

beforeAll(async () => {
  [backend, downPort] = await Promise.all([startWsBackend(), closedPort()]);
  // The drain timeout is also the grace before a WebSocket on a removed route is closed.
  dp = await spawnDataplane({ args: ['--drain-timeout-ms', '1000'] });
  await applySnapshot(dp.adminUrl, config(1));
  wsUrl = `ws://127.0.0.1:${dp.trafficPort}`;
});

afterAll(async () => {
  await dp?.stop();
  await backend?.close();
});

describe('HTTP/1.1 Upgrade', () => {
  it('relays text and binary messages, a 5 MiB message, pings, a subprotocol and permessage-deflate', async () => {
    const ws = await openWs(`${wsUrl}/ws/echo?x=1`, ['chat'], { headers: { 'x-request-id': 'ws-req-1' } });
    expect(ws.protocol).toBe('chat');
    // Extension negotiation is end to end: the dataplane passes the headers and the frames through.
    expect(ws.extensions).toContain('permessage-deflate');
    const text = await roundTrip(ws, 'hello');
    expect(text).toEqual({ data: Buffer.from('hello'), isBinary: false });
    const bin = randomBytes(1024);
    const binReply = await roundTrip(ws, bin);
    expect(binReply.isBinary).toBe(true);
    expect(binReply.data.equals(bin)).toBe(true);
    const big = randomBytes(5 * 1024 * 1024);
    const bigReply = await roundTrip(ws, big);
    expect(bigReply.data.equals(big)).toBe(true);
    const pong = once(ws, 'pong');
    ws.ping('are you there');
    expect(String((await pong)[0])).toBe('are you there');
    // Server pushes arrive in order.
    const got: string[] = [];
    const all = new Promise<void>((resolve) => ws.on('message', (d) => {
      got.push(String(d));
      if (got.length === 500) resolve();
    }));
    ws.send('push:500');
    await all;
    expect(got).toEqual(Array.from({ length: 500 }, (_, i) => String(i)));
    const seen = backend.handshakes.at(-1)!;
    expect(seen.url).toBe('/ws/echo?x=1');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-real-ip']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-request-id']).toBe('ws-req-1');
    expect(seen.headers.host).toBe(`127.0.0.1:${dp.trafficPort}`);
    expect(seen.headers.upgrade).toBe('websocket');
    expect(seen.headers.connection).toMatch(/upgrade/i);
    const done = closed(ws);
    const backendSaw = backend.nextClose();
    ws.close(4000, 'bye');
    expect(await done).toEqual({ code: 4000, reason: 'bye' });
    expect(await backendSaw).toEqual({ code: 4000, reason: 'bye' });
    const line = await dp.waitForLog((l) => l.msg === 'request' && l.requestId === 'ws-req-1');
    expect(line).toMatchObject({ status: 101, route: 'ws', upgrade: true, path: '/ws/echo' });
    expect(line.bytesSent as number).toBeGreaterThan(5 * 1024 * 1024);
    expect(line.bytesReceived as number).toBeGreaterThan(5 * 1024 * 1024);
  }, 30_000);

  it('serves wss:// on the TLS port (HTTP/1.1 over TLS), with X-Forwarded-Proto https', async () => {
    const ws = await openWs(`wss://127.0.0.1:${dp.httpsPort}/ws/tls`, undefined, { rejectUnauthorized: false });
    expect(String((await roundTrip(ws, 'secure')).data)).toBe('secure');
    expect(backend.handshakes.at(-1)!.headers['x-forwarded-proto']).toBe('https');
    const done = closed(ws);
    ws.close();
    expect((await done).code).toBe(1005);
  });

  it('relays an upstream that declines the upgrade, and answers local errors', async () => {
    await expect(openWs(`${wsUrl}/deny`)).rejects.toMatchObject({ status: 403, body: 'denied', headers: { 'x-denied-by': 'backend' } });
    await expect(openWs(`${wsUrl}/nothing-here`)).rejects.toMatchObject({ status: 404 });
    await expect(openWs(`${wsUrl}/nobackend`)).rejects.toMatchObject({ status: 503 });
    await expect(openWs(`${wsUrl}/down`)).rejects.toMatchObject({ status: 502 });
    await expect(openWs(`${wsUrl}/direct`)).rejects.toMatchObject({ status: 200, body: 'direct answer' });
    await expect(openWs(`${wsUrl}/ws/${'a'.repeat(9000)}`)).rejects.toMatchObject({ status: 414 });
  });

  it('passes other upgrade protocols through as a raw tunnel, and serves h2c upgrades as plain requests', async () => {
    const socket = connect(dp.trafficPort, '127.0.0.1');
    socket.write('GET /ws/raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x-echo\r\n\r\n');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => {
      received += c;
      if (received.includes('\r\n\r\n') && !received.includes('ping-bytes')) socket.write('ping-bytes');
    });
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (received.includes('ping-bytes')) {
          clearInterval(check);
          resolve();
        }
      }, 10);
    });
    expect(received).toMatch(/^HTTP\/1\.1 101 /);
    expect(received.toLowerCase()).toContain('upgrade: x-echo');
    socket.destroy();

    const { response } = await rawExchange(dp.trafficPort,
      'GET /plain/h2c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n', 1_000);
    expect(response).toMatch(/^HTTP\/1\.1 200 /);
    expect(response).toContain('plain /plain/h2c');
  });

  it('keeps a WebSocket open through 20 snapshot swaps (routing and endpoints)', async () => {
    const ws = await openWs(`${wsUrl}/ws/swaps`);
    const handshakes = backend.handshakes.length;
    let spare = false;
    for (let i = 0; i < 20; i++) {
      // Even swaps change routing (a new route each time), odd ones only endpoints.
      if (i % 2 === 1) spare = !spare;
      const extra = [direct(`swap-${i - (i % 2)}`, exact(`/swap-${i - (i % 2)}`), 200, 'x')];
      const snap = config(100 + i, { extra, spare });
      const res = await applySnapshot(dp.adminUrl, snap);
      expect(res.json?.applied).toBe(true);
      const reply = await roundTrip(ws, `after swap ${i}`);
      expect(String(reply.data)).toBe(`after swap ${i}`);
    }
    expect(ws.readyState).toBe(ws.OPEN);
    expect(backend.handshakes.length).toBe(handshakes);
    ws.close();
    await applySnapshot(dp.adminUrl, config(200));
  }, 30_000);

  it('closes an idle WebSocket with 1001 after the route\'s idle timeout; pings keep one alive', async () => {
    const [quiet, chatty] = await Promise.all([openWs(`${wsUrl}/idle/quiet`), openWs(`${wsUrl}/idle/chatty`)]);
    const started = Date.now();
    const quietClosed = closed(quiet);
    const pinger = setInterval(() => chatty.ping(), 150);
    expect(await quietClosed).toEqual({ code: 1001, reason: 'idle timeout' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(chatty.readyState).toBe(chatty.OPEN);
    clearInterval(pinger);
    expect(String((await roundTrip(chatty, 'still here')).data)).toBe('still here');
    expect(await closed(chatty)).toEqual({ code: 1001, reason: 'idle timeout' });
  });

  it('closes a WebSocket whose route left the snapshot with 1001 after the drain timeout, unless it comes back', async () => {
    const [gone, back] = await Promise.all([openWs(`${wsUrl}/removable/a`), openWs(`${wsUrl}/removable/b`)]);
    const goneClosed = closed(gone);
    await applySnapshot(dp.adminUrl, config(300, { withoutRemovable: true }));
    // Back within the grace: nothing is closed.
    await new Promise((r) => setTimeout(r, 300));
    await applySnapshot(dp.adminUrl, config(301));
    await new Promise((r) => setTimeout(r, 1_200));
    expect(back.readyState).toBe(back.OPEN);
    expect(gone.readyState).toBe(gone.OPEN);
    // Removed for good: closed once the grace (1 s here) has passed.
    const removedAt = Date.now();
    await applySnapshot(dp.adminUrl, config(302, { withoutRemovable: true }));
    expect(String((await roundTrip(gone, 'still relayed during the grace')).data)).toBe('still relayed during the grace');
    expect(await goneClosed).toEqual({ code: 1001, reason: 'route removed' });
    expect(Date.now() - removedAt).toBeGreaterThanOrEqual(900);
    await applySnapshot(dp.adminUrl, config(303));
    back.terminate();
  });
});

// RFC 6455 framing for the HTTP/2 test, whose stream no WebSocket library drives.
function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const key = randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff]);
  const body = Buffer.from(payload.map((b, i) => b ^ key[i & 3]!));
  return Buffer.concat([head, key, body]);
}

function readFrames(stream: ClientHttp2Stream): () => Promise<{ opcode: number; payload: Buffer }> {
  let buf = Buffer.alloc(0);
  const waiters: (() => void)[] = [];
  stream.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    waiters.splice(0).forEach((w) => w());
  });
  const tryParse = (): { opcode: number; payload: Buffer } | undefined => {
    if (buf.length < 2) return undefined;
    let len = buf[1]! & 0x7f;
    let off = 2;
    if (len === 126) {
      if (buf.length < 4) return undefined;
      len = buf.readUInt16BE(2);
      off = 4;
    }
    if (buf.length < off + len) return undefined;
    const frame = { opcode: buf[0]! & 0x0f, payload: buf.subarray(off, off + len) };
    buf = buf.subarray(off + len);
    return frame;
  };
  return async () => {
    for (;;) {
      const f = tryParse();
      if (f !== undefined) return f;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
}

describe('HTTP/2 extended CONNECT (RFC 8441)', () => {
  it('tunnels a WebSocket from an h2c client to an HTTP/1.1 upstream', async () => {
    const session = h2connect(`http://127.0.0.1:${dp.trafficPort}`);
    try {
      await once(session, 'remoteSettings');
      expect(session.remoteSettings.enableConnectProtocol).toBe(true);
      const stream = session.request({
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':scheme': 'http',
        ':path': '/ws/h2?via=h2',
        ':authority': `127.0.0.1:${dp.trafficPort}`,
        'sec-websocket-version': '13',
        'x-request-id': 'ws-h2-1',
      }, { endStream: false });
      const [headers] = (await once(stream, 'response')) as [Record<string, string | number>];
      expect(headers[':status']).toBe(200);
      expect(headers).not.toHaveProperty('sec-websocket-accept');
      const next = readFrames(stream);
      stream.write(maskedFrame(0x1, Buffer.from('over h2')));
      expect(await next()).toEqual({ opcode: 0x1, payload: Buffer.from('over h2') });
      const big = randomBytes(60_000);
      stream.write(maskedFrame(0x2, big));
      const echoed = await next();
      expect(echoed.opcode).toBe(0x2);
      expect(echoed.payload.equals(big)).toBe(true);
      const seen = backend.handshakes.at(-1)!;
      expect(seen.url).toBe('/ws/h2?via=h2');
      expect(seen.headers['sec-websocket-key']).toMatch(/^[A-Za-z0-9+/]{22}==$/);
      expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
      const backendSaw = backend.nextClose();
      const code = Buffer.alloc(2);
      code.writeUInt16BE(1000);
      stream.write(maskedFrame(0x8, code));
      expect((await next()).opcode).toBe(0x8);
      expect((await backendSaw).code).toBe(1000);
      const line = await dp.waitForLog((l) => l.msg === 'request' && l.requestId === 'ws-h2-1');
      expect(line).toMatchObject({ status: 101, route: 'ws', upgrade: true });
    } finally {
      session.destroy();
    }
  });

  it('answers an extended CONNECT without a route with 404 on the stream', async () => {
    const session = h2connect(`http://127.0.0.1:${dp.trafficPort}`);
    try {
      await once(session, 'remoteSettings');
      const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': '/nothing', ':authority': 'x', 'sec-websocket-version': '13' }, { endStream: false });
      const [headers] = (await once(stream, 'response')) as [Record<string, string | number>];
      expect(headers[':status']).toBe(404);
      stream.resume();
      await once(stream, 'end');
    } finally {
      session.destroy();
    }
  });
});

describe('shutdown', () => {
  it('keeps WebSockets through the drain, then closes them with 1001 on both sides, and exits 0', async () => {
    const own = await spawnDataplane({ args: ['--drain-timeout-ms', '1500'] });
    try {
      await applySnapshot(own.adminUrl, config(1));
      const url = `ws://127.0.0.1:${own.trafficPort}/ws/shutdown`;
      const sockets = await Promise.all([openWs(url), openWs(url)]);
      const clientCloses = sockets.map(closed);
      const backendCloses = [backend.nextClose(), backend.nextClose()];
      const stoppedAt = Date.now();
      own.child.kill('SIGTERM');
      await own.waitForLog((l) => l.msg === 'draining');
      // Still relayed while draining.
      expect(String((await roundTrip(sockets[0]!, 'during drain')).data)).toBe('during drain');
      for (const c of await Promise.all(clientCloses)) expect(c).toEqual({ code: 1001, reason: 'server shutting down' });
      expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(1_200);
      for (const c of await Promise.all(backendCloses)) expect(c.code).toBe(1001);
      expect((await own.exited).code).toBe(0);
      expect(own.logs.find((l) => l.msg === 'stopped')).toMatchObject({ websocketsClosed: 2 });
    } finally {
      await own.stop();
    }
  }, 20_000);

  it('refuses new upgrades once draining', async () => {
    const own = await spawnDataplane({ args: ['--drain-timeout-ms', '2000'] });
    try {
      await applySnapshot(own.adminUrl, config(1));
      // A keep-alive connection opened before the drain can still send an upgrade request.
      const socket = connect(own.trafficPort, '127.0.0.1');
      await once(socket, 'connect');
      const ws = await openWs(`ws://127.0.0.1:${own.trafficPort}/ws/hold`);
      own.child.kill('SIGTERM');
      await own.waitForLog((l) => l.msg === 'draining');
      socket.write('GET /ws/late HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
      const [data] = (await once(socket, 'data')) as [Buffer];
      expect(String(data)).toMatch(/^HTTP\/1\.1 503 /);
      socket.destroy();
      ws.terminate();
    } finally {
      await own.stop();
    }
  });
});
