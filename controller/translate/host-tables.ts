// Routes collected per hostname while Ingresses and Routes are translated,
// then sorted into virtual hosts. Sources are fed oldest first, so "first
// claim wins" is the same as "oldest wins" for path conflicts and default backends.
import type { Cluster, Route, VirtualHost } from '../../dataplane/snapshot/schema.ts';
import type { SourceKey } from './meta.ts';
import type { SortableRoute } from './sort.ts';
import { compareHostnames, compareRoutes, compareStrings } from './sort.ts';

/** A route with what is needed to order it and to find its cluster. */
export interface RouteEntry extends SortableRoute {
  readonly route: Route;
  /** Clusters of a forward action. */
  readonly clusters: readonly Cluster[];
  /** Source object; undefined for the controller default backend. */
  readonly source: SourceKey | undefined;
  /** A canary Ingress whose backend shares this route's traffic by weight; it counts as programmed by it too. */
  readonly canary?: SourceKey | undefined;
}

/** Who holds a path on a host. */
export interface PathClaim {
  readonly owner: SourceKey;
  readonly field: string;
}

/** Everything collected for one hostname. */
export interface HostTable {
  readonly entries: RouteEntry[];
  /** Paths already routed, by {@link claimKey}. */
  readonly claims: Map<string, PathClaim>;
  /** Ingress whose default backend this host uses. */
  defaultBackendOwner: SourceKey | undefined;
}

/** Host tables by lower-case hostname (`*` for the catch-all). */
export type HostTables = Map<string, HostTable>;

/** The table for a host, created empty on first use. */
export function hostTable(tables: HostTables, host: string): HostTable {
  let t = tables.get(host);
  if (!t) {
    t = { entries: [], claims: new Map(), defaultBackendOwner: undefined };
    tables.set(host, t);
  }
  return t;
}

/**
 * Claim key of a match: two matches with the same key select exactly the
 * same requests. `conditions` is the canonical form of the method, header
 * and query conditions ({@link conditionsKey}); '' when there are none.
 */
export function claimKey(type: SortableRoute['type'], value: string, conditions = ''): string {
  return conditions === '' ? `${type} ${value}` : `${type} ${value} ${conditions}`;
}

/** Canonical, order-independent form of a match's non-path conditions; '' when there are none. */
export function conditionsKey(match: Route['match']): string {
  const { methods, headers, query, cookies } = match;
  if (!methods?.length && !headers?.length && !query?.length && !cookies?.length) return '';
  // Header names compare case-insensitively; they are lower-cased already.
  const values = (l: typeof headers) => (l ?? []).map((v) => [v.name, v.type, v.value]).sort((x, y) => compareStrings(JSON.stringify(x), JSON.stringify(y)));
  return JSON.stringify({ methods: [...(methods ?? [])].sort(compareStrings), headers: values(headers), query: values(query), ...(cookies?.length && { cookies: values(cookies) }) });
}

/**
 * Whether a route of at most `priority` (0: Ingress paths and Route
 * matches, 1: also Ingress default backends) is an unconditional Prefix
 * `/`, so nothing can fall through past it.
 */
export function coversEverything(table: HostTable | undefined, priority: 0 | 1): boolean {
  return table?.entries.some((e) => e.priority <= priority && e.type === 'Prefix' && e.value === '/'
    && !e.hasMethod && e.headers === 0 && e.query === 0 && !e.cookies) ?? false;
}

/**
 * Virtual hosts (one per hostname, named after it, with at least one route)
 * and the clusters their routes forward to, all in stable order.
 */
export function buildRouting(tables: HostTables): { virtualHosts: VirtualHost[]; clusters: Cluster[] } {
  const clusters = new Map<string, Cluster>();
  const virtualHosts: VirtualHost[] = [];
  for (const host of [...tables.keys()].sort(compareHostnames)) {
    const table = tables.get(host) as HostTable;
    if (table.entries.length === 0) continue;
    const entries = [...table.entries].sort(compareRoutes);
    for (const e of entries) for (const c of e.clusters) clusters.set(c.name, c);
    virtualHosts.push({ name: host, hostnames: [host], routes: entries.map((e) => e.route) });
  }
  return { virtualHosts, clusters: [...clusters.values()].sort((a, b) => compareStrings(a.name, b.name)) };
}
