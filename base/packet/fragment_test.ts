// Fragment fields read from headers scapy built (lb/engine/testdata/gen_frag_fixtures.py: the second
// fragment of v4_udp_4000 and of v6_udp_4000), and the IPv6 Fragment header writer read back by them.
import assert from "node:assert/strict";
import {
  ipv4FragmentOffset,
  ipv4MoreFragments,
  ipv6FragmentId,
  ipv6FragmentNextHeader,
  ipv6FragmentOffset,
  ipv6MoreFragments,
  ipv6WriteFragmentHeader,
} from "./fragment.ts";
import { ipv4Id, ipv4IsFragment } from "./ipv4.ts";

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!.map((x) => parseInt(x, 16)));
}

Deno.test("fragment: IPv4 flags and offset of scapy's second fragment (MF, offset 1480)", () => {
  const b = hex("450005dc123420b94011b499c6120102c6120064");
  assert.equal(ipv4Id(b, 0), 0x1234);
  assert.ok(ipv4IsFragment(b, 0));
  assert.ok(ipv4MoreFragments(b, 0));
  assert.equal(ipv4FragmentOffset(b, 0), 1480);
  const last = hex("4500042c12340172000000000000000000000000");
  assert.ok(!ipv4MoreFragments(last, 0));
  assert.equal(ipv4FragmentOffset(last, 0), 0x172 * 8);
});

Deno.test("fragment: IPv6 Fragment header of scapy's second fragment (UDP, offset 1232, M, id)", () => {
  const f = hex("110004d1abcdef01");
  assert.equal(ipv6FragmentNextHeader(f, 0), 17);
  assert.equal(ipv6FragmentOffset(f, 0), 1232);
  assert.ok(ipv6MoreFragments(f, 0));
  assert.equal(ipv6FragmentId(f, 0), 0xabcdef01);
});

Deno.test("fragment: ipv6WriteFragmentHeader writes what scapy writes", () => {
  const b = new Uint8Array(10).fill(0xee);
  ipv6WriteFragmentHeader(b, 1, 17, 1232, true, 0xabcdef01);
  assert.deepEqual(b.subarray(1, 9), hex("110004d1abcdef01"));
  assert.equal(b[0], 0xee);
  assert.equal(b[9], 0xee);
  ipv6WriteFragmentHeader(b, 1, 6, 2464, false, 0x77);
  assert.ok(!ipv6MoreFragments(b, 1));
  assert.equal(ipv6FragmentOffset(b, 1), 2464);
  assert.equal(ipv6FragmentId(b, 1), 0x77);
});
