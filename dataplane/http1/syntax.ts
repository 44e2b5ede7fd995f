// HTTP/1.1 field syntax (RFC 9110 §5, RFC 9112), shared by the request parser
// of the traffic server and the response parser of the upstream client.

// tchar (RFC 9110 §5.6.2), by character code.
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

/** `s[from, to)` is a non-empty-or-empty run of tchar (callers check emptiness). */
export function isToken(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TCHAR[c] === 0) return false;
  }
  return true;
}

/**
 * Field values and reason phrases: HTAB, SP, visible ASCII and obs-text; no
 * other control character, and nothing above latin1, which heads are written
 * in: a latin1 write keeps a character's low byte, so U+010A would go out as
 * LF (node:http refuses the same set).
 */
export function isFieldValue(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return false;
  }
  return true;
}

/**
 * `s[from, to)` equals `lower` ignoring ASCII case, without building a
 * lower-cased copy: header names are compared so for every field of every
 * message. `lower` holds lower-case letters, digits and `-` only (the case
 * bit is or-ed in), and `s[from, to)` is a token (no control character can
 * then pass for `-`).
 */
export function sameToken(s: string, from: number, to: number, lower: string): boolean {
  if (to - from !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if ((s.charCodeAt(from + i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/** A lower-case token as latin1 bytes, for {@link sameTokenBytes}. */
export function tokenBytes(lower: string): Uint8Array {
  return Uint8Array.from(Buffer.from(lower, 'latin1'));
}

/**
 * {@link sameToken} on a head's bytes (`bytes[from, from + length)`), for
 * parsers that scan bytes: reading a typed array costs less than
 * `charCodeAt`, which checks the string's representation per character.
 */
export function sameTokenBytes(bytes: Uint8Array, from: number, length: number, lower: Uint8Array): boolean {
  if (length !== lower.length) return false;
  for (let i = 0; i < length; i++) if ((bytes[from + i]! | 0x20) !== lower[i]) return false;
  return true;
}

/**
 * Reads one field line of a head in one pass: the name's tchars up to the
 * colon, whitespace, then the value's characters (HTAB, SP, visible ASCII,
 * obs-text) up to CRLF or `size` (where the head ends). It reads the head's
 * bytes, not its string: `bytes[base + i]` is the head's character `i`
 * (latin1). A typed array's element loads cost a fraction of `charCodeAt`,
 * which checks the string's representation at every character: ~2.5× faster
 * over a response head (docs/benchmarks.md item 22). A parser keeps one and
 * reuses it for every line; a line it does not take (false) breaks one of
 * the rules, and the parser's own checks, one by one, say which. Every
 * line they accept, this takes with the same parts.
 */
export class FieldLineScan implements FieldLineParts {
  /** Where the colon is. */
  colon = 0;
  /** Where the value starts and stops, surrounding whitespace excluded. */
  start = 0;
  stop = 0;
  /** Where the line ends (its CR, or `size`). */
  end = 0;

  scan(bytes: Uint8Array, base: number, pos: number, size: number): boolean {
    const last = base + size;
    let i = base + pos;
    let c = 0;
    while (i < last && (c = bytes[i]!) < 128 && TCHAR[c] === 1) i++;
    if (i === base + pos || i === last || c !== 0x3a) return false;
    const colon = i;
    i++;
    while (i < last && ((c = bytes[i]!) === 0x20 || c === 0x09)) i++;
    const start = i;
    let stop = i;
    for (; i < last; i++) {
      c = bytes[i]!;
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) break;
      if (c !== 0x20 && c !== 0x09) stop = i + 1;
    }
    if (i < last && (c !== 0x0d || bytes[i + 1] !== 0x0a)) return false;
    this.colon = colon - base;
    this.start = start - base;
    this.stop = stop - base;
    this.end = i - base;
    return true;
  }
}

/** What is wrong with a field line: no colon after a non-empty name, a name that is not a token, a bad value. */
export type FieldLineFault = 'malformed' | 'name' | 'value';

/** Where a field line's parts are (as FieldLineScan sets them). */
export interface FieldLineParts {
  readonly colon: number;
  readonly start: number;
  readonly stop: number;
  readonly end: number;
}

/**
 * A field line checked piece by piece, for the lines FieldLineScan does not
 * take: its parts, or the parser's error for the first rule it breaks
 * (`fail` words it). FieldLineScan accepts exactly the lines this does.
 * The head ends at `size`.
 */
export function checkedFieldLine(text: string, pos: number, fail: (fault: FieldLineFault) => Error, size = text.length): FieldLineParts {
  let end = text.indexOf('\r\n', pos);
  if (end < 0 || end > size) end = size;
  const colon = text.indexOf(':', pos);
  if (colon <= pos || colon > end) throw fail('malformed');
  if (!isToken(text, pos, colon)) throw fail('name');
  let start = colon + 1;
  let stop = end;
  while (start < stop && (text.charCodeAt(start) === 0x20 || text.charCodeAt(start) === 0x09)) start++;
  while (stop > start && (text.charCodeAt(stop - 1) === 0x20 || text.charCodeAt(stop - 1) === 0x09)) stop--;
  if (!isFieldValue(text, start, stop)) throw fail('value');
  return { colon, start, stop, end };
}

/** A request target's characters: visible ASCII and obs-text (no space, control or DEL). */
export function isTarget(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c > 0xff) return false;
  }
  return true;
}

/** A comma-separated header value (or repeated field) as lower-case tokens, empty ones dropped. */
export function commaTokens(value: string | string[] | undefined): readonly string[] {
  if (value === undefined) return NO_TOKENS;
  // The usual case, one token (`keep-alive`, `13`), without split and trim;
  // the commonest in lower case already as shared lists, not lowered and wrapped per message.
  if (typeof value === 'string' && value.indexOf(',') < 0) {
    if (value === 'keep-alive') return KEEP_ALIVE;
    if (value === 'close') return CLOSE;
    if (value === 'chunked') return CHUNKED;
    return value === '' ? NO_TOKENS : [value.toLowerCase()];
  }
  const joined = Array.isArray(value) ? value.join(',') : value;
  const out: string[] = [];
  for (const t of joined.split(',')) {
    const token = t.trim().toLowerCase();
    if (token !== '') out.push(token);
  }
  return out;
}

const NO_TOKENS: readonly string[] = [];
const KEEP_ALIVE: readonly string[] = ['keep-alive'];
const CLOSE: readonly string[] = ['close'];
const CHUNKED: readonly string[] = ['chunked'];

const DIGITS = /^\d{1,15}$/;

/**
 * The value of Content-Length fields, or undefined when there is none; -1
 * when malformed. Repeated or listed lengths count only when they all agree
 * (RFC 9110 §8.6).
 */
export function contentLengthOf(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  // The usual case, one field of 1-15 digits, without split, test and every.
  if (typeof value === 'string' && value.length > 0 && value.length <= 15) {
    let n = 0;
    for (let i = 0; i < value.length; i++) {
      const d = value.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) {
        n = -1;
        break;
      }
      n = n * 10 + d;
    }
    if (n >= 0) return n;
  }
  const values = commaTokens(value);
  if (values.length === 0 || !values.every((v) => DIGITS.test(v) && v === values[0])) return -1;
  return Number(values[0]);
}
