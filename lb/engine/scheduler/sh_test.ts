import assert from "node:assert/strict";
import { ServerSet } from "./scheduler.ts";
import { SourceHashScheduler } from "./sh.ts";
import { prng } from "../../../tests/helpers/prng.ts";
import { tally } from "./test_util.ts";

Deno.test("sh: the same source hash always gets the same server", () => {
  const sh = new SourceHashScheduler(new ServerSet(["a", "b", "c", "d"], [1, 2, 3, 4]));
  const rand = prng(1);
  for (let i = 0; i < 10_000; i++) {
    const h = rand();
    const s = sh.pick(h);
    assert.equal(sh.pick(h), s);
    assert.equal(sh.pick(h | 0), s, "signed and unsigned forms of a hash are the same hash");
  }
});

Deno.test("sh: buckets are filled by weight, and random clients spread in proportion", () => {
  const weights = [1, 2, 3, 4];
  const sh = new SourceHashScheduler(new ServerSet(["a", "b", "c", "d"], weights));
  assert.equal(sh.tableSize, 256);
  // 25 turns of 10 buckets, then a, b, b, c, c, c: exact bucket counts 26, 52, 78, 100.
  const rand = prng(2);
  const picks = 200_000;
  const counts = tally(4, picks, () => sh.pick(rand()));
  const shares = [26, 52, 78, 100].map((b) => b / 256);
  for (let i = 0; i < 4; i++) {
    assert.ok(Math.abs(counts[i] / picks - shares[i]) < 0.01, `server ${i}: ${counts[i] / picks}`);
    assert.ok(Math.abs(counts[i] / picks - weights[i] / 10) < 0.02, `server ${i} vs weight`);
  }
});

Deno.test("sh: a drained server gets nothing new and its clients go to the next bucket's server", () => {
  const set = new ServerSet(["a", "b", "c", "d"], [1, 1, 1, 1]);
  const sh = new SourceHashScheduler(set);
  const rand = prng(3);
  const hashes = Array.from({ length: 20_000 }, rand);
  const before = hashes.map((h) => sh.pick(h));
  set.weights[1] = 0;
  sh.rebuild();
  let moved = 0;
  for (let i = 0; i < hashes.length; i++) {
    const after = sh.pick(hashes[i]);
    if (before[i] === 1) {
      // Buckets go a b c d a b c d ...: b's next bucket belongs to c.
      assert.equal(after, 2);
      moved++;
    } else {
      assert.equal(after, before[i], "clients of the other servers stay put");
    }
  }
  assert.ok(moved > 4000, `b had ${moved} of 20000 clients`);
});

Deno.test("sh: drained servers in a row are all skipped; all weights 0 or no servers → -1", () => {
  const set = new ServerSet(["a", "b", "c"], [0, 0, 5]);
  const sh = new SourceHashScheduler(set);
  const rand = prng(4);
  assert.deepEqual(tally(3, 5000, () => sh.pick(rand())), [0, 0, 5000]);
  set.weights[2] = 0;
  sh.rebuild();
  for (let i = 0; i < 100; i++) assert.equal(sh.pick(rand()), -1);
  assert.equal(new SourceHashScheduler(new ServerSet([], [])).pick(7), -1);
});

Deno.test("sh: table size is configurable and validated", () => {
  const set = new ServerSet(["a", "b"], [1, 3]);
  assert.equal(new SourceHashScheduler(set, { tableBits: 4 }).tableSize, 16);
  assert.throws(() => new SourceHashScheduler(set, { tableBits: 0 }), /tableBits/);
  assert.throws(() => new SourceHashScheduler(set, { tableBits: 2.5 }), /tableBits/);
});
