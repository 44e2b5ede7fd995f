// Virtual host lookup: one exact map probe, one wildcard map probe keyed by
// the parent domain, then the catch-all. No scanning of patterns per request.
import { wildcardParent } from './host.ts';

/**
 * Hostname patterns → values, with precedence exact > single-label wildcard
 * (`*.example.com`) > catch-all (`*`).
 */
export class HostMap<T> {
  readonly #exact = new Map<string, T>();
  readonly #wildcard = new Map<string, T>();
  #catchAll: T | undefined;

  /**
   * Add a pattern (already lower case, as the snapshot schema requires).
   * Returns false when the pattern is already taken; the first one stays.
   */
  add(pattern: string, value: T): boolean {
    if (pattern === '*') {
      if (this.#catchAll !== undefined) return false;
      this.#catchAll = value;
      return true;
    }
    const target = pattern.startsWith('*.') ? this.#wildcard : this.#exact;
    const key = pattern.startsWith('*.') ? pattern.slice(2) : pattern;
    if (target.has(key)) return false;
    target.set(key, value);
    return true;
  }

  /** Look up a host already passed through `normalizeHost`. */
  lookup(host: string): T | undefined {
    const exact = this.#exact.get(host);
    if (exact !== undefined) return exact;
    if (this.#wildcard.size > 0) {
      const parent = wildcardParent(host);
      if (parent !== undefined) {
        const wild = this.#wildcard.get(parent);
        if (wild !== undefined) return wild;
      }
    }
    return this.#catchAll;
  }
}
