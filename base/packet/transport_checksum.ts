/**
 * Full transport checksums for a classified packet: TCP, UDP and ICMPv6 with the v4/v6 pseudo-header,
 * ICMPv4 without. Used where a packet is built or its whole payload changes, and by tests to verify
 * rewrites; the fast path uses the incremental updates instead.
 *
 * @module
 */
import {
  finishChecksum,
  ipv4PseudoHeaderSum,
  ipv6PseudoHeaderSum,
  onesComplementSum,
  write16,
} from "./checksum.ts";
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from "./ipv4.ts";
import type { PacketInfo } from "./packet_info.ts";
import { ICMP_CHECKSUM } from "./icmp.ts";
import { TCP_CHECKSUM } from "./tcp.ts";
import { UDP_CHECKSUM } from "./udp.ts";

/** Offset of the checksum field within the transport header, or -1 for a protocol without one we know. */
export function transportChecksumFieldOffset(proto: number): number {
  switch (proto) {
    case IPPROTO_TCP:
      return TCP_CHECKSUM;
    case IPPROTO_UDP:
      return UDP_CHECKSUM;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
      return ICMP_CHECKSUM;
  }
  return -1;
}

/** Unfolded sum of the pseudo-header (none for ICMPv4) and every byte of the transport segment. */
function segmentSum(b: Uint8Array, info: PacketInfo): number {
  let sum = onesComplementSum(b, info.l4Off, info.l4Len);
  if (info.l4Proto !== IPPROTO_ICMP) {
    sum += info.family === 4
      ? ipv4PseudoHeaderSum(b, info.ipOff, info.l4Proto, info.l4Len)
      : ipv6PseudoHeaderSum(b, info.ipOff, info.l4Proto, info.l4Len);
  }
  return sum;
}

/** Computes the transport checksum from scratch (with the stored field counted as zero). */
export function computeTransportChecksum(b: Uint8Array, info: PacketInfo): number {
  const f = info.l4Off + transportChecksumFieldOffset(info.l4Proto);
  const sum = segmentSum(b, info) - ((b[f] << 8) | b[f + 1]);
  const c = finishChecksum(sum);
  return c === 0 && info.l4Proto === IPPROTO_UDP ? 0xffff : c;
}

/** Computes and stores the transport checksum. */
export function fillTransportChecksum(b: Uint8Array, info: PacketInfo): void {
  write16(b, info.l4Off + transportChecksumFieldOffset(info.l4Proto), computeTransportChecksum(b, info));
}

/** True when the stored transport checksum verifies (a zero UDP-over-IPv4 checksum means none and passes). */
export function transportChecksumOk(b: Uint8Array, info: PacketInfo): boolean {
  const f = info.l4Off + transportChecksumFieldOffset(info.l4Proto);
  if (info.l4Proto === IPPROTO_UDP && info.family === 4 && b[f] === 0 && b[f + 1] === 0) return true;
  return finishChecksum(segmentSum(b, info)) === 0;
}
