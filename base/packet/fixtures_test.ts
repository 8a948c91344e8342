/**
 * Every packet scapy built (tests/fixtures/packets.json) parsed with our views and compared field by field to
 * scapy's dissection: validator reason, layer offsets, header fields, TCP options, SACK blocks, and full
 * checksums against scapy's own computation.
 */
import assert from "node:assert/strict";
import { type Fixture, FIXTURES, fromHex, toHex } from "../../tests/fixtures/fixtures.ts";
import {
  icmpCode,
  icmpEchoId,
  icmpEchoSeq,
  icmpIsError,
  icmpNextHopMtu,
  icmpQuotedOffset,
  icmpType,
} from "./icmp.ts";
import { icmpv6IsError, icmpv6Mtu } from "./icmpv6.ts";
import {
  ipv4Checksum,
  ipv4ChecksumOk,
  ipv4ComputeChecksum,
  ipv4DontFragment,
  ipv4Dst,
  ipv4HeaderLength,
  ipv4Id,
  ipv4IsFragment,
  ipv4Protocol,
  ipv4Src,
  ipv4TotalLength,
  ipv4Ttl,
  ipVersion,
} from "./ipv4.ts";
import { ipv6DstOffset, ipv6HopLimit, ipv6NextHeader, ipv6PayloadLength, ipv6SrcOffset } from "./ipv6.ts";
import { PacketInfo } from "./packet_info.ts";
import {
  tcpAck,
  tcpChecksum,
  tcpDstPort,
  tcpFindOption,
  tcpFlags,
  tcpHeaderLength,
  tcpMss,
  tcpNextOption,
  TCPOPT_END,
  TCPOPT_SACK,
  tcpOptionsWellFormed,
  tcpSeq,
  tcpSrcPort,
  tcpWindow,
} from "./tcp.ts";
import { computeTransportChecksum, transportChecksumOk } from "./transport_checksum.ts";
import { udpChecksum, udpDstPort, udpLength, udpSrcPort } from "./udp.ts";
import { classifyPacket, PACKET_OK, PACKET_REASON_NAMES } from "./validate.ts";

const EXT_NEXT_HEADER: Record<string, number> = { hbh: 0, routing: 43, fragment: 44, destopts: 60 };

function classified(f: Fixture): { b: Uint8Array; info: PacketInfo } {
  const b = fromHex(f.hex);
  const info = new PacketInfo();
  const r = classifyPacket(b, 0, b.length, info, f.quoted);
  assert.deepEqual(PACKET_REASON_NAMES[r], f.reason, `${f.name}: validator reason`);
  return { b, info };
}

const good = FIXTURES.filter((f) => f.reason === "ok" && !f.quoted);

Deno.test("fixtures: the set covers what the codecs must handle", () => {
  const reasons = new Set(FIXTURES.map((f) => f.reason));
  for (const name of PACKET_REASON_NAMES) assert(reasons.has(name), `no fixture for reason ${name}`);
  assert(good.filter((f) => f.tcp).length >= 150);
  assert(good.some((f) => f.tcp && f.tcp.options.some(([k, off]) => k === 2 && (off & 1) === 1)), "odd MSS");
  assert(good.some((f) => f.tcp && f.tcp.options.some(([k, off]) => k === 5 && (off & 1) === 1)), "odd SACK");
  assert(good.some((f) => f.tcp && f.tcp.checksum !== f.tcp.checksumComputed), "a bad TCP checksum");
});

Deno.test("fixtures: validator reason of every packet matches, in place at an offset too", () => {
  for (const f of FIXTURES) {
    classified(f);
    // The same bytes at offset 7 of a larger buffer: every offset must be relative to `off`.
    const raw = fromHex(f.hex);
    const b = new Uint8Array(raw.length + 20);
    b.set(raw, 7);
    const info = new PacketInfo();
    const r = classifyPacket(b, 7, raw.length, info, f.quoted);
    assert.deepEqual(PACKET_REASON_NAMES[r], f.reason, `${f.name} at offset 7`);
    if (r === PACKET_OK && f.l4Off !== undefined) {
      assert.deepEqual([info.ipOff, info.l4Off, info.end], [7, 7 + f.l4Off, 7 + f.end!], f.name);
    }
  }
});

Deno.test("fixtures: layer offsets and IP headers match scapy", () => {
  for (const f of good) {
    const { b, info } = classified(f);
    const n = f.name;
    assert.deepEqual(info.family, f.family, n);
    assert.deepEqual(ipVersion(b, 0), f.family, n);
    assert.deepEqual(info.ipOff, 0, n);
    assert.deepEqual(info.l4Off, f.l4Off, `${n}: l4Off`);
    assert.deepEqual(info.l4Proto, f.proto, `${n}: proto`);
    assert.deepEqual(info.end, f.end, `${n}: end`);
    assert.deepEqual(info.l4Len, f.l4Len, `${n}: l4Len`);
    assert.deepEqual(info.l4HeaderLen, f.l4HeaderLen, `${n}: l4HeaderLen`);
    const ip = f.ip!;
    if (f.family === 4) {
      assert.deepEqual(ipv4Src(b, 0), ip.src, n);
      assert.deepEqual(ipv4Dst(b, 0), ip.dst, n);
      assert.deepEqual(ipv4Ttl(b, 0), ip.ttl, n);
      assert.deepEqual(ipv4Id(b, 0), ip.id, n);
      assert.deepEqual(ipv4DontFragment(b, 0), ip.df, n);
      assert.deepEqual(ipv4IsFragment(b, 0), false, n);
      assert.deepEqual(ipv4TotalLength(b, 0), ip.totalLength, n);
      assert.deepEqual(ipv4HeaderLength(b, 0), ip.ihl, n);
      assert.deepEqual(ipv4Protocol(b, 0), f.proto, n);
      assert.deepEqual(ipv4Checksum(b, 0), ip.checksum, n);
      assert.deepEqual(ipv4ComputeChecksum(b, 0), ip.checksumComputed, `${n}: IPv4 checksum vs scapy`);
      assert.deepEqual(ipv4ChecksumOk(b, 0), ip.checksum === ip.checksumComputed, n);
    } else {
      assert.deepEqual(toHex(b, ipv6SrcOffset(0), 16), ip.src, n);
      assert.deepEqual(toHex(b, ipv6DstOffset(0), 16), ip.dst, n);
      assert.deepEqual(ipv6HopLimit(b, 0), ip.hlim, n);
      assert.deepEqual(ipv6PayloadLength(b, 0), ip.payloadLength, n);
      const first = ip.extensions!.length ? EXT_NEXT_HEADER[ip.extensions![0]] : f.proto;
      assert.deepEqual(ipv6NextHeader(b, 0), first, n);
    }
  }
});

Deno.test("fixtures: TCP headers, options, SACK blocks, MSS and checksums match scapy", () => {
  let n = 0;
  for (const f of good) {
    if (!f.tcp) continue;
    n++;
    const { b, info } = classified(f);
    const t = f.tcp;
    const o = info.l4Off;
    const name = f.name;
    assert.deepEqual(tcpSrcPort(b, o), t.sport, name);
    assert.deepEqual(tcpDstPort(b, o), t.dport, name);
    assert.deepEqual(tcpSeq(b, o), t.seq, name);
    assert.deepEqual(tcpAck(b, o), t.ack, name);
    assert.deepEqual(tcpFlags(b, o), t.flags, name);
    assert.deepEqual(tcpHeaderLength(b, o), t.dataofs, name);
    assert.deepEqual(tcpWindow(b, o), t.window, name);
    assert.deepEqual(tcpChecksum(b, o), t.checksum, name);
    assert(tcpOptionsWellFormed(b, o), name);
    const opts: [number, number, number][] = [];
    let p = tcpNextOption(b, o, -1);
    for (; p >= 0; p = tcpNextOption(b, o, p)) opts.push([b[p], p - o, b[p] === 1 ? 1 : b[p + 1]]);
    assert.deepEqual(p, TCPOPT_END, name);
    assert.deepEqual(opts, t.options, `${name}: options`);
    for (const kind of new Set(t.options.map(([k]) => k))) {
      const first = t.options.find(([k]) => k === kind)!;
      assert.deepEqual(tcpFindOption(b, o, kind), o + first[1], `${name}: find ${kind}`);
    }
    if (!t.options.some(([k]) => k === 8)) assert.deepEqual(tcpFindOption(b, o, 8), TCPOPT_END, name);
    assert.deepEqual(tcpMss(b, o), t.mss, `${name}: MSS`);
    const sp = tcpFindOption(b, o, TCPOPT_SACK);
    const sack: [number, number][] = [];
    if (sp >= 0) {
      for (let i = 0; i < (b[sp + 1] - 2) >>> 3; i++) {
        sack.push([be32(b, sp + 2 + i * 8), be32(b, sp + 6 + i * 8)]);
      }
    }
    assert.deepEqual(sack, t.sack, `${name}: SACK`);
    assert.deepEqual(toHex(b, o + info.l4HeaderLen, info.end - o - info.l4HeaderLen), t.payload, name);
    assert.deepEqual(computeTransportChecksum(b, info), t.checksumComputed, `${name}: TCP checksum vs scapy`);
    assert.deepEqual(transportChecksumOk(b, info), t.checksum === t.checksumComputed, name);
  }
  assert(n >= 150, `only ${n} TCP fixtures`);
});

/** A 32-bit big-endian read independent of checksum.ts's read32. */
function be32(b: Uint8Array, at: number): number {
  return new DataView(b.buffer, b.byteOffset).getUint32(at);
}

Deno.test("fixtures: UDP headers and checksums match scapy (zero over IPv4 means none)", () => {
  for (const f of good) {
    if (!f.udp) continue;
    const { b, info } = classified(f);
    const u = f.udp;
    const o = info.l4Off;
    assert.deepEqual(udpSrcPort(b, o), u.sport, f.name);
    assert.deepEqual(udpDstPort(b, o), u.dport, f.name);
    assert.deepEqual(udpLength(b, o), u.len, f.name);
    assert.deepEqual(udpChecksum(b, o), u.checksum, f.name);
    assert.deepEqual(toHex(b, o + 8, info.end - o - 8), u.payload, f.name);
    assert.deepEqual(
      computeTransportChecksum(b, info),
      u.checksumComputed,
      `${f.name}: UDP checksum vs scapy`,
    );
    const none = f.family === 4 && u.checksum === 0;
    assert.deepEqual(transportChecksumOk(b, info), none || u.checksum === u.checksumComputed, f.name);
  }
});

Deno.test("fixtures: ICMP/ICMPv6 headers, checksums and quoted packets match scapy", () => {
  let quotes = 0;
  for (const f of good) {
    if (!f.icmp) continue;
    const { b, info } = classified(f);
    const c = f.icmp;
    const o = info.l4Off;
    assert.deepEqual(icmpType(b, o), c.type, f.name);
    assert.deepEqual(icmpCode(b, o), c.code, f.name);
    if (c.id !== undefined) {
      assert.deepEqual(icmpEchoId(b, o), c.id, f.name);
      assert.deepEqual(icmpEchoSeq(b, o), c.seq, f.name);
    }
    if (c.mtu !== undefined) {
      assert.deepEqual(f.family === 4 ? icmpNextHopMtu(b, o) : icmpv6Mtu(b, o), c.mtu, f.name);
    }
    assert.deepEqual(
      computeTransportChecksum(b, info),
      c.checksumComputed,
      `${f.name}: ICMP checksum vs scapy`,
    );
    assert.deepEqual(transportChecksumOk(b, info), c.checksum === c.checksumComputed, f.name);
    const isError = f.family === 4 ? icmpIsError(c.type) : icmpv6IsError(c.type);
    assert.deepEqual(isError, c.quoted !== undefined, f.name);
    if (!c.quoted) continue;
    quotes++;
    const q = c.quoted;
    const qo = icmpQuotedOffset(o);
    assert.deepEqual(toHex(b, qo, info.end - qo), q.hex, f.name);
    const qi = new PacketInfo();
    const r = classifyPacket(b, qo, info.end - qo, qi, true);
    assert.deepEqual(PACKET_REASON_NAMES[r], q.reason, `${f.name}: quoted reason`);
    if (r !== PACKET_OK) continue;
    assert.deepEqual(qi.family, q.family, f.name);
    assert.deepEqual(qi.l4Off, q.l4Off, f.name);
    assert.deepEqual(qi.l4Proto, q.proto, f.name);
    assert(qi.l4Off + qi.l4HeaderLen <= qi.end && qi.end <= info.end, `${f.name}: quoted bounds`);
    assert.deepEqual(tcpSrcPort(b, qi.l4Off), q.sport, f.name); // same offsets for UDP ports
    assert.deepEqual(tcpDstPort(b, qi.l4Off), q.dport, f.name);
    if (q.proto === 6) assert.deepEqual(tcpSeq(b, qi.l4Off), q.seq, f.name);
    if (q.family === 4) {
      assert.deepEqual([ipv4Src(b, qo), ipv4Dst(b, qo)], [q.src, q.dst], f.name);
    } else {
      assert.deepEqual(
        [toHex(b, ipv6SrcOffset(qo), 16), toHex(b, ipv6DstOffset(qo), 16)],
        [q.src, q.dst],
        f.name,
      );
    }
  }
  assert(quotes >= 20, `only ${quotes} quoting fixtures`);
});

Deno.test("fixtures: quoted packets classified on their own", () => {
  for (const f of FIXTURES.filter((x) => x.quoted)) {
    const { info } = classified(f);
    if (f.quotedL4Off !== undefined) {
      assert.deepEqual(info.l4Off, f.quotedL4Off, f.name);
      assert(info.l4Off + info.l4HeaderLen <= info.end, `${f.name}: quoted header inside the bytes`);
    }
  }
});

Deno.test("fixtures: one flipped bit anywhere in a TCP segment fails its checksum", () => {
  for (const f of good.filter((x) => x.tcp && x.tcp.checksum === x.tcp.checksumComputed).slice(0, 60)) {
    const { b, info } = classified(f);
    for (let i = info.l4Off; i < info.end; i++) {
      b[i] ^= 0x10;
      assert(!transportChecksumOk(b, info), `${f.name}: flip at ${i} unnoticed`);
      b[i] ^= 0x10;
    }
    assert(transportChecksumOk(b, info), f.name);
  }
});
