// Alternating rounds: every variant runs once per round, round after round,
// so drift in the speed of a shared machine falls on all variants alike. Each
// round starts one variant later, so none always runs first or last.

/** Run each of `variants` once per round for `rounds` rounds; results per variant, in round order. */
export async function alternate<V, R>(rounds: number, variants: readonly V[], run: (variant: V, round: number) => Promise<R>): Promise<Map<V, R[]>> {
  const results = new Map<V, R[]>(variants.map((v) => [v, []]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + round) % variants.length]!;
      results.get(v)!.push(await run(v, round));
    }
  }
  return results;
}

/** The middle value; of an even count, the mean of the middle two (to 3 decimals). */
export const median = (xs: readonly number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : Math.round(((v[mid - 1]! + v[mid]!) / 2) * 1000) / 1000;
};
