import assert from "node:assert/strict";
import { RateLimitedLog } from "./rate_log.ts";

/** A log over a fake clock that records its lines as `count@time/last`. */
function fake(intervalMs: number) {
  const lines: string[] = [];
  let t = 0;
  const log = new RateLimitedLog<string>(intervalMs, (n, last) => lines.push(`${n}@${t}/${last}`));
  const at = (ms: number, detail?: string) => {
    t = ms;
    if (detail === undefined) log.flush(ms);
    else log.hit(ms, detail);
  };
  return { lines, at, log };
}

Deno.test("RateLimitedLog: the first event is written at once, the rest once per interval with their count", () => {
  const { lines, at } = fake(10_000);
  at(1_000, "a");
  assert.deepEqual(lines, ["1@1000/a"]);
  // 1000 events in the next 9 s: no line.
  for (let i = 0; i < 1000; i++) at(1_001 + i * 9, `p${i}`);
  assert.deepEqual(lines, ["1@1000/a"]);
  // The interval ends: one line with the count and the latest detail, written by a flush (a loop turn).
  at(10_999);
  assert.equal(lines.length, 1);
  at(11_000);
  assert.deepEqual(lines, ["1@1000/a", "1000@11000/p999"]);
  // Nothing pending: flushes write nothing.
  at(30_000);
  at(40_000);
  assert.equal(lines.length, 2);
  // After a quiet spell the next event is again written at once.
  at(50_000, "z");
  assert.deepEqual(lines.at(-1), "1@50000/z");
});

Deno.test("RateLimitedLog: a steady stream gives one line per interval, and no event is lost", () => {
  const { lines, at, log } = fake(10_000);
  let total = 0;
  // One event per 7 ms for 60 s, a flush every 100 ms (the proxy's longest wait).
  for (let ms = 0; ms < 60_000; ms++) {
    if (ms % 7 === 0) {
      at(ms, `e${ms}`);
      total++;
    } else if (ms % 100 === 0) at(ms);
  }
  assert.ok(lines.length >= 6 && lines.length <= 7, lines.join(" "));
  log.drain();
  const counted = lines.reduce((s, l) => s + Number(l.split("@")[0]), 0);
  assert.equal(counted, total);
  assert.equal(log.unwritten, 0);
});
