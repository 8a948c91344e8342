import assert from "node:assert/strict";
import { type IdleEntry, IdleWheel } from "./idle_wheel.ts";

interface E extends IdleEntry {
  id: number;
}

function entry(id: number): E {
  return { id, lastActive: 0, wheelSlot: -1, wheelPos: 0 };
}

/** Advances the fake clock in `stepMs` steps up to `toMs`, collecting the ids that expire, with their time. */
function run(w: IdleWheel<E>, fromMs: number, toMs: number, stepMs: number): [number, number][] {
  const out: [number, number][] = [];
  for (let t = fromMs; t <= toMs; t += stepMs) w.advance(t, (e) => out.push([e.id, t]));
  return out;
}

Deno.test("idle wheel: an idle entry expires within [timeout, timeout + 1 s)", () => {
  for (const start of [0, 250, 999, 1000, 12_345]) {
    const w = new IdleWheel<E>(3000, start);
    const e = entry(1);
    w.add(e, start);
    const got = run(w, start, start + 10_000, 10);
    assert.equal(got.length, 1, `start ${start}`);
    const idle = got[0][1] - start;
    assert.ok(idle >= 3000 && idle < 4000, `start ${start}: expired after ${idle} ms`);
    assert.equal(w.size, 0);
    assert.equal(e.wheelSlot, -1);
  }
});

Deno.test("idle wheel: activity (a store to lastActive) postpones expiry", () => {
  const w = new IdleWheel<E>(2000, 0);
  const busy = entry(1);
  const idle = entry(2);
  w.add(busy, 0);
  w.add(idle, 0);
  const out: [number, number][] = [];
  for (let t = 0; t <= 20_000; t += 50) {
    if (t <= 10_000 && t % 500 === 0) busy.lastActive = t; // active every 0.5 s for 10 s, then silent
    w.advance(t, (e) => out.push([e.id, t]));
  }
  assert.equal(out.length, 2);
  assert.deepEqual(out[0][0], 2);
  assert.ok(out[0][1] >= 2000 && out[0][1] < 3000);
  assert.equal(out[1][0], 1);
  assert.ok(out[1][1] >= 12_000 && out[1][1] < 13_000, `busy expired at ${out[1][1]}`);
});

Deno.test("idle wheel: removal is exact, also of other entries from inside expire", () => {
  const w = new IdleWheel<E>(1000, 0, 8);
  const es = Array.from({ length: 100 }, (_, i) => entry(i));
  for (const e of es) w.add(e, 0);
  for (let i = 0; i < 100; i += 3) w.remove(es[i]);
  assert.equal(w.size, 66);
  const expired: number[] = [];
  // Expiring an even id also removes the next id (as closing one connection might end another).
  w.advance(5000, (e) => {
    expired.push(e.id);
    if (e.id % 2 === 0 && e.id + 1 < 100) w.remove(es[e.id + 1]);
  });
  const ids = new Set(expired);
  assert.equal(ids.size, expired.length, "an entry expired twice");
  for (let i = 0; i < 100; i += 3) assert.ok(!ids.has(i), `${i} was removed, yet expired`);
  assert.equal(w.size, 0);
  for (const e of es) assert.equal(e.wheelSlot, -1);
});

Deno.test("idle wheel: timeouts longer than the wheel, and clock stalls longer than the wheel", () => {
  const w = new IdleWheel<E>(100_000, 0, 16); // 100 s over 16 one-second slots
  const e = entry(1);
  w.add(e, 0);
  const got = run(w, 0, 120_000, 100);
  assert.equal(got.length, 1);
  assert.ok(got[0][1] >= 100_000 && got[0][1] < 101_000);

  const s = new IdleWheel<E>(2000, 0, 16);
  const a = entry(1);
  const b = entry(2);
  s.add(a, 0);
  s.add(b, 0);
  b.lastActive = 59_500;
  assert.equal(s.advance(60_000, () => {}), 1); // 60 s without a turn: a expires, b (active 0.5 s ago) stays
  assert.equal(s.size, 1);
  assert.equal(s.advance(61_000, () => {}), 0);
  assert.equal(s.advance(62_000, () => {}), 1);
});

Deno.test("idle wheel: a turn within the same second does nothing; 10000 entries cost a look each", () => {
  const w = new IdleWheel<E>(5000, 0);
  const es = Array.from({ length: 10_000 }, (_, i) => entry(i));
  es.forEach((e, i) => w.add(e, i % 1000));
  assert.equal(w.advance(999, () => assert.fail("nothing is due")), 0);
  let n = 0;
  for (let t = 1000; t <= 7000; t += 1000) n += w.advance(t, () => {});
  assert.equal(n, 10_000);
  assert.throws(() => new IdleWheel<E>(0, 0), RangeError);
});
