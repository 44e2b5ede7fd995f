/**
 * Push targets from the dataplane admin Service's EndpointSlices.
 *
 * Not-ready endpoints are targets too: a dataplane is not ready until it has
 * a snapshot, so waiting for readiness would wait forever. Terminating ones
 * are not: they are draining and keep the config they have.
 */
import { isIPv6 } from 'node:net';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import type { PushTarget } from '../push/pusher.ts';

export function targetsFromSlices(slices: readonly V1EndpointSlice[], portName: string): PushTarget[] {
  const byUrl = new Map<string, PushTarget>();
  for (const slice of slices) {
    if (slice.addressType === 'FQDN') continue;
    const port = slice.ports?.find((p) => (p.name ?? '') === portName)?.port;
    if (!port) continue;
    for (const ep of slice.endpoints ?? []) {
      if (ep.conditions?.terminating === true) continue;
      for (const address of ep.addresses ?? []) {
        const host = isIPv6(address) ? `[${address}]` : address;
        const url = `http://${host}:${port}`;
        byUrl.set(url, { id: ep.targetRef?.name ?? `${address}:${port}`, url });
      }
    }
  }
  // Code-point order: stable across locales, unlike localeCompare.
  return [...byUrl.values()].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
}
