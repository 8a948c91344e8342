/**
 * The client segments the SYN proxy keeps while a connection's server side opens (data that came with or
 * right after the cookie's ACK): a fixed number of MTU-sized slots per worker, one segment per connection,
 * nothing allocated per packet. Each waits about one round trip to the server; a full store refuses, and the
 * client retransmits. Which connection holds a segment is the caller's to remember (a flag on the
 * connection), so a packet of one without a segment never scans the slots.
 *
 * @module
 */

/** Fixed slots of kept segments, each owned by one connection handle. */
export class KeptSegments {
  /** Number of slots. */
  readonly slots: number;
  /** Largest segment a slot holds, in bytes. */
  readonly slotSize: number;
  private readonly buf: Uint8Array;
  private readonly owner: Int32Array;
  private readonly len: Int32Array;

  /** `slots` slots of `slotSize` bytes each. */
  constructor(slots: number, slotSize: number) {
    this.slots = slots;
    this.slotSize = slotSize;
    this.buf = new Uint8Array(slots * slotSize);
    this.owner = new Int32Array(slots).fill(-1);
    this.len = new Int32Array(slots);
  }

  /** Keeps `b[0, len)` for connection `id`; false when it is larger than a slot or no slot is free. */
  put(id: number, b: Uint8Array, len: number): boolean {
    if (len > this.slotSize) return false;
    const k = this.slotOf(-1);
    if (k < 0) return false;
    this.buf.set(b.subarray(0, len), k * this.slotSize);
    this.owner[k] = id;
    this.len[k] = len;
    return true;
  }

  /** Moves connection `id`'s segment to `out[0, …)` and frees its slot; its length, or -1 when it has none. */
  take(id: number, out: Uint8Array): number {
    const k = this.slotOf(id);
    if (k < 0) return -1;
    const len = this.len[k];
    out.set(this.buf.subarray(k * this.slotSize, k * this.slotSize + len), 0);
    this.owner[k] = -1;
    return len;
  }

  /** Frees connection `id`'s slot, if it holds one (the connection is gone). */
  release(id: number): void {
    const k = this.slotOf(id);
    if (k >= 0) this.owner[k] = -1;
  }

  /** The slot owned by `id` (-1: a free one), or -1. */
  private slotOf(id: number): number {
    for (let k = 0; k < this.slots; k++) if (this.owner[k] === id) return k;
    return -1;
  }
}
