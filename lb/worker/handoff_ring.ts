/**
 * A single-producer, single-consumer ring of packets over a SharedArrayBuffer: how a worker hands a packet
 * whose connection another worker owns to that worker, when the kernel's queue steering did not already
 * send it there. One ring per (from, to) pair of workers, so no locks: the producer only moves `tail`, the
 * consumer only moves `head`, both with Atomics.
 *
 * Layout: 8 bytes of header (head, tail as Int32 byte counters, wrapping mod 2^32), then `capacity` bytes
 * of records: a 4-byte little-endian length and the packet, padded to 4 bytes. A record that would run past
 * the end is preceded by a wrap marker (length 0xffffffff) and starts again at offset 0.
 *
 * @module
 */

const HEADER = 8;
const WRAP = 0xffffffff;

/** Bytes a ring of `capacity` data bytes occupies. */
export function handoffRingBytes(capacity: number): number {
  return HEADER + capacity;
}

/** One end of a hand-off ring (either end: call only push from the producer, only pop from the consumer). */
export class HandoffRing {
  private readonly idx: Int32Array;
  private readonly data: Uint8Array;
  private readonly view: DataView;
  private readonly cap: number;

  /** Wraps `sab` (from {@link handoffRingBytes}); capacity must be a power of two, at least 4 KiB. */
  constructor(sab: SharedArrayBuffer) {
    this.cap = sab.byteLength - HEADER;
    if (this.cap < 4096 || (this.cap & (this.cap - 1)) !== 0) throw new Error("HandoffRing: bad capacity");
    this.idx = new Int32Array(sab, 0, 2);
    this.data = new Uint8Array(sab, HEADER, this.cap);
    this.view = new DataView(sab, HEADER, this.cap);
  }

  /** Copies `b[0, len)` in; false when the ring has no room (the caller counts the drop). */
  push(b: Uint8Array, len: number): boolean {
    const head = Atomics.load(this.idx, 0) >>> 0;
    const tail = Atomics.load(this.idx, 1) >>> 0;
    const used = (tail - head) >>> 0;
    const rec = (4 + len + 3) & ~3;
    const at = tail % this.cap;
    const toEnd = this.cap - at;
    const need = toEnd < rec ? toEnd + rec : rec;
    if (used + need > this.cap) return false;
    let pos = at;
    if (toEnd < rec) {
      this.view.setUint32(pos, WRAP, true);
      pos = 0;
    }
    this.view.setUint32(pos, len, true);
    for (let i = 0; i < len; i++) this.data[pos + 4 + i] = b[i];
    Atomics.store(this.idx, 1, (tail + need) | 0);
    return true;
  }

  /** Copies the oldest packet into `out`; returns its length, or 0 when the ring is empty. */
  pop(out: Uint8Array): number {
    let head = Atomics.load(this.idx, 0) >>> 0;
    const tail = Atomics.load(this.idx, 1) >>> 0;
    if (head === tail) return 0;
    let pos = head % this.cap;
    let len = this.view.getUint32(pos, true);
    if (len === WRAP) {
      head = (head + (this.cap - pos)) >>> 0;
      pos = 0;
      len = this.view.getUint32(0, true);
    }
    out.set(this.data.subarray(pos + 4, pos + 4 + len));
    Atomics.store(this.idx, 0, (head + ((4 + len + 3) & ~3)) | 0);
    return len;
  }
}
