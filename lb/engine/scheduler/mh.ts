/**
 * Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
 * Balancer", NSDI 2016, §3.4), as IPVS `ip_vs_mh` and Katran do it.
 *
 * Each live server `i` gets a permutation of the M slots of a lookup table (M prime), from two independent
 * hashes of its key: `offset = h1 % M`, `skip = h2 % (M - 1) + 1`, `permutation[j] = (offset + j * skip) % M`
 * — a full cycle because M is prime. Servers then take turns claiming the next unclaimed slot of their own
 * permutation until the table is full. A pick is one lookup, `table[sourceHash % M]`.
 *
 * Because each server's preferences do not depend on the others, removing a server mostly hands its slots
 * to others and leaves the rest in place, and adding one takes about 1/(N+1) of the slots — unlike
 * `hash % N`, which moves almost every key. Weights are honoured as in `ip_vs_mh`: per turn a server claims
 * `weight / gcd(weights)` slots, so shares follow weights; a weight-0 server claims none.
 *
 * ```
 *   server a: offset 3, skip 4   perm 3 0 4 1 5 2 6
 *   server b: offset 0, skip 2   perm 0 2 4 6 1 3 5        M = 7, turns a b a b ...
 *   table:    slot 0 1 2 3 4 5 6
 *             owner b a b a a a b
 * ```
 *
 * @module
 */

import { hashKey } from "./hash.ts";
import type { Scheduler, ServerSet } from "./scheduler.ts";

/** Options of {@link MaglevScheduler}. */
export interface MaglevOptions {
  /** Lookup-table size; must be prime and should be well above 100 × servers (the paper's advice). */
  tableSize?: number;
}

/** The paper's and Katran's default table size: prime, and enough for a few hundred servers. */
export const MAGLEV_DEFAULT_TABLE_SIZE = 65537;

/** Seeds of the two server-key hashes; any two distinct values make them independent. */
const OFFSET_SEED = 0;
const SKIP_SEED = 0x9747b28c;

/** Whether `n` is prime (trial division; config time only). */
function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** Greatest common divisor of two positive integers. */
function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Maglev consistent-hashing scheduler with a weighted lookup table. */
export class MaglevScheduler implements Scheduler {
  /** Configured name. */
  readonly name = "mh";
  readonly #set: ServerSet;
  /** Server index per slot; Int32 so that -1 marks an empty table (no live server). */
  readonly #table: Int32Array;

  /** Binds the scheduler to `set` and builds the table; throws if the table size is not prime. */
  constructor(set: ServerSet, options: MaglevOptions = {}) {
    const m = options.tableSize ?? MAGLEV_DEFAULT_TABLE_SIZE;
    if (!Number.isInteger(m) || m > 0x7fffffff || !isPrime(m)) {
      throw new Error(`mh: tableSize must be a prime number (e.g. ${MAGLEV_DEFAULT_TABLE_SIZE}), got ${m}`);
    }
    this.#set = set;
    this.#table = new Int32Array(m);
    this.rebuild();
  }

  /** Size M of the lookup table. */
  get tableSize(): number {
    return this.#table.length;
  }

  /** Owner of slot `sourceHash % M`, or -1 if no server has a positive weight. */
  pick(sourceHash: number): number {
    return this.#table[(sourceHash >>> 0) % this.#table.length];
  }

  /** Refills the table from the current weights (the paper's Populate, with weighted turns). */
  rebuild(): void {
    const table = this.#table;
    const m = table.length;
    const { keys, weights } = this.#set;
    table.fill(-1);

    // Live servers, and the gcd of their weights so that turns are as small as the proportions allow.
    const live: number[] = [];
    let g = 0;
    for (let i = 0; i < weights.length; i++) {
      if (weights[i] <= 0) continue;
      live.push(i);
      g = g === 0 ? weights[i] : gcd(g, weights[i]);
    }
    const n = live.length;
    if (n === 0) return;

    // Permutations are walked lazily (position advances by skip) instead of stored as N × M arrays.
    const position = new Float64Array(n);
    const skip = new Float64Array(n);
    const turns = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const key = keys[live[k]];
      position[k] = hashKey(key, OFFSET_SEED) % m;
      skip[k] = (hashKey(key, SKIP_SEED) % (m - 1)) + 1;
      turns[k] = weights[live[k]] / g;
    }

    let filled = 0;
    for (;;) {
      for (let k = 0; k < n; k++) {
        for (let t = 0; t < turns[k]; t++) {
          let slot = position[k];
          while (table[slot] >= 0) {
            slot += skip[k];
            if (slot >= m) slot -= m;
          }
          table[slot] = live[k];
          // The claimed slot is taken; resume this server's permutation one step further next time.
          slot += skip[k];
          position[k] = slot >= m ? slot - m : slot;
          if (++filled === m) return;
        }
      }
    }
  }
}
