import assert from "node:assert/strict";
import { LocalPool } from "./local_pool.ts";

Deno.test("local pool: every pair once until released, FIFO reuse, worker slices, families", () => {
  const pool = new LocalPool([4, 4, 6], 1000, 1009, 1, 2);
  assert.equal(pool.portsPerAddress, 5);
  assert.equal(pool.available(4), 10);
  assert.equal(pool.available(6), 5);
  const got = new Set<number>();
  for (let i = 0; i < 10; i++) {
    const v = pool.acquire(4);
    assert.ok(v >= 0);
    const port = v & 0xffff;
    assert.equal(port % 2, 1, "only this worker's ports");
    assert.ok(port >= 1000 && port <= 1009);
    assert.ok(!got.has(v), "never handed out twice");
    assert.ok(Math.floor(v / 65536) <= 1, "IPv4 addresses only");
    got.add(v);
  }
  assert.equal(pool.acquire(4), -1, "exhausted");
  assert.equal(pool.available(6), 5, "the IPv6 address is untouched");
  const first = [...got][0];
  assert.ok(pool.release(Math.floor(first / 65536), first & 0xffff));
  assert.equal(pool.release(Math.floor(first / 65536), first & 0xffff), false, "double release ignored");
  assert.equal(pool.acquire(4), first, "the released pair comes back");
  assert.equal(pool.acquire(4), -1);
});

Deno.test("local pool: a released port goes to the back of its ring", () => {
  const pool = new LocalPool([4], 1, 4, 0, 1, () => 0);
  const a = pool.acquire(4);
  assert.equal(a & 0xffff, 1);
  pool.release(0, 1);
  assert.deepEqual(
    [pool.acquire(4), pool.acquire(4), pool.acquire(4), pool.acquire(4)].map((v) => v & 0xffff),
    [
      2,
      3,
      4,
      1,
    ],
  );
});

Deno.test("local pool: the ring starts at a random port", () => {
  const starts = new Set<number>();
  for (let i = 0; i < 20; i++) starts.add(new LocalPool([4], 1025, 65535).acquire(4) & 0xffff);
  assert.ok(starts.size > 15, `random starting ports: ${starts.size} distinct of 20`);
});
