import assert from "node:assert/strict";
import { ServerSet } from "./scheduler.ts";
import { WeightedLeastConnectionsScheduler } from "./wlc.ts";

Deno.test("wlc: minimises overhead / weight from live counts", () => {
  const set = new ServerSet(["a", "b", "c"], [1, 2, 3]);
  const wlc = new WeightedLeastConnectionsScheduler(set);
  assert.equal(wlc.pick(0), 0, "all idle: first");
  set.active.set([1, 1, 1]); // 256/1, 256/2, 256/3
  assert.equal(wlc.pick(0), 2);
  set.active.set([1, 2, 4]); // 256, 256, 341
  assert.equal(wlc.pick(0), 0, "tie between a and b goes to the first");
  set.active.set([2, 2, 4]); // 512, 256, 341
  assert.equal(wlc.pick(0), 1);
  set.inactive.set([0, 1, 0]); // 512, 256.5, 341: inactive counts too
  assert.equal(wlc.pick(0), 1);
  set.active.set([1, 2, 3]);
  set.inactive.set([0, 1, 0]); // 256, 256.5, 256 → a (first of the tie)
  assert.equal(wlc.pick(0), 0);
});

Deno.test("wlc: with the engine counting, connections settle in proportion to weight", () => {
  const set = new ServerSet(["a", "b", "c", "d"], [1, 2, 3, 0]);
  const wlc = new WeightedLeastConnectionsScheduler(set);
  for (let i = 0; i < 600; i++) set.active[wlc.pick(0)]++;
  assert.deepEqual(Array.from(set.active), [100, 200, 300, 0]);
});

Deno.test("wlc: exact at the top of the range: ratios 1/(65535*65534) apart are told apart", () => {
  // overhead a = 2097149*65535 + 65534, overhead b = 2097149*65534 + 65533 (both < 2^37):
  // a/65535 - b/65534 = 1/(65535*65534), so b has the lower load and must win, also when listed second.
  const set = new ServerSet(["a", "b"], [65535, 65534]);
  const wlc = new WeightedLeastConnectionsScheduler(set);
  set.active.set([536862208, 536854016]);
  set.inactive.set([1, 3]);
  assert.equal(wlc.pick(0), 1);
  set.inactive.set([0, 3]); // one inactive connection fewer makes a the lighter
  assert.equal(wlc.pick(0), 0);
});

Deno.test("wlc: all weights 0 or no servers → -1", () => {
  assert.equal(new WeightedLeastConnectionsScheduler(new ServerSet(["a", "b"], [0, 0])).pick(0), -1);
  assert.equal(new WeightedLeastConnectionsScheduler(new ServerSet([], [])).pick(0), -1);
});
