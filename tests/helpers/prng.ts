/**
 * A small seeded PRNG for tests that draw many random inputs (packet mutations, scheduler hashes), so every
 * run draws the same values and a failure replays exactly.
 *
 * @example
 * ```ts
 * const rnd = prng(1);
 * const hash = rnd(); // uint32
 * ```
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
