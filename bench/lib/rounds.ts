// Alternating rounds: every variant runs once per round, round after round,
// so drift in the speed of a shared machine falls on all variants alike.

/** Run each of `variants` once per round for `rounds` rounds; results per variant, in round order. */
export async function alternate<V, R>(rounds: number, variants: readonly V[], run: (variant: V, round: number) => Promise<R>): Promise<Map<V, R[]>> {
  const results = new Map<V, R[]>(variants.map((v) => [v, []]));
  for (let round = 0; round < rounds; round++) {
    for (const v of variants) results.get(v)!.push(await run(v, round));
  }
  return results;
}

/** The middle value (the upper one of an even count). */
export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
