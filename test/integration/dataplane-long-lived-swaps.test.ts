// A long-lived WebSocket (wss, HTTP/1.1 over TLS) and a long-lived SSE stream
// (HTTP/2 over TLS) on one dataplane both survive 20 unrelated snapshot
// swaps and a rotation of their own route's certificate in the middle.
//
// After every swap the WebSocket must echo and the SSE stream must deliver
// the next event: the backend writes event k only when the test asks for it,
// after swap k, so each swap is checked on its own and nothing can arrive
// ahead of it. Neither reconnects: the backends see one handshake and one SSE
// request, the event ids run 0, 1, 2… without a gap or a repeat, and both
// client sockets are the ones opened at the start, still presenting the old
// certificate. A connection opened after the rotation gets the new one.
import { connect as http2Connect } from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import type { IncomingMessage } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { WebSocket } from 'ws';
import type { ClientOptions } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSnapshot } from '../../dataplane/snapshot/build.ts';
import type { Endpoint, Snapshot } from '../../dataplane/snapshot/schema.ts';
import type { GeneratedCertificate } from '../../dataplane/tls/x509.ts';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { http } from '../helpers/http.ts';
import { applySnapshot, direct, forward, prefix } from '../helpers/snapshots.ts';
import { createTestPki, fingerprint, snapshotCertificate } from '../helpers/tls.ts';
import { closed, roundTrip, startWsBackend } from '../helpers/websockets.ts';
import type { WsBackend } from '../helpers/websockets.ts';

const pki = createTestPki();
const before = pki.issue(['app.test']);
const after = pki.issue(['app.test']);

let dp: DataplaneChild;
let wsBackend: WsBackend;
let sseBackend: Backend;
let sseRequests = 0;
/** Writes the next event on the open SSE response. */
let sendEvent: (() => void) | undefined;

beforeAll(async () => {
  [dp, wsBackend, sseBackend] = await Promise.all([
    spawnDataplane(),
    startWsBackend(),
    startBackend('sse', (_req, res) => {
      sseRequests++;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let id = 0;
      sendEvent = () => {
        if (!res.destroyed) res.write(`id: ${id}\nevent: tick\ndata: event ${id}\n\n`);
        id++;
      };
      sendEvent();
      return true;
    }),
  ]);
});

afterAll(async () => {
  await dp?.stop();
  await Promise.all([wsBackend?.close(), sseBackend?.close()]);
});

/**
 * Generation `g`. `version` changes a route on an unrelated virtual host
 * (a routing swap); `spare` adds an endpoint to an unrelated cluster (an
 * endpoints-only swap); `cert` is the certificate of app.test.
 */
function config(g: number, version: number, spare: boolean, cert: GeneratedCertificate): Snapshot {
  const ep = (port: number): Endpoint => ({ address: '127.0.0.1', port, ready: true, serving: true, terminating: false });
  return buildSnapshot(g, {
    virtualHosts: [
      { name: 'app', hostnames: ['app.test'], routes: [forward('ws', prefix('/ws'), 'ws'), forward('sse', prefix('/events'), 'sse')], tls: { certificate: 'app' } },
      { name: 'other', hostnames: ['other.test'], routes: [direct(`other-v${version}`, prefix('/version'), 200, `v${version}`)] },
    ],
    clusters: [{ name: 'spare', protocol: 'http' }, { name: 'sse', protocol: 'http' }, { name: 'ws', protocol: 'http' }],
    certificates: [snapshotCertificate('app', cert)],
  }, {
    clusters: [
      { cluster: 'spare', endpoints: spare ? [ep(sseBackend.port)] : [] },
      { cluster: 'sse', endpoints: [ep(sseBackend.port)] },
      { cluster: 'ws', endpoints: [ep(wsBackend.port)] },
    ],
  });
}

/** A wss:// client for app.test on the HTTPS port, verified against the test CA; resolves with its TLS socket. */
function openWss(path: string): Promise<{ ws: WebSocket; socket: TLSSocket }> {
  return new Promise((resolve, reject) => {
    // ws hands `servername` (SNI, and the name verified) on to tls.connect; its types leave it out.
    const options: ClientOptions & { servername: string } = { ca: pki.ca.certPem, servername: 'app.test', headers: { host: 'app.test' } };
    const ws = new WebSocket(`wss://127.0.0.1:${dp.httpsPort}${path}`, options);
    let socket: TLSSocket | undefined;
    ws.once('upgrade', (res: IncomingMessage) => (socket = res.socket as TLSSocket));
    ws.once('open', () => resolve({ ws, socket: socket! }));
    ws.once('error', reject);
  });
}

/** The SSE events a stream delivered, parsed as they arrive. */
function sseReader(stream: ClientHttp2Stream): { events: { id: number; data: string }[]; waitFor(n: number): Promise<void> } {
  const events: { id: number; data: string }[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    let end: number;
    while ((end = buffered.indexOf('\n\n')) !== -1) {
      const fields = Object.fromEntries(buffered.slice(0, end).split('\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]));
      buffered = buffered.slice(end + 2);
      events.push({ id: Number(fields.id), data: String(fields.data) });
    }
    for (const w of waiters.filter((x) => events.length >= x.n)) w.resolve();
  });
  return {
    events,
    waitFor: (n) => events.length >= n ? Promise.resolve() : new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${events.length} of ${n} SSE events arrived`)), 10_000);
      waiters.push({ n, resolve: () => {
        clearTimeout(timer);
        resolve();
      } });
    }),
  };
}

/** The certificate a brand-new TLS connection to app.test is given. */
function freshHandshake(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ port: dp.httpsPort, host: '127.0.0.1', servername: 'app.test', ca: pki.ca.certPem }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.once('error', reject);
  });
}

describe('long-lived connections across swaps', () => {
  it('a wss WebSocket and an h2 SSE stream survive 20 snapshot swaps and a certificate rotation', async () => {
    const SWAPS = 20;
    const ROTATE_AFTER = 10;
    let generation = 1;
    let version = 0;
    await applySnapshot(dp.adminUrl, config(generation, version, false, before));

    const { ws, socket: wsSocket } = await openWss('/ws/long');
    const session: ClientHttp2Session = http2Connect(`https://127.0.0.1:${dp.httpsPort}`, { ca: pki.ca.certPem, servername: 'app.test' });
    session.on('error', () => undefined);
    const sessionClosed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    const stream = session.request({ ':path': '/events/long', ':authority': 'app.test', accept: 'text/event-stream' });
    const head = new Promise<Record<string, unknown>>((resolve) => stream.once('response', resolve));
    const sse = sseReader(stream);
    expect((await head)[':status']).toBe(200);
    await sse.waitFor(1);
    const h2Socket = session.socket as TLSSocket;
    expect(wsSocket.getPeerCertificate().fingerprint256).toBe(fingerprint(before.certPem));
    expect(h2Socket.getPeerCertificate().fingerprint256).toBe(fingerprint(before.certPem));
    expect(h2Socket.alpnProtocol).toBe('h2');
    expect(String((await roundTrip(ws, 'hello')).data)).toBe('hello');
    const wsClosed = closed(ws);
    let wsClosedEarly = false;
    void wsClosed.then(() => (wsClosedEarly = true));

    let spare = false;
    let cert = before;
    let afterRotation: { ws: WebSocket; socket: TLSSocket } | undefined;
    // 20 unrelated swaps plus the rotation: each one followed by an echo and one event.
    for (let swap = 1; swap <= SWAPS + 1; swap++) {
      generation++;
      const rotation = swap === ROTATE_AFTER + 1;
      if (rotation) cert = after;
      else if (swap % 2 === 0) version++;
      else spare = !spare;
      const applied = await applySnapshot(dp.adminUrl, config(generation, version, spare, cert));
      expect(applied.json).toMatchObject({ generation, applied: true });
      if (!rotation && swap % 2 === 0) {
        // A routing swap reached traffic.
        expect((await http(`${dp.trafficUrl}/version`, { headers: { host: 'other.test' } })).text).toBe(`v${version}`);
      }
      expect(String((await roundTrip(ws, `after swap ${swap}`)).data)).toBe(`after swap ${swap}`);
      sendEvent!();
      await sse.waitFor(swap + 1);
      expect(sse.events.at(-1)).toEqual({ id: swap, data: `event ${swap}` });

      if (rotation) {
        // New connections get the new certificate, and work…
        expect(await freshHandshake()).toBe(fingerprint(after.certPem));
        afterRotation = await openWss('/ws/new');
        expect(afterRotation.socket.getPeerCertificate().fingerprint256).toBe(fingerprint(after.certPem));
        expect(String((await roundTrip(afterRotation.ws, 'new')).data)).toBe('new');
        // …while the old ones keep the certificate they were opened with.
        expect(wsSocket.getPeerCertificate().fingerprint256).toBe(fingerprint(before.certPem));
        expect(h2Socket.getPeerCertificate().fingerprint256).toBe(fingerprint(before.certPem));
      }
    }

    // No reconnect anywhere: the same sockets, one handshake, one SSE request, ids without gaps.
    expect(sse.events.map((e) => e.id)).toEqual(Array.from({ length: SWAPS + 2 }, (_, i) => i));
    expect(wsBackend.handshakes.filter((h) => h.url === '/ws/long')).toHaveLength(1);
    expect(sseRequests).toBe(1);
    expect(wsClosedEarly).toBe(false);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    expect(wsSocket.destroyed).toBe(false);
    expect(session.closed || session.destroyed || stream.closed).toBe(false);
    expect(session.socket).toBeDefined();
    expect(afterRotation!.ws.readyState).toBe(WebSocket.OPEN);

    ws.close(1000, 'done');
    afterRotation!.ws.close(1000, 'done');
    expect((await wsClosed).code).toBe(1000);
    stream.close();
    session.close();
    await sessionClosed;
  }, 60_000);
});
