/**
 * Coalesces bursts of changes into one rebuild.
 *
 * A short holdoff lets a burst (a `kubectl apply -f dir/`, a rollout's
 * EndpointSlice churn) settle into a single build; a maximum delay bounds how
 * long a steady trickle of changes can postpone it, so traffic never waits
 * more than `maxDelayMs` for an update. Modelled on Contour's holdoff/max
 * delay. Builds never overlap: a change during a build schedules exactly one
 * more.
 */
export interface DebounceOptions {
  /** Quiet time after the last change before building. */
  holdoffMs: number;
  /** Upper bound from the first unbuilt change to the build. */
  maxDelayMs: number;
}

/** Change kinds let the build take the endpoints-only fast path. */
export type ChangeKind = 'routing' | 'endpoints';

export class Debouncer {
  readonly #opts: DebounceOptions;
  readonly #build: (kinds: ReadonlySet<ChangeKind>) => Promise<void>;
  #pending = new Set<ChangeKind>();
  #firstChangeAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #building: Promise<void> | undefined;
  #closed = false;

  constructor(opts: DebounceOptions, build: (kinds: ReadonlySet<ChangeKind>) => Promise<void>) {
    this.#opts = opts;
    this.#build = build;
  }

  /** Record a change; the build runs after the holdoff (or the max delay). */
  notify(kind: ChangeKind): void {
    if (this.#closed) return;
    if (this.#pending.size === 0) this.#firstChangeAt = performance.now();
    this.#pending.add(kind);
    if (this.#building) return; // the build's completion re-arms the timer
    this.#arm();
  }

  /** Resolves when no build is running or pending. */
  async idle(): Promise<void> {
    while (this.#building || this.#timer) {
      if (this.#building) await this.#building;
      else await new Promise((r) => setTimeout(r, 5));
    }
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    clearTimeout(this.#timer);
    const waited = performance.now() - this.#firstChangeAt;
    const delay = Math.max(0, Math.min(this.#opts.holdoffMs, this.#opts.maxDelayMs - waited));
    this.#timer = setTimeout(() => this.#run(), delay);
  }

  #run(): void {
    this.#timer = undefined;
    const kinds = this.#pending;
    this.#pending = new Set();
    this.#building = this.#build(kinds)
      .catch(() => {
        // The build reports its own errors; a failed build retries on the next change.
      })
      .finally(() => {
        this.#building = undefined;
        if (this.#pending.size && !this.#closed) this.#arm();
      });
  }
}
