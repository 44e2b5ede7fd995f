// The ingress-nginx annotation catalog against its documentation, and the
// value parsers the translator uses for annotations.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ANNOTATIONS } from '../../controller/translate/annotations/catalog.ts';
import { parseHashBy, parseRedirectUrl } from '../../controller/translate/annotations/ingress.ts';
import { parseBool, parseNginxSize, parseSeconds } from '../../controller/translate/annotations/values.ts';

const DOC = readFileSync(new URL('../../docs/annotations.md', import.meta.url), 'utf8');
const STATUS = { supported: 'Supported', partial: 'Partly', unsupported: 'No' } as const;

/** Table rows of the doc: annotation names in the first column → status column. */
function documented(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of DOC.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4 || !cells[1]!.startsWith('`') || !['Supported', 'Partly', 'No'].includes(cells[2]!)) continue;
    for (const m of cells[1]!.matchAll(/`([a-z0-9-]+)`/g)) out.set(m[1]!, cells[2]!);
  }
  return out;
}

describe('docs/annotations.md', () => {
  const rows = documented();

  it('lists every annotation PyServe knows, with its status', () => {
    const wrong = Object.entries(ANNOTATIONS)
      .filter(([name, info]) => rows.get(name) !== STATUS[info.support])
      .map(([name, info]) => `${name}: catalog ${STATUS[info.support]}, doc ${rows.get(name) ?? 'missing'}`);
    expect(wrong).toEqual([]);
  });

  it('lists nothing the catalog does not know', () => {
    expect([...rows.keys()].filter((n) => !(n in ANNOTATIONS))).toEqual([]);
  });

  it('says which annotations fail closed', () => {
    for (const [name, info] of Object.entries(ANNOTATIONS)) {
      if (info.failClosed !== true) continue;
      expect(DOC, name).toMatch(new RegExp(`\\| \`${name}\` \\| No \\| Fails closed`));
    }
  });
});

describe('annotation values', () => {
  it.each([
    ['8m', 8 * 1024 * 1024], ['512K', 512 * 1024], ['1g', 1024 ** 3], ['0', 0], ['1048576', 1_048_576], [' 2k ', 2048],
  ])('size %j is %i bytes', (text, bytes) => {
    expect(parseNginxSize(text)).toEqual({ ok: true, value: bytes });
  });

  it.each(['8mb', '1.5m', '-1', 'm', ''])('size %j is refused', (text) => {
    expect(parseNginxSize(text).ok).toBe(false);
  });

  it.each([
    ['60', 60_000], ['0', 0], ['500ms', 500], ['1m30s', 90_000], ['1h', 3_600_000], ['1d', 86_400_000],
  ])('time %j is %i ms', (text, ms) => {
    expect(parseSeconds(text)).toEqual({ ok: true, value: ms });
  });

  it.each(['ten', '-1', '1.5', '10 s', ''])('time %j is refused', (text) => {
    expect(parseSeconds(text).ok).toBe(false);
  });

  it.each([['true', true], ['True', true], ['1', true], ['false', false], ['F', false]])('bool %j', (text, value) => {
    expect(parseBool(text)).toEqual({ ok: true, value });
  });

  it.each([
    ['$request_uri', { type: 'RequestURI' }],
    ['${remote_addr}', { type: 'SourceIP' }],
    ['$binary_remote_addr', { type: 'SourceIP' }],
    ['$http_x_api_key', { type: 'Header', name: 'x-api-key' }],
    ['$cookie_Session_ID', { type: 'Cookie', name: 'Session_ID' }],
    ['$arg_tenantId', { type: 'QueryParameter', name: 'tenantId' }],
  ])('upstream-hash-by %s', (text, hashOn) => {
    expect(parseHashBy(text)).toEqual({ ok: true, value: hashOn });
  });

  it.each(['$request_uri$host', '${request_uri}-text', 'plain', '$http_', '$host'])('upstream-hash-by %j is refused', (text) => {
    expect(parseHashBy(text).ok).toBe(false);
  });

  it.each([
    ['https://new.example.com', { scheme: 'https', hostname: 'new.example.com', path: { type: 'ReplaceFullPath', value: '/' }, query: '' }],
    ['http://NEW.example.com:8080/a/b?c=d', { scheme: 'http', hostname: 'new.example.com', port: 8080, path: { type: 'ReplaceFullPath', value: '/a/b' }, query: 'c=d' }],
    ['https://www.example.com$request_uri', { scheme: 'https', hostname: 'www.example.com' }],
    ['https://www.example.com:444${request_uri}', { scheme: 'https', hostname: 'www.example.com', port: 444 }],
  ])('redirect %s', (text, value) => {
    expect(parseRedirectUrl(text)).toEqual({ ok: true, value });
  });

  it.each(['/relative', 'ftp://x.example.com/', 'https://$host/x', 'https://user:pw@x.example.com/', 'https://x.example.com/#frag', 'https://x.example.com/a$request_uri'])('redirect %j is refused', (text) => {
    expect(parseRedirectUrl(text).ok).toBe(false);
  });
});
