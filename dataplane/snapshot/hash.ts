// Canonical hashing: the same content must always give the same hash, no
// matter the key order the producer used, so keys are sorted recursively.
import { createHash } from 'node:crypto';

/** JSON with object keys sorted recursively; `undefined` members dropped as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** sha256 hex of a section's canonical JSON, ignoring its own `hash` field. */
export function sectionHash(section: object): string {
  const { hash: _ignored, ...rest } = section as Record<string, unknown>;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex');
}
