// The Route CRD's new fields (filters, direct responses, retries, session
// persistence, backend policies) against a real kube-apiserver: the CRD
// generated from controller/api/route.ts installs (its CEL rules compile and
// fit the cost budget), valid Routes are stored as written, and invalid ones
// are refused with the rule's message. The same specs go through the
// translator, which must agree with the API server for local mode.
import { randomBytes } from 'node:crypto';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RouteSpec } from '../../controller/api/route.ts';
import { getKube } from '../tools/kube-shared.ts';
import type { KubeEnv } from '../tools/kube.ts';

let env: KubeEnv;
let custom: CustomObjectsApi;
let ns: string;

beforeAll(async () => {
  env = await getKube({ crdsDir: new URL('../../crds/', import.meta.url).pathname });
  ns = await env.createNamespace('route-crd');
  custom = env.kc.makeApiClient(CustomObjectsApi);
}, 10 * 60_000);

afterAll(() => env?.stop());

/** Create a Route; resolves to its stored spec, or to the API server's refusal message. */
async function create(spec: unknown): Promise<{ ok: true; spec: unknown } | { ok: false; message: string }> {
  try {
    const r = await custom.createNamespacedCustomObject({
      group: 'pyserve.io', version: 'v1alpha1', namespace: ns, plural: 'routes',
      body: { apiVersion: 'pyserve.io/v1alpha1', kind: 'Route', metadata: { name: `r-${randomBytes(3).toString('hex')}` }, spec },
    }) as { spec: unknown };
    return { ok: true, spec: r.spec };
  } catch (err) {
    const e = err as { code?: number; body?: string };
    expect(e.code).toBe(422);
    return { ok: false, message: (JSON.parse(String(e.body)) as { message: string }).message };
  }
}

const backend = [{ name: 'web', port: 80 }];

describe('Route CRD: issue 5 fields at the API server', () => {
  it('stores a Route using every new field, with defaults filled in as zod fills them', async () => {
    const spec = {
      hostnames: ['shop.example.com'],
      backendPolicy: { loadBalancer: { type: 'LeastRequest' }, healthCheck: { path: '/healthz', interval: '5s' } },
      rules: [
        {
          matches: [{ path: { value: '/api' }, cookies: [{ name: 'beta', value: 'yes' }] }],
          backends: backend,
          filters: [
            { type: 'URLRewrite', urlRewrite: { hostname: 'api.internal', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } },
            { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-A', value: '1' }], add: [{ name: 'X-B', value: '2' }], remove: ['X-C'] } },
            { type: 'ResponseHeaderModifier', responseHeaderModifier: { remove: ['Server'] } },
            { type: 'RequestMirror', requestMirror: { backend: { name: 'shadow', port: 80 }, percent: 5 } },
          ],
          retry: { attempts: 3, on: ['connect-failure', '5xx'], codes: [429], perTryTimeout: '2s' },
          sessionPersistence: { sessionName: 'sid', absoluteTimeout: '1h', cookie: { sameSite: 'Lax' } },
          backendPolicy: {
            protocol: 'H2C',
            loadBalancer: { type: 'ConsistentHash', consistentHash: { type: 'Header', name: 'x-user' } },
            outlierDetection: { consecutive5xx: 3 },
            circuitBreaker: { maxConnections: 10 },
            useClusterIP: false,
          },
        },
        { matches: [{ path: { value: '/old' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', statusCode: 301 } }] },
        { matches: [{ path: { type: 'Exact', value: '/robots.txt' } }], directResponse: { status: 200, body: 'User-agent: *\n' } },
        { matches: [{ path: { type: 'RegularExpression', value: '/u/([0-9]+)' } }], backends: backend,
          filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceRegexMatch', replaceRegexMatch: { pattern: '/u/([0-9]+)', substitution: '/users/$1' } } } }] },
      ],
    };
    const r = await create(spec);
    expect(r.ok).toBe(true);
    // What the API server stored is what the translator reads: zod's defaults agree with the CRD's.
    expect(r.ok && r.spec).toEqual(JSON.parse(JSON.stringify(RouteSpec.parse(spec))));
  });

  it.each([
    ['backends and a directResponse', { rules: [{ backends: backend, directResponse: { status: 204 } }] }, /exactly one of backends, directResponse or a RequestRedirect filter/],
    ['no backends at all', { rules: [{ matches: [{ path: { value: '/x' } }] }] }, /exactly one of backends, directResponse or a RequestRedirect filter/],
    ['a filter without its settings', { rules: [{ backends: backend, filters: [{ type: 'URLRewrite' }] }] }, /urlRewrite must be set exactly when type is URLRewrite/],
    ['settings of another filter', { rules: [{ backends: backend, filters: [{ type: 'RequestMirror', urlRewrite: {} }] }] }, /requestMirror must be set exactly when type is RequestMirror/],
    ['two URLRewrite filters', { rules: [{ backends: backend, filters: [{ type: 'URLRewrite', urlRewrite: {} }, { type: 'URLRewrite', urlRewrite: {} }] }] }, /at most one URLRewrite filter/],
    ['a redirect and a rewrite', { rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: {} }, { type: 'URLRewrite', urlRewrite: {} }] }] }, /RequestRedirect and URLRewrite cannot be combined/],
    ['ReplacePrefixMatch with an Exact match', {
      rules: [{ matches: [{ path: { type: 'Exact', value: '/a' } }], backends: backend, filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/b' } } }] }],
    }, /ReplacePrefixMatch needs every match to be a PathPrefix/],
    ['a path type without its value', { rules: [{ backends: backend, filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceFullPath' } } }] }] }, /replaceFullPath must be set exactly when type is ReplaceFullPath/],
    ['a regex redirect path', { rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplaceRegexMatch', replaceRegexMatch: { pattern: 'a', substitution: '/b' } } } }] }] }, /a redirect path cannot be ReplaceRegexMatch/],
    ['a redirect status that is not one', { rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { statusCode: 304 } }] }] }, /statusCode/],
    ['a header set twice', { rules: [{ backends: backend, filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-A', value: '1' }, { name: 'X-A', value: '2' }] } }] }] }, /Duplicate value/],
    ['ConsistentHash without a key', { rules: [{ backends: backend, backendPolicy: { loadBalancer: { type: 'ConsistentHash' } } }] }, /consistentHash must be set exactly when type is ConsistentHash/],
    ['a header hash without a name', { rules: [{ backends: backend, backendPolicy: { loadBalancer: { type: 'ConsistentHash', consistentHash: { type: 'Header' } } } }] }, /name must be set for Header, Cookie and QueryParameter/],
    ['a retry duration that is not one', { rules: [{ backends: backend, retry: { perTryTimeout: 'two seconds' } }] }, /perTryTimeout/],
    ['a CRLF in a header value', { rules: [{ backends: backend, filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'X-A', value: 'a\r\nb: c' }] } }] }] }, /value/],
  ])('refuses %s', async (_what, spec, message) => {
    const r = await create(spec);
    expect(r.ok ? 'stored' : r.message).toMatch(message);
  });
});
