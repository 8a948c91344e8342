/**
 * A hashed timer wheel over integer handles (connection indexes), with one-second ticks.
 *
 * Expiry without scanning the table: each entry sits in the slot of the second it is due, in a doubly
 * linked list kept in typed arrays. Refreshing an entry to a *later* time only stores the new deadline
 * (the per-packet case, one write); the wheel notices when the slot comes round and re-files the entry.
 * Only a deadline moved *earlier* (a state with a shorter timeout) relinks the entry. Deadlines beyond one
 * turn of the wheel are filed in the last reachable slot and re-filed when it fires.
 *
 * Memory per handle, by what touches it: the per-packet refresh reads the filed second and writes the
 * deadline, so the two sit side by side in one Float64Array (16 bytes, never split across cache lines:
 * one line per packet instead of two in a 10 M table); the list links, touched only when an entry is
 * (re)filed, sit side by side in one Int32Array.
 *
 * @module
 */

import { hugeBuffer } from "../../base/sys/aligned.ts";

const NONE = -1;

/** Timer wheel over handles 0..capacity-1; deadlines are in whole or fractional seconds. */
export class TimerWheel {
  /** Number of slots (a power of two): one turn covers this many seconds. */
  readonly slots: number;
  private readonly mask: number;
  private readonly heads: Int32Array;
  /** Per handle `[next, prev]` in its slot's list. */
  private readonly links: Int32Array;
  /**
   * Per handle `[deadline, filed]`: the deadline (may be later than the slot it is filed under), and the
   * second it is filed under counted from {@link base}, or -1 when not scheduled.
   */
  private readonly times: Float64Array;
  /** The second the wheel started at: the filed seconds count from it. */
  private readonly base: number;
  private current: number;

  /** Creates a wheel for `capacity` handles starting at second `now`. */
  constructor(capacity: number, now: number, slots = 4096) {
    if ((slots & (slots - 1)) !== 0) throw new Error("TimerWheel: slots must be a power of two");
    this.slots = slots;
    this.mask = slots - 1;
    this.heads = new Int32Array(slots).fill(NONE);
    // Huge pages (aligned.ts): a refresh of a cold handle costs no TLB miss in a big wheel.
    this.links = new Int32Array(hugeBuffer(capacity * 8));
    this.times = new Float64Array(hugeBuffer(capacity * 16));
    for (let i = 1; i < this.times.length; i += 2) this.times[i] = -1;
    this.current = Math.floor(now);
    this.base = this.current;
  }

  /** True when `id` is scheduled. */
  isScheduled(id: number): boolean {
    return this.times[(id << 1) + 1] >= 0;
  }

  /** The deadline of `id` (may be later than the slot it is filed under); stale once it is unscheduled. */
  deadline(id: number): number {
    return this.times[id << 1];
  }

  /** Sets the deadline of `id` (schedules it if needed). Cheap when the deadline only moves later. */
  setDeadline(id: number, at: number): void {
    const t = id << 1;
    this.times[t] = at;
    const filed = this.times[t + 1];
    if (filed >= 0 && filed + this.base <= Math.floor(at)) return;
    if (filed >= 0) this.unlink(id);
    this.file(id, at);
  }

  /** Removes `id` from the wheel. */
  cancel(id: number): void {
    if (this.times[(id << 1) + 1] >= 0) this.unlink(id);
  }

  /**
   * Advances to second `now`, calling `expire(id)` for every handle whose deadline has passed (it is
   * unscheduled first, so the callback may reuse the handle). Returns how many expired.
   */
  advance(now: number, expire: (id: number) => void): number {
    const target = Math.floor(now);
    let n = 0;
    while (this.current <= target) {
      const slot = this.current & this.mask;
      let id = this.heads[slot];
      while (id !== NONE) {
        const nxt = this.links[id << 1];
        if (this.times[(id << 1) + 1] + this.base === this.current) {
          this.unlink(id);
          const at = this.times[id << 1];
          if (at <= now) {
            n++;
            expire(id);
          } else {
            this.file(id, at);
          }
        }
        id = nxt;
      }
      if (this.current === target) break;
      this.current++;
    }
    return n;
  }

  /**
   * Fills `out` with up to `out.length` scheduled handles, the slots due soonest first (within a slot, the
   * last filed first), looking at no more than `maxSlots` slots: a bounded walk to the entries nearest their
   * deadline. A handle whose deadline moved later since it was filed is found where it was filed.
   */
  soonest(out: Int32Array, maxSlots = this.slots): number {
    let n = 0;
    const slots = maxSlots < this.slots ? maxSlots : this.slots;
    for (let k = 0; k < slots && n < out.length; k++) {
      for (
        let id = this.heads[(this.current + k) & this.mask];
        id !== NONE && n < out.length;
        id = this.links[id << 1]
      ) {
        out[n++] = id;
      }
    }
    return n;
  }

  private file(id: number, at: number): void {
    let sec = Math.floor(at);
    if (sec < this.current) sec = this.current;
    if (sec > this.current + this.slots - 1) sec = this.current + this.slots - 1;
    const slot = sec & this.mask;
    const h = this.heads[slot];
    const l = this.links;
    l[id << 1] = h;
    l[(id << 1) + 1] = NONE;
    if (h !== NONE) l[(h << 1) + 1] = id;
    this.heads[slot] = id;
    this.times[(id << 1) + 1] = sec - this.base;
  }

  private unlink(id: number): void {
    const l = this.links;
    const p = l[(id << 1) + 1];
    const n = l[id << 1];
    if (p !== NONE) l[p << 1] = n;
    else this.heads[(this.times[(id << 1) + 1] + this.base) & this.mask] = n;
    if (n !== NONE) l[(n << 1) + 1] = p;
    this.times[(id << 1) + 1] = -1;
  }
}
