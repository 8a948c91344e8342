/**
 * NatRewrite on every sound TCP and UDP scapy fixture, under both checksum policies: a full checksum must
 * equal a from-scratch recomputation after the rewrite; a partial one (pseudo-header sum only) must, once
 * completed the way the offload completes it, verify too — even when option edits happened in between.
 */
import assert from "node:assert/strict";
import { FIXTURES, fromHex } from "../../tests/fixtures/fixtures.ts";
import { prng } from "../../tests/helpers/prng.ts";
import {
  finishChecksum,
  foldSum,
  ipv4PseudoHeaderSum,
  ipv6PseudoHeaderSum,
  onesComplementSum,
  read16,
  write16,
} from "./checksum.ts";
import { IPPROTO_TCP, IPPROTO_UDP, ipv4ChecksumOk } from "./ipv4.ts";
import { ipDstOffset, ipSrcOffset, NatRewrite, readAddressWords } from "./nat.ts";
import { PacketInfo } from "./packet_info.ts";
import { TCP_DST_PORT, TCP_SRC_PORT, tcpInsertOption, tcpSetSeq } from "./tcp.ts";
import { computeTransportChecksum, transportChecksumFieldOffset } from "./transport_checksum.ts";
import { classifyPacket, PACKET_OK } from "./validate.ts";

const sound = FIXTURES.filter((f) =>
  f.reason === "ok" && !f.quoted &&
  ((f.tcp && f.tcp.checksum === f.tcp.checksumComputed) ||
    (f.udp && (f.udp.checksum === f.udp.checksumComputed || f.udp.checksum === 0)))
);
const OPT8 = Uint8Array.from([253, 8, 1, 2, 3, 4, 5, 6]);

function load(hex: string) {
  const raw = fromHex(hex);
  const b = fromHex(hex, raw.length + 64);
  const info = new PacketInfo();
  assert.equal(classifyPacket(b, 0, raw.length, info), PACKET_OK);
  return { b, info, len: raw.length };
}

/** Replaces the complete checksum with the pseudo-header sum a CHECKSUM_PARTIAL packet carries. */
function makePartial(b: Uint8Array, info: PacketInfo): void {
  const pseudo = info.family === 4
    ? ipv4PseudoHeaderSum(b, info.ipOff, info.l4Proto, info.l4Len)
    : ipv6PseudoHeaderSum(b, info.ipOff, info.l4Proto, info.l4Len);
  write16(b, info.l4Off + transportChecksumFieldOffset(info.l4Proto), foldSum(pseudo));
}

/** Completes a partial checksum as the device does: the complemented sum from the transport header on. */
function completePartial(b: Uint8Array, info: PacketInfo): void {
  const at = info.l4Off + transportChecksumFieldOffset(info.l4Proto);
  write16(b, at, finishChecksum(onesComplementSum(b, info.l4Off, info.l4Len)));
}

Deno.test("NatRewrite: full and partial checksums after addresses, ports, seq and TOA-style growth", () => {
  assert.ok(sound.length > 20, `${sound.length} fixtures`);
  const rnd = prng(0x5eed);
  const rw = new NatRewrite();
  const words = new Uint32Array(8);
  let zeroKept = 0;
  for (const f of sound) {
    for (const full of [true, false]) {
      const { b, info, len } = load(f.hex);
      const proto = info.l4Proto;
      const csumAt = info.l4Off + transportChecksumFieldOffset(proto);
      const noUdpSum = proto === IPPROTO_UDP && info.family === 4 && read16(b, csumAt) === 0;
      if (!full) makePartial(b, info);
      rw.begin(b, info, full);
      // Header edits update the field as if it were full: exactly what a partial checksum must survive.
      if (proto === IPPROTO_TCP) {
        tcpSetSeq(b, info.l4Off, rnd());
        tcpInsertOption(b, info, len, OPT8, 0, 8);
      }
      for (let k = 0; k < 8; k++) words[k] = rnd();
      const sport = rnd() & 0xffff, dport = rnd() & 0xffff;
      rw.addresses(b, info, words, 0, words, 4);
      rw.ports(b, info, sport, dport);
      rw.finish(b, info);
      const check = new Uint32Array(4);
      readAddressWords(b, info.family, info.ipOff + ipDstOffset(info.family), check);
      assert.equal(check[0], words[4], `${f.name}: destination written`);
      readAddressWords(b, info.family, info.ipOff + ipSrcOffset(info.family), check);
      assert.equal(check[0], words[0], `${f.name}: source written`);
      assert.equal(read16(b, info.l4Off + TCP_SRC_PORT), sport);
      assert.equal(read16(b, info.l4Off + TCP_DST_PORT), dport);
      if (info.family === 4) assert.ok(ipv4ChecksumOk(b, info.ipOff), `${f.name}: IPv4 header checksum`);
      if (full && noUdpSum) {
        assert.equal(read16(b, csumAt), 0, `${f.name}: a missing UDP checksum stays missing`);
        zeroKept++;
        continue;
      }
      if (!full) completePartial(b, info);
      assert.equal(read16(b, csumAt), computeTransportChecksum(b, info), `${f.name} full=${full}`);
    }
  }
  assert.ok(zeroKept > 0, "some fixture has no UDP checksum");
});
