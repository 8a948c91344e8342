/**
 * A hashed timer wheel over integer handles (connection indexes), with one-second ticks.
 *
 * Expiry without scanning the table: each entry sits in the slot of the second it is due, in a doubly
 * linked list kept in typed arrays. Refreshing an entry to a *later* time only stores the new deadline
 * (the per-packet case, one write); the wheel notices when the slot comes round and re-files the entry.
 * Only a deadline moved *earlier* (a state with a shorter timeout) relinks the entry. Deadlines beyond one
 * turn of the wheel are filed in the last reachable slot and re-filed when it fires.
 *
 * @module
 */

const NONE = -1;

/** Timer wheel over handles 0..capacity-1; deadlines are in whole or fractional seconds. */
export class TimerWheel {
  /** Number of slots (a power of two): one turn covers this many seconds. */
  readonly slots: number;
  private readonly mask: number;
  private readonly heads: Int32Array;
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  /**
   * Second each handle is filed under, counted from {@link base} (4 bytes a handle, not 8: 68 years of
   * seconds), or -1 when not scheduled.
   */
  private readonly filedAt: Int32Array;
  /** The second the wheel started at: {@link filedAt} counts from it. */
  private readonly base: number;
  /** The deadline of each handle (may be later than the slot it is filed under). */
  readonly deadline: Float64Array;
  private current: number;

  /** Creates a wheel for `capacity` handles starting at second `now`. */
  constructor(capacity: number, now: number, slots = 4096) {
    if ((slots & (slots - 1)) !== 0) throw new Error("TimerWheel: slots must be a power of two");
    this.slots = slots;
    this.mask = slots - 1;
    this.heads = new Int32Array(slots).fill(NONE);
    this.next = new Int32Array(capacity);
    this.prev = new Int32Array(capacity);
    this.filedAt = new Int32Array(capacity).fill(-1);
    this.deadline = new Float64Array(capacity);
    this.current = Math.floor(now);
    this.base = this.current;
  }

  /** True when `id` is scheduled. */
  isScheduled(id: number): boolean {
    return this.filedAt[id] >= 0;
  }

  /** Sets the deadline of `id` (schedules it if needed). Cheap when the deadline only moves later. */
  setDeadline(id: number, at: number): void {
    this.deadline[id] = at;
    const filed = this.filedAt[id];
    if (filed >= 0 && filed + this.base <= Math.floor(at)) return;
    if (filed >= 0) this.unlink(id);
    this.file(id, at);
  }

  /** Removes `id` from the wheel. */
  cancel(id: number): void {
    if (this.filedAt[id] >= 0) this.unlink(id);
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
        const nxt = this.next[id];
        if (this.filedAt[id] + this.base === this.current) {
          this.unlink(id);
          if (this.deadline[id] <= now) {
            n++;
            expire(id);
          } else {
            this.file(id, this.deadline[id]);
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
        id = this.next[id]
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
    this.next[id] = h;
    this.prev[id] = NONE;
    if (h !== NONE) this.prev[h] = id;
    this.heads[slot] = id;
    this.filedAt[id] = sec - this.base;
  }

  private unlink(id: number): void {
    const p = this.prev[id];
    const n = this.next[id];
    if (p !== NONE) this.next[p] = n;
    else this.heads[(this.filedAt[id] + this.base) & this.mask] = n;
    if (n !== NONE) this.prev[n] = p;
    this.filedAt[id] = -1;
  }
}
