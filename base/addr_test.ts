import assert from "node:assert/strict";
import {
  hostPort,
  hostPrefix,
  ipAddressBytes,
  ipAddressEquals,
  ipAddressFromBytes,
  parseIpAddress,
} from "./addr.ts";

Deno.test("addr: IPv4 parses into word 0 and formats back", () => {
  const a = parseIpAddress("198.18.0.100")!;
  assert.equal(a.family, 4);
  assert.deepEqual(a.words, [0xc6120064, 0, 0, 0]);
  assert.equal(hostPort(a, 80), "198.18.0.100:80");
  assert.equal(hostPrefix(a), "198.18.0.100/32");
  assert.deepEqual([...ipAddressBytes(a)], [198, 18, 0, 100]);
});

Deno.test("addr: IPv6 parses into four words, canonical text", () => {
  const a = parseIpAddress("FD00:0:0::0064")!;
  assert.equal(a.family, 6);
  assert.deepEqual(a.words, [0xfd000000, 0, 0, 0x64]);
  assert.equal(a.text, "fd00::64");
  assert.equal(hostPort(a, 443), "[fd00::64]:443");
  assert.equal(hostPrefix(a), "fd00::64/128");
  const b = ipAddressBytes(a);
  assert.equal(b.length, 16);
  assert.ok(ipAddressEquals(ipAddressFromBytes(b, 0, 16), a));
});

Deno.test("addr: what is no address is null", () => {
  for (const t of ["", "1.2.3", "1.2.3.256", "::1::2", "host", "1.2.3.4:80", "[::1]"]) {
    assert.equal(parseIpAddress(t), null, t);
  }
  assert.ok(!ipAddressEquals(parseIpAddress("0.0.0.1")!, parseIpAddress("::1")!));
});
