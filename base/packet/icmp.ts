/**
 * ICMPv4 view (RFC 792): type, code, checksum, echo identifier/sequence, and the header quoted inside error
 * messages (the offending IP header plus at least 8 bytes of its payload, starting at offset 8).
 *
 * ```
 * |     Type      |     Code      |          Checksum             |
 * |     Identifier (echo)  /  unused, next-hop MTU (type 3 code 4) |
 * |     Quoted IP header + first bytes of its payload (errors)    |
 * ```
 *
 * The ICMPv4 checksum covers the ICMP message only (no pseudo-header).
 *
 * @module
 */
import { checksumAdjust16, read16, write16 } from "./checksum.ts";

/** Offset of the checksum (ICMPv6 has it at the same place). */
export const ICMP_CHECKSUM = 2;
/** ICMP header length (type, code, checksum, 4 bytes of rest-of-header). */
export const ICMP_HEADER_LEN = 8;
/** Echo reply type. */
export const ICMP_ECHO_REPLY = 0;
/** Destination unreachable type. */
export const ICMP_DEST_UNREACH = 3;
/** Redirect type. */
export const ICMP_REDIRECT = 5;
/** Echo request type. */
export const ICMP_ECHO_REQUEST = 8;
/** Time exceeded type. */
export const ICMP_TIME_EXCEEDED = 11;
/** Parameter problem type. */
export const ICMP_PARAM_PROBLEM = 12;
/** Destination unreachable code: port unreachable. */
export const ICMP_CODE_PORT_UNREACH = 3;
/** Destination unreachable code: fragmentation needed and DF set (path-MTU discovery). */
export const ICMP_CODE_FRAG_NEEDED = 4;

/** Message type. */
export function icmpType(b: Uint8Array, o: number): number {
  return b[o];
}

/** Message code. */
export function icmpCode(b: Uint8Array, o: number): number {
  return b[o + 1];
}

/** Stored checksum. */
export function icmpChecksum(b: Uint8Array, o: number): number {
  return read16(b, o + ICMP_CHECKSUM);
}

/** Echo identifier. */
export function icmpEchoId(b: Uint8Array, o: number): number {
  return read16(b, o + 4);
}

/** Echo sequence number. */
export function icmpEchoSeq(b: Uint8Array, o: number): number {
  return read16(b, o + 6);
}

/** Next-hop MTU of a "fragmentation needed" message (RFC 1191). */
export function icmpNextHopMtu(b: Uint8Array, o: number): number {
  return read16(b, o + 6);
}

/** True for the error types that quote an offending packet: unreachable, redirect, time exceeded, parameter problem. */
export function icmpIsError(type: number): boolean {
  return type === ICMP_DEST_UNREACH || type === ICMP_TIME_EXCEEDED || type === ICMP_PARAM_PROBLEM ||
    type === ICMP_REDIRECT || type === 4;
}

/** Offset of the quoted IP header inside an error message. */
export function icmpQuotedOffset(o: number): number {
  return o + ICMP_HEADER_LEN;
}

/** Sets type and code together (one checksum word), updating the checksum. */
export function icmpSetTypeCode(b: Uint8Array, o: number, type: number, code: number): void {
  const nw = (type << 8) | code;
  write16(b, o + ICMP_CHECKSUM, checksumAdjust16(read16(b, o + ICMP_CHECKSUM), read16(b, o), nw));
  write16(b, o, nw);
}
