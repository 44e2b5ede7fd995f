// Consistent hashing on a ring (ketama, as nginx's `hash ... consistent`):
// each endpoint owns 160 points placed by md5 of its key, a request key goes
// to the owner of the first point at or after its own hash. Removing one of n
// endpoints moves only the keys it owned, about 1/n of them.
import { hash } from 'node:crypto';

const DIGESTS_PER_MEMBER = 40; // × 4 points per md5 digest = 160 points

/** Position of a key on the ring. */
export function ringHash(key: string): number {
  return hash('md5', key, 'buffer').readUInt32LE(0);
}

/** A ring over a fixed member list; built once per snapshot. */
export class HashRing {
  readonly #points: Uint32Array;
  /** Member index owning each point. */
  readonly #owners: Uint32Array;
  readonly #members: number;

  /** `keys` identify the members (stable across snapshots: `address:port`). */
  constructor(keys: readonly string[]) {
    this.#members = keys.length;
    const n = keys.length * DIGESTS_PER_MEMBER * 4;
    const pairs: Array<[number, number]> = new Array(n);
    let k = 0;
    keys.forEach((key, owner) => {
      for (let d = 0; d < DIGESTS_PER_MEMBER; d++) {
        const digest = hash('md5', `${key}-${d}`, 'buffer');
        for (let p = 0; p < 4; p++) pairs[k++] = [digest.readUInt32LE(p * 4), owner];
      }
    });
    // Ties (vanishingly rare) go to the member listed first, so builds agree.
    pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.#points = Uint32Array.from(pairs, (p) => p[0]);
    this.#owners = Uint32Array.from(pairs, (p) => p[1]);
  }

  /**
   * Owner of `h`: the first point clockwise whose member `accept`s, so an
   * unusable member's keys spill to its ring neighbours only. -1 when none does.
   */
  lookup(h: number, accept: (owner: number) => boolean): number {
    const points = this.#points;
    const n = points.length;
    if (n === 0) return -1;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    const tried = new Set<number>();
    for (let i = 0; i < n; i++) {
      const owner = this.#owners[(lo + i) % n]!;
      if (tried.has(owner)) continue;
      if (accept(owner)) return owner;
      tried.add(owner);
      if (tried.size === this.#members) break;
    }
    return -1;
  }
}
