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
import { applyUdpSumDelta, checksumDelta16, checksumDelta32, read16, write16 } from "./checksum.ts";

/** Length of the UDP header. */
export const UDP_HEADER_LEN = 8;

/** Offset of the source port. */
export const UDP_SRC_PORT = 0;
/** Offset of the destination port. */
export const UDP_DST_PORT = 2;
/** Offset of the Length field. */
export const UDP_LENGTH = 4;
/** Offset of the checksum. */
export const UDP_CHECKSUM = 6;

/** Source port. */
export function udpSrcPort(b: Uint8Array, o: number): number {
  return read16(b, o + UDP_SRC_PORT);
}

/** Destination port. */
export function udpDstPort(b: Uint8Array, o: number): number {
  return read16(b, o + UDP_DST_PORT);
}

/** The Length field: header plus payload. */
export function udpLength(b: Uint8Array, o: number): number {
  return read16(b, o + UDP_LENGTH);
}

/** Stored checksum (0 over IPv4: none). */
export function udpChecksum(b: Uint8Array, o: number): number {
  return read16(b, o + UDP_CHECKSUM);
}

/** Sets the source port, updating a present checksum. */
export function udpSetSrcPort(b: Uint8Array, o: number, port: number): void {
  udpApplyDelta(b, o, checksumDelta16(read16(b, o + UDP_SRC_PORT), port));
  write16(b, o + UDP_SRC_PORT, port);
}

/** Sets the destination port, updating a present checksum. */
export function udpSetDstPort(b: Uint8Array, o: number, port: number): void {
  udpApplyDelta(b, o, checksumDelta16(read16(b, o + UDP_DST_PORT), port));
  write16(b, o + UDP_DST_PORT, port);
}

/** Carries a 32-bit pseudo-header change (an IPv4 address) into a present checksum. */
export function udpAdjustChecksum32(b: Uint8Array, o: number, oldVal: number, newVal: number): void {
  udpApplyDelta(b, o, checksumDelta32(oldVal, newVal));
}

/** Applies a delta under the UDP zero rules ({@link applyUdpSumDelta}). */
function udpApplyDelta(b: Uint8Array, o: number, delta: number): void {
  write16(b, o + UDP_CHECKSUM, applyUdpSumDelta(read16(b, o + UDP_CHECKSUM), delta));
}
