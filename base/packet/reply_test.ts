// Replies the gateway builds in place: checked against a full recomputation of every checksum.
import assert from "node:assert/strict";
import { fromHex } from "../../tests/fixtures/fixtures.ts";
import { read16 } from "./checksum.ts";
import { ipv4ChecksumOk } from "./ipv4.ts";
import { PacketInfo } from "./packet_info.ts";
import { buildEchoReply } from "./reply.ts";
import { computeTransportChecksum, transportChecksumOk } from "./transport_checksum.ts";
import { classifyPacket, PACKET_OK } from "./validate.ts";

Deno.test("buildEchoReply: a reply whose ICMP message is all zeros carries 0xffff, not 0x0000 (issue 9 #4)", () => {
  // Echo request, id 0, seq 0, no data: the reply (type 0) is eight zero bytes. RFC 1624 eqn. 3 gives
  // 0x0000 (−0); only 0xffff (~+0, RFC 1071) verifies.
  const b = fromHex("4500001ca33d400040010a19c6120102c61200640800f7ff00000000");
  const info = new PacketInfo();
  assert.equal(classifyPacket(b, 0, b.length, info), PACKET_OK);
  assert.ok(transportChecksumOk(b, info), "the request verifies");
  const n = buildEchoReply(b, info);
  assert.equal(n, 28);
  assert.equal(b[20], 0, "echo reply");
  assert.equal(read16(b, 22), 0xffff);
  assert.ok(transportChecksumOk(b, info), "the reply verifies");
  assert.ok(ipv4ChecksumOk(b, 0));
});

Deno.test("buildEchoReply: a reply whose words sum to 0xffff keeps 0x0000, as a full sum gives (RFC 1624 §3)", () => {
  // id 0xffff, seq 0: the reply's words sum to −0 (0xffff), so its computed checksum is 0x0000.
  const b = fromHex("4500001ca33d400040010a19c6120102c61200640800f7ffffff0000");
  const info = new PacketInfo();
  assert.equal(classifyPacket(b, 0, b.length, info), PACKET_OK);
  assert.ok(transportChecksumOk(b, info), "the request verifies");
  buildEchoReply(b, info);
  assert.equal(read16(b, 22), 0x0000);
  assert.equal(read16(b, 22), computeTransportChecksum(b, info));
});
