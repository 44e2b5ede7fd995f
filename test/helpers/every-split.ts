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

// Bytes framing depends on, where split-dependent verdicts hide.
const FRAMING_BYTES = [0x0d, 0x0a, 0x20, 0x3a, 0x3b, 0x30, 0x31, 0x09, 0x00, 0x7f, 0x41];

/**
 * `count` mutations of `seeds`: one or two bytes replaced, inserted or
 * removed, at places and with values from a fixed-seed generator (mulberry32),
 * so every run tests the same inputs; inserted bytes favour FRAMING_BYTES.
 */
export function mutatedInputs(seeds: readonly string[], count: number, seed: number): string[] {
  let state = seed | 0;
  const random = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const mutate = (input: string): string => {
    const at = Math.floor(random() * input.length);
    const c = String.fromCharCode(random() < 0.7 ? pick(FRAMING_BYTES) : Math.floor(random() * 256));
    const kind = random();
    if (kind < 0.4) return input.slice(0, at) + c + input.slice(at + 1);
    if (kind < 0.8) return input.slice(0, at) + c + input.slice(at);
    return input.slice(0, at) + input.slice(at + 1);
  };
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    let input = pick(seeds);
    const n = 1 + Math.floor(random() * 2);
    for (let j = 0; j < n; j++) input = mutate(input);
    out.push(input);
  }
  return out;
}
