// The bookkeeping of one request's tries, shared by the HTTP/1.1 proxy
// (proxy.ts) and the HTTP/2 one (h2-forward.ts): the endpoints tried, the
// load each try puts on its endpoint, the cluster's retry budget, and the
// pick of the next endpoint after a backoff.
import type { DataplaneMetrics } from '../observability/metrics.ts';
import type { ClusterBalancer, Member } from './cluster-balancer.ts';
import type { PickInput } from './cluster-balancer.ts';
import type { ClusterState } from './health-state.ts';
import { withRoom } from './choose.ts';
import { backoffMs, budgetAllows } from './retry.ts';
import type { CompiledRetry } from './retry.ts';

/** One try on one endpoint. */
export interface Try {
  readonly member: Member;
  /**
   * Give a retry's budget slot back once its outcome (a response head, an
   * error) is known, so it does not count against its own successor.
   */
  releaseRetrySlot(): void;
  /** The try is over: its endpoint load and any budget slot are released. Idempotent. */
  end(): void;
}

/** Whether the request the tries belong to is over (client gone, timed out): no retry starts then. */
export interface TriesOwner {
  readonly stopped: boolean;
}

// A class, not an object of closures: one is made for every proxied request.
class EndpointTry implements Try {
  readonly member: Member;
  readonly #cluster: ClusterState;
  #ended = false;
  #holdsRetrySlot: boolean;

  constructor(member: Member, cluster: ClusterState, holdsRetrySlot: boolean) {
    this.member = member;
    this.#cluster = cluster;
    this.#holdsRetrySlot = holdsRetrySlot;
  }

  releaseRetrySlot(): void {
    if (!this.#holdsRetrySlot) return;
    this.#holdsRetrySlot = false;
    this.#cluster.retriesInFlight--;
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.member.state.inFlight--;
    this.releaseRetrySlot();
  }
}

/**
 * Why a retry did not start: no endpoint left untried and healthy, all at
 * their request limit, or the request stopped during the backoff.
 */
export type NoRetryTarget = 'none' | 'full' | 'stopped';

/** The tries of one request to one cluster. */
export class RequestTries {
  // Only a request that may retry needs them (a retry avoids them): made on the first try then.
  #tried: Set<string> | undefined;
  #count = 0;

  readonly #balancer: ClusterBalancer;
  readonly #retry: CompiledRetry | undefined;
  readonly #input: PickInput;
  readonly #metrics: DataplaneMetrics;
  readonly #owner: TriesOwner;

  constructor(balancer: ClusterBalancer, retry: CompiledRetry | undefined, input: PickInput, metrics: DataplaneMetrics, owner: TriesOwner) {
    this.#balancer = balancer;
    this.#retry = retry;
    this.#input = input;
    this.#metrics = metrics;
    this.#owner = owner;
  }

  /** Start a try on `member`; `isRetry` when a slot taken by {@link retryLater} goes with it. */
  begin(member: Member, isRetry: boolean): Try {
    this.#count++;
    if (this.#retry !== undefined) (this.#tried ??= new Set()).add(member.endpoint.key);
    member.state.inFlight++;
    return new EndpointTry(member, this.#balancer.state, isRetry);
  }

  /** Whether another try may start now; a budget refusal is counted. */
  mayRetry(): boolean {
    const r = this.#retry;
    if (r === undefined || this.#owner.stopped || this.#count > r.attempts) return false;
    if (!budgetAllows(r, this.#balancer.state)) {
      this.#metrics.retryBudgetExhausted.inc({ cluster: this.#balancer.name });
      return false;
    }
    return true;
  }

  /**
   * After the backoff, hand `next` the endpoint for the retry, or why there is
   * none. The retry holds a budget slot from now: pass it on with
   * `begin(member, true)` (it is given back here when no retry starts).
   */
  retryLater(next: (target: Member | NoRetryTarget) => void): void {
    const cluster = this.#balancer.state;
    cluster.retriesInFlight++;
    this.#metrics.retries.inc({ cluster: this.#balancer.name });
    setTimeout(() => {
      const picked = this.#owner.stopped ? undefined : this.#balancer.pick(this.#input, this.#tried);
      const member = picked === undefined ? undefined : withRoom(this.#balancer, picked, this.#tried) ?? withRoom(this.#balancer, picked);
      if (member === undefined) {
        cluster.retriesInFlight--;
        next(this.#owner.stopped ? 'stopped' : picked === undefined ? 'none' : 'full');
        return;
      }
      next(member);
    }, backoffMs(this.#retry!, this.#count)).unref();
  }
}
