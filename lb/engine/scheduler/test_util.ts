/**
 * Shared helpers of the scheduler tests: a seeded PRNG, so that "many random hashes" are the same on every
 * run and a failure can be replayed.
 *
 * @module
 */

/** Mulberry32 generator: returns a function yielding uniform unsigned 32-bit integers from `seed`. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

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
