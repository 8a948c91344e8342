/**
 * The flooder's bounds (tests/helpers/syn_flood.ts): a time cap of at most 15 s and a packet cap are both
 * required, and it aims only inside 198.18.0.0/15. The packets themselves are judged end to end: the peer
 * kernels verify their checksums (tests/e2e_defence_test.ts).
 */
import assert from "node:assert/strict";
import { checkFloodOptions, MAX_SECONDS } from "./syn_flood.ts";

const ok = { dst: "198.18.0.10", dport: 80, rate: 15_000, seconds: 10, count: 150_000 };

Deno.test("syn_flood: bounded options pass", () => {
  checkFloodOptions(ok);
  checkFloodOptions({ ...ok, rate: 0, seconds: MAX_SECONDS, dst: "198.19.255.1" });
});

Deno.test("syn_flood: no flood past 15 s, without a packet cap, or outside 198.18.0.0/15", () => {
  assert.throws(() => checkFloodOptions({ ...ok, seconds: 15.5 }), /--seconds/);
  assert.throws(() => checkFloodOptions({ ...ok, seconds: 0 }), /--seconds/);
  assert.throws(() => checkFloodOptions({ ...ok, seconds: NaN }), /--seconds/);
  assert.throws(() => checkFloodOptions({ ...ok, count: 0 }), /--count/);
  assert.throws(() => checkFloodOptions({ ...ok, count: NaN }), /--count/);
  assert.throws(() => checkFloodOptions({ ...ok, dst: "10.0.0.1" }), /--dst/);
  assert.throws(() => checkFloodOptions({ ...ok, dst: "198.20.0.1" }), /--dst/);
  assert.throws(() => checkFloodOptions({ ...ok, rate: -1 }), /--rate/);
});
