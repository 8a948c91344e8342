/**
 * ICMPv6 view (RFC 4443). The layout of the first 8 bytes matches ICMPv4; error messages quote as much of
 * the offending packet as fits in the minimum MTU, from offset 8. Unlike ICMPv4 the checksum covers an IPv6
 * pseudo-header, so address rewrites must be carried into it.
 *
 * @module
 */
import { read16 } from "./checksum.ts";

/** Destination unreachable type. */
export const ICMPV6_DEST_UNREACH = 1;
/** Packet too big type (path-MTU discovery). */
export const ICMPV6_PACKET_TOO_BIG = 2;
/** Time exceeded type. */
export const ICMPV6_TIME_EXCEEDED = 3;
/** Parameter problem type. */
export const ICMPV6_PARAM_PROBLEM = 4;
/** Echo request type. */
export const ICMPV6_ECHO_REQUEST = 128;
/** Echo reply type. */
export const ICMPV6_ECHO_REPLY = 129;
/** Destination unreachable code: port unreachable. */
export const ICMPV6_CODE_PORT_UNREACH = 4;

/** True for the error types (1–127) that quote an offending packet. */
export function icmpv6IsError(type: number): boolean {
  return type >= 1 && type <= 4;
}

/** The MTU field of a Packet Too Big message. */
export function icmpv6Mtu(b: Uint8Array, o: number): number {
  return (read16(b, o + 4) * 0x10000) + read16(b, o + 6);
}
