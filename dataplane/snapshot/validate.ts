// Full validation of a pushed snapshot: the zod schema, then the cross-field
// rules a schema cannot express (hashes, references, uniqueness).
import { Snapshot } from './schema.ts';
import type { Snapshot as SnapshotT } from './schema.ts';
import { sectionHash } from './hash.ts';

/** Outcome of {@link validateSnapshot}: a snapshot, or a list of readable problems. */
export type ValidationResult = { ok: true; snapshot: SnapshotT } | { ok: false; problems: string[] };

/** Validate untrusted input (already JSON-parsed) as a snapshot. */
export function validateSnapshot(input: unknown): ValidationResult {
  const parsed = Snapshot.safeParse(input);
  if (!parsed.success) {
    return {
      ok: false,
      problems: parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`),
    };
  }
  const snap = parsed.data;
  const problems: string[] = [];
  if (sectionHash(snap.routing) !== snap.routing.hash) problems.push('routing.hash: does not match the content of routing');
  if (sectionHash(snap.endpoints) !== snap.endpoints.hash) problems.push('endpoints.hash: does not match the content of endpoints');

  const clusters = new Set<string>();
  snap.routing.clusters.forEach((c, i) => {
    if (clusters.has(c.name)) problems.push(`routing.clusters.${i}.name: duplicate cluster "${c.name}"`);
    clusters.add(c.name);
  });
  const hostnames = new Map<string, string>();
  const vhostNames = new Set<string>();
  snap.routing.virtualHosts.forEach((vh, i) => {
    if (vhostNames.has(vh.name)) problems.push(`routing.virtualHosts.${i}.name: duplicate virtual host "${vh.name}"`);
    vhostNames.add(vh.name);
    for (const h of vh.hostnames) {
      const other = hostnames.get(h);
      if (other !== undefined) problems.push(`routing.virtualHosts.${i}.hostnames: "${h}" is also in virtual host "${other}"`);
      else hostnames.set(h, vh.name);
    }
    const routeNames = new Set<string>();
    vh.routes.forEach((r, j) => {
      if (routeNames.has(r.name)) problems.push(`routing.virtualHosts.${i}.routes.${j}.name: duplicate route "${r.name}"`);
      routeNames.add(r.name);
      if (r.action.type === 'forward') {
        r.action.backends.forEach((b, k) => {
          if (!clusters.has(b.cluster)) {
            problems.push(`routing.virtualHosts.${i}.routes.${j}.action.backends.${k}.cluster: unknown cluster "${b.cluster}"`);
          }
        });
      }
    });
  });
  const seen = new Set<string>();
  snap.endpoints.clusters.forEach((c, i) => {
    if (seen.has(c.cluster)) problems.push(`endpoints.clusters.${i}.cluster: duplicate entry for "${c.cluster}"`);
    seen.add(c.cluster);
  });
  return problems.length ? { ok: false, problems } : { ok: true, snapshot: snap };
}
