import assert from "node:assert/strict";
import { PoolWatch } from "./pool_watch.ts";

const at = (used: number, free = 1000 - used, address = "198.18.2.1", misses = 0) => [
  { address, used, free, misses },
];

Deno.test("pool watch: one warning on crossing 90 %, none while it stays above", () => {
  const w = new PoolWatch();
  assert.deepEqual(w.update(at(500)), []);
  assert.deepEqual(w.update(at(900)), [], "90 % exactly is not past it");
  assert.deepEqual(w.update(at(901, 99, "198.18.2.1", 3)), [
    "fnat-lb pool_nearly_exhausted address=198.18.2.1 used=901 free=99 percent=90.1 misses=3",
  ]);
  assert.deepEqual(w.update(at(950)), [], "still above: said once");
  assert.deepEqual(w.update(at(850)), [], "between 80 % and 90 %: still armed off");
  assert.deepEqual(w.update(at(990)), [], "up again without having fallen below 80 %: no second line");
});

Deno.test("pool watch: below 80 % re-arms it (one line), the next crossing warns again", () => {
  const w = new PoolWatch();
  assert.equal(w.update(at(950)).length, 1);
  assert.deepEqual(w.update(at(800)), [], "80 % exactly is not below it");
  assert.deepEqual(w.update(at(799)), [
    "fnat-lb pool_recovered address=198.18.2.1 used=799 free=201 percent=79.9 misses=0",
  ]);
  assert.deepEqual(w.update(at(700)), []);
  assert.deepEqual(w.update(at(1000)), [
    "fnat-lb pool_nearly_exhausted address=198.18.2.1 used=1000 free=0 percent=100.0 misses=0",
  ]);
});

Deno.test("pool watch: each local address on its own; an address with no ports says nothing", () => {
  const w = new PoolWatch();
  const pools = [
    { address: "198.18.2.1", used: 95, free: 5, misses: 0 },
    { address: "fd00:2::1", used: 10, free: 90, misses: 0 },
    { address: "198.18.2.2", used: 0, free: 0, misses: 0 },
  ];
  assert.deepEqual(w.update(pools), [
    "fnat-lb pool_nearly_exhausted address=198.18.2.1 used=95 free=5 percent=95.0 misses=0",
  ]);
  pools[1].used = 91;
  pools[1].free = 9;
  assert.deepEqual(w.update(pools), [
    "fnat-lb pool_nearly_exhausted address=fd00:2::1 used=91 free=9 percent=91.0 misses=0",
  ]);
});
