// Reading and rendering golden translator cases; layout in test/golden/README.md.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ClusterState, TranslateOptions, TranslateResult } from '../../controller/translate/index.ts';

/** Kinds an in.yaml may hold, and the ClusterState list each goes to. */
const LISTS = {
  Ingress: 'ingresses',
  IngressClass: 'ingressClasses',
  Service: 'services',
  EndpointSlice: 'endpointSlices',
  Route: 'routes',
  Secret: 'secrets',
} as const;

/** The pseudo-kind of the optional first document holding TranslateOptions. */
export const OPTIONS_KIND = 'TranslateOptions';

/** One parsed case. */
export interface GoldenCase {
  readonly name: string;
  readonly state: ClusterState;
  readonly options: TranslateOptions;
}

/** Case directories that have an in.yaml, and directories left with only an out.json. */
export function listCases(root: string): { cases: string[]; orphans: string[] } {
  const dirs = readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  return {
    cases: dirs.filter((d) => existsSync(join(root, d, 'in.yaml'))),
    orphans: dirs.filter((d) => !existsSync(join(root, d, 'in.yaml')) && existsSync(join(root, d, 'out.json'))),
  };
}

/** Parse `<root>/<name>/in.yaml`. Throws on YAML errors, unknown kinds and misplaced options. */
export function loadCase(root: string, name: string): GoldenCase {
  const text = readFileSync(join(root, name, 'in.yaml'), 'utf8');
  const lists: Record<(typeof LISTS)[keyof typeof LISTS], unknown[]> = { ingresses: [], ingressClasses: [], services: [], endpointSlices: [], routes: [], secrets: [] };
  let options: TranslateOptions = { generation: 1 };
  const docs = parseAllDocuments(text);
  // A file with no document at all parses to an EmptyStream, not an array.
  (Array.isArray(docs) ? docs : []).forEach((doc, i) => {
    if (doc.errors.length) throw new Error(`${name}/in.yaml document ${i}: ${doc.errors[0]?.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    const kind = (value as { kind?: unknown }).kind;
    if (kind === OPTIONS_KIND) {
      if (i !== 0) throw new Error(`${name}/in.yaml: ${OPTIONS_KIND} must be the first document`);
      const { kind: _kind, ...rest } = value as Record<string, unknown>;
      options = { generation: 1, ...rest } as TranslateOptions;
      return;
    }
    if (typeof kind !== 'string' || !(kind in LISTS)) throw new Error(`${name}/in.yaml document ${i}: unexpected kind ${String(kind)}`);
    lists[LISTS[kind as keyof typeof LISTS]].push(value);
  });
  // Cases without Routes or Secrets leave those lists out, so the optional fields stay exercised as absent.
  const { routes, secrets, ...rest } = lists;
  const state = { ...rest, ...(routes.length ? { routes } : {}), ...(secrets.length ? { secrets } : {}) } as unknown as ClusterState;
  return { name, state, options };
}

/**
 * The text of out.json for a result, 2-space indented, trailing newline:
 * snapshot, statuses, routeStatuses (only when there are any, so cases
 * without Routes read as before) and failures.
 */
export function renderResult(result: TranslateResult): string {
  return JSON.stringify({
    snapshot: result.snapshot,
    statuses: result.statuses,
    ...(result.routeStatuses.length ? { routeStatuses: result.routeStatuses } : {}),
    failures: result.failures,
  }, null, 2) + '\n';
}
