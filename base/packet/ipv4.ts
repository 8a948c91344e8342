/**
 * IPv4 header view (RFC 791): accessors over the packet's bytes, starting at offset `o`.
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * |Version|  IHL  |    DSCP/ECN   |          Total Length         |
 * |         Identification        |Flags|     Fragment Offset     |
 * |  Time to Live |    Protocol   |         Header Checksum       |
 * |                       Source Address                          |
 * |                    Destination Address                        |
 * |                    Options (IHL > 5)                          |
 * ```
 *
 * Setters keep the header checksum right with RFC 1624 updates; the transport checksum, which covers the
 * addresses through the pseudo-header, is the caller's (see `tcpAdjustChecksum32` and friends).
 *
 * @module
 */
import {
  checksumAdjust16,
  finishChecksum,
  onesComplementSum,
  read16,
  read32,
  write16,
  write16Summed,
  write32Summed,
} from "./checksum.ts";

/** Length of an IPv4 header without options. */
export const IPV4_MIN_HEADER_LEN = 20;
/** Offset of the Total Length field. */
export const IPV4_TOTAL_LENGTH = 2;
/** Offset of the Identification field. */
export const IPV4_ID = 4;
/** Offset of the flags and fragment offset word. */
export const IPV4_FRAGMENT = 6;
/** Offset of the TTL field (shares a checksum word with Protocol). */
export const IPV4_TTL = 8;
/** Offset of the Protocol field. */
export const IPV4_PROTOCOL = 9;
/** Offset of the header checksum. */
export const IPV4_CHECKSUM = 10;
/** Offset of the source address. */
export const IPV4_SRC = 12;
/** Offset of the destination address. */
export const IPV4_DST = 16;
/** IP protocol number of ICMP. */
export const IPPROTO_ICMP = 1;
/** IP protocol number of TCP. */
export const IPPROTO_TCP = 6;
/** IP protocol number of UDP. */
export const IPPROTO_UDP = 17;
/** IP protocol number (next header) of ICMPv6. */
export const IPPROTO_ICMPV6 = 58;

/** The IP version nibble (4 or 6) of the packet at `o`. */
export function ipVersion(b: Uint8Array, o: number): number {
  return b[o] >>> 4;
}

/** IPv4 header length in bytes (IHL × 4). */
export function ipv4HeaderLength(b: Uint8Array, o: number): number {
  return (b[o] & 0x0f) << 2;
}

/** The Total Length field: header plus payload, in bytes. */
export function ipv4TotalLength(b: Uint8Array, o: number): number {
  return read16(b, o + IPV4_TOTAL_LENGTH);
}

/** The Identification field. */
export function ipv4Id(b: Uint8Array, o: number): number {
  return read16(b, o + IPV4_ID);
}

/** True when the Don't Fragment flag is set. */
export function ipv4DontFragment(b: Uint8Array, o: number): boolean {
  return (b[o + IPV4_FRAGMENT] & 0x40) !== 0;
}

/** True when the packet is a fragment (More Fragments set or a non-zero fragment offset). */
export function ipv4IsFragment(b: Uint8Array, o: number): boolean {
  return (read16(b, o + IPV4_FRAGMENT) & 0x3fff) !== 0;
}

/** The Time To Live field. */
export function ipv4Ttl(b: Uint8Array, o: number): number {
  return b[o + IPV4_TTL];
}

/** The Protocol field. */
export function ipv4Protocol(b: Uint8Array, o: number): number {
  return b[o + IPV4_PROTOCOL];
}

/** The stored header checksum. */
export function ipv4Checksum(b: Uint8Array, o: number): number {
  return read16(b, o + IPV4_CHECKSUM);
}

/** Source address as an unsigned 32-bit number. */
export function ipv4Src(b: Uint8Array, o: number): number {
  return read32(b, o + IPV4_SRC);
}

/** Destination address as an unsigned 32-bit number. */
export function ipv4Dst(b: Uint8Array, o: number): number {
  return read32(b, o + IPV4_DST);
}

/** Sets the source address and updates the header checksum. */
export function ipv4SetSrc(b: Uint8Array, o: number, addr: number): void {
  write32Summed(b, o + IPV4_SRC, addr, o + IPV4_CHECKSUM);
}

/** Sets the destination address and updates the header checksum. */
export function ipv4SetDst(b: Uint8Array, o: number, addr: number): void {
  write32Summed(b, o + IPV4_DST, addr, o + IPV4_CHECKSUM);
}

/** Sets the Total Length field and updates the header checksum. */
export function ipv4SetTotalLength(b: Uint8Array, o: number, len: number): void {
  write16Summed(b, o + IPV4_TOTAL_LENGTH, len, o + IPV4_CHECKSUM);
}

/** Sets the TTL field and updates the header checksum (TTL shares its 16-bit word with Protocol). */
export function ipv4SetTtl(b: Uint8Array, o: number, ttl: number): void {
  const old = b[o + IPV4_TTL];
  b[o + IPV4_TTL] = ttl;
  // The protocol byte sharing the TTL's 16-bit word is unchanged: adjusting by the TTL's half alone is the
  // same sum (RFC 1624: ~m + m' differs by the TTL's change either way), without reading the word twice.
  write16(b, o + IPV4_CHECKSUM, checksumAdjust16(read16(b, o + IPV4_CHECKSUM), old << 8, (ttl & 0xff) << 8));
}

/** Computes the header checksum from scratch (the stored checksum field counted as zero). */
export function ipv4ComputeChecksum(b: Uint8Array, o: number): number {
  const hl = ipv4HeaderLength(b, o);
  const sum = onesComplementSum(b, o, IPV4_CHECKSUM) + onesComplementSum(b, o + IPV4_SRC, hl - IPV4_SRC);
  return finishChecksum(sum);
}

/** Computes and stores the header checksum. */
export function ipv4FillChecksum(b: Uint8Array, o: number): void {
  write16(b, o + IPV4_CHECKSUM, ipv4ComputeChecksum(b, o));
}

/** True when the stored header checksum verifies. */
export function ipv4ChecksumOk(b: Uint8Array, o: number): boolean {
  return finishChecksum(onesComplementSum(b, o, ipv4HeaderLength(b, o))) === 0;
}

/** Parses dotted-quad text to an unsigned 32-bit address, or -1 when it is not one (control path only). */
export function parseIpv4(text: string): number {
  const parts = text.split(".");
  if (parts.length !== 4) return -1;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return -1;
    const n = Number(p);
    if (n > 255) return -1;
    v = v * 256 + n;
  }
  return v;
}

/** Formats an unsigned 32-bit address as dotted-quad text (control path only). */
export function formatIpv4(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}`;
}
