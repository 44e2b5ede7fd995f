// Weighted choice between a route's clusters. State (current weights) lives
// in objects built per snapshot, so a swap resets it; nothing here allocates
// per pick.

/**
 * Smooth weighted round robin (the nginx algorithm): over any window of
 * sum(weights) picks each item is chosen exactly `weight` times, spread out
 * rather than in bursts. Items of weight 0 are never picked.
 */
export class SmoothWeighted<T> {
  readonly #items: T[];
  readonly #weights: number[];
  readonly #current: number[];
  readonly #total: number;

  constructor(items: ReadonlyArray<{ item: T; weight: number }>) {
    const live = items.filter((i) => i.weight > 0);
    this.#items = live.map((i) => i.item);
    this.#weights = live.map((i) => i.weight);
    this.#current = live.map(() => 0);
    this.#total = this.#weights.reduce((a, b) => a + b, 0);
  }

  /** Items with a weight above zero, in the order given. */
  get items(): readonly T[] {
    return this.#items;
  }

  /** Next item, or undefined when every weight is zero. */
  pick(): T | undefined {
    const n = this.#items.length;
    if (n === 0) return undefined;
    if (n === 1) return this.#items[0];
    let best = 0;
    for (let i = 0; i < n; i++) {
      this.#current[i]! += this.#weights[i]!;
      if (this.#current[i]! > this.#current[best]!) best = i;
    }
    this.#current[best]! -= this.#total;
    return this.#items[best];
  }
}
