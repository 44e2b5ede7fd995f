// Retry decisions of one route (snapshot `route.retry`). The proxy asks after
// each failed try whether another one may start; the budget is checked
// against the cluster's live counters so retries cannot pile onto a failing
// upstream faster than its normal traffic.
import type { RetryOn, RetryPolicy } from '../snapshot/schema.ts';
import type { ClusterState } from './health-state.ts';
import { UPSTREAM_CODES } from './h1/errors.ts';

/** Methods retried without `allowNonIdempotent` (RFC 9110 §9.2.2). */
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Largest request body kept in memory so it can be sent again (or mirrored). */
export const REPLAY_BODY_LIMIT = 64 * 1024;

/** A route's retry policy with defaults filled in. */
export interface CompiledRetry {
  readonly attempts: number;
  readonly on: ReadonlySet<RetryOn>;
  readonly statuses: ReadonlySet<number>;
  /** Time to the response head of each try. */
  readonly perTryTimeoutMs: number;
  readonly backoffBaseMs: number;
  readonly allowNonIdempotent: boolean;
  readonly budgetPercent: number;
  readonly minRetryConcurrency: number;
}

/** Fill in the schema's defaults; undefined when the route never retries. */
export function compileRetry(p: RetryPolicy | undefined, responseMs: number): CompiledRetry | undefined {
  if (p === undefined || p.attempts === 0) return undefined;
  return {
    attempts: p.attempts,
    on: new Set(p.on ?? ['connect-failure', 'reset']),
    statuses: new Set(p.statuses ?? []),
    perTryTimeoutMs: p.perTryTimeoutMs ?? responseMs,
    backoffBaseMs: p.backoffBaseMs ?? 25,
    allowNonIdempotent: p.allowNonIdempotent ?? false,
    budgetPercent: p.budgetPercent ?? 20,
    minRetryConcurrency: p.minRetryConcurrency ?? 3,
  };
}

/** Whether requests with this method may be retried at all. */
export function methodRetryable(r: CompiledRetry, method: string): boolean {
  return r.allowNonIdempotent || IDEMPOTENT.has(method);
}

/** Whether a response status allows another try. */
export function statusRetryable(r: CompiledRetry, status: number): boolean {
  if (r.statuses.has(status)) return true;
  if (status >= 500 && r.on.has('5xx')) return true;
  return (status === 502 || status === 503 || status === 504) && r.on.has('gateway-error');
}

/** The retry condition an upstream error falls under. */
export function errorCondition(err: unknown): RetryOn {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === UPSTREAM_CODES.headersTimeout) return 'timeout';
  if (code === UPSTREAM_CODES.connectTimeout) return 'connect-failure';
  if (err instanceof AggregateError && err.errors.length > 0) return errorCondition(err.errors[0]);
  if (typeof code === 'string' && /^E(CONNREFUSED|HOSTUNREACH|NETUNREACH|ADDRNOTAVAIL|HOSTDOWN|NETDOWN|NOTFOUND|AI_AGAIN)$/.test(code)) return 'connect-failure';
  return 'reset';
}

/** Whether the cluster's retry budget has room for one more retry. */
export function budgetAllows(r: CompiledRetry, cluster: ClusterState): boolean {
  const budget = Math.max(r.minRetryConcurrency, (r.budgetPercent / 100) * cluster.inFlight);
  return cluster.retriesInFlight < budget;
}

/** Jittered exponential backoff before retry number `n` (1-based), capped at 10× the base as Envoy does. */
export function backoffMs(r: CompiledRetry, n: number): number {
  const ceiling = Math.min(r.backoffBaseMs * 2 ** (n - 1), r.backoffBaseMs * 10);
  return Math.random() * ceiling;
}
