/**
 * Weighted least connections, as IPVS `ip_vs_wlc`: the server minimising `overhead / weight`, with overhead
 * `active * 256 + inactive`. Like IPVS it compares `overhead_a * weight_b > overhead_b * weight_a` instead of
 * dividing, so the choice is exact integer arithmetic: the products stay below 2^53 while overheads are
 * below 2^37 and weights below 2^16 (ipvsadm's weight range is 0..65535). Ties go to the first server.
 *
 * @module
 */

import type { Scheduler, ServerSet } from "./scheduler.ts";

/** Weighted least-connections scheduler; weight-0 servers are skipped. */
export class WeightedLeastConnectionsScheduler implements Scheduler {
  /** Configured name. */
  readonly name = "wlc";
  readonly #set: ServerSet;

  /** Binds the scheduler to `set`. */
  constructor(set: ServerSet) {
    this.#set = set;
  }

  /** Live server with the least overhead per unit of weight, or -1 if every weight is 0. */
  pick(_sourceHash: number): number {
    const set = this.#set;
    const weights = set.weights;
    let best = -1;
    let bestOverhead = 0;
    let bestWeight = 0;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i];
      if (w <= 0) continue;
      const overhead = set.overhead(i);
      // overhead/w < bestOverhead/bestWeight, cross-multiplied (both weights are positive).
      if (best < 0 || overhead * bestWeight < bestOverhead * w) {
        best = i;
        bestOverhead = overhead;
        bestWeight = w;
      }
    }
    return best;
  }

  /** Nothing is derived from the weights. */
  rebuild(): void {}
}
