/**
 * Address and port rewrites for NAT, and the one checksum policy for them, allocation-free.
 *
 * Each setter writes the new value and returns the unfolded ones-complement *delta* it causes in any
 * checksum covering it (RFC 1624: add ~old + new), so a transport checksum is fixed once, after all the
 * fields changed. Deltas are split as gVisor's `UpdateChecksumPseudoHeaderAddress(old, new, fullChecksum)`
 * splits them:
 *
 * ```
 *                       full checksum (complete)      partial checksum (offload to finish)
 * addresses, length     yes (pseudo-header)           yes: the field holds the pseudo-header sum
 * ports, seq, options   yes                           no: the offload sums the segment itself
 * UDP checksum 0        stays 0 (IPv4: none sent)     —
 * result 0 for UDP      sent as 0xffff (RFC 768)      —
 * ```
 *
 * Addresses are four 32-bit words (IPv4 uses word 0 only), as the engine's flat tables hold them.
 *
 * @module
 */
import {
  applyPartialSumDelta,
  applySumDelta,
  applyUdpSumDelta,
  checksumDelta16,
  checksumDelta32,
  read16,
  read32,
  write16,
  write32,
} from "./checksum.ts";
import { IPPROTO_UDP, IPV4_DST, IPV4_SRC, IPV4_TTL, ipv4SetDst, ipv4SetSrc, ipv4SetTtl } from "./ipv4.ts";
import { IPV6_DST, IPV6_HOP_LIMIT, IPV6_SRC } from "./ipv6.ts";
import type { PacketInfo } from "./packet_info.ts";
import { TCP_CHECKSUM, TCP_DST_PORT, TCP_SRC_PORT } from "./tcp.ts";
import { UDP_CHECKSUM } from "./udp.ts";

/** Offset of the source address within the IP header of `family` (4 or 6). */
export function ipSrcOffset(family: number): number {
  return family === 4 ? IPV4_SRC : IPV6_SRC;
}

/** Offset of the destination address within the IP header of `family` (4 or 6). */
export function ipDstOffset(family: number): number {
  return family === 4 ? IPV4_DST : IPV6_DST;
}

/** Reads the address at `at` as four words into `out` (IPv4: word 0, the rest 0). */
export function readAddressWords(b: Uint8Array, family: number, at: number, out: Uint32Array): void {
  out[0] = read32(b, at);
  if (family === 4) {
    out[1] = out[2] = out[3] = 0;
  } else {
    out[1] = read32(b, at + 4);
    out[2] = read32(b, at + 8);
    out[3] = read32(b, at + 12);
  }
}

/**
 * Sets the source (`dst` false) or destination address of the IP header at `ipOff` to the words
 * `words[wOff…]`; for IPv4 the header checksum is updated too. Returns the transport (pseudo-header) delta.
 */
export function natSetAddress(
  b: Uint8Array,
  family: number,
  ipOff: number,
  dst: boolean,
  words: Uint32Array,
  wOff: number,
): number {
  const w0 = words[wOff];
  if (family === 4) {
    const old = read32(b, ipOff + (dst ? IPV4_DST : IPV4_SRC));
    if (dst) ipv4SetDst(b, ipOff, w0);
    else ipv4SetSrc(b, ipOff, w0);
    return checksumDelta32(old, w0);
  }
  const at = ipOff + (dst ? IPV6_DST : IPV6_SRC);
  let d = 0;
  for (let k = 0; k < 4; k++) {
    const v = words[wOff + k];
    d += checksumDelta32(read32(b, at + k * 4), v);
    write32(b, at + k * 4, v);
  }
  return d;
}

/**
 * Adds one to the IPv4 TTL (header checksum kept, RFC 1624) or the IPv6 hop limit, short of 255. A packet
 * the kernel routed into a TUN device and forwards again after the write lost two hops on one host; this
 * gives one back, so the host counts as one hop, as a forwarding router (or IPVS) does.
 */
export function ipGiveBackHop(b: Uint8Array, family: number, ipOff: number): void {
  const at = ipOff + (family === 4 ? IPV4_TTL : IPV6_HOP_LIMIT);
  const ttl = b[at];
  if (ttl === 255) return;
  if (family === 4) ipv4SetTtl(b, ipOff, ttl + 1);
  else b[at] = ttl + 1;
}

/** Sets a 16-bit field (a port) at `at`; returns the checksum delta. */
export function natSetPort(b: Uint8Array, at: number, port: number): number {
  const d = checksumDelta16(read16(b, at), port);
  write16(b, at, port);
  return d;
}

/**
 * Applies `delta` to the full transport checksum at `csumAt`. A zero UDP checksum (IPv4: none sent) stays
 * zero, and a UDP result of zero is sent as 0xffff. `limit` is where the bytes present stop (a quoted packet
 * may be cut before its checksum field): nothing is written past it.
 */
export function natApplyDelta(
  b: Uint8Array,
  proto: number,
  csumAt: number,
  limit: number,
  delta: number,
): void {
  if (csumAt + 2 > limit) return;
  const c = read16(b, csumAt);
  write16(b, csumAt, proto === IPPROTO_UDP ? applyUdpSumDelta(c, delta) : applySumDelta(c, delta));
}

/**
 * One packet's NAT rewrite under either checksum policy; preallocate one and reuse it for every packet.
 * {@link begin} before any edit of the transport header, then set addresses and ports, then {@link finish}.
 * A full checksum was kept right by the header edits in between (they update it as they go) and takes the
 * address and port deltas. A partial one was disturbed by those edits, so it is restored from its value at
 * `begin` plus the pseudo-header changes only: addresses and, when the segment grew or shrank, its length.
 */
export class NatRewrite {
  /** Transport header length at {@link begin}: the engine reports how much options grew or shrank it. */
  headerLen0 = 0;
  private full = true;
  private csumAt = 0;
  private saved = 0;
  private l4Len0 = 0;
  private pseudo = 0;
  private rest = 0;

  /** Starts the rewrite of the TCP or UDP packet `info` describes; `full` false: its checksum is partial. */
  begin(b: Uint8Array, info: PacketInfo, full: boolean): void {
    this.full = full;
    // TCP or UDP only (not transportChecksumFieldOffset's switch): small enough to inline on the hot path.
    this.csumAt = info.l4Off + (info.l4Proto === IPPROTO_UDP ? UDP_CHECKSUM : TCP_CHECKSUM);
    this.saved = read16(b, this.csumAt);
    this.l4Len0 = info.l4Len;
    this.headerLen0 = info.l4HeaderLen;
    this.pseudo = 0;
    this.rest = 0;
  }

  /** Sets the source address to `src[sa…]` and the destination address to `dst[da…]`. */
  addresses(
    b: Uint8Array,
    info: PacketInfo,
    src: Uint32Array,
    sa: number,
    dst: Uint32Array,
    da: number,
  ): void {
    this.pseudo += natSetAddress(b, info.family, info.ipOff, false, src, sa) +
      natSetAddress(b, info.family, info.ipOff, true, dst, da);
  }

  /** Sets the source and destination ports (TCP and UDP keep them at the same offsets). */
  ports(b: Uint8Array, info: PacketInfo, sport: number, dport: number): void {
    this.rest += natSetPort(b, info.l4Off + TCP_SRC_PORT, sport) +
      natSetPort(b, info.l4Off + TCP_DST_PORT, dport);
  }

  /** Writes the transport checksum for the policy given to {@link begin}. */
  finish(b: Uint8Array, info: PacketInfo): void {
    if (this.full) {
      natApplyDelta(b, info.l4Proto, this.csumAt, info.end, this.pseudo + this.rest);
    } else {
      const d = this.pseudo + checksumDelta16(this.l4Len0, info.l4Len);
      write16(b, this.csumAt, applyPartialSumDelta(this.saved, d));
    }
  }
}
