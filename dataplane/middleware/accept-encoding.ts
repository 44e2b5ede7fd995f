// Content negotiation of response compression (RFC 9110 §12.5.3). Pure, so
// table tests can cover the corner cases browsers and curl actually send.

/** Compression codings the dataplane can produce, by their HTTP names. */
export const CODINGS = ['zstd', 'br', 'gzip', 'deflate'] as const;
/** One of {@link CODINGS}. */
export type Coding = (typeof CODINGS)[number];

const QVALUE = /^q=(0(\.\d{0,3})?|1(\.0{0,3})?)$/i;

/**
 * Pick the coding for a response from the request's Accept-Encoding.
 *
 * - The client's q-values rank the codings; `q=0` rules one out; `*` stands
 *   for every coding not named; ties go to `preference` order.
 * - `identity` wins when the client ranks it explicitly above every coding it
 *   accepts (`gzip;q=0.5, identity` → no compression).
 * - No header, an empty one, or one the client cannot have meant (a q-value
 *   that is not one) → no compression: sending a coding the client did not
 *   ask for is the one mistake that breaks it.
 *
 * Returns undefined for "send it unencoded".
 */
export function negotiateEncoding(header: string | string[] | undefined, preference: readonly Coding[]): Coding | undefined {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header.join(',') : header;
  const q = new Map<string, number>();
  for (const element of value.split(',')) {
    const parts = element.split(';');
    let name = parts[0]!.trim().toLowerCase();
    if (name === '') continue;
    if (name === 'x-gzip') name = 'gzip';
    let weight = 1;
    for (let i = 1; i < parts.length; i++) {
      const param = parts[i]!.trim();
      if (param === '') continue;
      if (!QVALUE.test(param)) return undefined;
      weight = Number(param.slice(2));
    }
    // A repeated coding keeps its first weight, as most servers do.
    if (!q.has(name)) q.set(name, weight);
  }
  const star = q.get('*');
  let best: Coding | undefined;
  let bestQ = 0;
  for (const coding of preference) {
    const w = q.get(coding) ?? star ?? 0;
    if (w > bestQ) {
      best = coding;
      bestQ = w;
    }
  }
  if (best === undefined) return undefined;
  // Only an identity the client ranked itself can beat a coding it accepts:
  // `br;q=0.9, gzip;q=0.8` means "compress", not "identity at an implied 1".
  const identityQ = q.get('identity');
  return identityQ !== undefined && identityQ > bestQ ? undefined : best;
}
