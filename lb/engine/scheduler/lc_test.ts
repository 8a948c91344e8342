import assert from "node:assert/strict";
import { LeastConnectionsScheduler } from "./lc.ts";
import { ServerSet } from "./scheduler.ts";

Deno.test("lc: picks the least overhead, active * 256 + inactive, from live counts", () => {
  const set = new ServerSet(["a", "b", "c"], [1, 1, 1]);
  const lc = new LeastConnectionsScheduler(set);
  assert.equal(lc.pick(0), 0, "all equal: first");
  set.active.set([3, 1, 2]);
  assert.equal(lc.pick(0), 1);
  // 255 inactive weigh less than one active connection...
  set.active.set([1, 1, 0]);
  set.inactive.set([0, 0, 255]);
  assert.equal(lc.pick(0), 2);
  // ...257 weigh more.
  set.inactive.set([0, 0, 257]);
  assert.equal(lc.pick(0), 0);
  set.inactive.set([5, 4, 0]);
  set.active.set([1, 1, 1]);
  assert.equal(lc.pick(0), 2);
});

Deno.test("lc: weights don't scale, they only gate: weight 0 is skipped even when idle", () => {
  const set = new ServerSet(["a", "b", "c"], [100, 0, 1]);
  const lc = new LeastConnectionsScheduler(set);
  set.active.set([5, 0, 4]);
  assert.equal(lc.pick(0), 2);
  // Simulate the engine counting each new connection: picks balance the counts.
  for (let i = 0; i < 1000; i++) set.active[lc.pick(0)]++;
  assert.deepEqual(Array.from(set.active), [505, 0, 504]);
});

Deno.test("lc: all weights 0 or no servers → -1", () => {
  assert.equal(new LeastConnectionsScheduler(new ServerSet(["a"], [0])).pick(0), -1);
  assert.equal(new LeastConnectionsScheduler(new ServerSet([], [])).pick(0), -1);
});
