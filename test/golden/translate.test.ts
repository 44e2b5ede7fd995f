// Golden tests of the translator: test/golden/translate/<case>/in.yaml
// → out.json. UPDATE_GOLDEN=1 rewrites out.json files and deletes orphans.
import { existsSync, readFileSync, readdirSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FAILURE_REASONS, ROUTE_ACCEPTED_REASONS, ROUTE_RESOLVED_REFS_REASONS, translate } from '../../controller/translate/index.ts';
import type { ClusterState, TranslateResult } from '../../controller/translate/index.ts';
import { validateSnapshot } from '../../dataplane/snapshot/validate.ts';
import { listCases, loadCase, renderResult } from './golden-case.ts';
import type { GoldenCase } from './golden-case.ts';

const ROOT = fileURLToPath(new URL('./translate/', import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const { cases, orphans } = listCases(ROOT);
const loaded: GoldenCase[] = cases.map((name) => loadCase(ROOT, name));
const results = new Map<string, TranslateResult>(loaded.map((c) => [c.name, translate(c.state, c.options)]));

describe('translate golden cases', () => {
  it('has at least 30 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  for (const c of loaded) {
    it(c.name, () => {
      const result = results.get(c.name) as TranslateResult;
      const actual = renderResult(result);
      const outFile = join(ROOT, c.name, 'out.json');
      if (UPDATE) {
        writeFileSync(outFile, actual);
      } else if (!existsSync(outFile)) {
        throw new Error(`${c.name}/out.json is missing; run with UPDATE_GOLDEN=1 to create it, then review it`);
      }
      const expected = readFileSync(outFile, 'utf8');
      expect(actual).toBe(expected);
      const stored = JSON.parse(expected) as { snapshot: unknown };
      const validation = validateSnapshot(stored.snapshot);
      expect(validation.ok ? [] : validation.problems).toEqual([]);
    });
  }

  it('has no out.json without an in.yaml', () => {
    if (UPDATE) {
      for (const name of orphans) {
        unlinkSync(join(ROOT, name, 'out.json'));
        if (readdirSync(join(ROOT, name)).length === 0) rmdirSync(join(ROOT, name));
        console.warn(`golden: removed orphaned ${name}/out.json (its in.yaml is gone)`);
      }
      return;
    }
    expect(orphans, 'orphaned out.json files; run with UPDATE_GOLDEN=1 to remove them').toEqual([]);
  });

  it('has a case for every failure reason and every status reason', () => {
    const all = [...results.values()];
    const failureReasons = new Set(all.flatMap((r) => r.failures.map((f) => f.reason)));
    expect([...FAILURE_REASONS].filter((r) => !failureReasons.has(r))).toEqual([]);
    const statusReasons = new Set(all.flatMap((r) => r.statuses.map((s) => s.reason)));
    expect([...statusReasons].sort()).toEqual(['Accepted', 'PartiallyAccepted', 'Rejected']);
    const conditions = all.flatMap((r) => r.routeStatuses.flatMap((s) => s.conditions));
    const accepted = new Set(conditions.filter((c) => c.type === 'Accepted').map((c) => c.reason));
    expect([...ROUTE_ACCEPTED_REASONS].filter((r) => !accepted.has(r))).toEqual([]);
    const resolved = new Set(conditions.filter((c) => c.type === 'ResolvedRefs').map((c) => c.reason));
    expect([...ROUTE_RESOLVED_REFS_REASONS].filter((r) => !resolved.has(r))).toEqual([]);
  });
});

describe('translate is deterministic and pure', () => {
  for (const c of loaded) {
    it(`${c.name}: any input order gives byte-identical output`, () => {
      const expected = renderResult(results.get(c.name) as TranslateResult);
      const random = mulberry32(hashOf(c.name));
      for (let round = 0; round < 8; round++) {
        const state = round === 0 ? reversed(c.state) : shuffled(c.state, random);
        expect(renderResult(translate(state, c.options))).toBe(expected);
      }
    });

    it(`${c.name}: Date timestamps (as @kubernetes/client-node gives) translate like ISO strings`, () => {
      const expected = renderResult(results.get(c.name) as TranslateResult);
      expect(renderResult(translate(withDates(c.state), c.options))).toBe(expected);
    });

    it(`${c.name}: does not mutate its input`, () => {
      const state = deepFreeze(structuredClone(c.state));
      const options = deepFreeze(structuredClone(c.options));
      expect(renderResult(translate(state, options))).toBe(renderResult(results.get(c.name) as TranslateResult));
    });
  }
});

function mapLists(state: ClusterState, f: <T>(list: readonly T[]) => T[]): ClusterState {
  return {
    ingresses: f(state.ingresses),
    ingressClasses: f(state.ingressClasses),
    services: f(state.services),
    // Endpoint order inside a slice carries no meaning either.
    endpointSlices: f(state.endpointSlices).map((s) => (Array.isArray(s.endpoints) ? { ...s, endpoints: f(s.endpoints) } : s)),
    ...(state.routes ? { routes: f(state.routes) } : {}),
    ...(state.secrets ? { secrets: f(state.secrets) } : {}),
  };
}

function reversed(state: ClusterState): ClusterState {
  return mapLists(state, (l) => [...l].reverse());
}

function shuffled(state: ClusterState, random: () => number): ClusterState {
  return mapLists(state, (l) => {
    const out = [...l];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [out[i], out[j]] = [out[j] as (typeof out)[number], out[i] as (typeof out)[number]];
    }
    return out;
  });
}

function withDates(state: ClusterState): ClusterState {
  const convert = <T>(list: readonly T[]): T[] => list.map((o) => {
    const meta = (o as { metadata?: { creationTimestamp?: unknown } }).metadata;
    if (typeof meta?.creationTimestamp !== 'string') return o;
    return { ...o, metadata: { ...meta, creationTimestamp: new Date(meta.creationTimestamp) } };
  });
  return mapLists(state, convert);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

// Seeded so a failing order can be reproduced.
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashOf(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}
