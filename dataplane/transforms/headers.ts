// Route header edits (remove, then set, then add), compiled once per
// snapshot into lower-case name lists, applied to the flat request header
// list sent upstream and to the response head sent to the client.
import type { OutgoingHttpHeaders } from 'node:http';
import type { HeaderModifier } from '../snapshot/schema.ts';

/** Compiled header edits; names lower case. */
export interface HeaderEdits {
  /** Names whose every value goes: the removed ones and the ones `set` replaces. */
  readonly drop: ReadonlySet<string>;
  readonly set: readonly (readonly [string, string])[];
  readonly add: readonly (readonly [string, string])[];
}

/** Compile a header modifier; null when it changes nothing. */
export function compileHeaderEdits(m: HeaderModifier | undefined): HeaderEdits | null {
  if (m === undefined) return null;
  const set = (m.set ?? []).map((h) => [h.name.toLowerCase(), h.value] as const);
  const add = (m.add ?? []).map((h) => [h.name.toLowerCase(), h.value] as const);
  const drop = new Set([...(m.remove ?? []).map((n) => n.toLowerCase()), ...set.map(([n]) => n)]);
  if (drop.size === 0 && add.length === 0) return null;
  return { drop, set, add };
}

/** Apply edits to a flat `[name, value, …]` list (any name case); returns a new list. */
export function editFlatHeaders(flat: readonly string[], edits: HeaderEdits): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (!edits.drop.has(flat[i]!.toLowerCase())) out.push(flat[i]!, flat[i + 1]!);
  }
  for (const [name, value] of edits.set) out.push(name, value);
  for (const [name, value] of edits.add) out.push(name, value);
  return out;
}

/** Apply edits in place to a response head whose names are lower case. */
export function editHeaderObject(headers: OutgoingHttpHeaders, edits: HeaderEdits): void {
  for (const name of edits.drop) delete headers[name];
  for (const [name, value] of edits.set) headers[name] = value;
  for (const [name, value] of edits.add) {
    const prev = headers[name];
    headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
  }
}
