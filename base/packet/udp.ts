/**
 * UDP header view (RFC 768).
 *
 * ```
 * |          Source Port          |       Destination Port        |
 * |            Length             |           Checksum            |
 * ```
 *
 * Over IPv4 a zero checksum means "none" and must stay zero through rewrites; a computed zero is sent as
 * 0xffff (RFC 768). Over IPv6 the checksum is mandatory.
 *
 * @module
 */
import { checksumAdjust16, checksumAdjust32, read16, write16 } from "./checksum.ts";
import { applySumDelta } from "./ipv6.ts";

/** Length of the UDP header. */
export const UDP_HEADER_LEN = 8;

/** Source port. */
export function udpSrcPort(b: Uint8Array, o: number): number {
  return read16(b, o);
}

/** Destination port. */
export function udpDstPort(b: Uint8Array, o: number): number {
  return read16(b, o + 2);
}

/** The Length field: header plus payload. */
export function udpLength(b: Uint8Array, o: number): number {
  return read16(b, o + 4);
}

/** Stored checksum (0 over IPv4: none). */
export function udpChecksum(b: Uint8Array, o: number): number {
  return read16(b, o + 6);
}

/** Stores an updated checksum unless the datagram carries none; a result of 0 is sent as 0xffff. */
function storeAdjusted(b: Uint8Array, o: number, csum: number): void {
  write16(b, o + 6, csum === 0 ? 0xffff : csum);
}

/** Sets the source port, updating a present checksum. */
export function udpSetSrcPort(b: Uint8Array, o: number, port: number): void {
  const c = read16(b, o + 6);
  if (c !== 0) storeAdjusted(b, o, checksumAdjust16(c, read16(b, o), port));
  write16(b, o, port);
}

/** Sets the destination port, updating a present checksum. */
export function udpSetDstPort(b: Uint8Array, o: number, port: number): void {
  const c = read16(b, o + 6);
  if (c !== 0) storeAdjusted(b, o, checksumAdjust16(c, read16(b, o + 2), port));
  write16(b, o + 2, port);
}

/** Carries a 32-bit pseudo-header change (an IPv4 address) into a present checksum. */
export function udpAdjustChecksum32(b: Uint8Array, o: number, oldVal: number, newVal: number): void {
  const c = read16(b, o + 6);
  if (c !== 0) storeAdjusted(b, o, checksumAdjust32(c, oldVal, newVal));
}

/** Carries an unfolded sum delta (an IPv6 address change) into the checksum. */
export function udpApplySumDelta(b: Uint8Array, o: number, delta: number): void {
  const c = read16(b, o + 6);
  if (c !== 0) storeAdjusted(b, o, applySumDelta(c, delta));
}
