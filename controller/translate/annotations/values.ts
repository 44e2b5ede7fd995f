// Parsers for ingress-nginx annotation values. Each returns the value or a
// message saying what was expected; the caller turns a message into an
// InvalidAnnotation failure on the annotation it read.

/** A parsed value, or why it is not one. */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(message: string): Parsed<T> => ({ ok: false, message });

const TRUE = new Set(['true', 'True', 'TRUE', 't', 'T', '1']);
const FALSE = new Set(['false', 'False', 'FALSE', 'f', 'F', '0']);

/** A boolean, spelled as Go's strconv.ParseBool accepts it (ingress-nginx parses them so). */
export function parseBool(text: string): Parsed<boolean> {
  const t = text.trim();
  if (TRUE.has(t)) return ok(true);
  if (FALSE.has(t)) return ok(false);
  return bad(`${JSON.stringify(text)} is not "true" or "false"`);
}

/** A whole number from `min` to `max`. */
export function parseInt(text: string, min: number, max: number): Parsed<number> {
  const t = text.trim();
  if (!/^-?[0-9]{1,16}$/.test(t)) return bad(`${JSON.stringify(text)} is not a whole number`);
  const n = Number(t);
  if (n < min || n > max) return bad(`${n} is not from ${min} to ${max}`);
  return ok(n);
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** An nginx size (`client_max_body_size`): bytes, or a number with `k`, `m` or `g` (either case). */
export function parseNginxSize(text: string): Parsed<number> {
  const m = /^([0-9]{1,15})([kKmMgG]?)$/.exec(text.trim());
  if (m === null) return bad(`${JSON.stringify(text)} is not an nginx size such as 8m, 512k or 1048576`);
  const bytes = Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(bytes)) return bad(`${JSON.stringify(text)} is too large`);
  return ok(bytes);
}

const TIME_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A timeout in milliseconds: whole seconds as ingress-nginx documents them
 * (`"60"`), or nginx time syntax (`500ms`, `1m30s`), whose parts add up.
 */
export function parseSeconds(text: string): Parsed<number> {
  const t = text.trim();
  if (/^[0-9]{1,9}$/.test(t)) return ok(Number(t) * 1000);
  if (!/^([0-9]{1,9}(ms|s|m|h|d))+$/.test(t)) return bad(`${JSON.stringify(text)} is not a number of seconds (or an nginx time such as 500ms or 1m30s)`);
  let ms = 0;
  for (const [, n, unit] of t.matchAll(/([0-9]+)(ms|s|m|h|d)/g)) ms += Number(n) * TIME_UNITS[unit!]!;
  return ok(ms);
}

/** Comma-separated items, trimmed, empty ones dropped. */
export function parseList(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** An HTTP token (header or cookie name). */
export function isToken(text: string): boolean {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/.test(text);
}
