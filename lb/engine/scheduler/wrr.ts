/**
 * Smooth weighted round robin, the nginx algorithm (`ngx_http_upstream_get_peer`), which dpvs also uses.
 *
 * Each pick adds every live server's weight to its running `current`, picks the server with the largest
 * `current` and subtracts the total weight from it. Over one cycle of `sum(weights)` picks each server is
 * picked exactly `weight` times, and the picks are interleaved rather than bursty: weights 5,1,1 give
 * `a a b a c a a`, where IPVS' classic `ip_vs_wrr` would send five in a row to `a`.
 *
 * @module
 */

import type { Scheduler, ServerSet } from "./scheduler.ts";

/** Smooth weighted round-robin scheduler; weight-0 servers are skipped. */
export class WeightedRoundRobinScheduler implements Scheduler {
  /** Configured name. */
  readonly name = "wrr";
  readonly #set: ServerSet;
  /** Running score per server; doubles so that sums of int32 weights cannot overflow. */
  #current: Float64Array;

  /** Binds the scheduler to `set`. */
  constructor(set: ServerSet) {
    this.#set = set;
    this.#current = new Float64Array(set.size);
  }

  /** Server with the largest running score (first on ties), or -1 if every weight is 0. */
  pick(_sourceHash: number): number {
    const weights = this.#set.weights;
    const current = this.#current;
    let total = 0;
    let best = -1;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i];
      if (w <= 0) continue;
      current[i] += w;
      total += w;
      if (best < 0 || current[i] > current[best]) best = i;
    }
    if (best >= 0) current[best] -= total;
    return best;
  }

  /** Restarts the cycle: scores left from old weights would skew the new proportions. */
  rebuild(): void {
    if (this.#current.length !== this.#set.size) this.#current = new Float64Array(this.#set.size);
    else this.#current.fill(0);
  }
}
