// A minimal X.509 v3 certificate writer. node:crypto can sign and parse
// certificates but not create them, and the runtime image (distroless) has no
// openssl binary, so the default certificate is assembled here: DER by hand,
// signatures and keys from node:crypto. Only what a TLS server certificate or
// a small test CA needs is supported; node:crypto's X509Certificate parses
// every result, and the unit tests cross-check with the openssl CLI.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

/** Key algorithm of a generated certificate. */
export type KeyType = 'ec-p256' | 'rsa-2048';

/** What to put in a certificate. */
export interface CertificateSpec {
  /** Subject common name. */
  commonName: string;
  /** Subject organization. */
  organization?: string;
  /** DNS names (wildcards allowed) and IP addresses for subjectAltName. */
  altNames?: readonly string[];
  /** Start of validity. Default: one hour ago, to tolerate clock skew. */
  notBefore?: Date;
  /** Validity in days from `notBefore`. Default 365. */
  days?: number;
  /** Default `ec-p256`: fast to generate and accepted by every current client. */
  keyType?: KeyType;
  /** Make a CA certificate (keyCertSign) instead of a server certificate. */
  isCa?: boolean;
  /** Sign with this CA; self-signed when absent. */
  issuer?: { certPem: string; keyPem: string };
}

/** A certificate and its private key, PEM encoded (PKCS#8 key). */
export interface GeneratedCertificate {
  certPem: string;
  keyPem: string;
}

// --- DER ------------------------------------------------------------------------

function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else if (n < 0x100) len = Buffer.from([0x81, n]);
  else if (n < 0x10000) len = Buffer.from([0x82, n >> 8, n & 0xff]);
  else len = Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 + n, inner);
const NULL = Buffer.from([0x05, 0x00]);

/** A non-negative INTEGER from big-endian bytes (a leading zero keeps it positive). */
function uint(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = bytes.subarray(i);
  return tlv(0x02, (trimmed[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const stack = [p & 0x7f];
    for (let v = p >>> 7; v > 0; v >>>= 7) stack.unshift((v & 0x7f) | 0x80);
    out.push(...stack);
  }
  return tlv(0x06, Buffer.from(out));
}

function bitString(bytes: Buffer, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

/** UTCTime through 2049, GeneralizedTime after, as RFC 5280 §4.1.2.5 requires. */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2), 'ascii')) : tlv(0x18, Buffer.from(iso, 'ascii'));
}

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

function name(commonName: string, organization: string | undefined): Buffer {
  const rdns = [];
  if (organization !== undefined) rdns.push(set(seq(oid(OID.organization), utf8(organization))));
  rdns.push(set(seq(oid(OID.commonName), utf8(commonName))));
  return seq(...rdns);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // Expand "::" and parse the eight 16-bit groups.
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function subjectAltName(names: readonly string[]): Buffer {
  return seq(...names.map((n) => (isIP(n) !== 0 ? tlv(0x87, ipBytes(n)) : tlv(0x82, Buffer.from(n, 'ascii')))));
}

/** Key identifier: SHA-1 of the subjectPublicKey bits, method (1) of RFC 5280 §4.2.1.2. */
function keyId(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // The last BIT STRING of the SPKI is the key; its content after the unused-bits byte.
  const bits = spkiKeyBits(spki);
  return createHash('sha1').update(bits).digest();
}

function spkiKeyBits(spki: Buffer): Buffer {
  // SEQUENCE { AlgorithmIdentifier SEQUENCE, BIT STRING }: skip the outer header, then the algorithm.
  let p = headerLength(spki, 0);
  p += headerLength(spki, p) + contentLength(spki, p);
  const start = p + headerLength(spki, p) + 1;
  return spki.subarray(start, p + headerLength(spki, p) + contentLength(spki, p));
}

function headerLength(der: Buffer, at: number): number {
  const first = der[at + 1]!;
  return first < 0x80 ? 2 : 2 + (first & 0x7f);
}

function contentLength(der: Buffer, at: number): number {
  const first = der[at + 1]!;
  if (first < 0x80) return first;
  let n = 0;
  for (let i = 0; i < (first & 0x7f); i++) n = n * 256 + der[at + 2 + i]!;
  return n;
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').match(/.{1,64}/g)!.join('\n');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function newKeyPair(type: KeyType): { privateKey: KeyObject; publicKey: KeyObject } {
  return type === 'rsa-2048'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/** Create a certificate and a new private key for it. */
export function createCertificate(spec: CertificateSpec): GeneratedCertificate {
  const { privateKey, publicKey } = newKeyPair(spec.keyType ?? 'ec-p256');
  let signer = privateKey;
  let issuerName = name(spec.commonName, spec.organization);
  let authorityKeyId = keyId(publicKey);
  if (spec.issuer !== undefined) {
    const ca = new X509Certificate(spec.issuer.certPem);
    signer = createPrivateKey(spec.issuer.keyPem);
    // The issuer field must equal the CA's subject byte for byte; take it from the CA itself.
    issuerName = subjectDer(ca);
    authorityKeyId = keyId(createPublicKey(spec.issuer.certPem));
  }
  const isEc = signer.asymmetricKeyType === 'ec';
  const sigAlg = isEc ? seq(oid(OID.ecdsaWithSha256)) : seq(oid(OID.sha256WithRsa), NULL);

  const notBefore = spec.notBefore ?? new Date(Date.now() - 3_600_000);
  const notAfter = new Date(notBefore.getTime() + (spec.days ?? 365) * 86_400_000);
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;

  // keyUsage bits: digitalSignature(0), plus keyEncipherment(2) for RSA servers (RSA key
  // exchange) or keyCertSign(5) and cRLSign(6) for CAs. DER drops trailing zero bits.
  const subjectIsEc = publicKey.asymmetricKeyType === 'ec';
  const keyUsage = spec.isCa === true
    ? bitString(Buffer.from([0x86]), 1)
    : subjectIsEc ? bitString(Buffer.from([0x80]), 7) : bitString(Buffer.from([0xa0]), 5);
  const extensions = [
    extension(OID.basicConstraints, true, spec.isCa === true ? seq(bool(true)) : seq()),
    extension(OID.keyUsage, true, keyUsage),
    extension(OID.subjectKeyId, false, octets(keyId(publicKey))),
    extension(OID.authorityKeyId, false, seq(tlv(0x80, authorityKeyId))),
  ];
  if (spec.isCa !== true) extensions.push(extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth))));
  if (spec.altNames !== undefined && spec.altNames.length > 0) extensions.push(extension(OID.subjectAltName, false, subjectAltName(spec.altNames)));

  const tbs = seq(
    explicit(0, uint(Buffer.from([2]))),
    uint(serial),
    sigAlg,
    issuerName,
    seq(time(notBefore), time(notAfter)),
    name(spec.commonName, spec.organization),
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, { key: signer, dsaEncoding: 'der' });
  const der = seq(tbs, sigAlg, bitString(signature));
  return {
    certPem: pem('CERTIFICATE', der),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

/** The DER subject of a parsed certificate, for use as an issuer name. */
function subjectDer(cert: X509Certificate): Buffer {
  // Certificate → tbsCertificate → [version, serial, sigAlg, issuer, validity, subject, ...].
  const der = cert.raw;
  let p = headerLength(der, 0);
  p += headerLength(der, p); // into tbsCertificate
  for (let field = 0; field < 5; field++) p += headerLength(der, p) + contentLength(der, p);
  return der.subarray(p, p + headerLength(der, p) + contentLength(der, p));
}
