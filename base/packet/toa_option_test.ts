// Fixtures: SYNs built by scapy (tests/fixtures/gen_toa_fixtures.py prints them), so the decoder is checked
// against an independent encoder, and our encoder is checked byte-for-byte against scapy's.
import assert from "node:assert/strict";
import {
  decodeToa,
  DEFAULT_TOA_KINDS,
  nopToaOptions,
  readToaOption,
  scanToa,
  TCPOPT_TOA,
  TCPOPT_TOA_ALT,
  TOA_V4_LEN,
  TOA_V6_LEN,
  toaKindSet,
  writeToaV4,
  writeToaV6,
  writeToaWords,
} from "./toa_option.ts";
import { read32 } from "./checksum.ts";
import { parseIpv4 } from "./ipv4.ts";
import { parseIpv6 } from "./ipv6.ts";

const hex = (s: string) => new Uint8Array(s.match(/../g)!.map((x) => parseInt(x, 16)));

/** IPv4 SYN: MSS 1460, TOA(40000, 198.18.1.2), NOP, NOP, SACK-permitted. */
const SYN_V4 = hex(
  "45000038000100004006e98fc6120201c612030a13880050000003e8000000009002200038c90000020405b4fe089c40c6120102" +
    "01010402",
);
/** IPv6 SYN: TOA(40001, fd00:1::2), MSS 1440. */
const SYN_V6 = hex(
  "60000000002c0640fd000002000000000000000000000001fd00000300000000000000000000001013880050000003e800000000" +
    "b00220007ef40000fe149c41fd000001000000000000000000000002020405a0",
);
/** IPv4 SYN whose option 254 has length 5: not a TOA. */
const SYN_BAD_LEN = hex(
  "45000034000100004006e993c6120201c612030a13880050000003e80000000080022000ad260000020405b4fe05010203000000",
);

Deno.test("decodeToa reads the IPv4 form from a scapy SYN", () => {
  assert.deepEqual(decodeToa(SYN_V4), { family: 4, address: "198.18.1.2", port: 40000 });
});

Deno.test("decodeToa reads the IPv6 form from a scapy SYN", () => {
  assert.deepEqual(decodeToa(SYN_V6), { family: 6, address: "fd00:1::2", port: 40001 });
});

Deno.test("decodeToa rejects a kind-254 option of the wrong length", () => {
  assert.equal(decodeToa(SYN_BAD_LEN), null);
});

Deno.test("decodeToa accepts a saved SYN cut after the TCP header (IP length counts payload)", () => {
  const syn = SYN_V4.slice();
  syn[3] += 10; // the IP header claims 10 payload bytes the saved SYN does not hold
  assert.deepEqual(decodeToa(syn), { family: 4, address: "198.18.1.2", port: 40000 });
});

Deno.test("decodeToa returns null for garbage and for a SYN without TOA", () => {
  assert.equal(decodeToa(new Uint8Array(0)), null);
  assert.equal(decodeToa(hex("4500")), null);
  const noToa = SYN_V4.slice();
  noToa[44] = 1; // the TOA option's kind byte becomes a NOP run start
  noToa.fill(1, 44, 52);
  assert.equal(decodeToa(noToa), null);
  // Every truncation of a valid SYN is classified, never thrown on.
  for (let n = 0; n < SYN_V6.length; n++) decodeToa(SYN_V6.subarray(0, n));
});

Deno.test("writeToaV4 and writeToaV6 produce scapy's bytes", () => {
  const b = new Uint8Array(TOA_V4_LEN);
  writeToaV4(b, 0, 40000, parseIpv4("198.18.1.2"));
  assert.deepEqual(b, SYN_V4.subarray(44, 52));
  const b6 = new Uint8Array(TOA_V6_LEN);
  writeToaV6(b6, 0, 40001, parseIpv6("fd00:1::2")!, 0);
  assert.deepEqual(b6, SYN_V6.subarray(60, 80));
  assert.equal(b6[0], TCPOPT_TOA);
  assert.deepEqual(readToaOption(b6, 0), { family: 6, address: "fd00:1::2", port: 40001 });
});

Deno.test("writeToaWords writes the same scapy bytes from address words (v4 and v6)", () => {
  const b = new Uint8Array(TOA_V4_LEN + 2).fill(0xee);
  const w = Uint32Array.of(7, parseIpv4("198.18.1.2"), 9, 9, 9);
  assert.equal(writeToaWords(b, 1, 4, 40000, w, 1), TOA_V4_LEN);
  assert.deepEqual(b.subarray(1, 1 + TOA_V4_LEN), SYN_V4.subarray(44, 52));
  assert.equal(b[0], 0xee, "nothing before the option");
  assert.equal(b[1 + TOA_V4_LEN], 0xee, "nothing after the option");
  const a = parseIpv6("fd00:1::2")!;
  const w6 = new Uint32Array(5);
  for (let k = 0; k < 4; k++) w6[1 + k] = read32(a, k * 4);
  const b6 = new Uint8Array(TOA_V6_LEN + 1).fill(0xee);
  assert.equal(writeToaWords(b6, 0, 6, 40001, w6, 1), TOA_V6_LEN);
  assert.deepEqual(b6.subarray(0, TOA_V6_LEN), SYN_V6.subarray(60, 80));
  assert.equal(b6[TOA_V6_LEN], 0xee);
});

/** A hand-built IPv4 (or IPv6) SYN 198.18.2.1 → 198.18.3.10 with `opts` as its TCP options (padded with EOL). */
function synWith(opts: number[], family: 4 | 6 = 4): Uint8Array {
  const optLen = (opts.length + 3) & ~3;
  const tcpLen = 20 + optLen;
  const ipLen = family === 4 ? 20 : 40;
  const b = new Uint8Array(ipLen + tcpLen);
  if (family === 4) {
    b.set([0x45, 0, 0, ipLen + tcpLen, 0, 1, 0, 0, 64, 6, 0, 0, 198, 18, 2, 1, 198, 18, 3, 10]);
  } else {
    b.set([0x60, 0, 0, 0, 0, tcpLen, 6, 64]);
    b.set([0xfd, 0, 0, 2, ...new Array(11).fill(0), 1], 8);
    b.set([0xfd, 0, 0, 3, ...new Array(11).fill(0), 0x10], 24);
  }
  b.set([0x13, 0x88, 0, 80, 0, 0, 3, 0xe8, 0, 0, 0, 0, (tcpLen / 4) << 4, 2, 0x20, 0], ipLen);
  b.set(opts, ipLen + 20);
  return b;
}
const TOA4 = [254, 8, 0x9c, 0x40, 198, 18, 1, 2]; // 198.18.1.2:40000
const TOA6 = [254, 20, 0x9c, 0x41, 0xfd, 0, 0, 1, ...new Array(11).fill(0), 2]; // [fd00:1::2]:40001

Deno.test("scanToa skips a wrong-length kind 254 and takes a later valid TOA, as toa.ko does", () => {
  // len 6 and len 10: neither form; the 8-byte one after them is the gateway's.
  const r = scanToa(synWith([254, 6, 1, 2, 3, 4, 254, 10, 0, 0, 0, 0, 0, 0, 0, 0, ...TOA4]));
  assert.deepEqual(r, { toa: { family: 4, address: "198.18.1.2", port: 40000 }, malformed: 2 });
  assert.deepEqual(scanToa(synWith([254, 6, 1, 2, 3, 4])), { toa: null, malformed: 1 });
  assert.deepEqual(scanToa(SYN_BAD_LEN), { toa: null, malformed: 1 });
  // The first valid one wins; a second is not looked at.
  assert.equal(scanToa(synWith([...TOA4, 254, 8, 0, 1, 10, 0, 0, 1])).toa?.port, 40000);
});

Deno.test("scanToa skips the other family's form: IPv6 TOA in an IPv4 SYN and IPv4 TOA in an IPv6 SYN", () => {
  assert.deepEqual(scanToa(synWith(TOA6, 4)), { toa: null, malformed: 1 });
  assert.deepEqual(scanToa(synWith(TOA4, 6)), { toa: null, malformed: 1 });
  assert.deepEqual(scanToa(synWith([...TOA6, ...TOA4], 4)), {
    toa: { family: 4, address: "198.18.1.2", port: 40000 },
    malformed: 1,
  });
  assert.deepEqual(scanToa(synWith([...TOA4, ...TOA6], 6)), {
    toa: { family: 6, address: "fd00:1::2", port: 40001 },
    malformed: 1,
  });
});

Deno.test("scanToa: a broken option list yields no TOA and counts one, even with a valid TOA before the break", () => {
  // TOA, then an option whose length runs past the header.
  assert.deepEqual(scanToa(synWith([...TOA4, 3, 9, 7])), { toa: null, malformed: 1 });
  // An option of length 1 (below the minimum of 2) before the TOA.
  assert.deepEqual(scanToa(synWith([8, 1, ...TOA4])), { toa: null, malformed: 1 });
});

Deno.test("a port-0 TOA is a TOA: announced with port 0", () => {
  assert.deepEqual(scanToa(synWith([254, 8, 0, 0, 198, 18, 1, 2])), {
    toa: { family: 4, address: "198.18.1.2", port: 0 },
    malformed: 0,
  });
  assert.deepEqual(decodeToa(synWith([254, 20, 0, 0, 0xfd, ...new Array(15).fill(0)], 6)), {
    family: 6,
    address: "fd00::",
    port: 0,
  });
});

Deno.test("scanToa on a saved SYN (cut after the TCP header): a broken option list still yields no TOA", () => {
  // The IP length counts 10 payload bytes the saved SYN does not hold, so the packet is read as a cut one.
  const cut = (opts: number[]) => {
    const syn = synWith(opts);
    syn[3] += 10;
    return syn;
  };
  assert.deepEqual(scanToa(cut(TOA4)), {
    toa: { family: 4, address: "198.18.1.2", port: 40000 },
    malformed: 0,
  });
  // TOA, then an option whose length runs past the header: the whole list is not believed.
  assert.deepEqual(scanToa(cut([...TOA4, 3, 9, 7])), { toa: null, malformed: 1 });
  assert.deepEqual(scanToa(cut([...TOA4, 8, 1])), { toa: null, malformed: 1 });
  // A data offset past the saved bytes: no TCP header to read options from.
  const long = cut(TOA4);
  long[32] = 0xf0;
  assert.deepEqual(scanToa(long), { toa: null, malformed: 0 });
  const short = cut(TOA4);
  short[32] = 0x40;
  assert.deepEqual(scanToa(short), { toa: null, malformed: 0 });
});

Deno.test("TOA kinds: 253 (Alibaba, Huawei) and 254 (toa.ko, dpvs) by default; a set given narrows or adds", () => {
  assert.deepEqual(DEFAULT_TOA_KINDS.kinds, [TCPOPT_TOA_ALT, TCPOPT_TOA]);
  const v6As = (kind: number) => [kind, ...TOA6.slice(1)];
  const v4As = (kind: number) => [kind, ...TOA4.slice(1)];
  const client6 = { family: 6, address: "fd00:1::2", port: 40001 };
  const client4 = { family: 4, address: "198.18.1.2", port: 40000 };
  // The IPv6 form as Alibaba's and Huawei's load balancers write it: kind 253, 20 bytes.
  assert.deepEqual(scanToa(synWith(v6As(253), 6)), { toa: client6, malformed: 0 });
  // One rule for every kind of the set: the packet's own family's form (253 of 8 bytes in IPv4 too).
  assert.deepEqual(scanToa(synWith(v4As(253), 4)), { toa: client4, malformed: 0 });
  // The first of either kind is taken.
  assert.deepEqual(decodeToa(synWith([...v4As(253), 254, 8, 0, 1, 10, 0, 0, 1])), client4);
  // Not in the default set: 252 is no option to look at, neither TOA nor malformed.
  assert.deepEqual(scanToa(synWith(v6As(252), 6)), { toa: null, malformed: 0 });
  // --toa-kinds 254,253,252 adds 252; --toa-kinds 254 narrows: 253 is ignored, not counted.
  const wide = toaKindSet([254, 253, 252]);
  assert.deepEqual(wide.kinds, [252, 253, 254]);
  assert.deepEqual(scanToa(synWith(v6As(252), 6), wide), { toa: client6, malformed: 0 });
  const only254 = toaKindSet([254]);
  assert.deepEqual(scanToa(synWith(v6As(253), 6), only254), { toa: null, malformed: 0 });
  assert.deepEqual(readToaOption(Uint8Array.from(v6As(253)), 0, only254), null);
  assert.deepEqual(readToaOption(Uint8Array.from(v6As(253)), 0), client6);
});

Deno.test("TOA kinds: a malformed option of any kind of the set is skipped and counted, never half-read", () => {
  // 253 of a length of neither form, then the other family's form, then a valid one.
  const r = scanToa(synWith([253, 6, 1, 2, 3, 4, 253, 8, 0, 0, 10, 0, 0, 1, ...TOA6], 6));
  assert.deepEqual(r, { toa: { family: 6, address: "fd00:1::2", port: 40001 }, malformed: 2 });
  assert.deepEqual(scanToa(synWith([253, 10, 0, 0, 0, 0, 0, 0, 0, 0], 4)), { toa: null, malformed: 1 });
  // 252 of a wrong length counts only when 252 is in the set.
  const bad252 = synWith([252, 6, 1, 2, 3, 4]);
  assert.deepEqual(scanToa(bad252), { toa: null, malformed: 0 });
  assert.deepEqual(scanToa(bad252, toaKindSet([252, 254])), { toa: null, malformed: 1 });
});

Deno.test("toaKindSet refuses what cannot be TOA, naming the kind", () => {
  assert.throws(() => toaKindSet([]), /at least one/);
  assert.throws(() => toaKindSet([256]), /256 is no TCP option kind/);
  assert.throws(() => toaKindSet([-1]), /no TCP option kind/);
  assert.throws(() => toaKindSet([2.5]), /no TCP option kind/);
  assert.throws(() => toaKindSet([1]), /1 is the NOP option/);
  assert.throws(() => toaKindSet([8]), /8 is the timestamps option/);
  assert.throws(() => toaKindSet([2]), /MSS/);
  assert.throws(() => toaKindSet([254, 254]), /254 given twice/);
  assert.equal(toaKindSet([200]).has[200], 1);
});

Deno.test("nopToaOptions NOPs every kind 253 and 254 in one walk, nothing else", () => {
  const b = synWith([253, 8, 0, 1, 6, 6, 6, 6, ...TOA4, 252, 4, 0, 0, 2, 4, 5, 0xb4]);
  const o = 20;
  assert.equal(nopToaOptions(b, o), 2);
  assert.deepEqual([...b.subarray(40, 56)], new Array(16).fill(1));
  assert.deepEqual([...b.subarray(56, 64)], [252, 4, 0, 0, 2, 4, 5, 0xb4]);
  assert.equal(nopToaOptions(b, o), 0);
  assert.deepEqual(scanToa(b), { toa: null, malformed: 0 });
});
