/**
 * Address and port rewrites for NAT, allocation-free. Each setter writes the new value and returns the
 * unfolded ones-complement *delta* it causes in any checksum covering it (RFC 1624: add ~old + new), so a
 * packet's transport checksum is fixed once, after all its fields changed, with {@link natApplyDelta}.
 * Addresses are four 32-bit words (IPv4 uses word 0 only).
 *
 * @module
 */
import { read16, read32, write16, write32 } from "../../base/packet/checksum.ts";
import { ipv4SetDst, ipv4SetSrc } from "../../base/packet/ipv4.ts";
import { applySumDelta } from "../../base/packet/ipv6.ts";
import { IPPROTO_UDP } from "../../base/packet/ipv4.ts";

/** Checksum delta of one 16-bit word changing from `oldW` to `newW`. */
export function wordDelta(oldW: number, newW: number): number {
  return (~oldW & 0xffff) + (newW & 0xffff);
}

/** Checksum delta of one 32-bit value changing. */
export function word32Delta(oldV: number, newV: number): number {
  return (~(oldV >>> 16) & 0xffff) + (~oldV & 0xffff) + ((newV >>> 16) & 0xffff) + (newV & 0xffff);
}

/**
 * Sets the source (`dst` false) or destination address of the IP header at `ipOff`; for IPv4 the header
 * checksum is updated too. Returns the delta for the transport checksum (pseudo-header).
 */
export function natSetAddress(
  b: Uint8Array,
  family: number,
  ipOff: number,
  dst: boolean,
  w0: number,
  w1: number,
  w2: number,
  w3: number,
): number {
  if (family === 4) {
    const at = ipOff + (dst ? 16 : 12);
    const old = read32(b, at);
    if (dst) ipv4SetDst(b, ipOff, w0);
    else ipv4SetSrc(b, ipOff, w0);
    return word32Delta(old, w0);
  }
  const at = ipOff + (dst ? 24 : 8);
  const d = word32Delta(read32(b, at), w0) + word32Delta(read32(b, at + 4), w1) +
    word32Delta(read32(b, at + 8), w2) + word32Delta(read32(b, at + 12), w3);
  write32(b, at, w0);
  write32(b, at + 4, w1);
  write32(b, at + 8, w2);
  write32(b, at + 12, w3);
  return d;
}

/** Sets a 16-bit field (a port) at `at`; returns the checksum delta. */
export function natSetPort(b: Uint8Array, at: number, port: number): number {
  const d = wordDelta(read16(b, at), port);
  write16(b, at, port);
  return d;
}

/**
 * Applies `delta` to the transport checksum at `csumAt`. A zero UDP checksum (IPv4: none sent) stays zero,
 * and a UDP result of zero is sent as 0xffff. `limit` is where the bytes present stop (a quoted packet may
 * be cut before its checksum field): nothing is written past it.
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
  if (proto === IPPROTO_UDP) {
    if (c === 0) return;
    const n = applySumDelta(c, delta);
    write16(b, csumAt, n === 0 ? 0xffff : n);
    return;
  }
  write16(b, csumAt, applySumDelta(c, delta));
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
 * Adds `delta` to a *partial* checksum field — one the kernel left holding the uncomplemented pseudo-header
 * sum for the checksum offload to complete (virtio_net_hdr NEEDS_CSUM). Only pseudo-header changes
 * (addresses, length) go in: the offload sums the segment's own bytes, ports and sequence numbers included.
 */
export function partialChecksumAdd(partial: number, delta: number): number {
  return ~applySumDelta(~partial & 0xffff, delta) & 0xffff;
}
