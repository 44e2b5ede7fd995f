/**
 * EndpointSlice validation rejects loopback addresses, so tests that put
 * local processes behind EndpointSlices listen on a non-loopback address of
 * this machine instead.
 */
import { networkInterfaces } from 'node:os';

export function routableLocalAddress(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('this test needs a non-loopback IPv4 address on some interface (EndpointSlices may not point at 127.0.0.0/8)');
}
