/**
 * Packets the gateway answers with itself, built in the buffer of the packet that caused them (no
 * allocation): a TCP RST (RFC 9293 §3.10.7.1 rules for SEG.SEQ/SEG.ACK), ICMP/ICMPv6 port unreachable
 * quoting the offending packet (RFC 1812 §4.3.2.3, RFC 4443 §2.4), and echo replies for the gateway's own
 * addresses.
 *
 * @module
 */
import { read16, read32, write16, write32 } from "../../base/packet/checksum.ts";
import { ICMP_CODE_PORT_UNREACH, ICMP_DEST_UNREACH, icmpSetTypeCode } from "../../base/packet/icmp.ts";
import {
  ICMPV6_CODE_PORT_UNREACH,
  ICMPV6_DEST_UNREACH,
  ICMPV6_ECHO_REPLY,
} from "../../base/packet/icmpv6.ts";
import {
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  ipv4FillChecksum,
  ipv4SetTtl,
} from "../../base/packet/ipv4.ts";
import { PacketInfo } from "../../base/packet/packet_info.ts";
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "../../base/packet/tcp.ts";
import { checksumAdjust16 } from "../../base/packet/checksum.ts";
import { fillTransportChecksum } from "../../base/packet/transport_checksum.ts";

const scratchInfo = new PacketInfo();
const scratchAddr = new Uint8Array(16);

/** Computes the transport checksum of a packet built at offset 0 with its transport header at `l4Off`. */
function fillBuiltChecksum(
  b: Uint8Array,
  family: number,
  l4Off: number,
  proto: number,
  l4Len: number,
  l4HeaderLen: number,
): void {
  scratchInfo.family = family;
  scratchInfo.ipOff = 0;
  scratchInfo.l4Off = l4Off;
  scratchInfo.l4Proto = proto;
  scratchInfo.l4Len = l4Len;
  scratchInfo.l4HeaderLen = l4HeaderLen;
  scratchInfo.end = l4Off + l4Len;
  fillTransportChecksum(b, scratchInfo);
}

/** Writes a fresh IP header at 0: IPv4 (20 bytes) or IPv6 (40) with the given addresses copied from `b`. */
function writeIpHeader(
  b: Uint8Array,
  family: number,
  proto: number,
  payloadLen: number,
  srcFrom: number,
  dstFrom: number,
): number {
  if (family === 4) {
    const src = read32(b, srcFrom);
    const dst = read32(b, dstFrom);
    b[0] = 0x45;
    b[1] = 0;
    write16(b, 2, 20 + payloadLen);
    write32(b, 4, 0x00004000); // id 0, DF
    b[8] = 64;
    b[9] = proto;
    write16(b, 10, 0);
    write32(b, 12, src);
    write32(b, 16, dst);
    ipv4FillChecksum(b, 0);
    return 20;
  }
  for (let i = 0; i < 16; i++) scratchAddr[i] = b[srcFrom + i];
  b.copyWithin(24, dstFrom, dstFrom + 16);
  b.set(scratchAddr, 8);
  write32(b, 0, 0x60000000);
  write16(b, 4, payloadLen);
  b[6] = proto;
  b[7] = 64;
  return 40;
}

/**
 * Rewrites the TCP segment described by `info` into the RST that answers it, addressed back to its sender.
 * Returns the new packet length, or 0 when the segment is itself a RST (never answered).
 */
export function buildTcpRst(b: Uint8Array, info: PacketInfo): number {
  const o = info.l4Off;
  const flags = b[o + 13];
  if (flags & TCP_RST) return 0;
  const sport = read16(b, o);
  const dport = read16(b, o + 2);
  const seq = read32(b, o + 4);
  const ack = read32(b, o + 8);
  const segLen = info.l4Len - ((b[o + 12] >>> 4) << 2) + (flags & TCP_SYN ? 1 : 0) +
    (flags & TCP_FIN ? 1 : 0);
  const fam = info.family;
  const ip = info.ipOff;
  // Addresses move to their new places first (src from the old dst and vice versa), then the TCP header.
  let hl: number;
  if (fam === 4) {
    hl = writeIpHeader(b, 4, IPPROTO_TCP, 20, ip + 16, ip + 12);
  } else {
    hl = writeIpHeader(b, 6, IPPROTO_TCP, 20, ip + 24, ip + 8);
  }
  write16(b, hl, dport);
  write16(b, hl + 2, sport);
  if (flags & TCP_ACK) {
    write32(b, hl + 4, ack);
    write32(b, hl + 8, 0);
    b[hl + 13] = TCP_RST;
  } else {
    write32(b, hl + 4, 0);
    write32(b, hl + 8, (seq + segLen) >>> 0);
    b[hl + 13] = TCP_RST | TCP_ACK;
  }
  b[hl + 12] = 5 << 4;
  write16(b, hl + 14, 0);
  write16(b, hl + 16, 0);
  write16(b, hl + 18, 0);
  fillBuiltChecksum(b, fam, hl, IPPROTO_TCP, 20, 20);
  return hl + 20;
}

/** Most bytes of the offending packet an IPv4 ICMP error quotes (576-byte message, RFC 1812). */
const QUOTE_MAX_V4 = 576 - 28;
/** Most bytes an ICMPv6 error quotes (1280-byte minimum MTU, RFC 4443). */
const QUOTE_MAX_V6 = 1280 - 48;

/**
 * Replaces the packet `b[0, len)` (IP at `info.ipOff`) with an ICMP (IPv4) or ICMPv6 port-unreachable
 * error quoting it, sent back to its source. Returns the new length, or 0 when `b` has no room.
 */
export function buildPortUnreachable(b: Uint8Array, info: PacketInfo, len: number): number {
  const fam = info.family;
  const hdr = fam === 4 ? 28 : 48;
  const quote = Math.min(len - info.ipOff, fam === 4 ? QUOTE_MAX_V4 : QUOTE_MAX_V6);
  if (hdr + quote > b.length) return 0;
  b.copyWithin(hdr, info.ipOff, info.ipOff + quote);
  const proto = fam === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
  const ipLen = fam === 4
    ? writeIpHeader(b, 4, proto, 8 + quote, hdr + 16, hdr + 12)
    : writeIpHeader(b, 6, proto, 8 + quote, hdr + 24, hdr + 8);
  b[ipLen] = fam === 4 ? ICMP_DEST_UNREACH : ICMPV6_DEST_UNREACH;
  b[ipLen + 1] = fam === 4 ? ICMP_CODE_PORT_UNREACH : ICMPV6_CODE_PORT_UNREACH;
  write16(b, ipLen + 2, 0);
  write32(b, ipLen + 4, 0);
  fillBuiltChecksum(b, fam, ipLen, proto, 8 + quote, 8);
  return hdr + quote;
}

/**
 * Turns an ICMP echo request (IPv4 type 8, IPv6 type 128) into its reply in place: addresses swapped
 * (which leaves every checksum sum unchanged), type changed with an RFC 1624 update, TTL reset.
 * Returns the packet's length (IP length).
 */
export function buildEchoReply(b: Uint8Array, info: PacketInfo): number {
  const ip = info.ipOff;
  const o = info.l4Off;
  if (info.family === 4) {
    for (let i = 0; i < 4; i++) {
      const t = b[ip + 12 + i];
      b[ip + 12 + i] = b[ip + 16 + i];
      b[ip + 16 + i] = t;
    }
    ipv4SetTtl(b, ip, 64);
    icmpSetTypeCode(b, o, 0, 0);
  } else {
    for (let i = 0; i < 16; i++) {
      const t = b[ip + 8 + i];
      b[ip + 8 + i] = b[ip + 24 + i];
      b[ip + 24 + i] = t;
    }
    b[ip + 7] = 64;
    const old = read16(b, o);
    b[o] = ICMPV6_ECHO_REPLY;
    b[o + 1] = 0;
    write16(b, o + 2, checksumAdjust16(read16(b, o + 2), old, read16(b, o)));
  }
  return info.end;
}
