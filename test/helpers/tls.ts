/**
 * Certificates for TLS tests, made with the dataplane's own X.509 writer (the
 * same code that makes its default certificate): a test CA and leaf
 * certificates it signs, so clients can verify instead of skipping checks.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { createCertificate } from '../../dataplane/tls/x509.ts';
import type { CertificateSpec, GeneratedCertificate } from '../../dataplane/tls/x509.ts';
import type { Certificate } from '../../dataplane/snapshot/schema.ts';

/** A CA that signs test certificates, and a folder for files curl can read. */
export interface TestPki {
  readonly ca: GeneratedCertificate;
  /** Path of the CA certificate as a PEM file (for curl `--cacert`). */
  readonly caFile: string;
  /** A leaf certificate for these DNS names / IPs, signed by the CA. */
  issue(names: string[], spec?: Partial<CertificateSpec>): GeneratedCertificate;
  /** Write a PEM to a file in the PKI's folder and return its path. */
  file(name: string, pem: string): string;
}

/** Create a CA in a fresh temp folder. */
export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'pyserve-pki-'));
  const ca = createCertificate({ commonName: 'PyServe Test CA', isCa: true, days: 30 });
  const file = (name: string, pem: string): string => {
    const path = join(dir, name);
    writeFileSync(path, pem);
    return path;
  };
  return {
    ca,
    caFile: file('ca.pem', ca.certPem),
    issue: (names, spec = {}) => createCertificate({ commonName: names[0]!, altNames: names, issuer: ca, days: 30, ...spec }),
    file,
  };
}

/** A snapshot certificate entry. */
export function snapshotCertificate(name: string, cert: GeneratedCertificate): Certificate {
  return { name, certPem: cert.certPem, keyPem: cert.keyPem };
}

/** SHA-256 fingerprint of a PEM certificate, as node:tls reports `fingerprint256`. */
export function fingerprint(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}
