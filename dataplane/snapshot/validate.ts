// Validation of a pushed snapshot: the zod schema, then the cross-field
// rules a schema cannot express (hashes, references, uniqueness). A push that
// keeps the routing being served has only its endpoints checked.
import { z } from 'zod';
import { Snapshot } from './schema.ts';
import type { Snapshot as SnapshotT } from './schema.ts';
import { sectionHash } from './hash.ts';

/** Outcome of {@link validateSnapshot}: a snapshot, or a list of readable problems. */
export type ValidationResult = { ok: true; snapshot: SnapshotT } | { ok: false; problems: string[] };

/** Options of {@link validateSnapshot}. */
export interface ValidateOptions {
  /**
   * The routing hash being served. A snapshot carrying the same one keeps
   * that routing (the store never compiles a routing section whose hash it
   * already serves), so its routing section is neither checked nor hashed
   * again, and may be just `{ "hash": … }`.
   */
  servingRoutingHash?: string;
}

// The routing section of a snapshot checked against the routing being served:
// only its hash is known to be sound.
const SnapshotKeepingRouting = Snapshot.extend({ routing: z.looseObject({ hash: z.string() }) });

// Snapshots whose routing section was not validated (see ValidateOptions).
const routingUnchecked = new WeakSet<object>();

/** Whether `snap` was accepted for keeping the routing being served, its own routing section unchecked. */
export function keepsServedRouting(snap: SnapshotT): boolean {
  return routingUnchecked.has(snap);
}

function issues(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
}

/** Validate untrusted input (already JSON-parsed) as a snapshot. */
export function validateSnapshot(input: unknown, opts: ValidateOptions = {}): ValidationResult {
  const serving = opts.servingRoutingHash;
  if (serving !== undefined && (input as { routing?: { hash?: unknown } } | null)?.routing?.hash === serving) {
    // Measured at 10k Ingresses: the routing section is ~200 of the ~320 ms
    // validation takes (docs/benchmarks.md, item 8).
    const parsed = SnapshotKeepingRouting.safeParse(input);
    if (!parsed.success) return { ok: false, problems: issues(parsed.error) };
    const snap = parsed.data as unknown as SnapshotT;
    const problems: string[] = [];
    checkEndpoints(snap, problems);
    if (problems.length > 0) return { ok: false, problems };
    routingUnchecked.add(snap);
    return { ok: true, snapshot: snap };
  }
  const parsed = Snapshot.safeParse(input);
  if (!parsed.success) return { ok: false, problems: issues(parsed.error) };
  const snap = parsed.data;
  const problems: string[] = [];
  if (sectionHash(snap.routing) !== snap.routing.hash) problems.push('routing.hash: does not match the content of routing');

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
  // TLS: certificate names are unique and every reference resolves. Whether a
  // certificate's PEM actually loads is not checked here: a bad one must not
  // reject the snapshot (its hosts get the default certificate instead).
  const certificates = new Set<string>();
  snap.routing.certificates?.forEach((c, i) => {
    if (certificates.has(c.name)) problems.push(`routing.certificates.${i}.name: duplicate certificate "${c.name}"`);
    certificates.add(c.name);
  });
  const defaultCertificate = snap.routing.tls?.defaultCertificate;
  if (defaultCertificate !== undefined && !certificates.has(defaultCertificate)) {
    problems.push(`routing.tls.defaultCertificate: unknown certificate "${defaultCertificate}"`);
  }
  snap.routing.virtualHosts.forEach((vh, i) => {
    const ref = vh.tls?.certificate;
    if (ref !== undefined && !certificates.has(ref)) problems.push(`routing.virtualHosts.${i}.tls.certificate: unknown certificate "${ref}"`);
  });

  // Traffic management: mirrors name known clusters, and a prefix
  // replacement needs a Prefix match to know which part it replaces.
  snap.routing.virtualHosts.forEach((vh, i) => {
    vh.routes.forEach((r, j) => {
      const at = `routing.virtualHosts.${i}.routes.${j}`;
      r.mirrors?.forEach((m, k) => {
        if (!clusters.has(m.cluster)) problems.push(`${at}.mirrors.${k}.cluster: unknown cluster "${m.cluster}"`);
      });
      if (r.match.path.type === 'Prefix') return;
      if (r.rewrite?.path?.type === 'ReplacePrefixMatch') problems.push(`${at}.rewrite.path: ReplacePrefixMatch needs a Prefix path match`);
      if (r.action.type === 'redirect' && r.action.path?.type === 'ReplacePrefixMatch') problems.push(`${at}.action.path: ReplacePrefixMatch needs a Prefix path match`);
    });
  });

  checkEndpoints(snap, problems);
  return problems.length ? { ok: false, problems } : { ok: true, snapshot: snap };
}

// The endpoints section's own rules: its hash, one entry per cluster.
function checkEndpoints(snap: SnapshotT, problems: string[]): void {
  if (sectionHash(snap.endpoints) !== snap.endpoints.hash) problems.push('endpoints.hash: does not match the content of endpoints');
  const seen = new Set<string>();
  snap.endpoints.clusters.forEach((c, i) => {
    if (seen.has(c.cluster)) problems.push(`endpoints.clusters.${i}.cluster: duplicate entry for "${c.cluster}"`);
    seen.add(c.cluster);
  });
}
