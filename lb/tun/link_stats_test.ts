// /proc/net/dev parsing: a captured text (the kernel's format since 2.6), a missing interface, a broken line.
import assert from "node:assert/strict";
import { linkStats, parseProcNetDev } from "./link_stats.ts";

const TEXT = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1200      12    0    0    0     0          0         0     1200      12    0    0    0     0       0          0
   lb0: 98765432  123456    0    7    0     0          0         0 87654321  234567    0 4242    0     0       0          0
lb0x1:       1       2    3    4    5     6          7         8        9      10   11   12   13    14      15         16
`;

Deno.test("parseProcNetDev: the counters of the named interface, by column", () => {
  assert.deepEqual(parseProcNetDev(TEXT, "lb0"), {
    rxPackets: 123456,
    rxDropped: 7,
    txPackets: 234567,
    txDropped: 4242,
  });
  assert.deepEqual(parseProcNetDev(TEXT, "lb0x1"), {
    rxPackets: 2,
    rxDropped: 4,
    txPackets: 10,
    txDropped: 12,
  });
  assert.equal(parseProcNetDev(TEXT, "lb"), null, "a prefix is not the name");
  assert.equal(parseProcNetDev(TEXT, "eth0"), null);
  assert.equal(parseProcNetDev("  lb0: 1 2 3\n", "lb0"), null, "a short line");
});

Deno.test("linkStats: reads this namespace's loopback", async () => {
  const lo = await linkStats("lo");
  assert.ok(lo !== null && lo.txDropped >= 0 && lo.rxPackets >= 0);
  assert.equal(await linkStats("no-such-if0"), null);
});
