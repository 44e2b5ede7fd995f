import { randomUUID } from 'node:crypto';

// A client-supplied id is kept (so traces can start at the edge) only when it
// is short printable ASCII; anything else could forge or bloat log lines.
const ACCEPTABLE = /^[\x21-\x7e]{1,200}$/;

/** The request id: the client's X-Request-ID when acceptable, otherwise a new UUID. */
export function requestIdFor(header: string | string[] | undefined): string {
  if (typeof header === 'string' && ACCEPTABLE.test(header)) return header;
  return randomUUID();
}
