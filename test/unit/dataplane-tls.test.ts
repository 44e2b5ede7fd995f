import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { compileRouting } from '../../dataplane/config/compile.ts';
import { encodeGrpcMessage, grpcStatusFor, isGrpcRequest } from '../../dataplane/http2/grpc.ts';
import { buildSnapshot } from '../../dataplane/snapshot/build.ts';
import type { Routing } from '../../dataplane/snapshot/schema.ts';
import { validateSnapshot } from '../../dataplane/snapshot/validate.ts';
import { TlsManager } from '../../dataplane/tls/contexts.ts';
import { hstsHeader, wantsHttpsRedirect } from '../../dataplane/tls/policy.ts';
import { createCertificate } from '../../dataplane/tls/x509.ts';

const silent = pino({ level: 'silent' });

describe('X.509 writer', () => {
  const ca = createCertificate({ commonName: 'Unit CA', isCa: true, organization: 'PyServe Tests' });
  const leaf = createCertificate({ commonName: 'a.test', altNames: ['a.test', '*.b.test', '127.0.0.1', '::1'], issuer: ca });

  it('writes certificates node:crypto parses, with the asked-for names and a matching key', () => {
    const x = new X509Certificate(leaf.certPem);
    expect(x.subject).toBe('CN=a.test');
    expect(x.issuer).toBe('O=PyServe Tests\nCN=Unit CA');
    expect(x.subjectAltName).toBe('DNS:a.test, DNS:*.b.test, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(x.checkPrivateKey(createPrivateKey(leaf.keyPem))).toBe(true);
    expect(x.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(x.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect(x.checkHost('x.b.test')).toBe('*.b.test');
    expect(x.ca).toBe(false);
    expect(new X509Certificate(ca.certPem).ca).toBe(true);
  });

  it('openssl agrees: the chain verifies, serverAuth, strict DER', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pyserve-x509-'));
    writeFileSync(join(dir, 'ca.pem'), ca.certPem);
    writeFileSync(join(dir, 'leaf.pem'), leaf.certPem);
    expect(execFileSync('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', join(dir, 'ca.pem'), join(dir, 'leaf.pem')], { encoding: 'utf8' })).toContain('OK');
    const text = execFileSync('openssl', ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-text'], { encoding: 'utf8' });
    expect(text).toContain('TLS Web Server Authentication');
    expect(text).toContain('CA:FALSE');
    execFileSync('openssl', ['asn1parse', '-in', join(dir, 'leaf.pem'), '-strictpem'], { encoding: 'utf8' });
  });

  it('RSA keys, and validity past 2049 (GeneralizedTime)', () => {
    const c = createCertificate({ commonName: 'r', keyType: 'rsa-2048', notBefore: new Date('2049-06-01T00:00:00Z'), days: 365 });
    const x = new X509Certificate(c.certPem);
    expect(x.publicKey.asymmetricKeyType).toBe('rsa');
    expect(new Date(x.validTo).getUTCFullYear()).toBe(2050);
    expect(x.verify(x.publicKey)).toBe(true);
  });
});

describe('TlsManager', () => {
  const a = createCertificate({ commonName: 'a.test', altNames: ['a.test'] });
  const w = createCertificate({ commonName: '*.w.test', altNames: ['*.w.test'] });
  const routing = (extra: Partial<Routing> = {}): Routing => buildSnapshot(1, {
    virtualHosts: [
      { name: 'a', hostnames: ['a.test'], routes: [], tls: { certificate: 'a' } },
      { name: 'w', hostnames: ['*.w.test'], routes: [], tls: { certificate: 'w' } },
      { name: 'bad', hostnames: ['bad.test'], routes: [], tls: { certificate: 'bad' } },
    ],
    clusters: [],
    certificates: [
      { name: 'a', ...a },
      { name: 'w', ...w },
      { name: 'bad', certPem: a.certPem, keyPem: w.keyPem },
    ],
    ...extra,
  }, { clusters: [] }).routing;

  it('maps SNI names to contexts: exact, one-label wildcard, default', () => {
    const m = new TlsManager({ log: silent });
    const tls = m.compile(routing());
    const def = tls.contextFor('nothing.test');
    expect(tls.contextFor('a.test')).not.toBe(def);
    expect(tls.contextFor('A.Test.')).toBe(tls.contextFor('a.test'));
    expect(tls.contextFor('x.w.test')).not.toBe(def);
    expect(tls.contextFor('y.x.w.test')).toBe(def);
    expect(tls.contextFor('bad.test')).toBe(def);
  });

  it('reuses a context while the certificate is unchanged, so rotations only touch what changed', () => {
    const m = new TlsManager({ log: silent });
    const first = m.compile(routing());
    const second = m.compile(routing({ tls: {} }));
    expect(second.contextFor('a.test')).toBe(first.contextFor('a.test'));
    const rotated = m.compile(routing({ certificates: [{ name: 'a', ...createCertificate({ commonName: 'a.test' }) }, { name: 'w', ...w }, { name: 'bad', ...a }] }));
    expect(rotated.contextFor('a.test')).not.toBe(first.contextFor('a.test'));
    expect(rotated.contextFor('x.w.test')).toBe(first.contextFor('x.w.test'));
  });

  it('reports unusable certificates in metrics, and notifies when the listener context must change', () => {
    const registry = new Registry();
    const m = new TlsManager({ log: silent, registry });
    const changes: unknown[] = [];
    m.onServerOptions((o) => changes.push(o));
    m.activate(m.compile(routing()));
    expect(changes).toHaveLength(0);
    m.activate(m.compile(routing({ tls: { minVersion: 'TLSv1.3' } })));
    expect(changes).toHaveLength(1);
    m.activate(m.compile(routing({ tls: { minVersion: 'TLSv1.3' } })));
    expect(changes).toHaveLength(1);
    return registry.getSingleMetricAsString('pyserve_tls_certificate_invalid').then((text) => {
      expect(text).toContain('pyserve_tls_certificate_invalid{certificate="bad"} 1');
      expect(text).not.toContain('certificate="a"');
    });
  });

  it('falls back to the default ciphers when OpenSSL accepts none of the given ones', () => {
    const m = new TlsManager({ log: silent });
    const tls = m.compile(routing({ tls: { ciphers: 'NOT-A-CIPHER' } }));
    expect(String(tls.serverOptions.ciphers)).toContain('ECDHE-ECDSA-AES128-GCM-SHA256');
  });
});

describe('snapshot TLS fields', () => {
  const base = {
    virtualHosts: [{ name: 'a', hostnames: ['a.test'], routes: [], tls: { certificate: 'x' } }],
    clusters: [],
  };

  it('every certificate reference must resolve, and names are unique', () => {
    const bad = validateSnapshot(buildSnapshot(1, { ...base, certificates: [{ name: 'y', certPem: 'c', keyPem: 'k' }, { name: 'y', certPem: 'c', keyPem: 'k' }], tls: { defaultCertificate: 'z' } }, { clusters: [] }));
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.problems).toEqual([
      'routing.certificates.1.name: duplicate certificate "y"',
      'routing.tls.defaultCertificate: unknown certificate "z"',
      'routing.virtualHosts.0.tls.certificate: unknown certificate "x"',
    ]);
    const good = validateSnapshot(buildSnapshot(1, { ...base, certificates: [{ name: 'x', certPem: 'not pem at all', keyPem: 'k' }] }, { clusters: [] }));
    expect(good.ok).toBe(true);
  });

  it('compiles redirect and HSTS per route', () => {
    const route = (name: string, redirectHttp?: boolean) => ({
      name, match: { path: { type: 'Prefix' as const, value: '/' } }, action: { type: 'direct' as const, status: 200 }, ...(redirectHttp !== undefined && { redirectHttp }),
    });
    const r = buildSnapshot(1, {
      virtualHosts: [
        { name: 't', hostnames: ['t.test'], routes: [route('t1'), route('t2', false)], tls: { hsts: { maxAgeSeconds: 60, preload: true } } },
        { name: 'off', hostnames: ['off.test'], routes: [route('o1'), route('o2', true)], tls: { redirectHttp: false } },
        { name: 'none', hostnames: ['none.test'], routes: [route('n1', true)] },
      ],
      clusters: [],
    }, { clusters: [] }).routing;
    const table = compileRouting(r).table;
    const m = (host: string, path = '/') => table.match(host, { method: 'GET', path, rawQuery: '', headers: {} })!;
    expect(m('t.test')).toMatchObject({ name: 't1', redirectHttps: true, hsts: 'max-age=60; preload' });
    expect(m('off.test')).toMatchObject({ name: 'o1', redirectHttps: false, hsts: undefined });
    expect(m('none.test')).toMatchObject({ redirectHttps: false });
    const t2 = compileRouting(buildSnapshot(1, { virtualHosts: [{ name: 't', hostnames: ['t.test'], routes: [route('t2', false)], tls: {} }], clusters: [] }, { clusters: [] }).routing).table;
    expect(t2.match('t.test', { method: 'GET', path: '/', rawQuery: '', headers: {} })).toMatchObject({ redirectHttps: false });
    const o2 = compileRouting(buildSnapshot(1, { virtualHosts: [{ name: 'o', hostnames: ['o.test'], routes: [route('o2', true)], tls: { redirectHttp: false } }], clusters: [] }, { clusters: [] }).routing).table;
    expect(o2.match('o.test', { method: 'GET', path: '/', rawQuery: '', headers: {} })).toMatchObject({ redirectHttps: true });
  });

  it('HSTS header values and the ACME exemption', () => {
    expect(hstsHeader({ maxAgeSeconds: 31_536_000 })).toBe('max-age=31536000');
    expect(hstsHeader({ maxAgeSeconds: 0, includeSubDomains: true, preload: true })).toBe('max-age=0; includeSubDomains; preload');
    expect(wantsHttpsRedirect('/.well-known/acme-challenge/abc')).toBe(false);
    expect(wantsHttpsRedirect('/.well-known/other')).toBe(true);
  });
});

describe('gRPC local errors', () => {
  it('maps HTTP statuses to gRPC codes', () => {
    expect([404, 503, 502, 504, 408, 413, 400, 401, 403, 429, 500, 418].map(grpcStatusFor)).toEqual([12, 14, 14, 4, 4, 8, 13, 16, 7, 14, 13, 2]);
  });

  it('recognises gRPC and gRPC-Web requests', () => {
    expect(isGrpcRequest({ 'content-type': 'application/grpc' })).toBe(true);
    expect(isGrpcRequest({ 'content-type': 'application/grpc+proto' })).toBe(true);
    expect(isGrpcRequest({ 'content-type': 'application/grpc-web-text' })).toBe(true);
    expect(isGrpcRequest({ 'content-type': 'application/json' })).toBe(false);
    expect(isGrpcRequest({})).toBe(false);
  });

  it('percent-encodes grpc-message', () => {
    expect(encodeGrpcMessage('no route: 100% café\n')).toBe('no route: 100%25 caf%C3%A9%0A');
  });
});
