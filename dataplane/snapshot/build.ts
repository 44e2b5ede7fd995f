// Helpers for producers (translator, tests, tools) to stamp section hashes.
import { SNAPSHOT_SCHEMA_VERSION } from './schema.ts';
import type { Snapshot, Routing, Endpoints } from './schema.ts';
import { sectionHash } from './hash.ts';

/** Build a snapshot from unhashed sections, computing both hashes. */
export function buildSnapshot(
  generation: number,
  routing: Omit<Routing, 'hash'>,
  endpoints: Omit<Endpoints, 'hash'>,
): Snapshot {
  return {
    schemaVersion: SNAPSHOT_SCHEMA_VERSION,
    generation,
    routing: { hash: sectionHash(routing), ...routing },
    endpoints: { hash: sectionHash(endpoints), ...endpoints },
  };
}
