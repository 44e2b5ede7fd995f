// The per-snapshot route table: host → ordered routes → first match.
import type { HostMap } from './host-map.ts';
import type { PathMatcher } from './path-match.ts';
import type { ConditionMatcher, QueryCache } from './conditions.ts';
import type { RequestHead } from './request-head.ts';

/** The parts of a compiled route that matching needs. */
export interface MatchableRoute {
  /** Path predicate. */
  readonly matchPath: PathMatcher;
  /** Method/header/query predicate, `null` when the route has none. */
  readonly conditions: ConditionMatcher | null;
}

/** Immutable route table built from one routing section. */
export class RouteTable<R extends MatchableRoute> {
  readonly #hosts: HostMap<readonly R[]>;

  constructor(hosts: HostMap<readonly R[]>) {
    this.#hosts = hosts;
  }

  /** First route of the host's virtual host whose conditions hold, in snapshot order. */
  match(host: string, head: RequestHead): R | undefined {
    const routes = this.#hosts.lookup(host);
    if (routes === undefined) return undefined;
    const query: QueryCache = { params: undefined };
    for (const route of routes) {
      if (!route.matchPath(head.path)) continue;
      if (route.conditions !== null && !route.conditions(head, query)) continue;
      return route;
    }
    return undefined;
  }
}
