/**
 * The result of classifying one packet: offsets into its bytes, filled in place by `classifyPacket`.
 * One instance is kept per worker and reused for every packet, so parsing allocates nothing.
 *
 * @module
 */

/** Where the layers of one packet start, as found by `classifyPacket`; valid only after it returned OK. */
export class PacketInfo {
  /** IP version: 4 or 6. */
  family = 0;
  /** Offset of the IP header in the buffer. */
  ipOff = 0;
  /** Offset of the transport (L4) header: past IPv4 options or IPv6 extension headers. */
  l4Off = 0;
  /** Transport protocol number (IPPROTO_*). */
  l4Proto = 0;
  /** Bytes of transport header plus payload, as the IP length fields state. */
  l4Len = 0;
  /** Transport header length: TCP data offset in bytes, 8 for UDP, ICMP and ICMPv6. */
  l4HeaderLen = 0;
  /** Offset one past the last byte the IP length covers. */
  end = 0;

  /** Copies every field from `other` (used to save the outer packet while a quoted one is parsed). */
  copyFrom(other: PacketInfo): void {
    this.family = other.family;
    this.ipOff = other.ipOff;
    this.l4Off = other.l4Off;
    this.l4Proto = other.l4Proto;
    this.l4Len = other.l4Len;
    this.l4HeaderLen = other.l4HeaderLen;
    this.end = other.end;
  }
}
