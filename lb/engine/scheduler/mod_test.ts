import assert from "node:assert/strict";
import { createScheduler, SCHEDULER_NAMES, ServerSet } from "./mod.ts";
import { prng } from "../../../tests/helpers/prng.ts";

Deno.test("createScheduler: builds every named algorithm", () => {
  const set = new ServerSet(["a", "b"], [1, 1]);
  for (const name of SCHEDULER_NAMES) {
    const s = createScheduler(name, set, { mh: { tableSize: 251 } });
    assert.equal(s.name, name);
    assert.ok(s.pick(12345) >= 0);
  }
});

Deno.test("createScheduler: an unknown name throws, naming it and the valid names", () => {
  const set = new ServerSet(["a"], [1]);
  assert.throws(() => createScheduler("lblc", set), (e: Error) => {
    assert.match(e.message, /"lblc"/);
    assert.match(e.message, /rr, wrr, lc, wlc, sh, mh/);
    return true;
  });
});

Deno.test("every scheduler: a weight-0 server is never picked, all weights 0 → -1", () => {
  const rand = prng(7);
  for (const name of SCHEDULER_NAMES) {
    const set = new ServerSet(["a", "b", "c", "d"], [2, 0, 1, 3]);
    const s = createScheduler(name, set, { mh: { tableSize: 1009 } });
    for (let i = 0; i < 2000; i++) {
      const picked = s.pick(rand());
      assert.notEqual(picked, 1, name);
      assert.ok(picked >= 0, name);
      set.active[picked]++; // the engine's bookkeeping, which lc/wlc feed on
    }
    set.weights.fill(0);
    s.rebuild();
    for (let i = 0; i < 50; i++) assert.equal(s.pick(rand()), -1, name);
  }
});
