/**
 * When a worker's `auto` SYN proxy is on (services with `synproxy: "auto"`): on as soon as its half-open
 * entries reach its share of `synproxyThreshold`; judged every {@link SP_AUTO_HOLD} seconds while on, and off
 * again only when both the half-open entries and the cookies no ACK answered in that time are under half the
 * threshold. The hysteresis keeps it on through a flood, whose cookies are never answered, and off in calm
 * traffic, where a burst of legitimate SYNs soon completes. Pure: the engine passes the clock and its cookie
 * counts, and counts and logs the switches.
 *
 * @module
 */
import { COOKIE_SLOT_SECONDS } from "./syn_cookie.ts";

/** Seconds the `auto` SYN proxy stays on at least, and the window over which it judges switching off. */
export const SP_AUTO_HOLD = 10;

/** The on/off state of one worker's `auto` SYN proxy. */
export class SynproxyAuto {
  /** On in this worker. */
  active = false;
  /** Half-open entries of this worker that switch it on (its share of the configured threshold, ≥ 1). */
  threshold = 1;
  private since = 0;
  private sent0 = 0;
  private valid0 = 0;
  private offAt = -Infinity;

  /** A new half-open entry made `halfOpen`: switches on at the threshold; true when it switched. */
  halfOpened(halfOpen: number, now: number, sent: number, valid: number): boolean {
    if (this.active || halfOpen < this.threshold) return false;
    this.active = true;
    this.start(now, sent, valid);
    return true;
  }

  /**
   * The clock moved to `now` (cookies `sent` and `valid` so far, `halfOpen` entries): once a hold period has
   * passed, off when both measures are under half the threshold, else the next period starts; true when it
   * switched off.
   */
  tick(now: number, halfOpen: number, sent: number, valid: number): boolean {
    if (!this.active || now - this.since < SP_AUTO_HOLD) return false;
    const unanswered = (sent - this.sent0) - (valid - this.valid0);
    const low = this.threshold / 2;
    if (unanswered < low && halfOpen < low) {
      this.active = false;
      this.offAt = now;
      return true;
    }
    this.start(now, sent, valid);
    return false;
  }

  /** Whether an ACK may still prove a cookie: on, or off for less than two cookie slots (a cookie's life). */
  acceptsCookies(now: number): boolean {
    return this.active || now - this.offAt < 2 * COOKIE_SLOT_SECONDS;
  }

  private start(now: number, sent: number, valid: number): void {
    this.since = now;
    this.sent0 = sent;
    this.valid0 = valid;
  }
}
