// Integer flags: one parser (dataplane/int-flag.ts) for the dataplane's
// options and `pyserve controller`'s flags.
import { describe, expect, it } from 'vitest';
import { intFlag, IntFlagError, parseIntFlag } from '../../dataplane/int-flag.ts';
import { parseControllerArgs, UsageError } from '../../controller/controller-cli.ts';

describe('integer flags (dataplane/int-flag.ts, shared with pyserve controller)', () => {
  it('parses decimal integers within bounds', () => {
    expect(parseIntFlag('0', 0, 10)).toBe(0);
    expect(parseIntFlag('10', 0, 10)).toBe(10);
    expect(parseIntFlag('-5', -10)).toBe(-5);
    expect(parseIntFlag(7, 0)).toBe(7);
  });

  it.each([['11', 0, 10], ['-1', 0, 10], ['', 0, 10], ['1.5', 0, 10], ['1e1', 0, 10], ['9007199254740993', 0, undefined]] as const)(
    'refuses %j in [%d, %s]', (v, min, max) => {
      expect(() => parseIntFlag(v, min, max)).toThrow(IntFlagError);
    });

  it('says the range, open-ended when there is no maximum', () => {
    expect(() => parseIntFlag('x', 2)).toThrow('must be an integer >= 2, got "x"');
    expect(() => parseIntFlag('99', 1, 10)).toThrow('must be an integer from 1 to 10, got "99"');
  });

  it('as a zod schema: the same rule, and defaults', () => {
    expect(intFlag(1, 5).safeParse('3')).toMatchObject({ success: true, data: 3 });
    expect(intFlag(1, 5).safeParse('6').success).toBe(false);
    expect(intFlag(1, 5).default(4).parse(undefined)).toBe(4);
  });
});

describe('pyserve controller integer flags', () => {
  const base = ['--dataplane-service', 'pyserve/pyserve-admin'];
  const env = { PYSERVE_PUSH_TOKEN: 't' };

  it('parses them, with the flag named in the message', () => {
    expect(parseControllerArgs([...base, '--metrics-port', '9100', '--resync-seconds', '2'], env)).toMatchObject({ metricsPort: 9100, resyncMs: 2000 });
    expect(() => parseControllerArgs([...base, '--metrics-port', '70000'], env)).toThrow('--metrics-port must be an integer from 0 to 65535, got "70000"');
    expect(() => parseControllerArgs([...base, '--lease-duration-seconds', '1'], env)).toThrow('--lease-duration-seconds must be an integer >= 2, got "1"');
  });

  it('refuses what Number() would coerce: "" is not 0, "1e3" is not 1000', () => {
    expect(() => parseControllerArgs([...base, '--holdoff-ms', ''], env)).toThrow(UsageError);
    expect(() => parseControllerArgs([...base, '--max-delay-ms', '1e3'], env)).toThrow(/--max-delay-ms must be an integer/);
  });
});
