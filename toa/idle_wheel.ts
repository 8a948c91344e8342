/**
 * Idle timeouts for many connections without scanning them: a hashed timer wheel of one-second slots,
 * rescheduled lazily.
 *
 * ```
 *   slot = due second mod N        due second = ceil((lastActive + timeout) / 1000)
 *   ┌────┬────┬────┬────┬─ … ─┬──────┐
 *   │ s0 │ s1 │ s2 │ s3 │     │ sN-1 │   advance(now): for every whole second passed, look at its slot only
 *   └────┴────┴────┴────┴─ … ─┴──────┘
 * ```
 *
 * Activity costs one store: the owner sets `entry.lastActive = now` and never touches the wheel. When a
 * slot's second comes, each entry in it is checked: idle for the whole timeout → expired; otherwise it
 * moves to the slot of its new due second. So an entry is looked at about once per timeout (twice when the
 * timeout is longer than N seconds) however busy it is, and a turn of the owner's loop that does not cross
 * a second boundary costs one comparison. An entry expires when it has been idle for at least the timeout,
 * at the first `advance` after the next second boundary: within [timeout, timeout + 1 s + one loop turn).
 *
 * Removal is O(1) (swap with the slot's last entry), so closed connections do not linger in the wheel.
 * The clock is whatever the owner passes in milliseconds, so tests drive it by hand.
 *
 * @module
 */

/** What the wheel times: the owner's last-activity time, and the wheel's own bookkeeping. */
export interface IdleEntry {
  /** Time (ms, the owner's clock) of the last activity; set by the owner on every byte moved. */
  lastActive: number;
  /** Slot index while in the wheel, -1 when not (initialize to -1). */
  wheelSlot: number;
  /** Position inside the slot; meaningful only while in the wheel. */
  wheelPos: number;
}

/** A timer wheel of one-second slots expiring entries idle for `timeoutMs`. */
export class IdleWheel<T extends IdleEntry> {
  private readonly slots: T[][];
  /** The last whole second whose slot has been looked at. */
  private second: number;
  private count = 0;

  /** A wheel for `timeoutMs` (> 0) starting at `nowMs`, with `slotCount` one-second slots. */
  constructor(readonly timeoutMs: number, nowMs: number, slotCount = 512) {
    if (!(timeoutMs > 0)) throw new RangeError(`idle timeout must be > 0 ms, got ${timeoutMs}`);
    this.slots = Array.from({ length: slotCount }, () => []);
    this.second = Math.floor(nowMs / 1000);
  }

  /** Entries in the wheel. */
  get size(): number {
    return this.count;
  }

  /** Starts timing `e`, active as of `nowMs`. */
  add(e: T, nowMs: number): void {
    if (e.wheelSlot >= 0) this.remove(e);
    e.lastActive = nowMs;
    this.place(e);
  }

  /** Stops timing `e` (no-op when it is not in the wheel). */
  remove(e: T): void {
    const slot = e.wheelSlot;
    if (slot < 0) return;
    const list = this.slots[slot];
    const last = list.pop()!;
    if (last !== e) {
      list[e.wheelPos] = last;
      last.wheelPos = e.wheelPos;
    }
    e.wheelSlot = -1;
    this.count--;
  }

  /**
   * Looks at the slots of the whole seconds up to `nowMs`; each entry idle for the timeout is removed, then
   * passed to `expire` (which may remove other entries). Returns how many expired.
   */
  advance(nowMs: number, expire: (e: T) => void): number {
    const target = Math.floor(nowMs / 1000);
    if (target <= this.second) return 0;
    const n = this.slots.length;
    // After a stall longer than the wheel, one look at every slot covers every second missed.
    const first = Math.max(this.second + 1, target - n + 1);
    this.second = target;
    let expired = 0;
    for (let s = first; s <= target; s++) {
      const list = this.slots[s % n];
      // Backwards, so swap-removal only moves entries already looked at (or re-placed here) into the gap.
      for (let k = list.length - 1; k >= 0; k--) {
        if (k >= list.length) continue;
        const e = list[k];
        this.remove(e);
        if (e.lastActive + this.timeoutMs <= nowMs) {
          expired++;
          expire(e);
        } else this.place(e);
      }
    }
    return expired;
  }

  private place(e: T): void {
    // The first whole second at or after the entry's deadline; always later than `this.second`.
    const due = Math.max(Math.ceil((e.lastActive + this.timeoutMs) / 1000), this.second + 1);
    const slot = due % this.slots.length;
    const list = this.slots[slot];
    e.wheelSlot = slot;
    e.wheelPos = list.length;
    list.push(e);
    this.count++;
  }
}
