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

/** A seeded random source with the draws the fuzzers use: integers below n, coin flips, picks, bytes. */
export class Rand {
  /** The underlying generator: uniform unsigned 32-bit integers. */
  readonly next: () => number;
  /** Seeds the source (same seed, same draws). */
  constructor(seed: number) {
    this.next = prng(seed);
  }
  /** An integer in [0, n) (0 when n ≤ 1). */
  int(n: number): number {
    return n <= 1 ? 0 : this.next() % n;
  }
  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p * 4294967296;
  }
  /** One element of `a`. */
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 255;
    return b;
  }
}
