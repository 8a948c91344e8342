/**
 * The scheduler contract: how a service picks the real server for a new connection. Schedulers read the
 * live per-server figures from a {@link ServerSet} that the engine keeps up to date (weights, active and
 * inactive connection counts), so picking allocates nothing.
 *
 * @module
 */

/** The real servers of one service, as flat arrays indexed by the server's position in the service. */
export class ServerSet {
  /** Stable identity of each server ("198.18.3.10:80"): what consistent hashing hashes. */
  readonly keys: string[];
  /** Current weight; 0 drains the server: its connections go on, it gets no new ones. */
  readonly weights: Int32Array;
  /** Connections in ESTABLISHED state on this worker. */
  readonly active: Int32Array;
  /** Connections in any other state on this worker. */
  readonly inactive: Int32Array;

  /** Creates the set with the servers' keys and initial weights. */
  constructor(keys: string[], weights: number[]) {
    this.keys = keys.slice();
    this.weights = Int32Array.from(weights);
    this.active = new Int32Array(keys.length);
    this.inactive = new Int32Array(keys.length);
  }

  /** Number of servers. */
  get size(): number {
    return this.keys.length;
  }

  /**
   * Load of server `i` as IPVS counts it for lc/wlc (`ip_vs_dest_conn_overhead`): `active * 256 + inactive`,
   * since a handshake or TIME_WAIT costs the server far less than an established connection.
   */
  overhead(i: number): number {
    // A double, not `<< 8`: active counts up to 2^31 would overflow int32 once shifted.
    return this.active[i] * 256 + this.inactive[i];
  }
}

/** A scheduling algorithm bound to one service's {@link ServerSet}. */
export interface Scheduler {
  /** The algorithm's name as configured ("rr", "wrr", "lc", "wlc", "sh", "mh"). */
  readonly name: string;
  /**
   * Picks the server for a new connection: an index into the set, or -1 when no server may take one (all
   * weights 0). `sourceHash` is a 32-bit hash of the client's address, used by the hashing schedulers.
   */
  pick(sourceHash: number): number;
  /** Recomputes derived state after weights changed (tables, cursors). */
  rebuild(): void;
}
