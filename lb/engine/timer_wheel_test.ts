import assert from "node:assert/strict";
import { TimerWheel } from "./timer_wheel.ts";

/** Advances the wheel to `now`, returning the handles that expired, in order. */
function advance(w: TimerWheel, now: number): number[] {
  const out: number[] = [];
  const n = w.advance(now, (id) => out.push(id));
  assert.equal(n, out.length);
  return out;
}

Deno.test("timer wheel: expiry at the deadline, later refreshes cost no relink, earlier ones do", () => {
  const w = new TimerWheel(8, 1000, 16);
  w.setDeadline(0, 1002.5);
  w.setDeadline(1, 1003);
  w.setDeadline(2, 1010);
  assert.ok(w.isScheduled(0) && !w.isScheduled(3));
  assert.equal(w.deadline(0), 1002.5);
  w.setDeadline(1, 1005); // later: stays filed at 1003, re-filed when that slot comes round
  w.setDeadline(2, 1001); // earlier: relinked
  assert.deepEqual(advance(w, 1001), [2]);
  assert.ok(!w.isScheduled(2));
  assert.deepEqual(advance(w, 1002), [], "1002.5 is not due at 1002");
  assert.deepEqual(advance(w, 1004), [0]);
  assert.ok(w.isScheduled(1), "re-filed under 1005");
  w.cancel(1);
  assert.ok(!w.isScheduled(1));
  assert.deepEqual(advance(w, 1006), []);
});

Deno.test("timer wheel: deadlines beyond one turn, soonest, reuse of a handle in its callback", () => {
  const w = new TimerWheel(8, 0, 4);
  w.setDeadline(3, 10); // beyond a 4-slot turn: filed at 3, re-filed until due
  w.setDeadline(4, 2);
  w.setDeadline(5, 2);
  const out = new Int32Array(8);
  assert.deepEqual([...out.subarray(0, w.soonest(out))], [5, 4, 3], "slot 2 (last filed first), then 3");
  assert.deepEqual([...out.subarray(0, w.soonest(out, 3))], [5, 4], "two slots after the current one");
  const seen: number[] = [];
  w.advance(2, (id) => {
    seen.push(id);
    if (id === 4) w.setDeadline(4, 5);
  });
  assert.deepEqual(seen, [5, 4]);
  for (let t = 3; t < 10; t++) assert.deepEqual(advance(w, t), t === 5 ? [4] : []);
  assert.deepEqual(advance(w, 10), [3]);
  assert.equal(w.soonest(out), 0);
});
