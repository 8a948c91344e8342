import assert from "node:assert/strict";
import {
  cpuPercent,
  Interrupted,
  parseBusyTicks,
  parseProcStatTicks,
  parseSoftirqTicks,
  runBounded,
  sleep,
} from "./proc.ts";

Deno.test("parseProcStatTicks: utime+stime, with spaces and parentheses in the command name", () => {
  const stat = "4242 (deno (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1000 0 0";
  assert.equal(parseProcStatTicks(stat), 325);
});

Deno.test("parseSoftirqTicks: the aggregate cpu line's softirq column", () => {
  const stat = "cpu  100 2 300 4000 5 6 777 0 0 0\ncpu0 50 1 150 2000 2 3 400 0 0 0\nintr 1\n";
  assert.equal(parseSoftirqTicks(stat), 777);
});

Deno.test("parseBusyTicks: user+nice+system+irq+softirq+steal, not idle or iowait", () => {
  const stat = "cpu  100 2 300 4000 5 6 777 8 90 0\ncpu0 50 1 150 2000 2 3 400 0 0 0\n";
  assert.equal(parseBusyTicks(stat), 100 + 2 + 300 + 6 + 777 + 8);
});

Deno.test("cpuPercent: ticks over wall time, in % of one core", () => {
  const a = { procTicks: 1000, softirqTicks: 50, busyTicks: 300, at: 0 };
  const b = { procTicks: 1150, softirqTicks: 100, busyTicks: 600, at: 2000 };
  assert.deepEqual(cpuPercent(a, b), { proc: 75, softirq: 25, host: 150 });
});

Deno.test("runBounded: kills at the deadline; an abort kills and throws Interrupted", async () => {
  assert.equal((await runBounded(["sh", "-c", "echo hi"], 5_000)).stdout, "hi\n");
  await assert.rejects(runBounded(["sleep", "10"], 100), /killed after 100 ms/);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(runBounded(["sleep", "10"], 5_000, ac.signal), Interrupted);
  await assert.rejects(sleep(10_000, AbortSignal.abort()), Interrupted);
});
