// Incremental parsers must reach the same verdict however their input is cut
// into pieces. These helpers feed one input whole, byte by byte and split in
// two at every offset, and require the results to agree.
import { expect } from 'vitest';

export const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

/** The input split in two at `i`. */
const splitAt = (b: Buffer, i: number): Buffer[] => [b.subarray(0, i), b.subarray(i)];

/** The input one byte per piece. */
const bytewise = (b: Buffer): Buffer[] => Array.from({ length: b.length }, (_, i) => b.subarray(i, i + 1));

/**
 * A result with its error (`kind: message`) reduced to the kind: an input with
 * two faults (a bare LF that also breaks a status or header line) may be
 * reported by either, depending on which the parser sees first, but always
 * with the same kind (a code, a status).
 */
const byKind = <T extends { error: string | undefined }>(p: T): T => ({ ...p, error: p.error?.split(':')[0] });

/** Parse `input` whole, byte by byte, and split at every offset; all must agree. Returns the whole-input result. */
export function parseEverySplit<T extends { error: string | undefined }>(input: string, parse: (pieces: Buffer[]) => T): T {
  const b = bytes(input);
  const whole = parse([b]);
  const expected = byKind(whole);
  expect(byKind(parse(bytewise(b))), 'byte by byte').toEqual(expected);
  for (let i = 0; i <= b.length; i++) {
    const split = byKind(parse(splitAt(b, i)));
    if (JSON.stringify(split) !== JSON.stringify(expected)) expect({ splitAt: i, ...split }).toEqual({ splitAt: i, ...expected });
  }
  return whole;
}
