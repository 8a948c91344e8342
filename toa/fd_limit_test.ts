import assert from "node:assert/strict";
import { fdLimit, raiseFdLimit } from "./fd_limit.ts";
import { libc, RLIMIT_NOFILE, RLIMIT_SIZE } from "../base/sys/libc.ts";

function setSoft(soft: number, hard: number): void {
  const b = new Uint8Array(RLIMIT_SIZE);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, BigInt(soft), true);
  v.setBigUint64(8, hard === Infinity ? 0xffff_ffff_ffff_ffffn : BigInt(hard), true); // RLIM_INFINITY
  assert.equal(libc().setrlimit(RLIMIT_NOFILE, b), 0);
}

Deno.test("raiseFdLimit lifts a lowered soft NOFILE limit to the hard one (as /proc/self/limits shows)", () => {
  const { soft, hard } = fdLimit();
  assert.ok(hard >= soft && soft > 0);
  const proc = () =>
    Deno.readTextFileSync("/proc/self/limits").split("\n").find((l) => l.startsWith("Max open files"))!
      .split(/\s+/).slice(3, 5);
  // Lower the soft limit a little (never below what the test runner has open), then raise it back.
  const lowered = Math.max(256, Math.min(soft, hard === Infinity ? 1 << 20 : hard) - 100);
  try {
    setSoft(lowered, hard);
    assert.equal(fdLimit().soft, lowered);
    const r = raiseFdLimit();
    assert.equal(r.errno, 0);
    assert.equal(r.before, lowered);
    assert.ok(r.soft > lowered && r.soft === fdLimit().soft);
    if (hard !== Infinity) assert.equal(r.soft, hard);
    assert.equal(proc()[0], String(r.soft));
    assert.deepEqual(raiseFdLimit(), { ...r, before: r.soft }); // already at the ceiling: unchanged
  } finally {
    raiseFdLimit();
  }
});
