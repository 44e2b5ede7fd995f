import { describe, expect, it } from 'vitest';
import { CATCH_ALL_HOST, normaliseHost } from '../../controller/translate/hosts.ts';
import { Hostname } from '../../dataplane/snapshot/schema.ts';

describe('normaliseHost', () => {
  it.each([
    [undefined, '*'],
    [null, '*'],
    ['', '*'],
    ['example.com', 'example.com'],
    ['Example.COM', 'example.com'],
    ['*.example.com', '*.example.com'],
    ['*.Example.com', '*.example.com'],
    ['*.com', '*.com'],
    ['localhost', 'localhost'],
    ['a-b.c-d.example', 'a-b.c-d.example'],
    ['1.example.com', '1.example.com'],
    ['x'.repeat(63) + '.com', 'x'.repeat(63) + '.com'],
  ])('%j → %j', (raw, host) => {
    const r = normaliseHost(raw);
    expect(r).toEqual({ ok: true, host });
    // Whatever it accepts, the snapshot schema must accept too.
    expect(Hostname.safeParse(host).success).toBe(true);
  });

  it.each([
    ['*', 'leave the host empty'],
    ['*.*.example.com', 'bad label "*"'],
    ['a.*.example.com', 'bad label "*"'],
    ['*example.com', 'bad label "*example"'],
    ['foo*.example.com', 'bad label "foo*"'],
    ['example.com.', 'bad label ""'],
    ['.example.com', 'bad label ""'],
    ['-a.example.com', 'bad label "-a"'],
    ['a-.example.com', 'bad label "a-"'],
    ['under_score.com', 'bad label "under_score"'],
    ['10.0.0.1', 'not an IP address'],
    ['example.com:80', 'host:port'],
    ['::1', 'not an IP address'],
    ['x'.repeat(64) + '.com', 'bad label'],
    [('a'.repeat(60) + '.').repeat(5) + 'com', 'at most 253'],
  ])('%j is invalid (%s)', (raw, message) => {
    const r = normaliseHost(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain(message);
  });

  it('names the catch-all host "*"', () => {
    expect(CATCH_ALL_HOST).toBe('*');
  });
});
