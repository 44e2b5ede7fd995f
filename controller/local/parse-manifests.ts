/**
 * Parse one manifest file of local mode into Kubernetes objects, with every
 * problem located by file, line and column so a user can fix it quickly.
 */
import { LineCounter, parseAllDocuments } from 'yaml';
import type { Document } from 'yaml';
import { isManifestKind, manifestSchemas } from './manifest-schema.ts';
import { ENDPOINTS_ANNOTATION, parseEndpointsShorthand } from './endpoints-shorthand.ts';

/** A problem located in a manifest file. Lines and columns are 1-based. */
export interface ManifestProblem {
  file: string;
  line: number;
  column: number;
  message: string;
}

/** A Kubernetes object as read from YAML, with its location for later reporting. */
export interface LocatedObject {
  object: KubeObject;
  file: string;
  line: number;
}

/** The loosest shape every Kubernetes object has. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

/** Result of {@link parseManifestFile}. A file with any problem contributes no objects. */
export interface ParsedFile {
  objects: LocatedObject[];
  problems: ManifestProblem[];
  /** Non-fatal notes, e.g. kinds local mode ignores. */
  warnings: ManifestProblem[];
}

/** Parse the text of one YAML file (may hold several documents, and `kind: List`). */
export function parseManifestFile(file: string, text: string): ParsedFile {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  const problems: ManifestProblem[] = [];
  const warnings: ManifestProblem[] = [];
  const objects: LocatedObject[] = [];
  const at = (offset: number | undefined, message: string): ManifestProblem => {
    const pos = lineCounter.linePos(offset ?? 0);
    return { file, line: pos.line, column: pos.col, message };
  };

  if (!Array.isArray(docs)) {
    // parseAllDocuments returns an EmptyStream for an empty file: nothing to load.
    return { objects, problems, warnings };
  }
  for (const doc of docs) {
    for (const err of doc.errors) problems.push(at(err.pos[0], `YAML syntax: ${firstLine(err.message)}`));
    if (doc.errors.length) continue;
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue;
    const start = doc.contents?.range?.[0];
    if (typeof value !== 'object' || Array.isArray(value)) {
      problems.push(at(start, 'document must be a Kubernetes object (a mapping with apiVersion, kind and metadata)'));
      continue;
    }
    const record = value as Record<string, unknown>;
    if (record.kind === 'List' && Array.isArray(record.items)) {
      record.items.forEach((item, i) => checkObject(doc, item, ['items', i], lineCounter, file, problems, warnings, objects));
      continue;
    }
    checkObject(doc, record, [], lineCounter, file, problems, warnings, objects);
  }
  return problems.length ? { objects: [], problems, warnings } : { objects, problems, warnings };
}

function checkObject(
  doc: Document.Parsed,
  value: unknown,
  basePath: (string | number)[],
  lineCounter: LineCounter,
  file: string,
  problems: ManifestProblem[],
  warnings: ManifestProblem[],
  objects: LocatedObject[],
): void {
  const locate = (path: (string | number)[]): { line: number; column: number } => {
    // Walk up until a node exists: a missing field is reported where its parent is.
    for (let p = [...basePath, ...path]; ; p = p.slice(0, -1)) {
      const node = doc.getIn(p, true) as { range?: [number, number, number] } | undefined;
      if (node?.range) {
        const pos = lineCounter.linePos(node.range[0]);
        return { line: pos.line, column: pos.col };
      }
      if (p.length === 0) return { line: 1, column: 1 };
    }
  };
  const rec = (value ?? {}) as Record<string, unknown>;
  const kind = rec.kind;
  const where = locate([]);
  if (typeof rec.apiVersion !== 'string' || typeof kind !== 'string') {
    problems.push({ file, ...where, message: 'object needs string fields apiVersion and kind' });
    return;
  }
  if (!isManifestKind(kind)) {
    warnings.push({ file, ...where, message: `kind ${kind} is not used by local mode; ignored` });
    return;
  }
  const parsed = manifestSchemas[kind].safeParse(value);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
      problems.push({ file, ...locate(path), message: `${kind} ${path.join('.') || '(root)'}: ${issue.message}` });
    }
    return;
  }
  const object = parsed.data as unknown as KubeObject;
  object.metadata.namespace ??= 'default';
  if (kind === 'Secret' && object.stringData) {
    const data = { ...(object.data as Record<string, string> | undefined) };
    for (const [k, v] of Object.entries(object.stringData as Record<string, string>)) data[k] = Buffer.from(v).toString('base64');
    object.data = data;
    delete object.stringData;
  }
  objects.push({ object, file, line: where.line });

  const shorthand = object.metadata.annotations?.[ENDPOINTS_ANNOTATION];
  if (kind === 'Service' && shorthand !== undefined) {
    const result = parseEndpointsShorthand(object, shorthand);
    if ('error' in result) {
      problems.push({ file, ...locate(['metadata', 'annotations', ENDPOINTS_ANNOTATION]), message: `Service ${object.metadata.name}: ${result.error}` });
      return;
    }
    for (const slice of result.slices) objects.push({ object: slice, file, line: where.line });
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
