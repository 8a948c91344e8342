/**
 * Packets the gateway answers with itself, built in the buffer of the packet that caused them (no
 * allocation): a TCP RST (RFC 9293 §3.10.7.1 rules for SEG.SEQ/SEG.ACK), ICMP/ICMPv6 port unreachable
 * quoting the offending packet (RFC 1812 §4.3.2.3, RFC 4443 §2.4), and echo replies (ICMP, ICMPv6, UDP
 * RFC 862) — shared by the engine (its own addresses) and lb/echo (the TUN proof).
 *
 * @module
 */
import { checksumAdjust16, checksumSettleZero, read16, read32, write16, write32 } from "./checksum.ts";
import {
  ICMP_CHECKSUM,
  ICMP_CODE_PORT_UNREACH,
  ICMP_DEST_UNREACH,
  ICMP_ECHO_REPLY,
  icmpSetTypeCode,
} from "./icmp.ts";
import { ICMPV6_CODE_PORT_UNREACH, ICMPV6_DEST_UNREACH, ICMPV6_ECHO_REPLY } from "./icmpv6.ts";
import {
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_CHECKSUM,
  IPV4_DST,
  IPV4_ID,
  IPV4_PROTOCOL,
  IPV4_SRC,
  IPV4_TOTAL_LENGTH,
  IPV4_TTL,
  ipv4FillChecksum,
  ipv4SetTtl,
} from "./ipv4.ts";
import { IPV6_DST, IPV6_HOP_LIMIT, IPV6_NEXT_HEADER, IPV6_PAYLOAD_LENGTH, IPV6_SRC } from "./ipv6.ts";
import { PacketInfo } from "./packet_info.ts";
import {
  TCP_ACK,
  TCP_ACK_NUM,
  TCP_CHECKSUM,
  TCP_DATA_OFFSET,
  TCP_DST_PORT,
  TCP_FIN,
  TCP_FLAGS,
  TCP_MIN_HEADER_LEN,
  TCP_RST,
  TCP_SEQ,
  TCP_SRC_PORT,
  TCP_SYN,
  TCP_URGENT,
  TCP_WINDOW,
  tcpHeaderLength,
} from "./tcp.ts";
import { fillTransportChecksum } from "./transport_checksum.ts";
import { UDP_DST_PORT, UDP_SRC_PORT } from "./udp.ts";

/** TTL / hop limit of generated packets and echo replies, as a fresh host-originated packet would have. */
export const REPLY_TTL = 64;

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
    write16(b, IPV4_TOTAL_LENGTH, 20 + payloadLen);
    write32(b, IPV4_ID, 0x00004000); // id 0, DF
    b[IPV4_TTL] = REPLY_TTL;
    b[IPV4_PROTOCOL] = proto;
    write16(b, IPV4_CHECKSUM, 0);
    write32(b, IPV4_SRC, src);
    write32(b, IPV4_DST, dst);
    ipv4FillChecksum(b, 0);
    return 20;
  }
  for (let i = 0; i < 16; i++) scratchAddr[i] = b[srcFrom + i];
  b.copyWithin(IPV6_DST, dstFrom, dstFrom + 16);
  b.set(scratchAddr, IPV6_SRC);
  write32(b, 0, 0x60000000);
  write16(b, IPV6_PAYLOAD_LENGTH, payloadLen);
  b[IPV6_NEXT_HEADER] = proto;
  b[IPV6_HOP_LIMIT] = REPLY_TTL;
  return 40;
}

/**
 * Rewrites the TCP segment described by `info` into the RST that answers it, addressed back to its sender.
 * Returns the new packet length, or 0 when the segment is itself a RST (never answered).
 */
export function buildTcpRst(b: Uint8Array, info: PacketInfo): number {
  const o = info.l4Off;
  const flags = b[o + TCP_FLAGS];
  if (flags & TCP_RST) return 0;
  const sport = read16(b, o + TCP_SRC_PORT);
  const dport = read16(b, o + TCP_DST_PORT);
  const seq = read32(b, o + TCP_SEQ);
  const ack = read32(b, o + TCP_ACK_NUM);
  const segLen = info.l4Len - tcpHeaderLength(b, o) + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0);
  const fam = info.family;
  const ip = info.ipOff;
  // Addresses move to their new places first (src from the old dst and vice versa), then the TCP header.
  const hl = fam === 4
    ? writeIpHeader(b, 4, IPPROTO_TCP, TCP_MIN_HEADER_LEN, ip + IPV4_DST, ip + IPV4_SRC)
    : writeIpHeader(b, 6, IPPROTO_TCP, TCP_MIN_HEADER_LEN, ip + IPV6_DST, ip + IPV6_SRC);
  write16(b, hl + TCP_SRC_PORT, dport);
  write16(b, hl + TCP_DST_PORT, sport);
  if (flags & TCP_ACK) {
    write32(b, hl + TCP_SEQ, ack);
    write32(b, hl + TCP_ACK_NUM, 0);
    b[hl + TCP_FLAGS] = TCP_RST;
  } else {
    write32(b, hl + TCP_SEQ, 0);
    write32(b, hl + TCP_ACK_NUM, (seq + segLen) >>> 0);
    b[hl + TCP_FLAGS] = TCP_RST | TCP_ACK;
  }
  b[hl + TCP_DATA_OFFSET] = (TCP_MIN_HEADER_LEN >>> 2) << 4;
  write16(b, hl + TCP_WINDOW, 0);
  write16(b, hl + TCP_CHECKSUM, 0);
  write16(b, hl + TCP_URGENT, 0);
  fillBuiltChecksum(b, fam, hl, IPPROTO_TCP, TCP_MIN_HEADER_LEN, TCP_MIN_HEADER_LEN);
  return hl + TCP_MIN_HEADER_LEN;
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
    ? writeIpHeader(b, 4, proto, 8 + quote, hdr + IPV4_DST, hdr + IPV4_SRC)
    : writeIpHeader(b, 6, proto, 8 + quote, hdr + IPV6_DST, hdr + IPV6_SRC);
  b[ipLen] = fam === 4 ? ICMP_DEST_UNREACH : ICMPV6_DEST_UNREACH;
  b[ipLen + 1] = fam === 4 ? ICMP_CODE_PORT_UNREACH : ICMPV6_CODE_PORT_UNREACH;
  write16(b, ipLen + ICMP_CHECKSUM, 0);
  write32(b, ipLen + ICMP_CHECKSUM + 2, 0); // unused (or the next-hop MTU) word
  fillBuiltChecksum(b, fam, ipLen, proto, 8 + quote, 8);
  return hdr + quote;
}

/** Swaps `b[x, x+n)` and `b[y, y+n)` in place. */
function swapBytes(b: Uint8Array, x: number, y: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const t = b[x + i];
    b[x + i] = b[y + i];
    b[y + i] = t;
  }
}

/**
 * Turns an echo request into its reply in place: ICMP echo (IPv4 type 8), ICMPv6 echo (type 128) or a UDP
 * datagram (RFC 862, ports swapped). Addresses and ports are swapped, which leaves every checksum sum
 * unchanged; the type change and the IPv4 TTL reset take RFC 1624 updates; the hop limit has no checksum.
 * The request must be validated already. Returns the packet's length (IP length).
 */
export function buildEchoReply(b: Uint8Array, info: PacketInfo): number {
  const ip = info.ipOff;
  const o = info.l4Off;
  if (info.l4Proto === IPPROTO_UDP) swapBytes(b, o + UDP_SRC_PORT, o + UDP_DST_PORT, 2);
  if (info.family === 4) {
    swapBytes(b, ip + IPV4_SRC, ip + IPV4_DST, 4);
    ipv4SetTtl(b, ip, REPLY_TTL);
    if (info.l4Proto === IPPROTO_ICMP) {
      icmpSetTypeCode(b, o, ICMP_ECHO_REPLY, 0);
      // Type 0 can leave every word zero (id 0, seq 0, no data): then the checksum is 0xffff.
      write16(b, o + ICMP_CHECKSUM, checksumSettleZero(read16(b, o + ICMP_CHECKSUM), b, o, info.l4Len));
    }
  } else {
    swapBytes(b, ip + IPV6_SRC, ip + IPV6_DST, 16);
    b[ip + IPV6_HOP_LIMIT] = REPLY_TTL;
    if (info.l4Proto === IPPROTO_ICMPV6) {
      const old = read16(b, o);
      b[o] = ICMPV6_ECHO_REPLY;
      b[o + 1] = 0;
      write16(b, o + ICMP_CHECKSUM, checksumAdjust16(read16(b, o + ICMP_CHECKSUM), old, read16(b, o)));
    }
  }
  return info.end;
}

/**
 * Builds a whole TCP segment at `b[0]` from address words (the gateway's own segments: a SYN cookie's
 * SYN+ACK, the SYN proxy's SYN and ACK toward a server, a connection's RSTs): IPv4 (DF, TTL 64) or IPv6, the
 * ports, numbers, flags and window given, `optLen` bytes of options from `opts` (a multiple of 4) and no
 * payload, with complete checksums. `src`/`dst` hold the addresses at word offsets `so`/`dOff` (IPv4: one
 * word). Returns the packet's length.
 */
export function buildTcpSegment(
  b: Uint8Array,
  family: number,
  src: Uint32Array,
  so: number,
  dst: Uint32Array,
  dOff: number,
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  flags: number,
  window: number,
  opts: Uint8Array,
  optLen: number,
): number {
  const tcpLen = TCP_MIN_HEADER_LEN + optLen;
  let hl: number;
  if (family === 4) {
    hl = 20;
    b[0] = 0x45;
    b[1] = 0;
    write16(b, IPV4_TOTAL_LENGTH, hl + tcpLen);
    write32(b, IPV4_ID, 0x00004000); // id 0, DF
    b[IPV4_TTL] = REPLY_TTL;
    b[IPV4_PROTOCOL] = IPPROTO_TCP;
    write16(b, IPV4_CHECKSUM, 0);
    write32(b, IPV4_SRC, src[so]);
    write32(b, IPV4_DST, dst[dOff]);
    ipv4FillChecksum(b, 0);
  } else {
    hl = 40;
    write32(b, 0, 0x60000000);
    write16(b, IPV6_PAYLOAD_LENGTH, tcpLen);
    b[IPV6_NEXT_HEADER] = IPPROTO_TCP;
    b[IPV6_HOP_LIMIT] = REPLY_TTL;
    for (let k = 0; k < 4; k++) {
      write32(b, IPV6_SRC + k * 4, src[so + k]);
      write32(b, IPV6_DST + k * 4, dst[dOff + k]);
    }
  }
  write16(b, hl + TCP_SRC_PORT, sport);
  write16(b, hl + TCP_DST_PORT, dport);
  write32(b, hl + TCP_SEQ, seq >>> 0);
  write32(b, hl + TCP_ACK_NUM, ack >>> 0);
  b[hl + TCP_DATA_OFFSET] = (tcpLen >>> 2) << 4;
  b[hl + TCP_FLAGS] = flags;
  write16(b, hl + TCP_WINDOW, window);
  write16(b, hl + TCP_CHECKSUM, 0);
  write16(b, hl + TCP_URGENT, 0);
  for (let i = 0; i < optLen; i++) b[hl + TCP_MIN_HEADER_LEN + i] = opts[i];
  fillBuiltChecksum(b, family, hl, IPPROTO_TCP, tcpLen, tcpLen);
  return hl + tcpLen;
}
