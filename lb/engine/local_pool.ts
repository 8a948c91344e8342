/**
 * The local address/port pool of one worker: the (local address, local port) pairs that stand in for the
 * client toward the real servers.
 *
 * Each worker owns the ports `p` of the configured range with `p % workers === worker`, so replies can be
 * steered to the owner from the destination port alone. Each local address keeps its free ports in a FIFO
 * ring: a released port goes to the back, so a pair is reused as late as possible — the real server may
 * still hold the old connection in TIME_WAIT. A pair is handed out at most once until released, so no tuple
 * in use is ever handed out again.
 *
 * @module
 */

/** Free ports per local address, allocation-free after construction. */
export class LocalPool {
  /** Address family (4 or 6) of each local address, by index. */
  families: Uint8Array;
  /** Failed acquisitions per local address (dpvs sa_miss): every address of the family was exhausted. */
  misses: Float64Array;
  private readonly rings: Uint16Array[];
  private heads: Int32Array;
  private counts: Int32Array;
  private readonly inUse: Uint8Array[];
  private readonly perAddress: number;
  private readonly ports: number[];
  private readonly random: () => number;
  private cursor = 0;

  /**
   * Builds the pool for local addresses of the given families and this worker's slice of the port range.
   * Each ring starts at a random port (`random` in [0, 1)), so a restarted gateway does not hand out the
   * very pairs its predecessor just used, which real servers may still hold in TIME_WAIT.
   */
  constructor(
    families: number[],
    firstPort: number,
    lastPort: number,
    worker = 0,
    workers = 1,
    random: () => number = Math.random,
  ) {
    this.families = Uint8Array.from(families);
    const ports: number[] = [];
    for (let p = firstPort; p <= lastPort; p++) if (p % workers === worker) ports.push(p);
    this.perAddress = ports.length;
    this.ports = ports;
    this.random = random;
    this.misses = new Float64Array(families.length);
    this.rings = families.map(() => {
      const start = Math.floor(random() * ports.length);
      return Uint16Array.from([...ports.slice(start), ...ports.slice(0, start)]);
    });
    this.heads = new Int32Array(families.length);
    this.counts = new Int32Array(families.length).fill(ports.length);
    this.inUse = families.map(() => new Uint8Array(65536));
  }

  /** Adds a local address of `family` with all of this worker's ports free; returns its index (control path). */
  addAddress(family: number): number {
    const i = this.families.length;
    const grow = <T extends Uint8Array | Int32Array | Float64Array>(a: T, v: number): T => {
      const b = new (a.constructor as new (n: number) => T)(i + 1);
      b.set(a);
      b[i] = v;
      return b;
    };
    this.families = grow(this.families, family);
    this.misses = grow(this.misses, 0);
    this.heads = grow(this.heads, 0);
    this.counts = grow(this.counts, this.perAddress);
    const start = Math.floor(this.random() * this.ports.length);
    this.rings.push(Uint16Array.from([...this.ports.slice(start), ...this.ports.slice(0, start)]));
    this.inUse.push(new Uint8Array(65536));
    return i;
  }

  /** Free ports of local address `index`. */
  free(index: number): number {
    return this.counts[index];
  }

  /** Counts a failed acquisition for `family` against each of its addresses (rare path). */
  miss(family: number): void {
    for (let i = 0; i < this.families.length; i++) if (this.families[i] === family) this.misses[i]++;
  }

  /** Ports this worker owns per local address. */
  get portsPerAddress(): number {
    return this.perAddress;
  }

  /** Free pairs left for local addresses of `family`. */
  available(family: number): number {
    let n = 0;
    for (let i = 0; i < this.families.length; i++) if (this.families[i] === family) n += this.counts[i];
    return n;
  }

  /**
   * Takes a free pair for `family`, rotating over the local addresses. Returns `index * 65536 + port`, or -1
   * when every address of that family is exhausted.
   */
  acquire(family: number): number {
    const n = this.families.length;
    for (let k = 0; k < n; k++) {
      const i = (this.cursor + k) % n;
      if (this.families[i] !== family || this.counts[i] === 0) continue;
      this.cursor = (i + 1) % n;
      const ring = this.rings[i];
      const port = ring[this.heads[i]];
      this.heads[i] = (this.heads[i] + 1) % this.perAddress;
      this.counts[i]--;
      this.inUse[i][port] = 1;
      return i * 65536 + port;
    }
    return -1;
  }

  /** Returns a pair taken with {@link acquire}; a pair not in use is ignored (returns false). */
  release(index: number, port: number): boolean {
    const used = this.inUse[index];
    if (used === undefined || used[port] === 0) return false;
    used[port] = 0;
    const tail = (this.heads[index] + this.counts[index]) % this.perAddress;
    this.rings[index][tail] = port;
    this.counts[index]++;
    return true;
  }
}
