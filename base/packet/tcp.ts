/**
 * TCP header view (RFC 9293) with option walking, in-place option removal and insertion within the 40-byte
 * option space, SACK block rewriting (RFC 2018) and MSS clamping. All rewrites keep the checksum right with
 * incremental updates: fixed fields by RFC 1624, option edits by re-summing the (at most 60-byte) header only,
 * never the payload.
 *
 * ```
 * |          Source Port          |       Destination Port        |
 * |                        Sequence Number                        |
 * |                    Acknowledgment Number                      |
 * | Offset| Rsvd  |C|E|U|A|P|R|S|F|            Window             |
 * |           Checksum            |         Urgent Pointer        |
 * |                    Options (0..40 bytes)                      |
 * ```
 *
 * @module
 */
import {
  checksumAdjust32,
  checksumReplaceSum,
  onesComplementSum,
  read16,
  read32,
  write16,
  write16Summed,
  write32,
  write32Summed,
} from "./checksum.ts";
import { IP_MAX_LENGTH } from "./fragment.ts";
import { ipv4SetTotalLength } from "./ipv4.ts";
import { ipv6PayloadLength, ipv6SetPayloadLength } from "./ipv6.ts";
import type { PacketInfo } from "./packet_info.ts";

/** Length of the TCP header without options. */
export const TCP_MIN_HEADER_LEN = 20;
/** Largest TCP header: data offset 15 words. */
export const TCP_MAX_HEADER_LEN = 60;
/** Offset of the source port. */
export const TCP_SRC_PORT = 0;
/** Offset of the destination port. */
export const TCP_DST_PORT = 2;
/** Offset of the sequence number. */
export const TCP_SEQ = 4;
/** Offset of the acknowledgment number. */
export const TCP_ACK_NUM = 8;
/** Offset of the data offset (high nibble) byte. */
export const TCP_DATA_OFFSET = 12;
/** Offset of the flags byte. */
export const TCP_FLAGS = 13;
/** Offset of the receive window. */
export const TCP_WINDOW = 14;
/** Offset of the checksum. */
export const TCP_CHECKSUM = 16;
/** Offset of the urgent pointer. */
export const TCP_URGENT = 18;
/** FIN flag bit. */
export const TCP_FIN = 0x01;
/** SYN flag bit. */
export const TCP_SYN = 0x02;
/** RST flag bit. */
export const TCP_RST = 0x04;
/** PSH flag bit. */
export const TCP_PSH = 0x08;
/** ACK flag bit. */
export const TCP_ACK = 0x10;
/** URG flag bit. */
export const TCP_URG = 0x20;
/** Option kind: end of option list. */
export const TCPOPT_EOL = 0;
/** Option kind: no-operation (padding). */
export const TCPOPT_NOP = 1;
/** Option kind: maximum segment size. */
export const TCPOPT_MSS = 2;
/** Option kind: window scale. */
export const TCPOPT_WINDOW_SCALE = 3;
/** Option kind: SACK permitted. */
export const TCPOPT_SACK_PERMITTED = 4;
/** Option kind: SACK blocks. */
export const TCPOPT_SACK = 5;
/** Option kind: timestamps. */
export const TCPOPT_TIMESTAMP = 8;
/** Returned by option walkers when an option's length is below 2 or runs past the header. */
export const TCPOPT_MALFORMED = -2;
/** Returned by option walkers at the end of the option list. */
export const TCPOPT_END = -1;

/** Source port. */
export function tcpSrcPort(b: Uint8Array, o: number): number {
  return read16(b, o + TCP_SRC_PORT);
}

/** Destination port. */
export function tcpDstPort(b: Uint8Array, o: number): number {
  return read16(b, o + TCP_DST_PORT);
}

/** Sequence number (unsigned 32-bit). */
export function tcpSeq(b: Uint8Array, o: number): number {
  return read32(b, o + TCP_SEQ);
}

/** Acknowledgment number (unsigned 32-bit). */
export function tcpAck(b: Uint8Array, o: number): number {
  return read32(b, o + TCP_ACK_NUM);
}

/** Header length in bytes (data offset × 4). */
export function tcpHeaderLength(b: Uint8Array, o: number): number {
  return (b[o + TCP_DATA_OFFSET] >>> 4) << 2;
}

/** The eight flag bits (CWR … FIN). */
export function tcpFlags(b: Uint8Array, o: number): number {
  return b[o + TCP_FLAGS];
}

/** Receive window (unscaled). */
export function tcpWindow(b: Uint8Array, o: number): number {
  return read16(b, o + TCP_WINDOW);
}

/** Stored checksum. */
export function tcpChecksum(b: Uint8Array, o: number): number {
  return read16(b, o + TCP_CHECKSUM);
}

/** Sets the source port, updating the checksum. */
export function tcpSetSrcPort(b: Uint8Array, o: number, port: number): void {
  write16Summed(b, o + TCP_SRC_PORT, port, o + TCP_CHECKSUM);
}

/** Sets the destination port, updating the checksum. */
export function tcpSetDstPort(b: Uint8Array, o: number, port: number): void {
  write16Summed(b, o + TCP_DST_PORT, port, o + TCP_CHECKSUM);
}

/** Sets the sequence number, updating the checksum. */
export function tcpSetSeq(b: Uint8Array, o: number, seq: number): void {
  write32Summed(b, o + TCP_SEQ, seq, o + TCP_CHECKSUM);
}

/** Sets the acknowledgment number, updating the checksum. */
export function tcpSetAck(b: Uint8Array, o: number, ack: number): void {
  write32Summed(b, o + TCP_ACK_NUM, ack, o + TCP_CHECKSUM);
}

/** Carries a 32-bit pseudo-header change (an IPv4 address) into the TCP checksum. */
export function tcpAdjustChecksum32(b: Uint8Array, o: number, oldVal: number, newVal: number): void {
  write16(b, o + TCP_CHECKSUM, checksumAdjust32(read16(b, o + TCP_CHECKSUM), oldVal, newVal));
}

/**
 * Offset of the option after the one at `pos`; pass -1 for the first option. Returns TCPOPT_END past the
 * last option or at EOL, TCPOPT_MALFORMED when a length is impossible. Walk with
 * `for (let p = tcpNextOption(b, o, -1); p >= 0; p = tcpNextOption(b, o, p))`.
 */
export function tcpNextOption(b: Uint8Array, o: number, pos: number): number {
  const end = o + tcpHeaderLength(b, o);
  let i: number;
  if (pos < 0) {
    i = o + TCP_MIN_HEADER_LEN;
  } else {
    const kind = b[pos];
    if (kind === TCPOPT_NOP) i = pos + 1;
    else i = pos + b[pos + 1];
  }
  if (i >= end || b[i] === TCPOPT_EOL) return TCPOPT_END;
  if (b[i] === TCPOPT_NOP) return i;
  if (i + 1 >= end) return TCPOPT_MALFORMED;
  const len = b[i + 1];
  if (len < 2 || i + len > end) return TCPOPT_MALFORMED;
  return i;
}

/** Offset of the first option of `kind`, TCPOPT_END when absent, TCPOPT_MALFORMED when the list is broken. */
export function tcpFindOption(b: Uint8Array, o: number, kind: number): number {
  for (let p = tcpNextOption(b, o, -1); p >= 0; p = tcpNextOption(b, o, p)) {
    if (b[p] === kind) return p;
  }
  return tcpOptionsWellFormed(b, o) ? TCPOPT_END : TCPOPT_MALFORMED;
}

/** True when every option's length fits inside the header. */
export function tcpOptionsWellFormed(b: Uint8Array, o: number): boolean {
  let p = tcpNextOption(b, o, -1);
  while (p >= 0) p = tcpNextOption(b, o, p);
  return p === TCPOPT_END;
}

/** Overwrites the option at `optOff` with NOPs (length unchanged), updating the checksum. */
export function tcpNopOption(b: Uint8Array, o: number, optOff: number): void {
  const len = b[optOff] === TCPOPT_NOP ? 1 : b[optOff + 1];
  const hl = tcpHeaderLength(b, o);
  const before = onesComplementSum(b, o, hl);
  b.fill(TCPOPT_NOP, optOff, optOff + len);
  write16(
    b,
    o + TCP_CHECKSUM,
    checksumReplaceSum(read16(b, o + TCP_CHECKSUM), before, onesComplementSum(b, o, hl)),
  );
}

/** NOPs out every option of `kind`; returns how many were removed. */
export function tcpNopAllOptions(b: Uint8Array, o: number, kind: number): number {
  let n = 0;
  for (let p = tcpNextOption(b, o, -1); p >= 0; p = tcpNextOption(b, o, p)) {
    if (b[p] === kind) {
      tcpNopOption(b, o, p);
      n++;
    }
  }
  return n;
}

/** Sets both IP length fields and the packet's recorded lengths after the TCP segment grew by `delta`. */
function growSegment(b: Uint8Array, info: PacketInfo, delta: number): void {
  if (info.family === 4) {
    ipv4SetTotalLength(b, info.ipOff, info.end - info.ipOff + delta);
  } else {
    ipv6SetPayloadLength(b, info.ipOff, ipv6PayloadLength(b, info.ipOff) + delta);
  }
  info.l4Len += delta;
  info.l4HeaderLen += delta;
  info.end += delta;
}

/**
 * Inserts `optLen` bytes of option (a multiple of 4, already padded) from `opt[optOff…]` right after the fixed
 * header, moving the rest of the segment up; fixes data offset, IP lengths and checksums. `pktLen` is the
 * used length of `b`. Returns the new packet length, or -1 when the 40-byte option space or the buffer is
 * too small, or the IP length would pass 65535 (nothing is changed then).
 */
export function tcpInsertOption(
  b: Uint8Array,
  info: PacketInfo,
  pktLen: number,
  opt: Uint8Array,
  optOff: number,
  optLen: number,
): number {
  const o = info.l4Off;
  const hl = tcpHeaderLength(b, o);
  if ((optLen & 3) !== 0 || hl + optLen > TCP_MAX_HEADER_LEN || pktLen + optLen > b.length) return -1;
  // The 16-bit IP length must still hold the grown packet (a near-64 KiB GSO segment would wrap it).
  const ipLen = info.family === 4 ? info.end - info.ipOff : ipv6PayloadLength(b, info.ipOff);
  if (ipLen + optLen > IP_MAX_LENGTH) return -1;
  // The payload moves by a multiple of 4, so its 16-bit words keep their alignment and its sum is unchanged:
  // only the header and the pseudo-header length enter the update.
  const before = onesComplementSum(b, o, hl) + info.l4Len;
  b.copyWithin(o + TCP_MIN_HEADER_LEN + optLen, o + TCP_MIN_HEADER_LEN, pktLen);
  for (let i = 0; i < optLen; i++) b[o + TCP_MIN_HEADER_LEN + i] = opt[optOff + i];
  b[o + TCP_DATA_OFFSET] = (((hl + optLen) >>> 2) << 4) | (b[o + TCP_DATA_OFFSET] & 0x0f);
  const after = onesComplementSum(b, o, hl + optLen) + info.l4Len + optLen;
  write16(b, o + TCP_CHECKSUM, checksumReplaceSum(read16(b, o + TCP_CHECKSUM), before, after));
  growSegment(b, info, optLen);
  return pktLen + optLen;
}

/**
 * Packs the options: drops NOPs and anything after EOL, pads with EOL to a 4-byte boundary and shrinks the
 * header, moving the payload down. Frees room that NOPs (from removed options or alignment) took.
 * Returns the new packet length; a malformed option list is left alone and `pktLen` returned.
 */
export function tcpCompactOptions(b: Uint8Array, info: PacketInfo, pktLen: number): number {
  const o = info.l4Off;
  const hl = tcpHeaderLength(b, o);
  if (!tcpOptionsWellFormed(b, o)) return pktLen;
  const before = onesComplementSum(b, o, hl) + info.l4Len;
  let w = o + TCP_MIN_HEADER_LEN;
  let p = tcpNextOption(b, o, -1);
  while (p >= 0) {
    const next = tcpNextOption(b, o, p);
    if (b[p] !== TCPOPT_NOP) {
      const len = b[p + 1];
      b.copyWithin(w, p, p + len);
      w += len;
    }
    p = next;
  }
  const newHl = (w - o + 3) & ~3;
  b.fill(TCPOPT_EOL, w, o + newHl);
  const shrink = hl - newHl;
  if (shrink > 0) {
    b.copyWithin(o + newHl, o + hl, pktLen);
    b[o + TCP_DATA_OFFSET] = ((newHl >>> 2) << 4) | (b[o + TCP_DATA_OFFSET] & 0x0f);
  }
  const after = onesComplementSum(b, o, newHl) + info.l4Len - shrink;
  write16(b, o + TCP_CHECKSUM, checksumReplaceSum(read16(b, o + TCP_CHECKSUM), before, after));
  if (shrink > 0) growSegment(b, info, -shrink);
  return pktLen - shrink;
}

/**
 * Adds `delta` (mod 2^32) to every SACK block edge of every SACK option (a receiver such as Linux reads the
 * last one, so none may be left behind), updating the checksum; returns the blocks rewritten.
 */
export function tcpAdjustSack(b: Uint8Array, o: number, delta: number): number {
  let n = 0;
  for (let p = tcpNextOption(b, o, -1); p >= 0; p = tcpNextOption(b, o, p)) {
    if (b[p] === TCPOPT_SACK) n += adjustSackOption(b, o, p, delta);
  }
  return n;
}

/** Adds `delta` to the edges of the SACK option at `p`, updating the checksum; returns its blocks. */
function adjustSackOption(b: Uint8Array, o: number, p: number, delta: number): number {
  const blocks = (b[p + 1] - 2) >>> 3;
  if (((p - o) & 1) !== 0) {
    // Edges at an odd offset straddle checksum words: re-sum the header instead of RFC 1624 per edge.
    const hl = tcpHeaderLength(b, o);
    const before = onesComplementSum(b, o, hl);
    for (let i = 0; i < blocks * 2; i++) write32(b, p + 2 + i * 4, read32(b, p + 2 + i * 4) + delta);
    write16(
      b,
      o + TCP_CHECKSUM,
      checksumReplaceSum(read16(b, o + TCP_CHECKSUM), before, onesComplementSum(b, o, hl)),
    );
    return blocks;
  }
  let csum = read16(b, o + TCP_CHECKSUM);
  for (let i = 0; i < blocks * 2; i++) {
    const at = p + 2 + i * 4;
    const old = read32(b, at);
    const v = (old + delta) >>> 0;
    csum = checksumAdjust32(csum, old, v);
    write32(b, at, v);
  }
  write16(b, o + TCP_CHECKSUM, csum);
  return blocks;
}

/**
 * Lowers every MSS option (length 4) to `max` when it is larger, updating the checksum; true when one
 * changed. Every one, because a receiver such as Linux takes the last MSS of a SYN, not the first.
 */
export function tcpClampMss(b: Uint8Array, o: number, max: number): boolean {
  const hl = tcpHeaderLength(b, o);
  let before = -1;
  for (let p = tcpNextOption(b, o, -1); p >= 0; p = tcpNextOption(b, o, p)) {
    if (b[p] !== TCPOPT_MSS || b[p + 1] !== 4 || read16(b, p + 2) <= max) continue;
    // The option may sit at an odd offset after NOP padding: re-sum the header rather than assume alignment.
    if (before < 0) before = onesComplementSum(b, o, hl);
    write16(b, p + 2, max);
  }
  if (before < 0) return false;
  write16(
    b,
    o + TCP_CHECKSUM,
    checksumReplaceSum(read16(b, o + TCP_CHECKSUM), before, onesComplementSum(b, o, hl)),
  );
  return true;
}

/** The MSS option's value, or -1 when the segment carries none. */
export function tcpMss(b: Uint8Array, o: number): number {
  const p = tcpFindOption(b, o, TCPOPT_MSS);
  return p >= 0 && b[p + 1] === 4 ? read16(b, p + 2) : -1;
}

/**
 * Writes the options of a SYN or SYN+ACK at `opts[at]`: MSS when `mss` > 0, window scale `wscale` when it is
 * not negative, SACK-permitted when asked — each padded with NOPs to 4 bytes. Returns the new end.
 */
export function tcpWriteSynOptions(
  opts: Uint8Array,
  at: number,
  mss: number,
  wscale: number,
  sackPermitted: boolean,
): number {
  let n = at;
  if (mss > 0) {
    opts[n] = TCPOPT_MSS;
    opts[n + 1] = 4;
    opts[n + 2] = mss >>> 8;
    opts[n + 3] = mss & 0xff;
    n += 4;
  }
  if (wscale >= 0) {
    opts[n] = TCPOPT_NOP;
    opts[n + 1] = TCPOPT_WINDOW_SCALE;
    opts[n + 2] = 3;
    opts[n + 3] = wscale;
    n += 4;
  }
  if (sackPermitted) {
    opts[n] = TCPOPT_NOP;
    opts[n + 1] = TCPOPT_NOP;
    opts[n + 2] = TCPOPT_SACK_PERMITTED;
    opts[n + 3] = 2;
    n += 4;
  }
  return n;
}
