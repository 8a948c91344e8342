/**
 * Shared helper of the scheduler tests: how often a scheduler picks each index. Their "many random hashes"
 * come from the seeded PRNG of tests/helpers/prng.ts, so a failure replays.
 *
 * @module
 */

/** Counts how often `pick` returns each index over `picks` calls fed by `hash`. */
export function tally(size: number, picks: number, pick: () => number): number[] {
  const counts = new Array<number>(size).fill(0);
  for (let i = 0; i < picks; i++) {
    const s = pick();
    if (s < 0 || s >= size) throw new Error(`pick returned ${s}`);
    counts[s]++;
  }
  return counts;
}
