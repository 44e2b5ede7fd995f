// Snapshot certificates → one SecureContext per certificate and an SNI map,
// built when a snapshot arrives. A handshake only looks a name up. A new
// snapshot yields a new map; connections already established keep the context
// they were handshaken with, so a rotation never breaks them.
//
// A certificate that does not load (bad PEM, key does not match, encrypted
// key) never rejects the snapshot: the hosts that use it get the default
// certificate, and the failure is logged and exported as a metric.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { SecureContext, SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import { HostMap } from '../routing/host-map.ts';
import { normalizeHost } from '../routing/host.ts';
import type { Routing } from '../snapshot/schema.ts';
import { createCertificate } from './x509.ts';
import type { GeneratedCertificate } from './x509.ts';

/**
 * TLS 1.2 ciphers by default: Mozilla's "intermediate" ECDHE list, the one
 * ingress-nginx ships as `ssl-ciphers` (its DHE entries are left out: they need
 * DH parameters, which nothing here configures).
 */
export const DEFAULT_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

// Node takes TLS 1.3 suites from the same `ciphers` option; naming none would
// leave TLS 1.3 without suites, so OpenSSL's defaults are always listed.
const TLS13_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

/** ALPN protocols offered, in server preference order. */
export const ALPN_PROTOCOLS = ['h2', 'http/1.1'];

/** Protocol settings shared by every context of one snapshot. */
interface Policy {
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly ciphers: string;
}

/** The TLS half of an active config. */
export interface CompiledTls {
  /** Options of the listener's own context: the default certificate and the policy. */
  readonly serverOptions: SecureContextOptions;
  /** Identity of `serverOptions`, to skip rebuilding the listener context when it did not change. */
  readonly serverKey: string;
  /** Context for an SNI name (any case, trailing dot allowed); the default one when nothing matches. */
  contextFor(servername: string): SecureContext;
}

/** Why a certificate was not loaded. */
export interface CertificateProblem {
  readonly certificate: string;
  readonly reason: string;
}

interface Loaded {
  readonly context: SecureContext;
  readonly options: SecureContextOptions;
  readonly notAfter: number;
  readonly x509: X509Certificate;
}

/** Options of {@link TlsManager}. */
export interface TlsManagerOptions {
  readonly log: Logger;
  /** Registry to export TLS metrics into. */
  readonly registry?: Registry;
  /** Use this instead of generating a self-signed default certificate (tests). */
  readonly defaultCertificate?: GeneratedCertificate;
}

/**
 * Owns the default certificate, caches contexts across snapshots (keyed by
 * content, so an unchanged certificate keeps its context and its session
 * tickets) and reports certificate problems.
 */
export class TlsManager {
  readonly #log: Logger;
  readonly #generated: GeneratedCertificate;
  #cache = new Map<string, Loaded | CertificateProblem>();
  #active: CompiledTls;
  #onServerOptions: ((options: SecureContextOptions) => void) | undefined;
  readonly #invalid: Gauge<'certificate'> | undefined;
  readonly #expiry: Gauge<'certificate'> | undefined;
  /** Failed handshakes by error code; the traffic listener counts them. */
  readonly handshakeErrors: Counter<'reason'> | undefined;

  constructor(opts: TlsManagerOptions) {
    this.#log = opts.log;
    // Generated once per process, as ingress-nginx does: nothing to provision, and
    // an EC P-256 key takes about a millisecond.
    this.#generated = opts.defaultCertificate ?? createCertificate({
      commonName: 'PyServe Default Certificate',
      organization: 'PyServe',
      altNames: ['pyserve.invalid'],
    });
    if (opts.registry !== undefined) {
      this.#invalid = new Gauge({
        name: 'pyserve_tls_certificate_invalid',
        help: 'Certificates of the current snapshot that could not be loaded (1); their hosts get the default certificate.',
        labelNames: ['certificate'],
        registers: [opts.registry],
      });
      this.#expiry = new Gauge({
        name: 'pyserve_tls_certificate_expiry_timestamp_seconds',
        help: 'notAfter of each loaded certificate of the current snapshot, as a Unix timestamp.',
        labelNames: ['certificate'],
        registers: [opts.registry],
      });
      this.handshakeErrors = new Counter({
        name: 'pyserve_tls_handshake_errors_total',
        help: 'TLS handshakes that failed, by error code.',
        labelNames: ['reason'],
        registers: [opts.registry],
      });
    }
    this.#active = this.compile(undefined);
  }

  /** The default self-signed certificate this process generated. */
  get generatedCertificate(): GeneratedCertificate {
    return this.#generated;
  }

  /** The TLS config in force: the last one activated, or defaults before any snapshot. */
  get active(): CompiledTls {
    return this.#active;
  }

  /** Called with new listener options whenever the default certificate or the policy changes. */
  onServerOptions(listener: (options: SecureContextOptions) => void): void {
    this.#onServerOptions = listener;
  }

  /**
   * Build the TLS config of a routing section. Never throws: unusable
   * certificates are recorded and replaced by the default.
   */
  compile(routing: Routing | undefined): CompiledTls {
    const problems: CertificateProblem[] = [];
    let policy: Policy = { minVersion: routing?.tls?.minVersion ?? 'TLSv1.2', ciphers: routing?.tls?.ciphers ?? DEFAULT_CIPHERS };
    if (!ciphersLoad(policy)) {
      problems.push({ certificate: '(routing.tls.ciphers)', reason: `OpenSSL accepts none of the ciphers "${policy.ciphers}"; using the default list` });
      policy = { ...policy, ciphers: DEFAULT_CIPHERS };
    }
    const cache = new Map<string, Loaded | CertificateProblem>();
    const loaded = new Map<string, Loaded>();
    for (const cert of routing?.certificates ?? []) {
      const key = contentKey(cert.certPem, cert.keyPem, policy);
      const hit = this.#cache.get(key) ?? cache.get(key) ?? load(cert.name, cert.certPem, cert.keyPem, policy);
      cache.set(key, hit);
      if ('context' in hit) loaded.set(cert.name, hit);
      else problems.push({ certificate: cert.name, reason: hit.reason });
    }

    const fallbackKey = contentKey(this.#generated.certPem, this.#generated.keyPem, policy);
    const fallback = (this.#cache.get(fallbackKey) ?? cache.get(fallbackKey) ?? load('(generated default)', this.#generated.certPem, this.#generated.keyPem, policy)) as Loaded;
    cache.set(fallbackKey, fallback);
    const defaultName = routing?.tls?.defaultCertificate;
    const defaultCert = (defaultName !== undefined ? loaded.get(defaultName) : undefined) ?? fallback;

    const sni = new HostMap<SecureContext>();
    for (const vh of routing?.virtualHosts ?? []) {
      const name = vh.tls?.certificate;
      const chosen = name !== undefined ? loaded.get(name) : undefined;
      for (const hostname of vh.hostnames) {
        sni.add(hostname, (chosen ?? defaultCert).context);
        if (chosen !== undefined && hostname !== '*' && !covers(chosen.x509, hostname)) {
          this.#log.warn({ certificate: name, hostname }, 'TLS certificate does not cover this hostname; clients will refuse it');
        }
      }
    }
    this.#cache = cache;

    const serverKey = `${policy.minVersion}|${policy.ciphers}|${sha256(String(defaultCert.options.cert))}`;
    const compiled: CompiledTls = {
      serverOptions: defaultCert.options,
      serverKey,
      contextFor(servername) {
        return sni.lookup(normalizeHost(servername)) ?? defaultCert.context;
      },
    };
    if (routing !== undefined) this.#report(routing, loaded, problems);
    return compiled;
  }

  /** Make `tls` the config in force (called right after the snapshot is swapped in). */
  activate(tls: CompiledTls): void {
    const previous = this.#active;
    this.#active = tls;
    if (previous.serverKey !== tls.serverKey) this.#onServerOptions?.(tls.serverOptions);
  }

  #report(routing: Routing, loaded: ReadonlyMap<string, Loaded>, problems: readonly CertificateProblem[]): void {
    this.#invalid?.reset();
    this.#expiry?.reset();
    for (const [name, l] of loaded) this.#expiry?.set({ certificate: name }, Math.floor(l.notAfter / 1000));
    for (const p of problems) {
      this.#invalid?.set({ certificate: p.certificate }, 1);
      const hosts = routing.virtualHosts.filter((vh) => vh.tls?.certificate === p.certificate).flatMap((vh) => vh.hostnames);
      const source = routing.certificates?.find((c) => c.name === p.certificate)?.source;
      this.#log.warn({ certificate: p.certificate, source, hosts, reason: p.reason }, 'TLS certificate not loaded: its hosts are served with the default certificate');
    }
    const now = Date.now();
    for (const [name, l] of loaded) {
      if (l.notAfter < now) this.#log.warn({ certificate: name, notAfter: new Date(l.notAfter).toISOString() }, 'TLS certificate has expired');
    }
  }
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function contentKey(certPem: string, keyPem: string, policy: Policy): string {
  return sha256(`${certPem}\0${keyPem}\0${policy.minVersion}\0${policy.ciphers}`);
}

function contextOptions(certPem: string, keyPem: string, policy: Policy): SecureContextOptions {
  return {
    cert: certPem,
    key: keyPem,
    minVersion: policy.minVersion,
    ciphers: `${TLS13_SUITES}:${policy.ciphers}`,
    // Modern clients order their own list well (Mozilla's advice for "intermediate").
    honorCipherOrder: false,
  };
}

function ciphersLoad(policy: Policy): boolean {
  try {
    // A cipher list naming nothing OpenSSL knows fails here, before any certificate is involved.
    createSecureContext({ ciphers: policy.ciphers, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    return true;
  } catch {
    return false;
  }
}

function load(name: string, certPem: string, keyPem: string, policy: Policy): Loaded | CertificateProblem {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch (err) {
    return { certificate: name, reason: `certificate does not parse: ${(err as Error).message}` };
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(keyPem))) return { certificate: name, reason: 'private key does not match the certificate' };
  } catch (err) {
    return { certificate: name, reason: `private key does not parse: ${(err as Error).message}` };
  }
  const options = contextOptions(certPem, keyPem, policy);
  try {
    return { context: createSecureContext(options), options, notAfter: Date.parse(x509.validTo), x509 };
  } catch (err) {
    return { certificate: name, reason: `OpenSSL refuses the certificate or key: ${(err as Error).message}` };
  }
}

/** Whether the certificate names `hostname`; a wildcard hostname is checked with a sample label. */
function covers(x509: X509Certificate, hostname: string): boolean {
  const probe = hostname.startsWith('*.') ? `pyserve-probe.${hostname.slice(2)}` : hostname;
  return x509.checkHost(probe) !== undefined;
}
