// Circuit breaking at the cluster level: requests in flight to a cluster are
// capped by `maxConnections` (for HTTP/1.1 upstreams, one request is one
// connection in use), the excess waits in a bounded FIFO, and what does not
// fit is shed at once with a local 503 instead of queueing without bound.
import type { ServerResponse } from 'node:http';
import type { DataplaneMetrics } from '../observability/metrics.ts';
import type { RequestContext } from '../server/context.ts';
import { replyError } from '../server/local-reply.ts';
import type { CircuitBreaker } from '../snapshot/schema.ts';
import type { ClusterState, EndpointState } from './health-state.ts';

/** Which limit shed a request: the `limit` label of `pyserve_upstream_overflow_total`. */
export type OverflowLimit = 'max_connections' | 'max_pending_requests' | 'max_requests_per_endpoint';

/** Result of {@link admit}. */
export type Admission =
  | { readonly state: 'admitted' }
  | { readonly state: 'queued'; cancel(): void }
  | { readonly state: 'refused'; readonly limit: OverflowLimit };

// Shared: an admission that needs nothing more allocates nothing.
const ADMITTED: Admission = { state: 'admitted' };

/**
 * Take a slot in the cluster for one request and call `go(arg)` now or once
 * one frees. Every admitted request must call {@link release} exactly once.
 * (`arg` spares the common case, admitted at once, a closure per request.)
 */
export function admit<T>(cluster: ClusterState, limits: CircuitBreaker | undefined, go: (arg: T) => void, arg: T): Admission {
  const max = limits?.maxConnections;
  if (max === undefined || (cluster.inFlight < max && cluster.pending.length === 0)) {
    cluster.inFlight++;
    go(arg);
    return ADMITTED;
  }
  const maxPending = limits!.maxPendingRequests;
  if (maxPending === 0) return { state: 'refused', limit: 'max_connections' };
  if (maxPending !== undefined && cluster.pending.length >= maxPending) return { state: 'refused', limit: 'max_pending_requests' };
  const entry = (): void => {
    cluster.inFlight++;
    go(arg);
  };
  cluster.pending.push(entry);
  return {
    state: 'queued',
    cancel: () => {
      const i = cluster.pending.indexOf(entry);
      if (i >= 0) cluster.pending.splice(i, 1);
    },
  };
}

/** Give back an admitted request's slot and start waiting ones that now fit. */
export function release(cluster: ClusterState, limits: CircuitBreaker | undefined): void {
  cluster.inFlight--;
  const max = limits?.maxConnections;
  while (cluster.pending.length > 0 && (max === undefined || cluster.inFlight < max)) cluster.pending.shift()!();
}

/** Whether one more request may go to this endpoint (`maxRequestsPerEndpoint`). */
export function endpointHasRoom(ep: EndpointState, limits: CircuitBreaker | undefined): boolean {
  const max = limits?.maxRequestsPerEndpoint;
  return max === undefined || ep.inFlight < max;
}

/** Header naming the limit on a shed request's 503, so clients and dashboards can tell overload from failure. */
export const OVERLOADED_HEADER = 'x-pyserve-overloaded';

/** Header value for a limit (`max-pending-requests` …). */
export function overloadedValue(limit: OverflowLimit): string {
  return limit.replaceAll('_', '-');
}

/** Answer a request shed by a circuit-breaker limit. */
export function replyOverloaded(res: ServerResponse, ctx: RequestContext, cluster: string, limit: OverflowLimit, metrics: DataplaneMetrics): void {
  metrics.overflow.inc({ cluster, limit });
  if (!res.headersSent) res.setHeader(OVERLOADED_HEADER, overloadedValue(limit));
  replyError(res, ctx, 503, `cluster "${cluster}" is at its ${overloadedValue(limit)} limit`);
}
