/**
 * Source hashing, as IPVS `ip_vs_sh`: a table of 2^bits buckets (256 by default, `IP_VS_SH_TAB_SIZE`) is
 * filled by walking the servers in order, each taking `weight` consecutive buckets per turn, until the
 * table is full. A client's hash picks a bucket, the bucket names the server, so a client sticks to one
 * server while the weights stay put.
 *
 * As in IPVS, a weight-0 server still takes one bucket per turn, so draining a weight-1 server leaves the
 * table as it was; a pick that lands on a drained server falls back to the next bucket's server (IPVS'
 * `sh-fallback` flag, which probes `hash + 1`, `hash + 2`, ...), so the server gets nothing new and only its
 * own clients move.
 *
 * @module
 */

import type { Scheduler, ServerSet } from "./scheduler.ts";

/** Options of {@link SourceHashScheduler}. */
export interface SourceHashOptions {
  /** log2 of the table size; 8 gives IPVS' 256 buckets. */
  tableBits?: number;
}

/** `GOLDEN_RATIO_32` of the kernel's `hash_32`: spreads nearby client hashes over the buckets. */
const GOLDEN_RATIO_32 = 0x61c88647;

/** Source-hashing scheduler over a weight-filled bucket table. */
export class SourceHashScheduler implements Scheduler {
  /** Configured name. */
  readonly name = "sh";
  readonly #set: ServerSet;
  readonly #bits: number;
  /** Server index per bucket; -1 only when the set is empty. */
  readonly #table: Int32Array;

  /** Binds the scheduler to `set` and fills the table. */
  constructor(set: ServerSet, options: SourceHashOptions = {}) {
    const bits = options.tableBits ?? 8;
    if (!Number.isInteger(bits) || bits < 1 || bits > 20) {
      throw new Error(`sh: tableBits must be an integer in 1..20, got ${bits}`);
    }
    this.#set = set;
    this.#bits = bits;
    this.#table = new Int32Array(1 << bits);
    this.rebuild();
  }

  /** Size of the bucket table. */
  get tableSize(): number {
    return this.#table.length;
  }

  /** Server of the client's bucket, or of the next bucket whose server is live; -1 if none is. */
  pick(sourceHash: number): number {
    const table = this.#table;
    const weights = this.#set.weights;
    const mask = table.length - 1;
    // hash_32(): the top bits of the product are the well-mixed ones.
    const bucket = Math.imul(sourceHash | 0, GOLDEN_RATIO_32) >>> (32 - this.#bits);
    for (let probe = 0; probe <= mask; probe++) {
      const server = table[(bucket + probe) & mask];
      if (server >= 0 && weights[server] > 0) return server;
    }
    return -1;
  }

  /** Refills the table from the current weights (`ip_vs_sh_reassign`). */
  rebuild(): void {
    const table = this.#table;
    const weights = this.#set.weights;
    const n = weights.length;
    if (n === 0) {
      table.fill(-1);
      return;
    }
    let server = 0;
    let taken = 0;
    for (let b = 0; b < table.length; b++) {
      table[b] = server;
      // `>=` rather than `===`: a weight of 0 still yields one bucket, exactly as IPVS.
      if (++taken >= weights[server]) {
        server = server + 1 === n ? 0 : server + 1;
        taken = 0;
      }
    }
  }
}
