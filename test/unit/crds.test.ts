import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generatedCrds } from '../../controller/api/crd.ts';
import { RouteSpec } from '../../controller/api/route.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('generated CRDs', () => {
  for (const dir of ['crds', 'charts/pyserve/crds']) {
    it(`${dir}/ matches the zod schemas (run \`npm run crds\` if this fails)`, () => {
      const expected = generatedCrds();
      const files = readdirSync(root + dir).filter((f) => f.endsWith('.yaml')).sort();
      expect(files).toEqual([...expected.keys()].sort());
      for (const [name, text] of expected) expect(readFileSync(`${root}${dir}/${name}`, 'utf8'), name).toBe(text);
    });
  }

  it('emits a structural schema: no additionalProperties beside properties, CEL rules kept', () => {
    const crd = parse([...generatedCrds().values()][0]!) as { spec: { versions: { schema: { openAPIV3Schema: unknown } }[] } };
    const schema = crd.spec.versions[0]!.schema.openAPIV3Schema;
    const walk = (n: unknown, visit: (o: Record<string, unknown>) => void): void => {
      if (Array.isArray(n)) n.forEach((x) => walk(x, visit));
      else if (n && typeof n === 'object') {
        visit(n as Record<string, unknown>);
        Object.values(n).forEach((x) => walk(x, visit));
      }
    };
    const rules: string[] = [];
    walk(schema, (o) => {
      expect(o.additionalProperties === false && 'properties' in o).toBe(false);
      if (Array.isArray(o['x-kubernetes-validations'])) rules.push(...o['x-kubernetes-validations'].map((r: { rule: string }) => r.rule));
    });
    expect(rules).toEqual(expect.arrayContaining([expect.stringContaining("startsWith('/')"), expect.stringContaining('weight > 0')]));
  });
});

describe('Route spec schema', () => {
  it('fills Gateway-API-like defaults', () => {
    const spec = RouteSpec.parse({ rules: [{ matches: [{ path: {} }], backends: [{ name: 'web', port: 80 }] }] });
    expect(spec.rules[0]).toEqual({ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backends: [{ name: 'web', port: 80, weight: 1 }] });
  });

  it.each([
    [{ rules: [] }, 'rules'],
    [{ rules: [{ backends: [{ name: 'a', port: 0 }] }] }, 'rules.0.backends.0.port'],
    [{ hostnames: ['Upper.example.com'], rules: [{ backends: [{ name: 'a', port: 1 }] }] }, 'hostnames.0'],
    [{ rules: [{ backends: [{ name: 'a', port: 1 }], timeouts: { request: '10 seconds' } }] }, 'rules.0.timeouts.request'],
    [{ rules: [{ backends: [{ name: 'a', port: 1, extra: true }] }] }, 'rules.0.backends.0'],
  ])('rejects %j at %s', (input, path) => {
    const r = RouteSpec.safeParse(input);
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path.join('.'))).toContain(path);
  });
});
