/**
 * HTTP/2 (h2c, h2 over TLS) and HTTP/1.1-over-TLS backends for dataplane
 * tests. Each echoes what it received as JSON (protocol, method, path, fields,
 * body size and sha256, hashed while streaming) and can add response trailers
 * (`?trailers=1`) or stream a large body (`?bytes=N`).
 */
import { createHash } from 'node:crypto';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer } from 'node:https';
import { createSecureServer, createServer } from 'node:http2';
import type { Http2SecureServer, Http2Server, Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Endpoint } from '../../dataplane/snapshot/schema.ts';
import type { GeneratedCertificate } from '../../dataplane/tls/x509.ts';

/** What a backend saw of one request. */
export interface H2Echo {
  backend: string;
  httpVersion: string;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bodyBytes: number;
  bodySha256: string;
  /** Request trailers, when the client sent some. */
  trailers: Record<string, string>;
}

/** A running backend. */
export interface TestBackend {
  readonly name: string;
  readonly port: number;
  endpoint(): Endpoint;
  close(): Promise<void>;
}

type AnyReq = IncomingMessage | Http2ServerRequest;
type AnyRes = ServerResponse | Http2ServerResponse;

function handle(name: string, req: AnyReq, anyRes: AnyRes): void {
  // Both response kinds share the calls used here; one type keeps the compiler content.
  const res = anyRes as ServerResponse;
  const hash = createHash('sha256');
  let bytes = 0;
  req.on('data', (c: Buffer) => {
    bytes += c.length;
    hash.update(c);
  });
  req.on('end', () => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const total = Number(q.get('bytes') ?? 0);
    if (q.has('trailers')) res.addTrailers({ 'x-checksum': 'abc123', 'x-backend-trailer': name });
    if (total > 0) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-backend': name });
      const chunk = Buffer.alloc(64 * 1024, 'y');
      let sent = 0;
      const next = (): void => {
        while (sent < total) {
          const n = Math.min(chunk.length, total - sent);
          sent += n;
          if (!res.write(chunk.subarray(0, n))) {
            res.once('drain', next);
            return;
          }
        }
        res.end();
      };
      next();
      return;
    }
    const echo: H2Echo = {
      backend: name,
      httpVersion: req.httpVersion,
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers as IncomingHttpHeaders,
      bodyBytes: bytes,
      bodySha256: hash.digest('hex'),
      trailers: Object.fromEntries(Object.entries(req.trailers ?? {}).map(([k, v]) => [k, String(v)])),
    };
    const body = JSON.stringify(echo);
    res.writeHead(Number(q.get('status') ?? 200), { 'content-type': 'application/json', 'x-backend': name });
    res.end(body);
  });
}

async function started(name: string, server: Http2Server | Http2SecureServer | HttpsServer): Promise<TestBackend> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const sessions = new Set<{ destroy(): void }>();
  server.on('session', (s: { destroy(): void; once(e: string, f: () => void): void }) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  return {
    name,
    port,
    endpoint: () => ({ address: '127.0.0.1', port, ready: true, serving: true, terminating: false }),
    close: () => new Promise((resolve) => {
      for (const s of sessions) s.destroy();
      (server as HttpsServer).closeAllConnections?.();
      server.close(() => resolve());
    }),
  };
}

/** An h2c backend (prior knowledge). */
export function startH2cBackend(name: string): Promise<TestBackend> {
  return started(name, createServer((req, res) => handle(name, req, res)));
}

/** An h2 backend over TLS (ALPN h2 only). */
export function startH2TlsBackend(name: string, cert: GeneratedCertificate): Promise<TestBackend> {
  return started(name, createSecureServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => handle(name, req, res)));
}

/** An HTTP/1.1 backend over TLS. */
export function startHttpsBackend(name: string, cert: GeneratedCertificate): Promise<TestBackend> {
  return started(name, createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => handle(name, req, res)));
}
