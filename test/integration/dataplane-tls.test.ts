// TLS on the real dataplane: certificates from the snapshot chosen by SNI
// (exact, then single-label wildcard, then the default), the generated default
// certificate, broken certificates that fall back without rejecting the
// snapshot, protocol versions and ciphers, HTTP → HTTPS redirects, HSTS, and
// certificate rotation that leaves established connections alone.
import { connect as http2Connect } from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions, PeerCertificate, TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSnapshot } from '../../dataplane/snapshot/build.ts';
import type { Certificate, Route, Routing, VirtualHost } from '../../dataplane/snapshot/schema.ts';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { curl } from '../helpers/http.ts';
import { applySnapshot, pushSnapshot } from '../helpers/snapshots.ts';
import { createTestPki, fingerprint, snapshotCertificate } from '../helpers/tls.ts';
import type { GeneratedCertificate } from '../../dataplane/tls/x509.ts';

const pki = createTestPki();
const certs = {
  a: pki.issue(['a.test']),
  a2: pki.issue(['a.test']),
  wild: pki.issue(['*.w.test']),
  rsa: pki.issue(['rsa.test'], { keyType: 'rsa-2048' }),
  fallback: pki.issue(['fallback.test']),
};
let dp: DataplaneChild;
let backend: Backend;
let generation = 0;

const route = (name: string, extra: Partial<Route> = {}): Route => ({
  name,
  match: { path: { type: 'Prefix', value: '/' } },
  action: { type: 'forward', backends: [{ cluster: 'c', weight: 1 }] },
  ...extra,
});

function routing(overrides: { certificates?: Certificate[]; tls?: Routing['tls']; a?: GeneratedCertificate } = {}): Omit<Routing, 'hash'> {
  const vhosts: VirtualHost[] = [
    { name: 'a', hostnames: ['a.test'], routes: [route('a')], tls: { certificate: 'a', hsts: { maxAgeSeconds: 31_536_000, includeSubDomains: true } } },
    { name: 'w', hostnames: ['*.w.test'], routes: [route('w')], tls: { certificate: 'wild' } },
    { name: 'rsa', hostnames: ['rsa.test'], routes: [route('rsa')], tls: { certificate: 'rsa', redirectHttp: false } },
    { name: 'bad', hostnames: ['bad.test'], routes: [route('bad')], tls: { certificate: 'mismatched' } },
    { name: 'junk', hostnames: ['junk.test'], routes: [route('junk')], tls: { certificate: 'junk' } },
    {
      name: 'mixed',
      hostnames: ['mixed.test'],
      routes: [
        route('mixed-plain-ok', { match: { path: { type: 'Prefix', value: '/plain' } }, redirectHttp: false }),
        route('mixed'),
      ],
      tls: {},
    },
    { name: 'open', hostnames: ['open.test'], routes: [route('open')] },
  ];
  return {
    virtualHosts: vhosts,
    clusters: [{ name: 'c', protocol: 'http' }],
    certificates: overrides.certificates ?? [
      snapshotCertificate('a', overrides.a ?? certs.a),
      snapshotCertificate('wild', certs.wild),
      snapshotCertificate('rsa', certs.rsa),
      { name: 'mismatched', certPem: certs.a.certPem, keyPem: certs.wild.keyPem },
      { name: 'junk', certPem: '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n', keyPem: 'not a key' },
      snapshotCertificate('fallback', certs.fallback),
    ],
    ...(overrides.tls && { tls: overrides.tls }),
  };
}

async function push(overrides: Parameters<typeof routing>[0] = {}): Promise<void> {
  await applySnapshot(dp.adminUrl, buildSnapshot(++generation, routing(overrides), { clusters: [{ cluster: 'c', endpoints: [backend.endpoint()] }] }));
}

beforeAll(async () => {
  backend = await startBackend('b');
  // The default --https-redirect-port (443) is kept: redirects must name no port.
  dp = await spawnDataplane();
  await push();
});

afterAll(async () => {
  await dp?.stop();
  await backend?.close();
});

interface Handshake {
  cert: PeerCertificate;
  protocol: string | null;
  alpn: string | false | null;
  authorized: boolean;
  socket: TLSSocket;
}

/** A TLS handshake with the HTTPS port; the socket is left open for the caller to end. */
function handshake(servername: string | undefined, opts: ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ port: dp.httpsPort, host: '127.0.0.1', ca: pki.ca.certPem, rejectUnauthorized: false, ...(servername !== undefined && { servername }), ...opts }, () => {
      resolve({ cert: socket.getPeerCertificate(), protocol: socket.getProtocol(), alpn: socket.alpnProtocol ?? null, authorized: socket.authorized, socket });
    });
    socket.once('error', reject);
  });
}

async function served(servername: string | undefined, opts: ConnectionOptions = {}): Promise<Handshake> {
  const h = await handshake(servername, opts);
  h.socket.end();
  return h;
}

const isDefault = (cert: PeerCertificate): boolean => cert.subject.CN === 'PyServe Default Certificate';

async function metricsText(): Promise<string> {
  return (await fetch(`${dp.adminUrl}/metrics`)).text();
}

describe('certificate selection by SNI', () => {
  it('serves the exact host its certificate, verified against the CA', async () => {
    const h = await served('a.test');
    expect(h.authorized).toBe(true);
    expect(h.cert.fingerprint256).toBe(fingerprint(certs.a.certPem));
    const r = await curl(`https://a.test:${dp.httpsPort}/x`, ['--cacert', pki.caFile, '--resolve', `a.test:${dp.httpsPort}:127.0.0.1`]);
    expect([r.exitCode, r.status]).toEqual([0, 200]);
  });

  it('a single-label wildcard matches one label only', async () => {
    expect((await served('one.w.test')).cert.fingerprint256).toBe(fingerprint(certs.wild.certPem));
    expect((await served('ONE.W.TEST.')).cert.fingerprint256).toBe(fingerprint(certs.wild.certPem));
    expect(isDefault((await served('two.one.w.test')).cert)).toBe(true);
    expect(isDefault((await served('w.test')).cert)).toBe(true);
    const r = await curl(`https://x.w.test:${dp.httpsPort}/`, ['--cacert', pki.caFile, '--resolve', `x.w.test:${dp.httpsPort}:127.0.0.1`]);
    expect([r.exitCode, r.status]).toEqual([0, 200]);
  });

  it('serves RSA certificates as well as ECDSA ones', async () => {
    const h = await served('rsa.test');
    expect(h.authorized).toBe(true);
    expect(h.cert.fingerprint256).toBe(fingerprint(certs.rsa.certPem));
  });

  it('unknown names, no SNI and hosts without TLS get the generated default certificate', async () => {
    for (const name of ['unknown.test', 'open.test', undefined]) {
      const h = await served(name);
      expect(isDefault(h.cert)).toBe(true);
      expect(h.authorized).toBe(false);
    }
    // curl -k still gets served (ingress-nginx's "fake certificate" behaviour).
    const r = await curl(`https://open.test:${dp.httpsPort}/`, ['-k', '--resolve', `open.test:${dp.httpsPort}:127.0.0.1`]);
    expect([r.exitCode, r.status]).toEqual([0, 200]);
  });

  it('the generated default certificate is a sound self-signed server certificate', async () => {
    const h = await served('unknown.test');
    expect(h.cert.issuer.CN).toBe('PyServe Default Certificate');
    expect(h.cert.subjectaltname).toBe('DNS:pyserve.invalid');
    expect(Date.parse(h.cert.valid_to) - Date.now()).toBeGreaterThan(300 * 86_400_000);
  });
});

describe('broken certificates', () => {
  it('a mismatched key or unparsable PEM does not reject the snapshot; those hosts get the default certificate', async () => {
    // The snapshot pushed in beforeAll carries both; it was accepted (applySnapshot checks 200).
    expect(isDefault((await served('bad.test')).cert)).toBe(true);
    expect(isDefault((await served('junk.test')).cert)).toBe(true);
    // Everything else keeps its own certificate.
    expect((await served('a.test')).cert.fingerprint256).toBe(fingerprint(certs.a.certPem));
    const r = await curl(`https://bad.test:${dp.httpsPort}/`, ['-k', '--resolve', `bad.test:${dp.httpsPort}:127.0.0.1`]);
    expect(r.status).toBe(200);
  });

  it('reports them by metric and log line', async () => {
    const text = await metricsText();
    expect(text).toContain('pyserve_tls_certificate_invalid{certificate="mismatched"} 1');
    expect(text).toContain('pyserve_tls_certificate_invalid{certificate="junk"} 1');
    expect(text).not.toContain('pyserve_tls_certificate_invalid{certificate="a"}');
    expect(text).toMatch(/pyserve_tls_certificate_expiry_timestamp_seconds\{certificate="a"\} \d{10}/);
    const line = await dp.waitForLog((l) => l.certificate === 'mismatched' && l.reason !== undefined);
    expect(line).toMatchObject({ hosts: ['bad.test'], reason: 'private key does not match the certificate' });
    const junk = await dp.waitForLog((l) => l.certificate === 'junk' && l.reason !== undefined);
    expect(String(junk.reason)).toMatch(/certificate does not parse/);
    // The private key never shows up in logs.
    expect(JSON.stringify(dp.logs)).not.toContain('PRIVATE KEY');
  });

  it('a reference to a certificate that is not in the snapshot is a validation error', async () => {
    const r = routing();
    r.virtualHosts[0] = { ...r.virtualHosts[0]!, tls: { certificate: 'nope' } };
    const res = await pushSnapshot(dp.adminUrl, buildSnapshot(++generation, r, { clusters: [{ cluster: 'c', endpoints: [backend.endpoint()] }] }));
    expect(res.status).toBe(400);
    expect(res.text).toContain('routing.virtualHosts.0.tls.certificate: unknown certificate \\"nope\\"');
  });
});

describe('protocol versions, ciphers, ALPN', () => {
  it('accepts TLS 1.2 and 1.3, refuses 1.1', async () => {
    expect((await served('a.test', { minVersion: 'TLSv1.3' })).protocol).toBe('TLSv1.3');
    expect((await served('a.test', { maxVersion: 'TLSv1.2' })).protocol).toBe('TLSv1.2');
    await expect(served('a.test', { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' })).rejects.toThrow();
  });

  it('refuses TLS 1.2 ciphers outside the modern list (CBC, no forward secrecy)', async () => {
    await expect(served('a.test', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA' })).rejects.toThrow();
    await expect(served('rsa.test', { maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256' })).rejects.toThrow();
    expect((await served('rsa.test', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' })).protocol).toBe('TLSv1.2');
  });

  it('routing.tls.minVersion TLSv1.3 applies without a restart, and back', async () => {
    await push({ tls: { minVersion: 'TLSv1.3' } });
    await expect(served('a.test', { maxVersion: 'TLSv1.2' })).rejects.toThrow();
    await expect(served(undefined, { maxVersion: 'TLSv1.2' })).rejects.toThrow();
    expect((await served('a.test')).protocol).toBe('TLSv1.3');
    await push();
    expect((await served('a.test', { maxVersion: 'TLSv1.2' })).protocol).toBe('TLSv1.2');
  });

  it('routing.tls.defaultCertificate replaces the generated one', async () => {
    await push({ tls: { defaultCertificate: 'fallback' } });
    expect((await served('unknown.test')).cert.fingerprint256).toBe(fingerprint(certs.fallback.certPem));
    expect((await served(undefined)).cert.fingerprint256).toBe(fingerprint(certs.fallback.certPem));
    expect((await served('bad.test')).cert.fingerprint256).toBe(fingerprint(certs.fallback.certPem));
    await push();
    expect(isDefault((await served('unknown.test')).cert)).toBe(true);
  });

  it('negotiates h2 and http/1.1 by ALPN', async () => {
    expect((await served('a.test', { ALPNProtocols: ['h2', 'http/1.1'] })).alpn).toBe('h2');
    expect((await served('a.test', { ALPNProtocols: ['http/1.1'] })).alpn).toBe('http/1.1');
  });
});

describe('HTTP → HTTPS', () => {
  const plain = (path: string, host: string, args: string[] = []) => curl(`http://127.0.0.1:${dp.trafficPort}${path}`, ['-H', `Host: ${host}`, ...args]);

  it('redirects hosts with TLS with a 308 that keeps path, query and method', async () => {
    const r = await plain('/p/a%2Fb?q=1&r=2', 'a.test:8080');
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe('https://a.test/p/a%2Fb?q=1&r=2');
    expect(r.headers['strict-transport-security']).toBeUndefined();
    const post = await plain('/form', 'mixed.test', ['-d', 'x=1']);
    expect(post.status).toBe(308);
    expect(post.headers.location).toBe('https://mixed.test/form');
    expect(backend.requests.filter((q) => q.url === '/form')).toHaveLength(0);
  });

  it('does not redirect where switched off, for ACME challenges, or for hosts without TLS', async () => {
    expect((await plain('/plain/x', 'mixed.test')).status).toBe(200);
    expect((await plain('/', 'rsa.test')).status).toBe(200);
    expect((await plain('/.well-known/acme-challenge/token123', 'a.test')).status).toBe(200);
    expect((await plain('/', 'open.test')).status).toBe(200);
  });

  it('HTTPS responses carry HSTS where configured, and X-Forwarded-Proto https', async () => {
    const r = await curl(`https://a.test:${dp.httpsPort}/hsts`, ['--cacert', pki.caFile, '--resolve', `a.test:${dp.httpsPort}:127.0.0.1`, '--http1.1']);
    expect(r.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    const echo = JSON.parse(r.body) as { headers: Record<string, string> };
    expect(echo.headers).toMatchObject({ 'x-forwarded-proto': 'https', 'x-forwarded-port': String(dp.httpsPort) });
    const other = await curl(`https://x.w.test:${dp.httpsPort}/`, ['--cacert', pki.caFile, '--resolve', `x.w.test:${dp.httpsPort}:127.0.0.1`]);
    expect(other.headers['strict-transport-security']).toBeUndefined();
  });
});

/** Send one HTTP/1.1 request on an open TLS socket and read the response head and body (Content-Length framed). */
function exchange(socket: TLSSocket, path: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (c: Buffer): void => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(/content-length: (\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
      if (buf.length < end + 4 + length) return;
      socket.off('data', onData);
      resolve(Number(buf.split(' ')[1]));
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  });
}

describe('certificate rotation', () => {
  it('new handshakes get the new certificate; established HTTP/1.1 and HTTP/2 connections keep working', async () => {
    const h1 = await handshake('a.test', { ALPNProtocols: ['http/1.1'] });
    const h2: ClientHttp2Session = http2Connect(`https://a.test:${dp.httpsPort}`, { ca: pki.ca.certPem, host: '127.0.0.1', servername: 'a.test' } as never);
    h2.on('error', () => undefined);
    const h2get = (): Promise<number> => new Promise((resolve, reject) => {
      const s = h2.request({ ':path': '/rot2', ':authority': 'a.test' });
      s.on('response', (h) => {
        s.resume();
        s.on('end', () => resolve(Number(h[':status'])));
      });
      s.on('error', reject);
    });
    try {
      expect(h1.cert.fingerprint256).toBe(fingerprint(certs.a.certPem));
      expect(await exchange(h1.socket, '/rot', 'a.test')).toBe(200);
      expect(await h2get()).toBe(200);
      expect((h2.socket as TLSSocket).getPeerCertificate().fingerprint256).toBe(fingerprint(certs.a.certPem));
      const pid = dp.child.pid;

      await push({ a: certs.a2 });
      expect((await served('a.test')).cert.fingerprint256).toBe(fingerprint(certs.a2.certPem));
      const r = await curl(`https://a.test:${dp.httpsPort}/new`, ['--cacert', pki.caFile, '--resolve', `a.test:${dp.httpsPort}:127.0.0.1`]);
      expect([r.exitCode, r.status]).toEqual([0, 200]);
      // The connections made before the rotation are untouched and keep serving.
      expect(await exchange(h1.socket, '/rot', 'a.test')).toBe(200);
      expect(await h2get()).toBe(200);
      expect(h1.socket.destroyed || h2.closed || h2.destroyed).toBe(false);
      expect(dp.child.pid).toBe(pid);
    } finally {
      h1.socket.destroy();
      h2.destroy();
      await push();
    }
  });
});
