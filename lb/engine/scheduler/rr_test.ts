import assert from "node:assert/strict";
import { RoundRobinScheduler } from "./rr.ts";
import { ServerSet } from "./scheduler.ts";
import { tally } from "./test_util.ts";

Deno.test("rr: cycles through servers in order and splits equally whatever the weights", () => {
  const set = new ServerSet(["a", "b", "c"], [5, 1, 1]);
  const rr = new RoundRobinScheduler(set);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(() => rr.pick(0)), [0, 1, 2, 0, 1, 2]);
  assert.deepEqual(tally(3, 3000, () => rr.pick(0)), [1000, 1000, 1000]);
});

Deno.test("rr: weight 0 drains a server and the cycle continues where it was", () => {
  const set = new ServerSet(["a", "b", "c", "d"], [1, 1, 1, 1]);
  const rr = new RoundRobinScheduler(set);
  assert.equal(rr.pick(0), 0);
  set.weights[1] = 0;
  rr.rebuild();
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(() => rr.pick(0)), [2, 3, 0, 2, 3, 0]);
  set.weights[1] = 1;
  rr.rebuild();
  assert.deepEqual([0, 1, 2, 3].map(() => rr.pick(0)), [1, 2, 3, 0]);
});

Deno.test("rr: all weights 0 or no servers → -1", () => {
  assert.equal(new RoundRobinScheduler(new ServerSet(["a", "b"], [0, 0])).pick(0), -1);
  assert.equal(new RoundRobinScheduler(new ServerSet([], [])).pick(0), -1);
});
