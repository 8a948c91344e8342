/**
 * A log line per interval, not per event: for events that can come thousands a second (connections refused
 * by a limit, SYN-cookie fallbacks), where a line each would drown the log and cost more than the event.
 *
 * The first event after a quiet interval is written at once (count 1), so a rare event is never delayed;
 * events within the interval after a line are summed and written by the first {@link RateLimitedLog.hit} or
 * {@link RateLimitedLog.flush} at or after its end, with how many they were. The caller passes its clock
 * (ms), so the proxy's loop time is used and the tests use a fake one.
 *
 * @example
 * ```ts
 * import { RateLimitedLog } from "./rate_log.ts";
 * const lines: string[] = [];
 * const log = new RateLimitedLog<string>(10_000, (count, last) => lines.push(`count=${count} last=${last}`));
 * log.hit(0, "a"); // written: count=1 last=a
 * log.hit(5, "b");
 * log.hit(9, "c"); // summed
 * log.flush(10_000); // written: count=2 last=c
 * ```
 *
 * @module
 */

/** Writes at most one line per interval for a kind of event, with the count since the previous line. */
export class RateLimitedLog<T> {
  private pending = 0;
  private last: T | undefined;
  private nextAt = -Infinity;

  /** `write(count, last)` writes one line: `count` events, `last` the detail of the latest of them. */
  constructor(
    private readonly intervalMs: number,
    private readonly write: (count: number, last: T) => void,
  ) {}

  /** Counts one event at time `now` (ms) with its detail; writes a line when the interval allows. */
  hit(now: number, detail: T): void {
    this.pending++;
    this.last = detail;
    if (now >= this.nextAt) this.emit(now);
  }

  /** Writes the events summed so far once their interval is over; cheap to call every loop turn. */
  flush(now: number): void {
    if (this.pending > 0 && now >= this.nextAt) this.emit(now);
  }

  /** Writes what is pending now, interval or not (at shutdown, so no count is lost). */
  drain(): void {
    if (this.pending === 0) return;
    const n = this.pending;
    this.pending = 0;
    this.write(n, this.last as T);
  }

  /** Events counted but not yet written. */
  get unwritten(): number {
    return this.pending;
  }

  private emit(now: number): void {
    const n = this.pending;
    this.pending = 0;
    this.nextAt = now + this.intervalMs;
    this.write(n, this.last as T);
  }
}
