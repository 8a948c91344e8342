// Fixtures: SYNs built by scapy (tests/fixtures/gen_toa_fixtures.py prints them), so the decoder is checked
// against an independent encoder, and our encoder is checked byte-for-byte against scapy's.
import assert from "node:assert/strict";
import {
  decodeToa,
  readToaOption,
  TCPOPT_TOA,
  TOA_V4_LEN,
  TOA_V6_LEN,
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
