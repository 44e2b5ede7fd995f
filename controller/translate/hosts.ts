// Ingress rule hosts and Route hostnames → virtual host names. The API server
// already validates hosts, but local mode has none, and the snapshot schema
// rejects anything else, so an invalid host must become a failure here rather
// than a bad snapshot.

/** Virtual host of rules without a host: every request whose host no other virtual host claims. */
export const CATCH_ALL_HOST = '*';

/** Outcome of {@link normaliseHost}. */
export type HostResult = { readonly ok: true; readonly host: string } | { readonly ok: false; readonly message: string };

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const IPV4 = /^\d+\.\d+\.\d+\.\d+$/;

/**
 * Lower-case and validate an Ingress rule host, as Kubernetes does: a DNS
 * subdomain, optionally behind a single-label wildcard `*.`; no IP address, no
 * port, no trailing dot. Absent or empty means the catch-all `*`.
 */
export function normaliseHost(raw: string | null | undefined): HostResult {
  if (raw === null || raw === undefined || raw === '') return { ok: true, host: CATCH_ALL_HOST };
  if (typeof raw !== 'string') return { ok: false, message: 'host must be a string' };
  const host = raw.toLowerCase();
  if (host.length > 253) return { ok: false, message: `host is ${host.length} characters long, at most 253 are allowed` };
  if (IPV4.test(host) || host.includes(':')) return { ok: false, message: `host ${JSON.stringify(raw)} must be a DNS name, not an IP address or host:port` };
  const labels = host.split('.');
  const wildcard = labels[0] === '*';
  const dns = wildcard ? labels.slice(1) : labels;
  if (wildcard && dns.length === 0) {
    return { ok: false, message: 'host "*" is not allowed; leave the host empty to match every host' };
  }
  for (const label of dns) {
    if (label.length > 63 || !LABEL.test(label)) {
      const hint = label.includes('*') ? ' (a wildcard may only be the whole first label, as in "*.example.com")' : '';
      return { ok: false, message: `host ${JSON.stringify(raw)} is not a valid DNS name: bad label ${JSON.stringify(label)}${hint}` };
    }
  }
  return { ok: true, host };
}
