// The parsers read field lines in one pass (http1/syntax.ts FieldLineScan)
// and leave every line it does not take to their checks one by one
// (lineParts). This holds the two to the same verdict on mutated heads.
import { expect } from 'vitest';
import type { FieldLineParts } from '../../dataplane/http1/syntax.ts';

/**
 * For each input whose head ends and whose first line `firstLineOk` accepts:
 * the names and values `lineParts` makes of its field lines, or its error's
 * message, must be what `parse` reports for the whole input (`[name, value,
 * …]`, or the parser's error message; undefined when the parser reported
 * nothing to compare, such as an error after the fields). Returns how many
 * inputs were compared as accepted and as refused in their fields.
 */
export function expectScanAgreesWithLineParts(
  inputs: readonly string[],
  firstLineOk: (line: string) => boolean,
  lineParts: (text: string, pos: number) => FieldLineParts,
  parse: (input: string) => readonly string[] | string | undefined,
): { accepted: number; refused: number } {
  let accepted = 0;
  let refused = 0;
  for (const input of inputs) {
    const end = input.indexOf('\r\n\r\n');
    if (end < 0) continue;
    const text = input.slice(0, end);
    const eol = text.indexOf('\r\n');
    if (eol < 0 || !firstLineOk(text.slice(0, eol))) continue;
    let expected: string[] | string = [];
    let pos = eol + 2;
    try {
      while (pos < text.length) {
        const p = lineParts(text, pos);
        expected.push(text.slice(pos, p.colon), text.slice(p.start, p.stop));
        pos = p.end + 2;
      }
    } catch (err) {
      expected = (err as Error).message;
    }
    const got = parse(input);
    if (typeof expected === 'string') {
      refused++;
      expect(got, JSON.stringify(input)).toBe(expected);
    } else if (Array.isArray(got)) {
      accepted++;
      expect(got, JSON.stringify(input)).toEqual(expected);
    }
  }
  return { accepted, refused };
}
