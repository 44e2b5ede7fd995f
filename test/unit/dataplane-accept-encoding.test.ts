import { describe, expect, it } from 'vitest';
import { negotiateEncoding } from '../../dataplane/middleware/accept-encoding.ts';
import type { Coding } from '../../dataplane/middleware/accept-encoding.ts';

const ALL: Coding[] = ['zstd', 'br', 'gzip', 'deflate'];

describe('negotiateEncoding', () => {
  it.each<[string | undefined, Coding | undefined]>([
    [undefined, undefined],
    ['', undefined],
    ['identity', undefined],
    ['gzip', 'gzip'],
    ['GZip', 'gzip'],
    ['x-gzip', 'gzip'],
    ['deflate, gzip, br, zstd', 'zstd'], // curl --compressed: ties go to the server's order
    ['gzip, deflate, br', 'br'], // older browsers
    ['gzip;q=0.5, br;q=0.8', 'br'],
    ['gzip;q=1.0, br;q=0.999', 'gzip'],
    ['br;q=0, gzip', 'gzip'],
    ['gzip;q=0', undefined],
    ['*', 'zstd'],
    ['*;q=0.5, gzip', 'gzip'],
    ['*;q=0', undefined],
    ['*;q=0, identity', undefined],
    ['gzip;q=0.5, identity', undefined], // identity ranked above the only coding
    ['gzip;q=0.5, identity;q=0.4', 'gzip'],
    ['br;q=0.9, gzip;q=0.8', 'br'], // identity unmentioned does not outrank
    ['compress, lzma', undefined],
    ['gzip;q=2', undefined], // not a qvalue: the header is not understood
    ['gzip;q=abc', undefined],
    ['gzip ; q=0.7 , br ; q=0.6', 'gzip'],
    ['gzip, gzip;q=0', 'gzip'], // first occurrence wins
  ])('%j → %j', (header, expected) => {
    expect(negotiateEncoding(header, ALL)).toBe(expected);
  });

  it('only offers the route\'s codings, in its order', () => {
    expect(negotiateEncoding('zstd, br, gzip', ['gzip'])).toBe('gzip');
    expect(negotiateEncoding('zstd, br', ['gzip', 'deflate'])).toBeUndefined();
    expect(negotiateEncoding('br, gzip', ['gzip', 'br'])).toBe('gzip');
    expect(negotiateEncoding(['gzip;q=0.1', 'deflate'], ALL)).toBe('deflate');
  });
});
