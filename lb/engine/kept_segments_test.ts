import assert from "node:assert/strict";
import { KeptSegments } from "./kept_segments.ts";

const seg = (n: number, fill: number) => new Uint8Array(n).fill(fill);

Deno.test("kept segments: put and take by owner, bytes intact, a slot freed by take", () => {
  const k = new KeptSegments(2, 100);
  assert.ok(k.put(7, seg(60, 0xaa), 60));
  assert.ok(k.put(9, seg(100, 0xbb), 100));
  assert.ok(!k.put(11, seg(10, 0xcc), 10), "full");
  const out = new Uint8Array(200).fill(0);
  assert.equal(k.take(9, out), 100);
  assert.deepEqual(out.subarray(0, 100), seg(100, 0xbb));
  assert.equal(k.take(9, out), -1, "taken once");
  assert.ok(k.put(11, seg(10, 0xcc), 10), "the slot is free again");
  assert.equal(k.take(7, out), 60);
  assert.deepEqual(out.subarray(0, 60), seg(60, 0xaa));
  assert.equal(k.take(11, out), 10);
});

Deno.test("kept segments: larger than a slot is refused; release frees without copying", () => {
  const k = new KeptSegments(1, 64);
  assert.ok(!k.put(1, seg(65, 1), 65));
  assert.ok(k.put(1, seg(64, 1), 64));
  k.release(1);
  k.release(1); // nothing held: no effect
  assert.equal(k.take(1, new Uint8Array(64)), -1);
  assert.ok(k.put(2, seg(1, 2), 1));
});
