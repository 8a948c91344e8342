import assert from "node:assert/strict";
import { IsnGenerator } from "./isn.ts";

Deno.test("ISNs grow with the clock for one tuple (a TIME_WAIT server accepts the new SYN)", () => {
  const g = new IsnGenerator(Uint32Array.of(1, 2, 3, 4), 1_700_000_000);
  const a = g.next(10, 0xc6120201, 2000, 0xc612030a, 80);
  const b = g.next(11, 0xc6120201, 2000, 0xc612030a, 80);
  assert.equal((b - a) >>> 0, 250_000, "4 µs ticks: 250,000 per second");
  const c = g.next(10.000004, 0xc6120201, 2000, 0xc612030a, 80);
  assert.equal((c - a) >>> 0, 1);
});

Deno.test("ISNs differ between tuples and between secrets", () => {
  const g = new IsnGenerator(Uint32Array.of(1, 2, 3, 4), 0);
  const seen = new Set<number>();
  for (let p = 1025; p < 3025; p++) seen.add(g.next(5, 0xc6120201, p, 0xc612030a, 80));
  assert.ok(seen.size > 1990, `distinct ISNs for distinct ports: ${seen.size}`);
  const h = new IsnGenerator(Uint32Array.of(9, 2, 3, 4), 0);
  assert.notEqual(g.next(5, 1, 2, 3, 4), h.next(5, 1, 2, 3, 4));
  // The same inputs give the same answer (no hidden state).
  assert.equal(g.next(5, 1, 2, 3, 4), g.next(5, 1, 2, 3, 4));
});
