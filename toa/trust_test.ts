import assert from "node:assert/strict";
import { cidrContains, isTrusted, parseCidr, parseTrustList } from "./trust.ts";

Deno.test("IPv4 CIDR matching, prefix boundaries included", () => {
  const c = parseCidr("198.18.2.0/24");
  assert.ok(cidrContains(c, "198.18.2.1"));
  assert.ok(cidrContains(c, "198.18.2.255"));
  assert.ok(!cidrContains(c, "198.18.3.1"));
  assert.ok(!cidrContains(c, "198.18.1.2"));
  const odd = parseCidr("10.0.0.128/25");
  assert.ok(cidrContains(odd, "10.0.0.200") && !cidrContains(odd, "10.0.0.127"));
  assert.ok(cidrContains(parseCidr("0.0.0.0/0"), "203.0.113.9"));
  const host = parseCidr("198.18.2.1");
  assert.equal(host.prefix, 32);
  assert.ok(cidrContains(host, "198.18.2.1") && !cidrContains(host, "198.18.2.2"));
  assert.ok(cidrContains(parseCidr("198.18.2.77/24"), "198.18.2.1"), "host bits of the network are ignored");
});

Deno.test("IPv6 CIDR matching; families never match across", () => {
  const c = parseCidr("fd00:2::/64");
  assert.ok(cidrContains(c, "fd00:2::1"));
  assert.ok(cidrContains(c, "fd00:2::ffff:ffff:ffff:ffff"));
  assert.ok(!cidrContains(c, "fd00:2:0:1::1"));
  assert.ok(cidrContains(parseCidr("fd00::/8"), "fdff::1"));
  assert.ok(!cidrContains(parseCidr("fd00::/9"), "fdff::1"));
  assert.ok(!cidrContains(parseCidr("::/0"), "198.18.2.1"));
  assert.ok(!cidrContains(parseCidr("0.0.0.0/0"), "fd00::1"));
  assert.ok(!cidrContains(c, "not an address"));
});

Deno.test("trust lists: any block matches; bad entries are named", () => {
  const t = parseTrustList("198.18.2.0/24,fd00:2::/64");
  assert.ok(isTrusted(t, "198.18.2.9"));
  assert.ok(isTrusted(t, "fd00:2::9"));
  assert.ok(!isTrusted(t, "198.18.3.11"));
  assert.ok(!isTrusted([], "198.18.2.9"));
  assert.throws(() => parseTrustList("198.18.2.0/24,"), /"" is not ADDR\/LEN/);
  assert.throws(() => parseCidr("198.18.2.0/33"), /prefix length must be 0..32/);
  assert.throws(() => parseCidr("fd00::/129"), /prefix length must be 0..128/);
  assert.throws(() => parseCidr("198.18.2.0/24/1"), /not ADDR\/LEN/);
  assert.throws(() => parseCidr("198.18.2/24"), /not ADDR\/LEN/);
});

Deno.test("trust lists: remembered verdicts stay right per list, past the bound, and for bytes", () => {
  const a = parseTrustList("198.18.2.0/23");
  const b = parseTrustList("198.18.3.0/24");
  // 6000 distinct texts (past the 4096 remembered), each asked twice, against two lists.
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 6000; i++) {
      const text = `198.18.${(i >> 8) & 7}.${i & 0xff}`;
      const third = (i >> 8) & 7;
      assert.equal(isTrusted(a, text), third === 2 || third === 3, `${text} in a`);
      assert.equal(isTrusted(b, text), third === 3, `${text} in b`);
    }
  }
  assert.ok(isTrusted(a, new Uint8Array([198, 18, 3, 200])));
  assert.ok(!isTrusted(b, new Uint8Array([198, 18, 2, 200])));
  assert.ok(!isTrusted(a, "not an address") && !isTrusted(a, "not an address"));
});
