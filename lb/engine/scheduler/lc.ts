/**
 * Least connections, as IPVS `ip_vs_lc`: the server with the smallest overhead `active * 256 + inactive`
 * (`ip_vs_dest_conn_overhead`) gets the new connection. Inactive connections (handshakes, TIME_WAIT) count
 * for little, because they cost the server far less than an established one. Weights only gate: a server
 * with weight 0 is drained and skipped. Ties go to the first server, as in IPVS.
 *
 * @module
 */

import type { Scheduler, ServerSet } from "./scheduler.ts";

/** Least-connections scheduler over the live counts of the set. */
export class LeastConnectionsScheduler implements Scheduler {
  /** Configured name. */
  readonly name = "lc";
  readonly #set: ServerSet;

  /** Binds the scheduler to `set`. */
  constructor(set: ServerSet) {
    this.#set = set;
  }

  /** Live server with the least overhead, or -1 if every weight is 0. */
  pick(_sourceHash: number): number {
    const set = this.#set;
    const weights = set.weights;
    let best = -1;
    let bestOverhead = 0;
    for (let i = 0; i < weights.length; i++) {
      if (weights[i] <= 0) continue;
      const overhead = set.overhead(i);
      if (best < 0 || overhead < bestOverhead) {
        best = i;
        bestOverhead = overhead;
      }
    }
    return best;
  }

  /** Nothing is derived from the weights. */
  rebuild(): void {}
}
