/**
 * Mutation test: well over 100,000 seeded random, truncated and bit-flipped packets (from the scapy fixtures
 * and from random bytes) through classifyPacket, plain and as an ICMP quote. Nothing may throw, every reason
 * is a known one, an accepted packet's offsets lie inside its bytes, and for accepted packets every accessor,
 * option walker and rewriter runs without writing outside the packet (tcpInsertOption: outside the buffer's
 * spare room) and without breaking a checksum that was right before.
 */
import assert from "node:assert/strict";
import { FIXTURES, fromHex } from "../../tests/fixtures/fixtures.ts";
import { prng } from "../../tests/helpers/prng.ts";
import { read16, read32 } from "./checksum.ts";
import { natApplyDelta } from "./nat.ts";
import {
  icmpChecksum,
  icmpCode,
  icmpEchoId,
  icmpEchoSeq,
  icmpIsError,
  icmpNextHopMtu,
  icmpQuotedOffset,
  icmpSetTypeCode,
  icmpType,
} from "./icmp.ts";
import { icmpv6IsError, icmpv6Mtu } from "./icmpv6.ts";
import {
  ipv4Checksum,
  ipv4ChecksumOk,
  ipv4ComputeChecksum,
  ipv4DontFragment,
  ipv4Dst,
  ipv4FillChecksum,
  ipv4HeaderLength,
  ipv4Id,
  ipv4IsFragment,
  ipv4Protocol,
  ipv4SetDst,
  ipv4SetSrc,
  ipv4SetTtl,
  ipv4Src,
  ipv4TotalLength,
  ipv4Ttl,
} from "./ipv4.ts";
import {
  ipv6AddressSumDelta,
  ipv6CopyAddress,
  ipv6DstOffset,
  ipv6HopLimit,
  ipv6NextHeader,
  ipv6PayloadLength,
  ipv6SrcOffset,
} from "./ipv6.ts";
import { PacketInfo } from "./packet_info.ts";
import {
  tcpAck,
  tcpAdjustChecksum32,
  tcpAdjustSack,
  tcpChecksum,
  tcpClampMss,
  tcpCompactOptions,
  tcpDstPort,
  tcpFindOption,
  tcpFlags,
  tcpHeaderLength,
  tcpInsertOption,
  tcpMss,
  tcpNextOption,
  tcpNopAllOptions,
  tcpNopOption,
  TCPOPT_END,
  TCPOPT_MSS,
  TCPOPT_SACK,
  TCPOPT_TIMESTAMP,
  tcpOptionsWellFormed,
  tcpSeq,
  tcpSetAck,
  tcpSetDstPort,
  tcpSetSeq,
  tcpSetSrcPort,
  tcpSrcPort,
  tcpWindow,
} from "./tcp.ts";
import {
  computeTransportChecksum,
  fillTransportChecksum,
  transportChecksumFieldOffset,
  transportChecksumOk,
} from "./transport_checksum.ts";
import {
  udpAdjustChecksum32,
  udpChecksum,
  udpDstPort,
  udpLength,
  udpSetDstPort,
  udpSetSrcPort,
  udpSrcPort,
} from "./udp.ts";
import { classifyPacket, PACKET_OK, PACKET_REASON_NAMES } from "./validate.ts";

const SPARE = 48; // buffer room after the packet, for tcpInsertOption
const GUARD = 0xa5;
const LEAD_MAX = 5; // the packet starts at a random offset 0..LEAD_MAX-1 in its buffer

const rnd = prng(0x4d757461);
const seeds = FIXTURES.map((f) => fromHex(f.hex));
const reasonCounts = new Array(PACKET_REASON_NAMES.length).fill(0);
const quotedCounts = new Array(PACKET_REASON_NAMES.length).fill(0);
let okRewritten = 0;
let inserts = 0;
let sink = 0; // keeps accessor results alive

/** Asserts that bytes outside [from, to) are still the guard pattern. */
function guardsIntact(buf: Uint8Array, from: number, to: number, what: string) {
  for (let i = 0; i < from; i++) {
    if (buf[i] !== GUARD) assert.fail(`${what}: wrote before the packet at ${i}`);
  }
  for (let i = to; i < buf.length; i++) {
    if (buf[i] !== GUARD) assert.fail(`${what}: wrote past the packet at ${i}`);
  }
}

function readAll(b: Uint8Array, info: PacketInfo, quoted: boolean) {
  const ip = info.ipOff, o = info.l4Off;
  if (info.family === 4) {
    sink += ipv4HeaderLength(b, ip) + ipv4TotalLength(b, ip) + ipv4Id(b, ip) + ipv4Ttl(b, ip) +
      ipv4Protocol(b, ip) + ipv4Checksum(b, ip) + ipv4Src(b, ip) + ipv4Dst(b, ip) +
      (ipv4DontFragment(b, ip) ? 1 : 0) + (ipv4IsFragment(b, ip) ? 1 : 0) + ipv4ComputeChecksum(b, ip) +
      (ipv4ChecksumOk(b, ip) ? 1 : 0);
  } else {
    sink += ipv6PayloadLength(b, ip) + ipv6NextHeader(b, ip) + ipv6HopLimit(b, ip) + b[ipv6SrcOffset(ip)] +
      b[ipv6DstOffset(ip) + 15];
  }
  const p = info.l4Proto;
  if (p === 6) {
    sink += tcpSrcPort(b, o) + tcpDstPort(b, o) + tcpSeq(b, o);
    if (quoted && info.l4HeaderLen < 20) return;
    sink += tcpAck(b, o) + tcpFlags(b, o) + tcpWindow(b, o) + tcpChecksum(b, o);
    if (quoted) return;
    sink += tcpHeaderLength(b, o) + tcpMss(b, o) + (tcpOptionsWellFormed(b, o) ? 1 : 0);
    let n = 0;
    let q = tcpNextOption(b, o, -1);
    for (; q >= 0; q = tcpNextOption(b, o, q)) {
      if (q < o + 20 || q >= o + info.l4HeaderLen) assert.fail(`option offset ${q} outside the header`);
      if (++n > 40) assert.fail("option walk does not end");
    }
    assert.equal(q, TCPOPT_END, "an accepted segment has a sound option list");
    for (const k of [TCPOPT_MSS, TCPOPT_SACK, TCPOPT_TIMESTAMP, 254]) {
      const at = tcpFindOption(b, o, k);
      if (at >= 0) assert(at + (b[at] === 1 ? 1 : b[at + 1]) <= o + info.l4HeaderLen);
    }
  } else if (p === 17) {
    sink += udpSrcPort(b, o) + udpDstPort(b, o) + udpLength(b, o) + udpChecksum(b, o);
  } else {
    sink += icmpType(b, o) + icmpCode(b, o) + icmpChecksum(b, o) + icmpEchoId(b, o) + icmpEchoSeq(b, o) +
      icmpNextHopMtu(b, o) + icmpv6Mtu(b, o) + (icmpIsError(b[o]) ? 1 : 0) + (icmpv6IsError(b[o]) ? 1 : 0);
  }
  if (!quoted) sink += computeTransportChecksum(b, info) + (transportChecksumOk(b, info) ? 1 : 0);
}

/** Runs every rewriter the packet's protocol has; checksums were made right first and must stay right. */
function rewriteAll(buf: Uint8Array, info: PacketInfo, used: number): number {
  const o = info.l4Off, ip = info.ipOff, p = info.l4Proto;
  const udpNone = p === 17 && info.family === 4 && (rnd() & 3) === 0;
  if (info.family === 4) ipv4FillChecksum(buf, ip);
  fillTransportChecksum(buf, info);
  if (udpNone) buf[o + 6] = buf[o + 7] = 0;
  if (info.family === 4) {
    const s = rnd(), d = rnd(), os = ipv4Src(buf, ip), od = ipv4Dst(buf, ip);
    ipv4SetSrc(buf, ip, s);
    ipv4SetDst(buf, ip, d);
    ipv4SetTtl(buf, ip, rnd() & 0xff);
    if (p === 6) tcpAdjustChecksum32(buf, o, os, s), tcpAdjustChecksum32(buf, o, od, d);
    if (p === 17) udpAdjustChecksum32(buf, o, os, s), udpAdjustChecksum32(buf, o, od, d);
  } else {
    const a = new Uint8Array(16).map(() => rnd() & 0xff);
    const delta = ipv6AddressSumDelta(buf, ipv6SrcOffset(ip), a, 0);
    if (p === 6 || p === 17 || p === 58) {
      natApplyDelta(buf, p, o + transportChecksumFieldOffset(p), buf.length, delta);
    }
    ipv6CopyAddress(buf, ipv6SrcOffset(ip), a, 0);
  }
  let len = used;
  if (p === 6) {
    tcpSetSrcPort(buf, o, rnd() & 0xffff);
    tcpSetDstPort(buf, o, rnd() & 0xffff);
    tcpSetSeq(buf, o, rnd());
    tcpSetAck(buf, o, rnd());
    tcpAdjustSack(buf, o, rnd() | 0);
    tcpClampMss(buf, o, rnd() & 0xffff);
    if (rnd() & 1) tcpNopAllOptions(buf, o, TCPOPT_TIMESTAMP);
    const first = tcpNextOption(buf, o, -1);
    if (first >= 0 && (rnd() & 1)) tcpNopOption(buf, o, first);
    if (rnd() & 1) len = tcpCompactOptions(buf, info, len);
    // Compaction leaves stale bytes in [len, used): inside the old packet, so only past `used` must be guard.
    guardsIntact(buf, ip, used, "TCP rewrite");
    const optLen = 4 * (rnd() % 6);
    const opt = new Uint8Array(optLen).fill(1);
    const n = tcpInsertOption(buf, info, len, opt, 0, optLen);
    if (n >= 0) {
      inserts++;
      assert.equal(n, len + optLen);
      assert(n <= buf.length);
      len = n;
    }
  } else if (p === 17) {
    udpSetSrcPort(buf, o, rnd() & 0xffff);
    udpSetDstPort(buf, o, rnd() & 0xffff);
    if (udpNone) assert.equal(read16(buf, o + 6), 0, "a missing UDP checksum stays missing");
  } else {
    icmpSetTypeCode(buf, o, rnd() & 0xff, rnd() & 0xff);
  }
  guardsIntact(buf, ip, Math.max(len, used), "rewrite");
  if (info.family === 4) {
    assert.equal(read16(buf, ip + 10), ipv4ComputeChecksum(buf, ip), "IPv4 header checksum");
  }
  if (!udpNone) assert(transportChecksumOk(buf, info), "transport checksum after rewrites");
  const again = new PacketInfo();
  assert.equal(classifyPacket(buf, ip, len - ip, again), PACKET_OK, "still accepted after rewrites");
  okRewritten++;
  return len;
}

/** Classifies `pkt` placed at a random offset in a guarded buffer; checks and exercises the result. */
function exercise(pkt: Uint8Array, len: number) {
  const lead = rnd() % LEAD_MAX;
  const info = new PacketInfo();
  for (const quoted of [false, true]) {
    const buf = new Uint8Array(lead + len + SPARE).fill(GUARD);
    buf.set(pkt.subarray(0, len), lead);
    const r = classifyPacket(buf, lead, len, info, quoted);
    assert(Number.isInteger(r) && r >= 0 && r < PACKET_REASON_NAMES.length, `reason ${r}`);
    (quoted ? quotedCounts : reasonCounts)[r]++;
    if (r !== PACKET_OK) continue;
    assert(info.family === 4 || info.family === 6);
    assert.equal(info.ipOff, lead);
    assert(info.l4Off > lead && info.l4HeaderLen >= 8, "layer offsets");
    assert(
      info.l4Off + info.l4HeaderLen <= info.end,
      `l4 header inside: ${info.l4Off}+${info.l4HeaderLen}>${info.end}`,
    );
    assert(info.end <= lead + len, "end inside the bytes");
    if (!quoted) assert.equal(info.l4Off + info.l4Len, info.end, "l4Len matches the IP length");
    readAll(buf, info, quoted);
    guardsIntact(buf, lead, lead + len, "read");
    if (!quoted && (info.l4Proto === 1 || info.l4Proto === 58) && info.end - info.l4Off > 8) {
      const qi = new PacketInfo();
      const qo = icmpQuotedOffset(info.l4Off);
      const qr = classifyPacket(buf, qo, info.end - qo, qi, true);
      assert(qr >= 0 && qr < PACKET_REASON_NAMES.length);
      if (qr === PACKET_OK) {
        assert(qi.l4Off + qi.l4HeaderLen <= qi.end && qi.end <= info.end, "quoted offsets");
        readAll(buf, qi, true);
      }
    }
    if (!quoted) rewriteAll(buf, info, lead + len);
  }
}

function mutateBits(src: Uint8Array): Uint8Array {
  const p = src.slice();
  const flips = 1 + (rnd() % 4);
  for (let i = 0; i < flips && p.length; i++) {
    // Mostly in the headers (the first 80 bytes), where the validator decides.
    const at = (rnd() & 3) !== 0 ? rnd() % Math.min(p.length, 80) : rnd() % p.length;
    p[at] ^= 1 << (rnd() & 7);
  }
  return p;
}

function mutateBytes(src: Uint8Array): Uint8Array {
  const p = src.slice();
  const n = 1 + (rnd() % 3);
  for (let i = 0; i < n && p.length; i++) p[rnd() % Math.min(p.length, 72)] = rnd() & 0xff;
  return p;
}

function randomPacket(): Uint8Array {
  const len = rnd() % 120;
  const p = new Uint8Array(len).map(() => rnd() & 0xff);
  if (len > 0 && (rnd() & 3) !== 0) {
    // Plausible headers: a version, and lengths that agree, so random bytes reach deeper layers.
    const v6 = (rnd() & 1) === 1;
    if (v6 && len >= 40) {
      p[0] = 0x60;
      p[4] = (len - 40) >>> 8;
      p[5] = (len - 40) & 0xff;
      p[6] = [6, 17, 58, 0, 43, 44, 60, 51, 59][rnd() % 9];
    } else if (len >= 20) {
      p[0] = 0x45 + (rnd() % 3);
      p[2] = len >>> 8;
      p[3] = len & 0xff;
      p[6] &= 0x40;
      p[7] = 0;
      p[9] = [6, 17, 1, 47][rnd() % 4];
    }
  }
  return p;
}

Deno.test("mutation: >100k random, truncated and bit-flipped packets never break the codecs", () => {
  let n = 0;
  // Every truncation of every fixture.
  for (const s of seeds) {
    for (let len = 0; len <= s.length; len++) exercise(s, len), n++;
  }
  while (n < 250_000) {
    const s = seeds[rnd() % seeds.length];
    const k = rnd() % 10;
    let p: Uint8Array;
    if (k < 4) p = mutateBits(s);
    else if (k < 6) p = mutateBytes(s);
    else if (k < 7) p = mutateBits(s).subarray(0, rnd() % (s.length + 1));
    else p = randomPacket();
    exercise(p, p.length);
    n++;
  }
  assert(n >= 100_000);
  // Every reason was reached, and plenty of packets got through to the rewriters.
  reasonCounts.forEach((c, i) => assert(c > 0, `reason ${PACKET_REASON_NAMES[i]} never seen`));
  assert(okRewritten > 20_000, `only ${okRewritten} accepted packets rewritten`);
  assert(inserts > 5_000, `only ${inserts} insertions`);
  assert(quotedCounts[PACKET_OK] > reasonCounts[PACKET_OK], "quoted mode accepts cut-off packets");
  assert(sink !== 0.5);
});

Deno.test("mutation: classifyPacket refuses a length that runs past the buffer", () => {
  const b = fromHex(FIXTURES[0].hex);
  const info = new PacketInfo();
  assert.notEqual(classifyPacket(b, 0, b.length + 1, info), PACKET_OK);
  assert.notEqual(classifyPacket(b, 1, b.length, info), PACKET_OK);
  assert.notEqual(classifyPacket(b, b.length, 0, info), PACKET_OK);
  assert.equal(read32(b, 0) !== 0, true);
});
