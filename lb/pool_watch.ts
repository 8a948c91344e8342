/**
 * Warns before the local address/port pools run dry: a local address whose pairs are more than 90 % in use
 * gets one log line when it crosses that mark; the warning is re-armed once its use falls below 80 % (one
 * line saying so), so a pool hovering at the mark does not flood the log. Fed the summed pool figures of a
 * stats snapshot (lb/stats.ts); the gateway polls them (lb/gateway.ts). Pure: lines out, no I/O.
 *
 * @module
 */
import type { PoolStats } from "./stats.ts";

/** Share of a local address's pairs in use above which it is reported. */
export const POOL_WARN_ABOVE = 0.9;
/** Share of pairs in use below which a reported address is re-armed. */
export const POOL_REARM_BELOW = 0.8;

/** Tracks which local addresses have been reported as nearly exhausted. */
export class PoolWatch {
  private readonly warned = new Set<string>();

  /**
   * Takes the pools' current use and returns the log lines it calls for (usually none): one
   * `fnat-lb pool_nearly_exhausted` line per address crossing {@link POOL_WARN_ABOVE}, one
   * `fnat-lb pool_recovered` line per reported address falling below {@link POOL_REARM_BELOW}.
   */
  update(pools: readonly PoolStats[]): string[] {
    const lines: string[] = [];
    for (const p of pools) {
      const total = p.used + p.free;
      if (total <= 0) continue;
      const share = p.used / total;
      const fields =
        `address=${p.address} used=${p.used} free=${p.free} percent=${(share * 100).toFixed(1)} ` +
        `misses=${p.misses}`;
      if (!this.warned.has(p.address) && share > POOL_WARN_ABOVE) {
        this.warned.add(p.address);
        lines.push(`fnat-lb pool_nearly_exhausted ${fields}`);
      } else if (this.warned.has(p.address) && share < POOL_REARM_BELOW) {
        this.warned.delete(p.address);
        lines.push(`fnat-lb pool_recovered ${fields}`);
      }
    }
    return lines;
  }
}
