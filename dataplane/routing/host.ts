// Host header normalization for virtual host lookup. Kept separate from the
// map so the traffic handler can log the normalized host as well.
import { isIPv4 } from 'node:net';

/**
 * Normalize a Host header (or absolute-form authority) for lookup: lower case,
 * port stripped, one trailing dot removed. IPv6 literals keep their brackets
 * (`[::1]:8080` → `[::1]`). An absent or empty host gives `''`, which only the
 * catch-all `*` can match.
 */
export function normalizeHost(raw: string | undefined): string {
  if (raw === undefined || raw === '') return '';
  let host = raw.trim().toLowerCase();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  if (colon !== -1) host = host.slice(0, colon);
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host;
}

/**
 * The domain a single-label wildcard would be keyed by: `a.example.com` →
 * `example.com`. Undefined for hosts that no wildcard may match: IP literals,
 * single-label names, and names with an empty first label.
 */
export function wildcardParent(host: string): string | undefined {
  if (host.startsWith('[') || isIPv4(host)) return undefined;
  const dot = host.indexOf('.');
  if (dot <= 0 || dot === host.length - 1) return undefined;
  return host.slice(dot + 1);
}
