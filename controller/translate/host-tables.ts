// Routes collected per hostname while Ingresses are translated, then sorted
// into virtual hosts. Ingresses are fed oldest first, so "first claim wins"
// is the same as "oldest wins" for path conflicts and default backends.
import type { Cluster, Route, VirtualHost } from '../../dataplane/snapshot/schema.ts';
import type { ObjectKey } from './meta.ts';
import type { SortableRoute } from './sort.ts';
import { compareHostnames, compareRoutes, compareStrings } from './sort.ts';

/** A route with what is needed to order it and to find its cluster. */
export interface RouteEntry extends SortableRoute {
  readonly route: Route;
  /** Cluster of a forward action. */
  readonly cluster: Cluster | undefined;
  /** Source Ingress; undefined for the controller default backend. */
  readonly source: ObjectKey | undefined;
}

/** Who holds a path on a host. */
export interface PathClaim {
  readonly owner: ObjectKey;
  readonly field: string;
}

/** Everything collected for one hostname. */
export interface HostTable {
  readonly entries: RouteEntry[];
  /** Paths already routed, by `<type> <value>`. */
  readonly claims: Map<string, PathClaim>;
  /** Ingress whose default backend this host uses. */
  defaultBackendOwner: ObjectKey | undefined;
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

/** Claim key of a path match. */
export function claimKey(type: 'Exact' | 'Prefix', value: string): string {
  return `${type} ${value}`;
}

/**
 * Whether a route of at most `priority` (0: Ingress paths, 1: also Ingress
 * default backends) is a Prefix `/`, so nothing can fall through past it.
 */
export function coversEverything(table: HostTable | undefined, priority: 0 | 1): boolean {
  return table?.entries.some((e) => e.priority <= priority && e.type === 'Prefix' && e.value === '/') ?? false;
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
    for (const e of entries) if (e.cluster) clusters.set(e.cluster.name, e.cluster);
    virtualHosts.push({ name: host, hostnames: [host], routes: entries.map((e) => e.route) });
  }
  return { virtualHosts, clusters: [...clusters.values()].sort((a, b) => compareStrings(a.name, b.name)) };
}
