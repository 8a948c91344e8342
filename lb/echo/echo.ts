/**
 * Turns an echo request into its reply in place: ICMP echo (RFC 792), ICMPv6 echo (RFC 4443 §4) and UDP
 * echo on any port (RFC 862 names port 7; a TUN only sees what we route into it, so every port is ours).
 *
 * The reply reuses the request's bytes: addresses swapped, ports swapped (UDP), type changed (ICMP), TTL /
 * hop limit reset. Checksums follow incrementally (RFC 1624): swapping two fields of a ones-complement sum
 * leaves it unchanged, so only the ICMP type word and the IPv4 TTL word need an adjustment.
 *
 * Input is verified first (lengths, header and transport checksums); anything else is a counted drop.
 *
 * @module
 */

import {
  checksumAdjust16,
  finishChecksum,
  ipv4PseudoHeaderSum,
  ipv6PseudoHeaderSum,
  onesComplementSum,
} from "../../base/packet/mod.ts";

/** TTL / hop limit of replies, as a fresh host-originated packet would have. */
export const REPLY_TTL = 64;

const PROTO_ICMP = 1;
const PROTO_UDP = 17;
const PROTO_ICMPV6 = 58;

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

function rd16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

function wr16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}

/** Swaps `b[x, x+n)` and `b[y, y+n)` without a temporary buffer. */
function swapBytes(b: Uint8Array, x: number, y: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const t = b[x + i];
    b[x + i] = b[y + i];
    b[y + i] = t;
  }
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
  const total = rd16(b, 2);
  if (ihl < 20 || total < ihl || total > len) return drop(c, "dropMalformed");
  if (finishChecksum(onesComplementSum(b, 0, ihl)) !== 0) return drop(c, "dropChecksum");
  if ((rd16(b, 6) & 0x3fff) !== 0) return drop(c, "dropFragment"); // MF set or offset > 0
  if (b[16] >= 224 || (b[16] === 255 && b[19] === 255)) return drop(c, "dropMulticast");
  const proto = b[9];
  const l4 = ihl;
  const l4Len = total - ihl;
  if (proto === PROTO_ICMP) {
    if (l4Len < 8) return drop(c, "dropMalformed");
    if (finishChecksum(onesComplementSum(b, l4, l4Len)) !== 0) return drop(c, "dropChecksum");
    if (b[l4] !== 8 || b[l4 + 1] !== 0) return drop(c, "dropUnsupported");
    const oldWord = rd16(b, l4);
    b[l4] = 0; // echo reply
    wr16(b, l4 + 2, checksumAdjust16(rd16(b, l4 + 2), oldWord, rd16(b, l4)));
    c.icmp4++;
  } else if (proto === PROTO_UDP) {
    if (l4Len < 8 || rd16(b, l4 + 4) !== l4Len) return drop(c, "dropMalformed");
    // A zero UDP checksum over IPv4 means "not computed" (RFC 768) and stays zero in the reply.
    if (rd16(b, l4 + 6) !== 0) {
      const sum = onesComplementSum(b, l4, l4Len, ipv4PseudoHeaderSum(b, 0, PROTO_UDP, l4Len));
      if (finishChecksum(sum) !== 0) return drop(c, "dropChecksum");
    }
    swapBytes(b, l4, l4 + 2, 2); // ports; the UDP sum is unchanged by a swap
    c.udp4++;
  } else {
    return drop(c, "dropUnsupported");
  }
  swapBytes(b, 12, 16, 4); // addresses; header and pseudo-header sums are unchanged by a swap
  const oldTtlWord = rd16(b, 8);
  b[8] = REPLY_TTL;
  wr16(b, 10, checksumAdjust16(rd16(b, 10), oldTtlWord, rd16(b, 8)));
  return total;
}

function echo6(b: Uint8Array, len: number, c: EchoCounters): number {
  if (len < 40) return drop(c, "dropMalformed");
  const l4Len = rd16(b, 4);
  const total = 40 + l4Len;
  if (total > len) return drop(c, "dropMalformed");
  if (b[24] === 0xff) return drop(c, "dropMulticast");
  const next = b[6];
  const l4 = 40;
  if (next === PROTO_ICMPV6) {
    if (l4Len < 8) return drop(c, "dropMalformed");
    const sum = onesComplementSum(b, l4, l4Len, ipv6PseudoHeaderSum(b, 0, PROTO_ICMPV6, l4Len));
    if (finishChecksum(sum) !== 0) return drop(c, "dropChecksum");
    if (b[l4] !== 128 || b[l4 + 1] !== 0) return drop(c, "dropUnsupported");
    const oldWord = rd16(b, l4);
    b[l4] = 129; // echo reply
    wr16(b, l4 + 2, checksumAdjust16(rd16(b, l4 + 2), oldWord, rd16(b, l4)));
    c.icmp6++;
  } else if (next === PROTO_UDP) {
    if (l4Len < 8 || rd16(b, l4 + 4) !== l4Len) return drop(c, "dropMalformed");
    // The UDP checksum is mandatory over IPv6 (RFC 8200 §8.1), so zero is an error, not "absent".
    const sum = onesComplementSum(b, l4, l4Len, ipv6PseudoHeaderSum(b, 0, PROTO_UDP, l4Len));
    if (rd16(b, l4 + 6) === 0 || finishChecksum(sum) !== 0) return drop(c, "dropChecksum");
    swapBytes(b, l4, l4 + 2, 2);
    c.udp6++;
  } else if (next === 0 || next === 43 || next === 44 || next === 60 || next === 51) {
    return drop(c, "dropFragment");
  } else {
    return drop(c, "dropUnsupported");
  }
  swapBytes(b, 8, 24, 16);
  b[7] = REPLY_TTL; // hop limit: not covered by any checksum
  return total;
}

type DropKey = "dropMalformed" | "dropChecksum" | "dropFragment" | "dropMulticast" | "dropUnsupported";

function drop(c: EchoCounters, key: DropKey): number {
  c[key]++;
  return 0;
}
