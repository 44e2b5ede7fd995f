// Table tests of the request and response transforms (dataplane/transforms)
// and of cookie conditions: the pure pieces the integration test then runs
// through a real dataplane.
import { describe, expect, it } from 'vitest';
import { compilePathRewrite, compilePrefixReplace, compileRegexReplace, parseSubstitution } from '../../dataplane/transforms/path.ts';
import { compileHeaderEdits, editFlatHeaders, editHeaderObject } from '../../dataplane/transforms/headers.ts';
import { compileRedirect, hostHeaderPort } from '../../dataplane/transforms/redirect.ts';
import { compileTransforms, NO_TRANSFORMS, upstreamPathAndQuery } from '../../dataplane/transforms/index.ts';
import { compileConditions, parseCookies } from '../../dataplane/routing/conditions.ts';
import { Snapshot } from '../../dataplane/snapshot/schema.ts';
import { validateSnapshot } from '../../dataplane/snapshot/validate.ts';
import { buildSnapshot } from '../../dataplane/snapshot/build.ts';
import type { Route } from '../../dataplane/snapshot/schema.ts';

describe('ReplacePrefixMatch (Gateway API table)', () => {
  it.each([
    ['/foo', '/xyz', '/foo/bar', '/xyz/bar'],
    ['/foo', '/xyz/', '/foo/bar', '/xyz/bar'],
    ['/foo/', '/xyz', '/foo/bar', '/xyz/bar'],
    ['/foo/', '/xyz/', '/foo/bar', '/xyz/bar'],
    ['/foo', '/xyz', '/foo', '/xyz'],
    ['/foo', '/xyz', '/foo/', '/xyz/'],
    ['/foo', '/', '/foo/bar', '/bar'],
    ['/foo', '/', '/foo/', '/'],
    ['/foo', '/', '/foo', '/'],
    ['/', '/api', '/x/y', '/api/x/y'],
    ['/a/b', '/c', '/a/b/%2F', '/c/%2F'],
  ])('prefix %s → %s: %s becomes %s', (prefix, value, path, expected) => {
    expect(compilePrefixReplace(prefix, value)(path)).toBe(expected);
  });

  it('refuses a route whose match is not a Prefix', () => {
    expect(() => compilePathRewrite({ type: 'ReplacePrefixMatch', value: '/x' }, { type: 'Exact', value: '/a' })).toThrow(/Prefix/);
  });
});

describe('RegexReplace (nginx rewrite semantics)', () => {
  it.each([
    ['(?i:/api(/|$)(.*))', '/$2', '/api/users/1', '/users/1'],
    ['(?i:/api(/|$)(.*))', '/$2', '/API', '/'],
    ['(?i:/api(/|$)(.*))', '/$2', '/other', '/other'],
    ['(?i:/app)', '/', '/app/deep/path', '/'],
    ['/u/([0-9]+)/o/([a-z]+)', '/orders/$2/$1', '/u/42/o/abc', '/orders/abc/42'],
    ['/u/([0-9]+)', '$1', '/u/7', '/7'],
    ['/p/(.*)', '/cost$$/$1', '/p/x', '/cost$/x'],
    ['/p/(.*)', '/$9', '/p/x', '/'],
    ['/p/(.*)', '/a$', '/p/x', '/a$'],
    ['/(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)', '/$10-$11-$1', '/abcdefghijk', '/j-k-a'],
    ['/(a)', '/$10', '/a', '/a0'],
  ])('%s → %s: %s becomes %s', (pattern, substitution, path, expected) => {
    expect(compileRegexReplace(pattern, substitution)(path)).toBe(expected);
  });

  it('parses the substitution once', () => {
    expect(parseSubstitution('/x/$1/$$/$2y', 2)).toEqual(['/x/', 1, '/$/', 2, 'y']);
  });
});

describe('header edits', () => {
  const edits = compileHeaderEdits({ set: [{ name: 'X-Env', value: 'prod' }], add: [{ name: 'X-Tag', value: 'b' }], remove: ['X-Debug'] })!;

  it('remove, then set, then add on the flat request list', () => {
    const out = editFlatHeaders(['X-Env', 'dev', 'x-debug', '1', 'X-Tag', 'a', 'accept', '*/*'], edits);
    expect(out).toEqual(['X-Tag', 'a', 'accept', '*/*', 'x-env', 'prod', 'x-tag', 'b']);
  });

  it('on a response head object', () => {
    const head: Record<string, string | string[]> = { 'x-env': 'dev', 'x-debug': '1', 'x-tag': 'a', 'set-cookie': ['a=1'] };
    editHeaderObject(head, edits);
    expect(head).toEqual({ 'x-env': 'prod', 'x-tag': ['a', 'b'], 'set-cookie': ['a=1'] });
  });

  it('compiles to null when it changes nothing', () => {
    expect(compileHeaderEdits(undefined)).toBeNull();
    expect(compileHeaderEdits({})).toBeNull();
  });
});

describe('redirects', () => {
  const req = { secure: false, host: 'shop.example.com', hostHeader: 'shop.example.com:8080', path: '/old/page', rawQuery: 'a=1' };

  it.each([
    [{ status: 301 }, 'http://shop.example.com:8080/old/page?a=1'],
    [{ status: 308, scheme: 'https' }, 'https://shop.example.com/old/page?a=1'],
    [{ status: 302, scheme: 'https', port: 8443 }, 'https://shop.example.com:8443/old/page?a=1'],
    [{ status: 302, hostname: 'new.example.com' }, 'http://new.example.com:8080/old/page?a=1'],
    [{ status: 302, scheme: 'http', port: 80 }, 'http://shop.example.com/old/page?a=1'],
    [{ status: 307, path: { type: 'ReplaceFullPath', value: '/new' }, query: '' }, 'http://shop.example.com:8080/new'],
    [{ status: 303, path: { type: 'ReplacePrefixMatch', value: '/new' } }, 'http://shop.example.com:8080/new/page?a=1'],
    [{ status: 302, query: 'b=2' }, 'http://shop.example.com:8080/old/page?b=2'],
  ] as const)('%j → %s', (a, location) => {
    const r = compileRedirect({ type: 'redirect', ...a } as never, { type: 'Prefix', value: '/old' });
    expect(r.status).toBe(a.status);
    expect(r.location(req)).toBe(location);
  });

  it('keeps the scheme of a TLS request and writes no default port', () => {
    const r = compileRedirect({ type: 'redirect', status: 302 }, { type: 'Prefix', value: '/' });
    expect(r.location({ ...req, secure: true, hostHeader: 'shop.example.com' })).toBe('https://shop.example.com/old/page?a=1');
    expect(r.location({ ...req, host: '', hostHeader: undefined })).toBe('/old/page?a=1');
    expect(r.location({ ...req, host: 'evil.example/x', hostHeader: 'evil.example/x' })).toBe('/old/page?a=1');
    expect(r.location({ ...req, host: 'a@evil.example', hostHeader: 'a@evil.example' })).toBe('/old/page?a=1');
  });

  it.each([
    ['a.example.com:8080', 8080],
    ['a.example.com', undefined],
    ['[::1]:9000', 9000],
    ['[::1]', undefined],
    [undefined, undefined],
    ['a:99999', undefined],
  ])('the port of Host %s is %s', (value, port) => {
    expect(hostHeaderPort(value)).toBe(port);
  });
});

describe('route transforms', () => {
  const route = (extra: Partial<Route>): Route => ({ name: 'r', match: { path: { type: 'Prefix', value: '/api' } }, action: { type: 'forward', backends: [{ cluster: 'c', weight: 1 }] }, ...extra });

  it('is the shared empty object for routes without any', () => {
    expect(compileTransforms(route({}))).toBe(NO_TRANSFORMS);
  });

  it('rewrites the path and keeps the query as received', () => {
    const t = compileTransforms(route({ rewrite: { path: { type: 'ReplacePrefixMatch', value: '/' }, host: 'internal:81' } }));
    expect(t.host).toBe('internal:81');
    expect(upstreamPathAndQuery(t, '/api/x', 'q=%20', '/api/x?q=%20')).toBe('/x?q=%20');
    expect(upstreamPathAndQuery(t, '/api/x', '', '/api/x?')).toBe('/x?');
    expect(upstreamPathAndQuery(t, '/api', '', '/api')).toBe('/');
  });
});

describe('cookie conditions', () => {
  it('parses the first occurrence of each cookie, values as sent', () => {
    expect([...parseCookies('a=1; b="x y"; a=2;c=')]).toEqual([['a', '1'], ['b', '"x y"'], ['c', '']]);
    expect([...parseCookies(['a=1', 'b=2'])]).toEqual([['a', '1'], ['b', '2']]);
    expect(parseCookies(undefined).size).toBe(0);
  });

  it('matches exact and regex cookie values; a missing cookie never matches', () => {
    const m = compileConditions({ path: { type: 'Prefix', value: '/' }, cookies: [{ name: 'canary', type: 'Exact', value: 'always' }, { name: 'u', type: 'RegularExpression', value: '^a' }] })!;
    const head = (cookie?: string) => ({ method: 'GET', path: '/', rawQuery: '', headers: cookie === undefined ? {} : { cookie } });
    expect(m(head('canary=always; u=alice'), { params: undefined })).toBe(true);
    expect(m(head('canary=never; u=alice'), { params: undefined })).toBe(false);
    expect(m(head('u=alice'), { params: undefined })).toBe(false);
    expect(m(head(), { params: undefined })).toBe(false);
  });
});

describe('snapshot schema for issue 5 fields', () => {
  const base = (route: Partial<Route>, clusters: object[] = [{ name: 'c', protocol: 'http' }]) => JSON.parse(JSON.stringify(buildSnapshot(1, {
    virtualHosts: [{ name: 'v', hostnames: ['v.test'], routes: [{ name: 'r', match: { path: { type: 'Prefix', value: '/a' } }, action: { type: 'forward', backends: [{ cluster: 'c', weight: 1 }] }, ...route }] }],
    clusters: clusters as never,
  }, { clusters: [] })));

  it('accepts every new field', () => {
    const snap = base({
      rewrite: { path: { type: 'RegexReplace', pattern: '(?i:/a(.*))', substitution: '/b$1' }, host: 'x.internal:8080' },
      requestHeaders: { set: [{ name: 'X-A', value: '1' }], add: [{ name: 'X-B', value: '2' }], remove: ['X-C'] },
      responseHeaders: { remove: ['Server'] },
      retry: { attempts: 2, on: ['connect-failure', '5xx'], statuses: [429], perTryTimeoutMs: 1000, allowNonIdempotent: false, budgetPercent: 20 },
      sessionAffinity: { cookie: { name: 'sid', ttlSeconds: 60, path: '/a', sameSite: 'Lax', secure: true, httpOnly: true } },
      mirrors: [{ cluster: 'c', percent: 12.5 }],
      forceRedirectHttp: true,
      match: { path: { type: 'Prefix', value: '/a' }, cookies: [{ name: 'canary', type: 'Exact', value: 'always' }] },
    }, [{
      name: 'c', protocol: 'http', service: { namespace: 'n', name: 's', port: 80, useClusterIP: true },
      loadBalancer: { policy: 'ConsistentHash', hashOn: { type: 'Header', name: 'x-user' } },
      healthCheck: { path: '/healthz', intervalMs: 1000, timeoutMs: 500, healthyThreshold: 1, unhealthyThreshold: 2, expectedStatuses: [200] },
      outlierDetection: { consecutive5xx: 3, baseEjectionMs: 1000, maxEjectionPercent: 50 },
      panicThresholdPercent: 50,
      circuitBreaker: { maxConnections: 10, maxPendingRequests: 0, maxRequestsPerEndpoint: 5 },
    }]);
    expect(validateSnapshot(snap)).toMatchObject({ ok: true });
  });

  it.each([
    ['a reserved header', { requestHeaders: { set: [{ name: 'Host', value: 'x' }] } }],
    ['a header set twice', { requestHeaders: { set: [{ name: 'X-A', value: '1' }, { name: 'x-a', value: '2' }] } }],
    ['a CRLF in a header value', { responseHeaders: { add: [{ name: 'X-A', value: '1\r\nX-B: 2' }] } }],
    ['a rewrite pattern that does not compile', { rewrite: { path: { type: 'RegexReplace', pattern: '(', substitution: '/' } } }],
    ['a "?" in a substitution', { rewrite: { path: { type: 'RegexReplace', pattern: 'x', substitution: '/a?b' } } }],
    ['a path without a leading slash', { rewrite: { path: { type: 'ReplaceFullPath', value: 'x' } } }],
    ['a redirect status that is not a redirect', { action: { type: 'redirect', status: 200 } }],
    ['retries beyond 10', { retry: { attempts: 11 } }],
  ])('rejects %s', (_what, route) => {
    expect(Snapshot.safeParse(base(route as Partial<Route>)).success).toBe(false);
  });

  it('rejects ConsistentHash without a key, a ReplacePrefixMatch on a non-Prefix match, an unknown mirror cluster', () => {
    expect(Snapshot.safeParse(base({}, [{ name: 'c', protocol: 'http', loadBalancer: { policy: 'ConsistentHash' } }])).success).toBe(false);
    const exact = base({ match: { path: { type: 'Exact', value: '/a' } }, rewrite: { path: { type: 'ReplacePrefixMatch', value: '/b' } }, mirrors: [{ cluster: 'nope', percent: 1 }] });
    const v = validateSnapshot(exact);
    expect(v.ok ? [] : v.problems).toEqual([
      'routing.virtualHosts.0.routes.0.mirrors.0.cluster: unknown cluster "nope"',
      'routing.virtualHosts.0.routes.0.rewrite.path: ReplacePrefixMatch needs a Prefix path match',
    ]);
  });
});
