import { randomFillSync } from 'node:crypto';

// A client-supplied id is kept (so traces can start at the edge) only when it
// is short printable ASCII; anything else could forge or bloat log lines.
const ACCEPTABLE = /^[\x21-\x7e]{1,200}$/;

// 16 random bytes per id, as 32 hex digits: the shape of ingress-nginx's
// `$req_id`. The bytes come from one pool refilled every 256 ids, so an id
// costs one string, where crypto.randomUUID() builds it from 16 pieces.
const ID_BYTES = 16;
const pool = Buffer.alloc(ID_BYTES * 256);
let offset = pool.length;

function newRequestId(): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = pool.toString('hex', offset, offset + ID_BYTES);
  offset += ID_BYTES;
  return id;
}

/** The request id: the client's X-Request-ID when acceptable, otherwise 32 new random hex digits. */
export function requestIdFor(header: string | string[] | undefined): string {
  if (typeof header === 'string' && ACCEPTABLE.test(header)) return header;
  return newRequestId();
}
