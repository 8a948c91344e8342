/**
 * The packet validator: one pass over an IP packet that either fills a {@link PacketInfo} with the offsets of
 * its layers and answers PACKET_OK, or answers the reason it cannot be handled. It never throws and never
 * allocates; after PACKET_OK the accessors of ipv4.ts, ipv6.ts, tcp.ts, udp.ts and icmp*.ts may assume every
 * field they read lies inside the packet (TCP options included).
 *
 * @module
 */
import { read16 } from "./checksum.ts";
import {
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_FRAGMENT,
  IPV4_MIN_HEADER_LEN,
  IPV4_PROTOCOL,
  IPV4_TOTAL_LENGTH,
} from "./ipv4.ts";
import {
  IPV6_EXT_AH,
  IPV6_EXT_DEST_OPTS,
  IPV6_EXT_FRAGMENT,
  IPV6_EXT_HOP_BY_HOP,
  IPV6_EXT_ROUTING,
  IPV6_HEADER_LEN,
  IPV6_NEXT_HEADER,
  IPV6_PAYLOAD_LENGTH,
} from "./ipv6.ts";
import type { PacketInfo } from "./packet_info.ts";
import { TCP_MIN_HEADER_LEN, tcpOptionsWellFormed } from "./tcp.ts";

/** The validator's reasons, name → code: the one table the PACKET_* constants and PACKET_REASON_NAMES come from. */
export const PACKET_REASONS = {
  /** The packet is sound: every layer's offsets are in `info`. */
  ok: 0,
  /** Fewer bytes than a header needs. */
  truncated: 1,
  /** Neither IPv4 nor IPv6. */
  bad_version: 2,
  /** IPv4 header length below 20 bytes. */
  bad_ihl: 3,
  /** An IP or UDP length field disagrees with the bytes present. */
  length_mismatch: 4,
  /**
   * An IP fragment: its ports cannot be trusted, so it goes to the reassembler (lb/engine/reassembly.ts),
   * with the fragment's data offset in `info`; as a drop, a fragment to us of a protocol we do not serve.
   */
  fragment: 5,
  /** TCP data offset below 20 bytes or past the segment. */
  bad_data_offset: 6,
  /** A TCP option's length is impossible or runs past the header. */
  option_overflow: 7,
  /** A transport protocol or IPv6 header we do not handle (offsets are still filled where known). */
  unsupported: 8,
} as const;
/** The packet is sound: every layer's offsets are in `info`. */
export const PACKET_OK = PACKET_REASONS.ok;
/** Fewer bytes than a header needs. */
export const PACKET_TRUNCATED = PACKET_REASONS.truncated;
/** Neither IPv4 nor IPv6. */
export const PACKET_BAD_VERSION = PACKET_REASONS.bad_version;
/** IPv4 header length below 20 bytes. */
export const PACKET_BAD_IHL = PACKET_REASONS.bad_ihl;
/** An IP or UDP length field disagrees with the bytes present. */
export const PACKET_LENGTH_MISMATCH = PACKET_REASONS.length_mismatch;
/** An IP fragment: reassembled by the engine, never read as a whole packet (see PACKET_REASONS). */
export const PACKET_FRAGMENT = PACKET_REASONS.fragment;
/** TCP data offset below 20 bytes or past the segment. */
export const PACKET_BAD_DATA_OFFSET = PACKET_REASONS.bad_data_offset;
/** A TCP option's length is impossible or runs past the header. */
export const PACKET_OPTION_OVERFLOW = PACKET_REASONS.option_overflow;
/** A transport protocol or IPv6 header we do not handle (offsets are still filled where known). */
export const PACKET_UNSUPPORTED = PACKET_REASONS.unsupported;
const reasonNames: string[] = [];
for (const [name, code] of Object.entries(PACKET_REASONS)) reasonNames[code] = name;
/** Names of the reasons, indexed by code, for counters and logs. */
export const PACKET_REASON_NAMES: readonly string[] = reasonNames;

/** Most IPv6 extension headers walked before the packet is called unsupported (bounds the loop). */
const MAX_IPV6_EXTENSIONS = 8;

/**
 * Answers PACKET_FRAGMENT with what the reassembler needs in `info`: `l4Off` is where the fragment's data
 * starts (past the IPv4 header, or past the IPv6 Fragment header, which sits 8 bytes before it), `l4Proto`
 * the protocol the datagram carries (IPv6: the Fragment header's Next Header), `l4Len` the data bytes.
 */
function fragment(info: PacketInfo, data: number, proto: number, end: number): number {
  info.l4Off = data;
  info.l4Proto = proto;
  info.l4Len = end - data;
  info.l4HeaderLen = 0;
  info.end = end;
  return PACKET_FRAGMENT;
}

/**
 * Classifies the packet in `b[off, off+len)`, filling `info`. With `quoted` set the packet is the one an ICMP
 * error carries: it may be cut short after 8 bytes of transport header, so length fields are not held
 * against the bytes present and `info.end` is where the bytes stop.
 */
export function classifyPacket(
  b: Uint8Array,
  off: number,
  len: number,
  info: PacketInfo,
  quoted = false,
): number {
  if (len < 1 || off + len > b.length) return PACKET_TRUNCATED;
  const version = b[off] >>> 4;
  info.ipOff = off;
  let end: number;
  let p: number;
  let proto: number;
  if (version === 4) {
    if (len < IPV4_MIN_HEADER_LEN) return PACKET_TRUNCATED;
    const ihl = (b[off] & 0x0f) << 2;
    if (ihl < IPV4_MIN_HEADER_LEN) return PACKET_BAD_IHL;
    if (ihl > len) return PACKET_TRUNCATED;
    const total = read16(b, off + IPV4_TOTAL_LENGTH);
    if (total < ihl) return PACKET_LENGTH_MISMATCH;
    if (total > len) {
      if (!quoted) return PACKET_LENGTH_MISMATCH;
      end = off + len;
    } else {
      end = off + total;
    }
    info.family = 4;
    p = off + ihl;
    proto = b[off + IPV4_PROTOCOL];
    info.l4Len = total - ihl;
    const frag = read16(b, off + IPV4_FRAGMENT);
    if ((frag & 0x1fff) !== 0 || (!quoted && (frag & 0x2000) !== 0)) return fragment(info, p, proto, end);
  } else if (version === 6) {
    if (len < IPV6_HEADER_LEN) return PACKET_TRUNCATED;
    const total = IPV6_HEADER_LEN + read16(b, off + IPV6_PAYLOAD_LENGTH);
    if (total === IPV6_HEADER_LEN && b[off + IPV6_NEXT_HEADER] === IPV6_EXT_HOP_BY_HOP) {
      return PACKET_UNSUPPORTED; // jumbogram
    }
    if (total > len) {
      if (!quoted) return PACKET_LENGTH_MISMATCH;
      end = off + len;
    } else {
      end = off + total;
    }
    info.family = 6;
    proto = b[off + IPV6_NEXT_HEADER];
    p = off + IPV6_HEADER_LEN;
    let n = 0;
    for (;;) {
      if (proto === IPV6_EXT_HOP_BY_HOP || proto === IPV6_EXT_ROUTING || proto === IPV6_EXT_DEST_OPTS) {
        if (p + 2 > end) return PACKET_TRUNCATED;
        const hl = (b[p + 1] + 1) << 3;
        proto = b[p];
        p += hl;
      } else if (proto === IPV6_EXT_AH) {
        if (p + 2 > end) return PACKET_TRUNCATED;
        const hl = (b[p + 1] + 2) << 2;
        proto = b[p];
        p += hl;
      } else if (proto === IPV6_EXT_FRAGMENT) {
        if (p + 8 > end) return PACKET_TRUNCATED;
        // An atomic fragment (offset 0, no more fragments) carries the whole datagram: walk past it.
        if ((read16(b, p + 2) & 0xfff9) !== 0) return fragment(info, p + 8, b[p], end);
        proto = b[p];
        p += 8;
      } else {
        break;
      }
      if (p > end) return PACKET_TRUNCATED;
      if (++n > MAX_IPV6_EXTENSIONS) return PACKET_UNSUPPORTED;
    }
    info.l4Len = total - (p - off);
  } else {
    return PACKET_BAD_VERSION;
  }
  info.l4Off = p;
  info.l4Proto = proto;
  info.end = end;
  const avail = end - p;
  if (proto === IPPROTO_TCP) {
    if (quoted) {
      // A quoted segment is read for its ports and sequence number only; its options may be cut off.
      if (avail < 8) return PACKET_TRUNCATED;
      // Claim only the bytes present: an RFC 792 quote holds just the ports and sequence number.
      info.l4HeaderLen = avail < TCP_MIN_HEADER_LEN ? 8 : TCP_MIN_HEADER_LEN;
      return PACKET_OK;
    }
    if (avail < TCP_MIN_HEADER_LEN) return PACKET_TRUNCATED;
    const doff = (b[p + 12] >>> 4) << 2;
    if (doff < TCP_MIN_HEADER_LEN || doff > avail) return PACKET_BAD_DATA_OFFSET;
    info.l4HeaderLen = doff;
    if (!tcpOptionsWellFormed(b, p)) return PACKET_OPTION_OVERFLOW;
    return PACKET_OK;
  }
  if (proto === IPPROTO_UDP) {
    if (avail < 8) return PACKET_TRUNCATED;
    info.l4HeaderLen = 8;
    if (!quoted && read16(b, p + 4) !== info.l4Len) return PACKET_LENGTH_MISMATCH;
    return PACKET_OK;
  }
  if ((proto === IPPROTO_ICMP && info.family === 4) || (proto === IPPROTO_ICMPV6 && info.family === 6)) {
    if (avail < 8) return PACKET_TRUNCATED;
    info.l4HeaderLen = 8;
    return PACKET_OK;
  }
  info.l4HeaderLen = 0;
  return PACKET_UNSUPPORTED;
}
