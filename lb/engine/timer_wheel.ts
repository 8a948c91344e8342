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
 * deadline, so the two sit in one cache line — by default side by side in a 16-byte entry, or, given a
 * {@link TimerFields}, inside the caller's own record (the connection table's: then a packet's refresh
 * costs no line beyond the connection's). The list links, touched only when an entry is (re)filed, sit side
 * by side in one Int32Array.
 *
 * @module
 */

import { PLAIN_MEMORY, type TableMemory } from "./table_memory.ts";

const NONE = -1;

/**
 * Where a wheel keeps each handle's deadline and filed second, when the caller lays them out: the deadline
 * of handle `id` at `deadlines[(id << deadlineShift) + deadlineAt]`, its filed second at
 * `filed[(id << filedShift) + filedAt]`. Both must read 0 for a handle never scheduled (a fresh buffer).
 */
export interface TimerFields {
  /** Deadlines, in seconds. */
  readonly deadlines: Float64Array;
  /** log2 of the deadline stride, in Float64 elements. */
  readonly deadlineShift: number;
  /** Index of handle 0's deadline. */
  readonly deadlineAt: number;
  /** Filed seconds, counted from the wheel's start plus one (0: not scheduled). */
  readonly filed: Int32Array;
  /** log2 of the filed-second stride, in Int32 elements. */
  readonly filedShift: number;
  /** Index of handle 0's filed second. */
  readonly filedAt: number;
}

/** Timer wheel over handles 0..capacity-1; deadlines are in whole or fractional seconds. */
export class TimerWheel {
  /** Number of slots (a power of two): one turn covers this many seconds. */
  readonly slots: number;
  private readonly mask: number;
  private readonly heads: Int32Array;
  /** Per handle `[next, prev]` in its slot's list. */
  private readonly links: Int32Array;
  // The deadline and filed second of each handle, as laid out in TimerFields. The filed second is stored
  // plus one, so a zeroed buffer means "nothing scheduled" and a big table needs no fill (no pages touched).
  private readonly dl: Float64Array;
  private readonly dlShift: number;
  private readonly dlAt: number;
  private readonly fl: Int32Array;
  private readonly flShift: number;
  private readonly flAt: number;
  /** The second before the wheel started: a stored filed second plus this is the second itself. */
  private readonly base: number;
  private current: number;

  /**
   * Creates a wheel for `capacity` handles starting at second `now`; `fields` places the per-handle deadline
   * and filed second in the caller's records (default: the wheel's own 16-byte entries); `memory` gives the
   * per-handle arrays (table_memory.ts).
   */
  constructor(
    capacity: number,
    now: number,
    slots = 4096,
    fields?: TimerFields,
    memory: TableMemory = PLAIN_MEMORY,
  ) {
    if ((slots & (slots - 1)) !== 0) throw new Error("TimerWheel: slots must be a power of two");
    this.slots = slots;
    this.mask = slots - 1;
    this.heads = new Int32Array(slots).fill(NONE);
    // Huge pages, given the memory for it: a refresh of a cold handle costs no TLB miss in a big wheel.
    this.links = new Int32Array(memory.buffer(capacity * 8));
    if (fields === undefined) {
      // [deadline: Float64, filed: Int32, unused: Int32] per handle.
      const entries = memory.buffer(capacity * 16);
      fields = {
        deadlines: new Float64Array(entries),
        deadlineShift: 1,
        deadlineAt: 0,
        filed: new Int32Array(entries),
        filedShift: 2,
        filedAt: 2,
      };
    }
    this.dl = fields.deadlines;
    this.dlShift = fields.deadlineShift;
    this.dlAt = fields.deadlineAt;
    this.fl = fields.filed;
    this.flShift = fields.filedShift;
    this.flAt = fields.filedAt;
    this.current = Math.floor(now);
    this.base = this.current - 1;
  }

  /** True when `id` is scheduled. */
  isScheduled(id: number): boolean {
    return this.fl[(id << this.flShift) + this.flAt] !== 0;
  }

  /** The deadline of `id` (may be later than the slot it is filed under); stale once it is unscheduled. */
  deadline(id: number): number {
    return this.dl[(id << this.dlShift) + this.dlAt];
  }

  /** Sets the deadline of `id` (schedules it if needed). Cheap when the deadline only moves later. */
  setDeadline(id: number, at: number): void {
    this.dl[(id << this.dlShift) + this.dlAt] = at;
    const filed = this.fl[(id << this.flShift) + this.flAt];
    if (filed !== 0 && filed + this.base <= Math.floor(at)) return;
    if (filed !== 0) this.unlink(id);
    this.file(id, at);
  }

  /** Removes `id` from the wheel. */
  cancel(id: number): void {
    if (this.fl[(id << this.flShift) + this.flAt] !== 0) this.unlink(id);
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
        if (this.fl[(id << this.flShift) + this.flAt] + this.base === this.current) {
          this.unlink(id);
          const at = this.dl[(id << this.dlShift) + this.dlAt];
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
    this.fl[(id << this.flShift) + this.flAt] = sec - this.base;
  }

  private unlink(id: number): void {
    const l = this.links;
    const p = l[(id << 1) + 1];
    const n = l[id << 1];
    const f = (id << this.flShift) + this.flAt;
    if (p !== NONE) l[p << 1] = n;
    else this.heads[(this.fl[f] + this.base) & this.mask] = n;
    if (n !== NONE) l[(n << 1) + 1] = p;
    this.fl[f] = 0;
  }
}
