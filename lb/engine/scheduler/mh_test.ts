import assert from "node:assert/strict";
import { hashKey } from "./hash.ts";
import { MAGLEV_DEFAULT_TABLE_SIZE, MaglevScheduler } from "./mh.ts";
import { ServerSet } from "./scheduler.ts";
import { prng } from "../../../tests/helpers/prng.ts";
import { tally } from "./test_util.ts";

const M = MAGLEV_DEFAULT_TABLE_SIZE;

/** Server keys as the engine names them. */
function serverKeys(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `198.18.3.${10 + i}:80`);
}

/** The owner of every slot: pick(h) for h in [0, M) reads each slot once. */
function snapshot(mh: MaglevScheduler): Int32Array {
  const m = mh.tableSize;
  const owners = new Int32Array(m);
  for (let h = 0; h < m; h++) owners[h] = mh.pick(h);
  return owners;
}

/**
 * The paper's Populate pseudocode, literally: whole permutation arrays, unweighted. Checks the scheduler's
 * lazy walk (no stored permutations) against it.
 */
function referencePopulate(keys: string[], m: number): Int32Array {
  const n = keys.length;
  const permutation = keys.map((key) => {
    const offset = hashKey(key, 0) % m;
    const skip = (hashKey(key, 0x9747b28c) % (m - 1)) + 1;
    return Array.from({ length: m }, (_, j) => (offset + j * skip) % m);
  });
  const next = new Array<number>(n).fill(0);
  const entry = new Int32Array(m).fill(-1);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      let c = permutation[i][next[i]];
      while (entry[c] >= 0) c = permutation[i][++next[i]];
      entry[c] = i;
      next[i]++;
      if (++filled === m) return entry;
    }
  }
}

Deno.test("mh: equal weights build the table of the paper's Populate pseudocode", () => {
  for (const [n, m] of [[3, 13], [5, 101], [7, 1009]]) {
    const mh = new MaglevScheduler(new ServerSet(serverKeys(n), new Array(n).fill(1)), { tableSize: m });
    assert.deepEqual(snapshot(mh), referencePopulate(serverKeys(n), m), `n=${n} m=${m}`);
  }
});

Deno.test("mh: pick is table[sourceHash % M], the same for the same hash, signed or not", () => {
  const mh = new MaglevScheduler(new ServerSet(serverKeys(4), [1, 1, 1, 1]), { tableSize: 251 });
  const owners = snapshot(mh);
  const rand = prng(5);
  for (let i = 0; i < 10_000; i++) {
    const h = rand();
    assert.equal(mh.pick(h), owners[h % 251]);
    assert.equal(mh.pick(h | 0), mh.pick(h));
  }
});

Deno.test("mh: slots and random picks follow the weights within a few percent", () => {
  const weights = [1, 2, 3, 4, 10];
  const total = 20;
  const mh = new MaglevScheduler(new ServerSet(serverKeys(5), weights));
  const slots = new Array<number>(5).fill(0);
  for (const owner of snapshot(mh)) slots[owner]++;
  const rand = prng(6);
  const picks = 300_000;
  const counts = tally(5, picks, () => mh.pick(rand()));
  for (let i = 0; i < 5; i++) {
    const share = weights[i] / total;
    // Per round a server claims weight/gcd slots, so slot counts are exact to within one round.
    assert.ok(Math.abs(slots[i] - share * M) <= total, `server ${i}: ${slots[i]} slots`);
    assert.ok(Math.abs(counts[i] / picks - share) < 0.01, `server ${i}: ${counts[i] / picks} of picks`);
  }
});

Deno.test("mh: weight 0 takes no slots; all weights 0 or no servers → -1", () => {
  const set = new ServerSet(serverKeys(3), [1, 0, 1]);
  const mh = new MaglevScheduler(set, { tableSize: 1009 });
  assert.ok(!snapshot(mh).includes(1));
  set.weights.fill(0);
  mh.rebuild();
  assert.ok(snapshot(mh).every((s) => s === -1));
  assert.equal(new MaglevScheduler(new ServerSet([], []), { tableSize: 7 }).pick(3), -1);
});

Deno.test("mh: table size must be prime", () => {
  const set = new ServerSet(serverKeys(2), [1, 1]);
  assert.throws(() => new MaglevScheduler(set, { tableSize: 65536 }), /prime/);
  assert.throws(() => new MaglevScheduler(set, { tableSize: 1 }), /prime/);
  assert.equal(new MaglevScheduler(set, { tableSize: 65521 }).tableSize, 65521);
});

// Measured with these keys and M = 65537: removing a server moves 0.22–0.31% of the other servers' keys;
// adding one moves 9.28–16.79% of all keys against the ideal 1/(N+1) = 9.09–16.67%. `hash % N` moves
// 75–89% of the other keys on a removal and 83–91% of all keys on an addition.
Deno.test("mh: minimal disruption when a server leaves or joins, far below hash % N", () => {
  for (let n = 5; n <= 10; n++) {
    const set = new ServerSet(serverKeys(n), new Array(n).fill(1));
    const mh = new MaglevScheduler(set);
    const before = snapshot(mh);

    for (let gone = 0; gone < n; gone++) {
      set.weights[gone] = 0;
      mh.rebuild();
      const after = snapshot(mh);
      let others = 0;
      let moved = 0;
      let moduloMoved = 0;
      for (let h = 0; h < M; h++) {
        assert.notEqual(after[h], gone);
        if (before[h] === gone) continue;
        others++;
        if (after[h] !== before[h]) moved++;
        // Modulo hashing with `gone` removed from the list: servers above it shift down by one.
        const modBefore = h % n;
        const modAfter = h % (n - 1);
        if (modBefore !== gone && modAfter + (modAfter >= gone ? 1 : 0) !== modBefore) moduloMoved++;
      }
      assert.ok(moved / others < 0.01, `n=${n} remove ${gone}: ${moved}/${others} other keys moved`);
      assert.ok(moduloMoved / others > 0.5, `n=${n}: modulo moved only ${moduloMoved}/${others}`);
      set.weights[gone] = 1;
      mh.rebuild();
      assert.deepEqual(snapshot(mh), before, "restoring the weight restores the table");
    }

    const grown = new MaglevScheduler(new ServerSet(serverKeys(n + 1), new Array(n + 1).fill(1)));
    const after = snapshot(grown);
    let moved = 0;
    let moduloMoved = 0;
    for (let h = 0; h < M; h++) {
      if (after[h] !== before[h]) moved++;
      if (h % n !== h % (n + 1)) moduloMoved++;
    }
    const ideal = 1 / (n + 1);
    assert.ok(moved / M >= ideal - 0.001 && moved / M < ideal + 0.01, `n=${n} add: ${moved / M} vs ${ideal}`);
    assert.ok(moduloMoved / M > 0.8, `n=${n} add: modulo moved ${moduloMoved / M}`);
  }
});
