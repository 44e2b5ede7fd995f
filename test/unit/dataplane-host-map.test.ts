import { describe, expect, it } from 'vitest';
import { normalizeHost, wildcardParent } from '../../dataplane/routing/host.ts';
import { HostMap } from '../../dataplane/routing/host-map.ts';

describe('normalizeHost', () => {
  it.each<[string | undefined, string]>([
    ['example.com', 'example.com'],
    ['Example.COM', 'example.com'],
    ['example.com:8080', 'example.com'],
    ['example.com.', 'example.com'],
    ['example.com.:80', 'example.com'],
    ['[::1]', '[::1]'],
    ['[::1]:8080', '[::1]'],
    ['[2001:DB8::1]:443', '[2001:db8::1]'],
    ['10.0.0.1:80', '10.0.0.1'],
    ['', ''],
    [undefined, ''],
  ])('%s → %s', (raw, want) => {
    expect(normalizeHost(raw)).toBe(want);
  });
});

describe('wildcardParent', () => {
  it.each<[string, string | undefined]>([
    ['a.example.com', 'example.com'],
    ['b.a.example.com', 'a.example.com'],
    ['example', undefined],
    ['.example.com', undefined],
    ['10.0.0.1', undefined],
    ['[::1]', undefined],
    ['[::ffff:10.0.0.1]', undefined],
  ])('%s → %s', (host, want) => {
    expect(wildcardParent(host)).toBe(want);
  });
});

describe('HostMap', () => {
  const map = new HostMap<string>();
  map.add('www.example.com', 'exact');
  map.add('*.example.com', 'wild');
  map.add('*.a.example.com', 'wild-a');
  map.add('example.com', 'apex');
  map.add('*', 'any');

  it.each<[string, string]>([
    ['www.example.com', 'exact'],
    ['api.example.com', 'wild'],
    ['example.com', 'apex'],
    // Single label only: b.a.example.com is not under *.example.com...
    ['x.a.example.com', 'wild-a'],
    // ...and a deeper name falls through to the catch-all.
    ['x.y.a.example.com', 'any'],
    ['other.org', 'any'],
    ['', 'any'],
    ['[::1]', 'any'],
    ['10.0.0.1', 'any'],
  ])('%s → %s', (host, want) => {
    expect(map.lookup(host)).toBe(want);
  });

  it('has no match without a catch-all', () => {
    const m = new HostMap<string>();
    m.add('*.example.com', 'wild');
    expect(m.lookup('example.com')).toBeUndefined();
    expect(m.lookup('a.b.example.com')).toBeUndefined();
    expect(m.lookup('a.example.com')).toBe('wild');
  });

  it('keeps the first value for a pattern added twice', () => {
    const m = new HostMap<string>();
    expect(m.add('a.test', 'first')).toBe(true);
    expect(m.add('a.test', 'second')).toBe(false);
    expect(m.add('*', '1')).toBe(true);
    expect(m.add('*', '2')).toBe(false);
    expect(m.lookup('a.test')).toBe('first');
  });
});
