import assert from "node:assert/strict";
import { encodeSockaddr, formatHostPort, parseHostPort, readSockaddr } from "./sockaddr.ts";

Deno.test("ADDR:PORT parsing, IPv6 in brackets, errors say what is wrong", () => {
  assert.deepEqual(parseHostPort("198.18.3.10:80"), { family: 4, address: "198.18.3.10", port: 80 });
  assert.deepEqual(parseHostPort("[fd00:3::10]:8080"), { family: 6, address: "fd00:3::10", port: 8080 });
  assert.deepEqual(parseHostPort("[::]:0"), { family: 6, address: "::", port: 0 });
  assert.throws(() => parseHostPort("198.18.3.10"), /expected ADDR:PORT/);
  assert.throws(() => parseHostPort("fd00::1:80"), /expected ADDR:PORT/);
  assert.throws(() => parseHostPort("198.18.3.10:65536"), /port must be 0..65535/);
  assert.throws(() => parseHostPort("198.18.3.10:080"), /port must be/);
  assert.throws(() => parseHostPort("[198.18.3.10]:80"), /bracketed IPv6/);
  assert.throws(() => parseHostPort("example.com:80"), /IPv4 address/);
  assert.equal(formatHostPort(parseHostPort("[fd00::1]:1")), "[fd00::1]:1");
});

Deno.test("sockaddr round trip; v4-mapped IPv6 reads back as IPv4", () => {
  for (const text of ["198.18.3.10:80", "[fd00:3::10]:443", "0.0.0.0:0"]) {
    const a = parseHostPort(text);
    assert.deepEqual(readSockaddr(encodeSockaddr(a)), a);
  }
  const mapped = encodeSockaddr({ family: 6, address: "::ffff:198.18.1.2", port: 40000 });
  assert.equal(mapped.length, 28);
  assert.deepEqual(readSockaddr(mapped), { family: 4, address: "198.18.1.2", port: 40000 });
  assert.equal(readSockaddr(new Uint8Array(28)), null); // AF_UNSPEC
});
