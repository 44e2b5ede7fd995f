/**
 * Leader election with a coordination.k8s.io/v1 Lease, the same protocol as
 * client-go's leaderelection: the holder renews `renewTime` every retry
 * period; anyone may take the Lease once `renewTime + leaseDurationSeconds`
 * has passed. Writes carry the resourceVersion read, so two candidates racing
 * for an expired Lease cannot both win (the loser gets a 409).
 *
 * The leader releases the Lease on shutdown so a successor takes over at its
 * next retry instead of waiting out the lease.
 */
import { CoordinationV1Api, V1MicroTime } from '@kubernetes/client-node';
import type { KubeConfig, V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';

/** Options of {@link LeaderElector}. */
export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  /** Unique per replica, usually the pod name. */
  identity: string;
  /** Validity of a renewal. Takeover after a crash happens within this plus `retryPeriodMs`. */
  leaseDurationSeconds: number;
  /** How often to renew or try to acquire. */
  retryPeriodMs: number;
  /** Give up leadership when a renewal has not succeeded for this long (must be < lease duration). */
  renewDeadlineMs: number;
}

export class LeaderElector {
  readonly #api: CoordinationV1Api;
  readonly #opts: LeaderElectionOptions;
  readonly #log: Logger;
  readonly #onChange: (leader: boolean) => void;
  #leader = false;
  #lastRenew = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #tick: Promise<void> = Promise.resolve();

  constructor(kc: KubeConfig, opts: LeaderElectionOptions, onChange: (leader: boolean) => void, log: Logger) {
    this.#api = kc.makeApiClient(CoordinationV1Api);
    this.#opts = opts;
    this.#onChange = onChange;
    this.#log = log.child({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  start(): void {
    const loop = () => {
      if (this.#stopped) return;
      this.#tick = this.#tryAcquireOrRenew().finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(loop, this.#opts.retryPeriodMs);
      });
    };
    loop();
  }

  /** Stop campaigning; a leader releases the Lease. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#tick;
    if (!this.#leader) return;
    try {
      const lease = await this.#api.readNamespacedLease({ name: this.#opts.name, namespace: this.#opts.namespace });
      if (lease.spec?.holderIdentity === this.#opts.identity) {
        lease.spec.holderIdentity = '';
        lease.spec.leaseDurationSeconds = 1;
        lease.spec.renewTime = new V1MicroTime(Date.now() - 60_000);
        await this.#api.replaceNamespacedLease({ name: this.#opts.name, namespace: this.#opts.namespace, body: lease });
      }
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'could not release the lease; it will expire');
    }
    this.#setLeader(false);
  }

  async #tryAcquireOrRenew(): Promise<void> {
    const { namespace, name, identity, leaseDurationSeconds } = this.#opts;
    const now = Date.now();
    try {
      let lease: V1Lease | undefined;
      try {
        lease = await this.#api.readNamespacedLease({ name, namespace });
      } catch (err) {
        if (statusCode(err) !== 404) throw err;
      }
      if (!lease) {
        await this.#api.createNamespacedLease({
          namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: new V1MicroTime(now), renewTime: new V1MicroTime(now), leaseTransitions: 0 },
          },
        });
        this.#renewed(now);
        return;
      }
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      const renewedAt = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
      const expired = renewedAt + (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000 < now;
      if (holder !== identity && holder !== '' && !expired) {
        this.#checkDeadline(now);
        return;
      }
      const takingOver = holder !== identity;
      lease.spec = {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds,
        renewTime: new V1MicroTime(now),
        acquireTime: takingOver ? new V1MicroTime(now) : spec.acquireTime,
        leaseTransitions: (spec.leaseTransitions ?? 0) + (takingOver ? 1 : 0),
      };
      await this.#api.replaceNamespacedLease({ name, namespace, body: lease });
      this.#renewed(now);
    } catch (err) {
      if (statusCode(err) !== 409) this.#log.warn({ err: (err as Error).message }, 'lease acquire/renew failed');
      this.#checkDeadline(now);
    }
  }

  #renewed(now: number): void {
    this.#lastRenew = now;
    this.#setLeader(true);
  }

  #checkDeadline(now: number): void {
    // Without a recent successful renewal, someone else may already have taken over.
    if (this.#leader && now - this.#lastRenew > this.#opts.renewDeadlineMs) this.#setLeader(false);
  }

  #setLeader(leader: boolean): void {
    if (leader === this.#leader) return;
    this.#leader = leader;
    this.#log.info({ leader }, leader ? 'became leader' : 'lost leadership');
    this.#onChange(leader);
  }
}

/** HTTP status of a client-node ApiException (or undefined). */
export function statusCode(err: unknown): number | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'number') {
    return (err as { code: number }).code;
  }
  return undefined;
}
