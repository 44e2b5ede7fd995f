// Lower-case field names as constants. A parser that lower-cases every name
// it reads makes a new string per field, which V8 then hashes and looks up
// in its string table when the name becomes a property key of a headers
// object. The common names are recognised in the head's bytes instead and
// come back as these strings, already internalized (docs/benchmarks.md
// item 22).

/** Names seen on most requests through an ingress; lower case. */
const COMMON = [
  'accept', 'accept-encoding', 'accept-language', 'authorization', 'cache-control', 'connection',
  'content-length', 'content-type', 'cookie', 'expect', 'host', 'if-modified-since', 'if-none-match',
  'origin', 'pragma', 'range', 'referer', 'sec-fetch-dest', 'sec-fetch-mode', 'sec-fetch-site',
  'sec-websocket-extensions', 'sec-websocket-key', 'sec-websocket-protocol', 'sec-websocket-version',
  'te', 'traceparent', 'transfer-encoding', 'upgrade', 'user-agent', 'x-forwarded-for',
  'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-proto', 'x-real-ip', 'x-request-id',
];

/** By length: the names and their bytes. */
const BY_LENGTH: { name: string; bytes: Uint8Array }[][] = [];
for (const name of COMMON) (BY_LENGTH[name.length] ??= []).push({ name, bytes: Buffer.from(name, 'latin1') });

/**
 * The lower-case constant for the field name in `bytes[from, from + length)`
 * when it is a common one, in any case; undefined otherwise. The bytes must
 * be a token (tchar only): or-ing in the case bit then maps nothing but a
 * letter's two cases onto a letter, and keeps digits and `-` as they are.
 */
export function knownName(bytes: Uint8Array, from: number, length: number): string | undefined {
  const candidates = BY_LENGTH[length];
  if (candidates === undefined) return undefined;
  for (const c of candidates) {
    const lower = c.bytes;
    let i = 0;
    while (i < length && (bytes[from + i]! | 0x20) === lower[i]) i++;
    if (i === length) return c.name;
  }
  return undefined;
}
