/**
 * Cost of one `pick` per scheduler over 16 servers, and of a Maglev rebuild at the default M = 65537
 * (what a weight change costs the control plane).
 *
 * @module
 */

import { createScheduler, MaglevScheduler, SCHEDULER_NAMES, ServerSet } from "../lb/engine/scheduler/mod.ts";

const N = 16;
const keys = Array.from({ length: N }, (_, i) => `198.18.3.${10 + i}:80`);
const weights = Array.from({ length: N }, (_, i) => 1 + (i % 4));

for (const name of SCHEDULER_NAMES) {
  const set = new ServerSet(keys, weights);
  const scheduler = createScheduler(name, set);
  let h = 0x12345678;
  Deno.bench(`pick ${name} (${N} servers, 1000 picks)`, { group: "pick" }, () => {
    for (let i = 0; i < 1000; i++) {
      h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
      set.active[scheduler.pick(h)]++;
    }
  });
}

const mhSet = new ServerSet(keys, weights);
const mh = new MaglevScheduler(mhSet);
Deno.bench(`mh rebuild (${N} servers, M = ${mh.tableSize})`, () => {
  mh.rebuild();
});
