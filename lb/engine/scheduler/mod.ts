/**
 * The per-service schedulers, as IPVS/dpvs name them: pick one with {@link createScheduler} from the
 * service's configured name.
 *
 * @module
 */

import { LeastConnectionsScheduler } from "./lc.ts";
import { type MaglevOptions, MaglevScheduler } from "./mh.ts";
import { RoundRobinScheduler } from "./rr.ts";
import type { Scheduler, ServerSet } from "./scheduler.ts";
import { type SourceHashOptions, SourceHashScheduler } from "./sh.ts";
import { WeightedLeastConnectionsScheduler } from "./wlc.ts";
import { WeightedRoundRobinScheduler } from "./wrr.ts";

export { type Scheduler, ServerSet } from "./scheduler.ts";
export { RoundRobinScheduler } from "./rr.ts";
export { WeightedRoundRobinScheduler } from "./wrr.ts";
export { LeastConnectionsScheduler } from "./lc.ts";
export { WeightedLeastConnectionsScheduler } from "./wlc.ts";
export { type SourceHashOptions, SourceHashScheduler } from "./sh.ts";
export { MAGLEV_DEFAULT_TABLE_SIZE, type MaglevOptions, MaglevScheduler } from "./mh.ts";

/** Names accepted by {@link createScheduler}, as in ipvsadm's `-s`. */
export const SCHEDULER_NAMES = ["rr", "wrr", "lc", "wlc", "sh", "mh"] as const;

/** One of {@link SCHEDULER_NAMES}. */
export type SchedulerName = typeof SCHEDULER_NAMES[number];

/** Per-algorithm tuning for {@link createScheduler}; ignored by the algorithms it doesn't concern. */
export interface SchedulerOptions {
  /** Options of `sh`. */
  sh?: SourceHashOptions;
  /** Options of `mh`. */
  mh?: MaglevOptions;
}

/** Builds the scheduler named `name` over `set`; throws an Error naming the valid names if it is unknown. */
export function createScheduler(name: string, set: ServerSet, options: SchedulerOptions = {}): Scheduler {
  switch (name) {
    case "rr":
      return new RoundRobinScheduler(set);
    case "wrr":
      return new WeightedRoundRobinScheduler(set);
    case "lc":
      return new LeastConnectionsScheduler(set);
    case "wlc":
      return new WeightedLeastConnectionsScheduler(set);
    case "sh":
      return new SourceHashScheduler(set, options.sh);
    case "mh":
      return new MaglevScheduler(set, options.mh);
    default:
      throw new Error(
        `unknown scheduler ${JSON.stringify(name)}: expected one of ${SCHEDULER_NAMES.join(", ")}`,
      );
  }
}
