import { randomFillSync } from 'node:crypto';

// A client-supplied id is kept (so traces can start at the edge) only when it
// is short printable ASCII; anything else could forge or bloat log lines.
const ACCEPTABLE = /^[\x21-\x7e]{1,200}$/;

// 16 random bytes per id, as 32 hex digits: the shape of ingress-nginx's
// `$req_id`. The bytes come from one pool refilled every 256 ids and turned
// into hex digits whole, so an id is a slice of that string: one hex
// decoding per 256 ids instead of one call into Node's C++ (~840
// instructions) per request (docs/benchmarks.md item 22). An id keeps its
// pool's 8 KiB string alive, shared by the 256 ids cut from it.
const ID_BYTES = 16;
const IDS_PER_POOL = 256;
const pool = Buffer.alloc(ID_BYTES * IDS_PER_POOL);
let digits = '';
let next = IDS_PER_POOL;

function newRequestId(): string {
  if (next === IDS_PER_POOL) {
    randomFillSync(pool);
    digits = pool.toString('hex');
    next = 0;
  }
  const at = next++ * ID_BYTES * 2;
  return digits.slice(at, at + ID_BYTES * 2);
}

/** The request id: the client's X-Request-ID when acceptable, otherwise 32 new random hex digits. */
export function requestIdFor(header: string | string[] | undefined): string {
  if (typeof header === 'string' && ACCEPTABLE.test(header)) return header;
  return newRequestId();
}
