import assert from "node:assert/strict";
import { HandoffRing, handoffRingBytes } from "./handoff_ring.ts";

Deno.test("hand-off ring: FIFO order, wrap-around, full ring refuses, lengths exact", () => {
  const sab = new SharedArrayBuffer(handoffRingBytes(4096));
  const prod = new HandoffRing(sab);
  const cons = new HandoffRing(sab);
  const out = new Uint8Array(2048);
  let next = 0;
  let expect = 0;
  let refused = 0;
  // Many rounds of uneven sizes push the positions through many wraps (and past 2^31 would take longer).
  for (let round = 0; round < 2000; round++) {
    for (let k = 0; k < 3; k++) {
      const len = 1 + ((next * 37) % 1500);
      const pkt = new Uint8Array(len).fill(next & 0xff);
      if (prod.push(pkt, len)) next++;
      else refused++;
    }
    for (let k = 0; k < 2; k++) {
      const n = cons.pop(out);
      if (n === 0) break;
      assert.equal(n, 1 + ((expect * 37) % 1500));
      assert.ok(out.subarray(0, n).every((x) => x === (expect & 0xff)));
      expect++;
    }
  }
  for (let n = cons.pop(out); n > 0; n = cons.pop(out)) expect++;
  assert.equal(expect, next, "every accepted packet came out, in order");
  assert.ok(refused > 0, "a full ring refuses instead of overwriting");
  assert.equal(cons.pop(out), 0);
});

Deno.test("hand-off ring works across a Worker (shared memory, two threads)", async () => {
  const sab = new SharedArrayBuffer(handoffRingBytes(1 << 16));
  const code = `
    import { HandoffRing } from "${new URL("./handoff_ring.ts", import.meta.url).href}";
    self.onmessage = (e) => {
      const ring = new HandoffRing(e.data);
      const b = new Uint8Array(1000);
      let sent = 0;
      const deadline = Date.now() + 10000;
      while (sent < 20000 && Date.now() < deadline) {
        const len = 1 + (sent % 997);
        b[0] = sent & 0xff; if (len > 1) b[len - 1] = (sent >> 8) & 0xff;
        if (ring.push(b, len)) sent++;
      }
      self.postMessage(sent);
    };`;
  const url = URL.createObjectURL(new Blob([code], { type: "application/javascript" }));
  const w = new Worker(url, { type: "module" });
  const done = new Promise<number>((r) => (w.onmessage = (e) => r(e.data)));
  w.postMessage(sab);
  const ring = new HandoffRing(sab);
  const out = new Uint8Array(1000);
  let got = 0;
  const deadline = Date.now() + 15000;
  while (got < 20000 && Date.now() < deadline) {
    const n = ring.pop(out);
    if (n === 0) {
      await new Promise((r) => setTimeout(r, 0));
      continue;
    }
    assert.equal(n, 1 + (got % 997));
    assert.equal(out[0], got & 0xff);
    if (n > 1) assert.equal(out[n - 1], (got >> 8) & 0xff);
    got++;
  }
  assert.equal(await done, 20000);
  assert.equal(got, 20000);
  w.terminate();
  URL.revokeObjectURL(url);
});
