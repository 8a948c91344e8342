import assert from "node:assert/strict";
import { ServerSet } from "./scheduler.ts";
import { tally } from "./test_util.ts";
import { WeightedRoundRobinScheduler } from "./wrr.ts";

Deno.test("wrr: weights 5,1,1 give nginx's smooth sequence a a b a c a a, every cycle", () => {
  const wrr = new WeightedRoundRobinScheduler(new ServerSet(["a", "b", "c"], [5, 1, 1]));
  const name = () => "abc"[wrr.pick(0)];
  for (let cycle = 0; cycle < 3; cycle++) {
    assert.equal(Array.from({ length: 7 }, name).join(" "), "a a b a c a a");
  }
});

Deno.test("wrr: each cycle of sum(weights) picks holds exactly `weight` picks per server", () => {
  const weights = [3, 7, 1, 4, 10];
  const total = 25;
  const wrr = new WeightedRoundRobinScheduler(new ServerSet(["a", "b", "c", "d", "e"], weights));
  for (let cycle = 0; cycle < 4; cycle++) {
    assert.deepEqual(tally(5, total, () => wrr.pick(0)), weights);
  }
});

Deno.test("wrr: interleaved, not bursty: the weight-10 server of 25 never gets more than 2 picks in a row", () => {
  // Smoothness: no burst. Classic IPVS wrr would give 10 in a row to e here.
  const weights = [3, 7, 1, 4, 10];
  const wrr = new WeightedRoundRobinScheduler(new ServerSet(["a", "b", "c", "d", "e"], weights));
  let run = 0;
  let longest = 0;
  for (let k = 0; k < 100; k++) {
    run = wrr.pick(0) === 4 ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  assert.ok(longest <= 2, `longest run of the weight-10 server: ${longest}`);
});

Deno.test("wrr: weight 0 drains; rebuild restarts the proportions; all 0 → -1", () => {
  const set = new ServerSet(["a", "b", "c"], [2, 1, 1]);
  const wrr = new WeightedRoundRobinScheduler(set);
  wrr.pick(0);
  set.weights[0] = 0;
  wrr.rebuild();
  assert.deepEqual(tally(3, 100, () => wrr.pick(0)), [0, 50, 50]);
  set.weights[1] = 0;
  set.weights[2] = 0;
  wrr.rebuild();
  assert.equal(wrr.pick(0), -1);
  assert.equal(new WeightedRoundRobinScheduler(new ServerSet([], [])).pick(0), -1);
});
