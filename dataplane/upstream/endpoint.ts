import { isIPv6 } from 'node:net';

/** One upstream address as the proxy uses it. */
export interface UpstreamEndpoint {
  /** `address:port` (`[v6]:port` for IPv6); the identity of its connection pool. */
  readonly key: string;
  readonly address: string;
  readonly port: number;
}

/** Build the endpoint identity used across snapshots. */
export function upstreamEndpoint(address: string, port: number): UpstreamEndpoint {
  const host = isIPv6(address) ? `[${address}]` : address;
  const key = `${host}:${port}`;
  return { key, address, port };
}
