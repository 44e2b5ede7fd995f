import { describe, expect, it } from 'vitest';
import { normalisePath } from '../../controller/translate/paths.ts';

describe('normalisePath', () => {
  it.each([
    // [pathType, path, type, value]
    ['Prefix', '/', 'Prefix', '/'],
    ['Prefix', '/foo', 'Prefix', '/foo'],
    ['Prefix', '/foo/', 'Prefix', '/foo'],
    ['Prefix', '/foo/bar/', 'Prefix', '/foo/bar'],
    ['Prefix', '/Foo', 'Prefix', '/Foo'],
    ['Exact', '/foo/', 'Exact', '/foo/'],
    ['Exact', '/', 'Exact', '/'],
    ['ImplementationSpecific', '/app/', 'Prefix', '/app'],
    ['ImplementationSpecific', '', 'Prefix', '/'],
    ['ImplementationSpecific', undefined, 'Prefix', '/'],
    [undefined, '/legacy', 'Prefix', '/legacy'],
    [null, null, 'Prefix', '/'],
    ['', '/x', 'Prefix', '/x'],
    ['Prefix', '/a.b/~c-d_e', 'Prefix', '/a.b/~c-d_e'],
    ['Prefix', '/..a', 'Prefix', '/..a'],
    ['Exact', '/%20', 'Exact', '/%20'],
  ] as const)('%s %j → %s %j', (pathType, path, type, value) => {
    expect(normalisePath(pathType, path)).toEqual({ ok: true, match: { type, value } });
  });

  it.each([
    ['Prefix', 'foo', 'InvalidPath', 'must start with "/"'],
    ['Exact', '', 'InvalidPath', 'path is required with pathType Exact'],
    ['Prefix', undefined, 'InvalidPath', 'path is required with pathType Prefix'],
    ['Prefix', '//', 'InvalidPath', 'must not contain "//"'],
    ['Prefix', '/a//b', 'InvalidPath', 'must not contain "//"'],
    ['Exact', '/a/./b', 'InvalidPath', 'must not contain "/./"'],
    ['Exact', '/a/../b', 'InvalidPath', 'must not contain "/../"'],
    ['Prefix', '/a%2fb', 'InvalidPath', 'must not contain "%2f"'],
    ['ImplementationSpecific', '/a%2Fb', 'InvalidPath', 'must not contain "%2F"'],
    ['Prefix', '/a/..', 'InvalidPath', 'must not end with "/.."'],
    ['Prefix', '/a/.', 'InvalidPath', 'must not end with "/."'],
    ['Prefix', '/a?b', 'InvalidPath', 'no request path can match it'],
    ['Prefix', '/a#b', 'InvalidPath', 'no request path can match it'],
    ['Prefix', '/a b', 'InvalidPath', 'no request path can match it'],
    ['Prefix', '/a\tb', 'InvalidPath', 'no request path can match it'],
    ['Prefix', '/' + 'a'.repeat(4096), 'InvalidPath', 'at most 4096'],
    ['Regex', '/a.*', 'InvalidPathType', 'is not one of Exact, Prefix, ImplementationSpecific'],
    ['prefix', '/a', 'InvalidPathType', 'is not one of'],
  ] as const)('%s %j fails with %s', (pathType, path, reason, message) => {
    const r = normalisePath(pathType, path);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.reason).toBe(reason);
    expect(r.field).toBe(reason === 'InvalidPathType' ? 'pathType' : 'path');
    expect(r.message).toContain(message);
  });

  it('rejects non-string input from hand-written manifests', () => {
    expect(normalisePath('Prefix', 42 as unknown as string).ok).toBe(false);
    expect(normalisePath(7 as unknown as string, '/').ok).toBe(false);
  });
});
