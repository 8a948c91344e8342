/**
 * echoReply against fixtures from scapy (testdata/gen_echo_fixtures.py): the expected replies and their
 * checksums come from an independent implementation, so a shared misunderstanding cannot pass.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type EchoCounters, echoReply, newEchoCounters } from "./echo.ts";

interface Case {
  name: string;
  request: string;
  reply: string | null;
  counter: keyof EchoCounters;
}

const fixtures: { cases: Case[] } = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/echo_fixtures.json", import.meta.url)),
);

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

for (const c of fixtures.cases) {
  Deno.test(`echoReply: ${c.name}`, () => {
    const buf = new Uint8Array(2048);
    const req = fromHex(c.request);
    buf.set(req);
    const counters = newEchoCounters();
    const n = echoReply(buf, req.length, counters);
    if (c.reply === null) {
      assert.equal(n, 0);
    } else {
      assert.equal(toHex(buf.subarray(0, n)), c.reply);
    }
    const nonZero = Object.entries(counters).filter(([, v]) => v !== 0);
    assert.deepEqual(nonZero, [[c.counter, 1]]);
  });
}

Deno.test("echoReply: trailing bytes beyond the IP length are not echoed", () => {
  const c = fixtures.cases.find((x) => x.counter === "udp4")!;
  const req = fromHex(c.request);
  const buf = new Uint8Array(req.length + 5);
  buf.set(req);
  assert.equal(echoReply(buf, buf.length, newEchoCounters()), req.length);
});
