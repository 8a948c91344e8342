/**
 * Round robin, as IPVS `ip_vs_rr`: each pick continues after the server picked last and skips servers whose
 * weight is 0 (drained), so live servers get equal shares whatever their weights.
 *
 * @module
 */

import type { Scheduler, ServerSet } from "./scheduler.ts";

/** Round-robin scheduler over the servers with a positive weight. */
export class RoundRobinScheduler implements Scheduler {
  /** Configured name. */
  readonly name = "rr";
  readonly #set: ServerSet;
  /** Index picked last; -1 so that the first pick is server 0. */
  #last = -1;

  /** Binds the scheduler to `set`. */
  constructor(set: ServerSet) {
    this.#set = set;
  }

  /** Next live server after the last pick, or -1 if every weight is 0. */
  pick(_sourceHash: number): number {
    const weights = this.#set.weights;
    const n = weights.length;
    let i = this.#last;
    for (let step = 0; step < n; step++) {
      i = i + 1 >= n ? 0 : i + 1;
      if (weights[i] > 0) {
        this.#last = i;
        return i;
      }
    }
    return -1;
  }

  /** Nothing is derived from the weights; the cursor stays so a weight change doesn't restart the cycle. */
  rebuild(): void {
    if (this.#last >= this.#set.size) this.#last = -1;
  }
}
