/**
 * A small open-addressing map from (address, port, protocol) to an integer, over typed arrays: how the
 * engine finds a service from a packet's destination, and a local address's index, without allocating.
 * Addresses are four 32-bit words (IPv4: word 0, the rest 0; the family keeps the two apart).
 *
 * @module
 */

/** Value returned by {@link AddrMap.get} for a missing key. */
export const ADDR_MAP_MISS = -1;

/** Fixed-capacity map of (family, address words, port, protocol) keys to non-negative integers. */
export class AddrMap {
  private readonly keys: Uint32Array;
  private readonly values: Int32Array;
  private readonly mask: number;
  private count = 0;

  /** Creates a map for up to `maxEntries` keys (the table is kept at most half full). */
  constructor(maxEntries: number) {
    let n = 16;
    while (n < maxEntries * 2) n *= 2;
    this.keys = new Uint32Array(n * 6);
    this.values = new Int32Array(n).fill(ADDR_MAP_MISS);
    this.mask = n - 1;
  }

  private slot(fam: number, a0: number, a1: number, a2: number, a3: number, pp: number): number {
    let h = Math.imul(fam ^ a0, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 15) ^ a1, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ a2, 0xc2b2ae35);
    h = Math.imul(h ^ (h >>> 16) ^ a3, 0x27d4eb2f);
    h = Math.imul(h ^ (h >>> 15) ^ pp, 0x165667b1);
    return (h ^ (h >>> 16)) & this.mask;
  }

  /** Looks a key up; ADDR_MAP_MISS when absent. `port` and `proto` may be 0 for address-only keys. */
  get(fam: number, a0: number, a1: number, a2: number, a3: number, port: number, proto: number): number {
    const pp = ((port << 8) | proto | (fam << 24)) >>> 0;
    let i = this.slot(fam, a0, a1, a2, a3, pp);
    for (;;) {
      const v = this.values[i];
      if (v === ADDR_MAP_MISS) return ADDR_MAP_MISS;
      const k = i * 6;
      const ks = this.keys;
      if (ks[k] === pp && ks[k + 1] === a0 && ks[k + 2] === a1 && ks[k + 3] === a2 && ks[k + 4] === a3) {
        return v;
      }
      i = (i + 1) & this.mask;
    }
  }

  /** Adds or replaces a key (control path). Throws when the map is full. */
  set(
    fam: number,
    a0: number,
    a1: number,
    a2: number,
    a3: number,
    port: number,
    proto: number,
    value: number,
  ): void {
    const pp = ((port << 8) | proto | (fam << 24)) >>> 0;
    let i = this.slot(fam, a0, a1, a2, a3, pp);
    for (;;) {
      const k = i * 6;
      if (this.values[i] === ADDR_MAP_MISS) {
        if (this.count * 2 >= this.values.length) throw new Error("AddrMap: full");
        this.count++;
        break;
      }
      if (
        this.keys[k] === pp && this.keys[k + 1] === a0 && this.keys[k + 2] === a1 &&
        this.keys[k + 3] === a2 &&
        this.keys[k + 4] === a3
      ) break;
      i = (i + 1) & this.mask;
    }
    const k = i * 6;
    this.keys[k] = pp;
    this.keys[k + 1] = a0;
    this.keys[k + 2] = a1;
    this.keys[k + 3] = a2;
    this.keys[k + 4] = a3;
    this.values[i] = value;
  }
}
