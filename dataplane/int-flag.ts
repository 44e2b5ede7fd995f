// Integer command-line values, parsed one way for both programs: the
// dataplane's options (through zod, {@link intFlag}) and `pyserve controller`
// ({@link parseIntFlag}). Strict on purpose: Number() and z.coerce.number()
// take "" as 0 and accept " 8", "1e3", "0x10" and "8.0", none of which anyone
// means as a port or a timeout.
import { z } from 'zod';

/** Thrown by {@link parseIntFlag}; the message reads after the flag's name. */
export class IntFlagError extends Error {}

/** `value` as an integer in [min, max]: decimal digits only, with a leading `-` for negatives. */
export function parseIntFlag(value: string | number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'number' ? value : /^-?\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new IntFlagError(`must be an integer ${range}, got "${value}"`);
  }
  return n;
}

/** zod schema of an integer flag or environment value in [min, max] (see {@link parseIntFlag}). */
export function intFlag(min: number, max = Number.MAX_SAFE_INTEGER) {
  return z.union([z.string(), z.number()]).transform((v, ctx) => {
    try {
      return parseIntFlag(v, min, max);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });
}
