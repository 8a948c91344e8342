/**
 * Turns an echo request into its reply in place: ICMP echo (RFC 792), ICMPv6 echo (RFC 4443 §4) and UDP
 * echo on any port (RFC 862 names port 7; a TUN only sees what we route into it, so every port is ours).
 *
 * Input is verified here (lengths, header and transport checksums, no fragments, no multicast); anything
 * else is a counted drop. The reply itself is the engine's: `buildEchoReply` (base/packet/reply.ts) reuses
 * the request's bytes with addresses and ports swapped, the type changed and the TTL reset, checksums
 * updated incrementally (RFC 1624).
 *
 * @module
 */

import {
  buildEchoReply,
  finishChecksum,
  ICMP_ECHO_REQUEST,
  ICMPV6_ECHO_REQUEST,
  IPPROTO_ICMP as PROTO_ICMP,
  IPPROTO_ICMPV6 as PROTO_ICMPV6,
  IPPROTO_UDP as PROTO_UDP,
  IPV4_DST,
  IPV4_PROTOCOL,
  IPV4_TOTAL_LENGTH,
  ipv4IsFragment,
  ipv4PseudoHeaderSum,
  IPV6_DST,
  IPV6_EXT_AH,
  IPV6_EXT_DEST_OPTS,
  IPV6_EXT_FRAGMENT,
  IPV6_EXT_HOP_BY_HOP,
  IPV6_EXT_ROUTING,
  IPV6_NEXT_HEADER,
  IPV6_PAYLOAD_LENGTH,
  ipv6PseudoHeaderSum,
  onesComplementSum,
  PacketInfo,
  read16,
  UDP_CHECKSUM,
  UDP_HEADER_LEN,
  UDP_LENGTH,
} from "../../base/packet/mod.ts";

export { REPLY_TTL } from "../../base/packet/mod.ts";

/** Where the validated request's layers are, for the shared reply builder; reused for every packet. */
const info = new PacketInfo();

/** What the echo did with each packet; plain numbers updated in place. */
export interface EchoCounters {
  /** ICMP echo requests answered. */
  icmp4: number;
  /** ICMPv6 echo requests answered. */
  icmp6: number;
  /** UDP/IPv4 datagrams echoed. */
  udp4: number;
  /** UDP/IPv6 datagrams echoed. */
  udp6: number;
  /** Dropped: truncated or inconsistent lengths, unknown IP version. */
  dropMalformed: number;
  /** Dropped: an IPv4 header or transport checksum did not verify. */
  dropChecksum: number;
  /** Dropped: IPv4 fragment or IPv6 extension header (not reassembled here). */
  dropFragment: number;
  /** Dropped: multicast/broadcast destination, which must never be answered with a swapped source. */
  dropMulticast: number;
  /** Dropped: another protocol or ICMP type (e.g. MLD/ND the kernel sends on the TUN). */
  dropUnsupported: number;
}

/** Fresh zeroed counters. */
export function newEchoCounters(): EchoCounters {
  return {
    icmp4: 0,
    icmp6: 0,
    udp4: 0,
    udp6: 0,
    dropMalformed: 0,
    dropChecksum: 0,
    dropFragment: 0,
    dropMulticast: 0,
    dropUnsupported: 0,
  };
}

/** Hands the validated request (IP at 0, transport at `l4`) to the shared echo reply builder. */
function reply(b: Uint8Array, family: number, proto: number, l4: number, l4Len: number): number {
  info.family = family;
  info.ipOff = 0;
  info.l4Off = l4;
  info.l4Proto = proto;
  info.l4Len = l4Len;
  info.l4HeaderLen = UDP_HEADER_LEN; // ICMP and ICMPv6 headers are 8 bytes too
  info.end = l4 + l4Len;
  return buildEchoReply(b, info);
}

/**
 * Rewrites the IP packet `b[0, len)` into its echo reply; returns the reply length (the packet may have
 * had trailing bytes beyond its IP length), or 0 after counting why it was dropped.
 */
export function echoReply(b: Uint8Array, len: number, c: EchoCounters): number {
  if (len < 1) {
    c.dropMalformed++;
    return 0;
  }
  const version = b[0] >>> 4;
  if (version === 4) return echo4(b, len, c);
  if (version === 6) return echo6(b, len, c);
  c.dropMalformed++;
  return 0;
}

function echo4(b: Uint8Array, len: number, c: EchoCounters): number {
  if (len < 20) return drop(c, "dropMalformed");
  const ihl = (b[0] & 0x0f) * 4;
  const total = read16(b, IPV4_TOTAL_LENGTH);
  if (ihl < 20 || total < ihl || total > len) return drop(c, "dropMalformed");
  if (finishChecksum(onesComplementSum(b, 0, ihl)) !== 0) return drop(c, "dropChecksum");
  if (ipv4IsFragment(b, 0)) return drop(c, "dropFragment");
  if (b[IPV4_DST] >= 224) return drop(c, "dropMulticast"); // multicast, reserved, broadcast
  const proto = b[IPV4_PROTOCOL];
  const l4 = ihl;
  const l4Len = total - ihl;
  if (proto === PROTO_ICMP) {
    if (l4Len < 8) return drop(c, "dropMalformed");
    if (finishChecksum(onesComplementSum(b, l4, l4Len)) !== 0) return drop(c, "dropChecksum");
    if (b[l4] !== ICMP_ECHO_REQUEST || b[l4 + 1] !== 0) return drop(c, "dropUnsupported");
    c.icmp4++;
  } else if (proto === PROTO_UDP) {
    if (l4Len < 8 || read16(b, l4 + UDP_LENGTH) !== l4Len) return drop(c, "dropMalformed");
    // A zero UDP checksum over IPv4 means "not computed" (RFC 768) and stays zero in the reply.
    if (read16(b, l4 + UDP_CHECKSUM) !== 0) {
      const sum = onesComplementSum(b, l4, l4Len, ipv4PseudoHeaderSum(b, 0, PROTO_UDP, l4Len));
      if (finishChecksum(sum) !== 0) return drop(c, "dropChecksum");
    }
    c.udp4++;
  } else {
    return drop(c, "dropUnsupported");
  }
  return reply(b, 4, proto, l4, l4Len);
}

function echo6(b: Uint8Array, len: number, c: EchoCounters): number {
  if (len < 40) return drop(c, "dropMalformed");
  const l4Len = read16(b, IPV6_PAYLOAD_LENGTH);
  const total = 40 + l4Len;
  if (total > len) return drop(c, "dropMalformed");
  if (b[IPV6_DST] === 0xff) return drop(c, "dropMulticast");
  const next = b[IPV6_NEXT_HEADER];
  const l4 = 40;
  if (next === PROTO_ICMPV6) {
    if (l4Len < 8) return drop(c, "dropMalformed");
    const sum = onesComplementSum(b, l4, l4Len, ipv6PseudoHeaderSum(b, 0, PROTO_ICMPV6, l4Len));
    if (finishChecksum(sum) !== 0) return drop(c, "dropChecksum");
    if (b[l4] !== ICMPV6_ECHO_REQUEST || b[l4 + 1] !== 0) return drop(c, "dropUnsupported");
    c.icmp6++;
  } else if (next === PROTO_UDP) {
    if (l4Len < 8 || read16(b, l4 + UDP_LENGTH) !== l4Len) return drop(c, "dropMalformed");
    // The UDP checksum is mandatory over IPv6 (RFC 8200 §8.1), so zero is an error, not "absent".
    const sum = onesComplementSum(b, l4, l4Len, ipv6PseudoHeaderSum(b, 0, PROTO_UDP, l4Len));
    if (read16(b, l4 + UDP_CHECKSUM) === 0 || finishChecksum(sum) !== 0) return drop(c, "dropChecksum");
    c.udp6++;
  } else if (
    next === IPV6_EXT_HOP_BY_HOP || next === IPV6_EXT_ROUTING || next === IPV6_EXT_FRAGMENT ||
    next === IPV6_EXT_DEST_OPTS || next === IPV6_EXT_AH
  ) {
    return drop(c, "dropFragment");
  } else {
    return drop(c, "dropUnsupported");
  }
  return reply(b, 6, next, l4, l4Len);
}

type DropKey = "dropMalformed" | "dropChecksum" | "dropFragment" | "dropMulticast" | "dropUnsupported";

function drop(c: EchoCounters, key: DropKey): number {
  c[key]++;
  return 0;
}
