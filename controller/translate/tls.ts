// Ingress `spec.tls` → snapshot certificates and per-host TLS settings.
//
// A host listed in `spec.tls[].hosts` "has TLS": the dataplane redirects its
// plain-HTTP requests to https and serves it the Secret's certificate. A
// missing or unusable Secret fails only that TLS entry: the host still has
// TLS, served with the dataplane's default certificate, as ingress-nginx does.
// Certificates are checked here (parse, key matches) so the failure lands on
// the Ingress; the dataplane checks again and falls back the same way.
// Pure: node:crypto only parses, and nothing reads the clock (expiry is the
// dataplane's to report).
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { Certificate, Cluster, Routing, VirtualHost, VirtualHostTls } from '../../dataplane/snapshot/schema.ts';
import type { FailureList } from './failures.ts';
import { ingressRef } from './failures.ts';
import { CATCH_ALL_HOST, normaliseHost } from './hosts.ts';
import { indexByName } from './meta.ts';
import type { OwnedIngress } from './owned.ts';
import { compareStrings } from './sort.ts';
import type { Secret } from './types.ts';

type CheckedSecret = { ok: true; certificate: Certificate } | { ok: false; reason: 'TLSSecretNotFound' | 'InvalidTLSSecret'; message: string };

function decode(value: string | null | undefined): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  return Buffer.from(value, 'base64').toString('utf8');
}

/** Look a Secret up and check that it holds a certificate and the key that goes with it. */
function checkSecret(secrets: ReadonlyMap<string, Secret>, namespace: string, name: string): CheckedSecret {
  const secret = secrets.get(`${namespace}/${name}`);
  if (secret === undefined) {
    return { ok: false, reason: 'TLSSecretNotFound', message: `Secret ${namespace}/${name} does not exist; the hosts are served with the default certificate` };
  }
  const certPem = decode(secret.data?.['tls.crt']);
  const keyPem = decode(secret.data?.['tls.key']);
  const bad = (why: string): CheckedSecret => ({ ok: false, reason: 'InvalidTLSSecret', message: `Secret ${namespace}/${name} ${why}; the hosts are served with the default certificate` });
  if (certPem === undefined || keyPem === undefined) return bad('must hold tls.crt and tls.key');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch {
    return bad('has a tls.crt that is not a PEM certificate');
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(keyPem))) return bad('has a tls.key that does not match its certificate');
  } catch {
    return bad('has a tls.key that is not an unencrypted PEM private key');
  }
  return { ok: true, certificate: { name: `${namespace}/${name}`, source: { kind: 'Secret', namespace, name }, certPem, keyPem } };
}

/**
 * Add certificates and `tls` to the virtual hosts the owned Ingresses list in
 * `spec.tls`. Ingresses come oldest first: for a host named by several, the
 * oldest Ingress's Secret is used. Hosts that ended up with no virtual host
 * (no route) are skipped.
 */
export function applyIngressTls(
  routing: { virtualHosts: VirtualHost[]; clusters: Cluster[] },
  ingresses: readonly OwnedIngress[],
  secretList: readonly Secret[],
  failures: FailureList,
): Omit<Routing, 'hash'> {
  const secrets = indexByName(secretList);
  const byHost = new Map<string, VirtualHostTls>();
  const certificates = new Map<string, Certificate>();
  for (const { key, ingress } of ingresses) {
    const ref = ingressRef(key);
    const entries = Array.isArray(ingress.spec?.tls) ? ingress.spec.tls : [];
    entries.forEach((entry, i) => {
      const secretName = entry?.secretName;
      let certificate: string | undefined;
      if (typeof secretName === 'string' && secretName !== '') {
        const checked = checkSecret(secrets, key.namespace, secretName);
        if (checked.ok) {
          certificates.set(checked.certificate.name, checked.certificate);
          certificate = checked.certificate.name;
        } else {
          failures.add(ref, `spec.tls[${i}].secretName`, checked.reason, checked.message);
        }
      }
      // No hosts: the entry is for the catch-all server, as in ingress-nginx.
      const hosts: readonly (string | undefined)[] = Array.isArray(entry?.hosts) && entry.hosts.length > 0 ? entry.hosts : [undefined];
      hosts.forEach((raw, j) => {
        const host = normaliseHost(raw);
        if (!host.ok) {
          failures.add(ref, `spec.tls[${i}].hosts[${j}]`, 'InvalidHost', `${host.message}; the host gets no TLS settings`);
          return;
        }
        if (!byHost.has(host.host)) byHost.set(host.host, certificate !== undefined ? { certificate } : {});
      });
    });
  }

  const used = new Set<string>();
  const virtualHosts = routing.virtualHosts.map((vh): VirtualHost => {
    const tls = byHost.get(vh.name === CATCH_ALL_HOST ? CATCH_ALL_HOST : vh.hostnames[0]!);
    if (tls === undefined) return vh;
    if (tls.certificate !== undefined) used.add(tls.certificate);
    // ssl-redirect "false" on an Ingress (annotations/ingress.ts) set redirectHttp on its own routes already.
    return { ...vh, tls };
  });
  const certs = [...certificates.values()].filter((c) => used.has(c.name)).sort((a, b) => compareStrings(a.name, b.name));
  return { ...routing, virtualHosts, ...(certs.length > 0 && { certificates: certs }) };
}
