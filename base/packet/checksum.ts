/**
 * Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * Sums are kept unfolded in a JS number: a 64 KiB segment plus a pseudo-header stays far below 2^53, so
 * the loop needs no carry handling and folding happens once, in {@link foldSum}.
 *
 * @module
 */

/** Adds the 16-bit big-endian words of `b[off, off+len)` to `initial`; an odd tail byte is padded with 0. */
export function onesComplementSum(b: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  const end = off + (len & ~1);
  for (let i = off; i < end; i += 2) sum += (b[i] << 8) | b[i + 1];
  if (len & 1) sum += b[off + len - 1] << 8;
  return sum;
}

/** Folds an unfolded ones-complement sum into 16 bits (end-around carry). */
export function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/** Turns an unfolded sum into the checksum value to store in a header. */
export function finishChecksum(sum: number): number {
  return ~foldSum(sum) & 0xffff;
}

/** Sum of the IPv4 pseudo-header (RFC 793/768) for the packet whose IPv4 header starts at `ipOff`. */
export function ipv4PseudoHeaderSum(b: Uint8Array, ipOff: number, proto: number, l4Len: number): number {
  return onesComplementSum(b, ipOff + 12, 8, proto + l4Len);
}

/** Sum of the IPv6 pseudo-header (RFC 8200 §8.1) for the packet whose IPv6 header starts at `ipOff`. */
export function ipv6PseudoHeaderSum(b: Uint8Array, ipOff: number, nextHeader: number, l4Len: number): number {
  return onesComplementSum(b, ipOff + 8, 32, nextHeader + (l4Len % 0x10000) + Math.floor(l4Len / 0x10000));
}

/** RFC 1624 eqn. 3: the checksum after one 16-bit word of the covered data changed from `oldWord` to `newWord`. */
export function checksumAdjust16(csum: number, oldWord: number, newWord: number): number {
  let s = (~csum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** The checksum after a 32-bit field (an IPv4 address, a sequence number) changed from `oldVal` to `newVal`. */
export function checksumAdjust32(csum: number, oldVal: number, newVal: number): number {
  let s = (~csum & 0xffff) + (~(oldVal >>> 16) & 0xffff) + (~oldVal & 0xffff) + ((newVal >>> 16) & 0xffff) +
    (newVal & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Writes the 16-bit field at `at` and keeps the checksum at `csumAt`, which covers it, right (RFC 1624). */
export function write16Summed(b: Uint8Array, at: number, value: number, csumAt: number): void {
  write16(b, csumAt, checksumAdjust16(read16(b, csumAt), read16(b, at), value));
  write16(b, at, value);
}

/** Writes the 32-bit field at `at` and keeps the checksum at `csumAt`, which covers it, right (RFC 1624). */
export function write32Summed(b: Uint8Array, at: number, value: number, csumAt: number): void {
  write16(b, csumAt, checksumAdjust32(read16(b, csumAt), read32(b, at), value >>> 0));
  write32(b, at, value);
}

/**
 * Settles the one result RFC 1624 eqn. 3 cannot: an updated checksum of 0x0000 means the covered data sums
 * to −0 (0xffff: right as it is) or that every covered word is now zero, whose checksum is ~(+0) = 0xffff
 * (RFC 1071) — 0x0000 would not verify. Ones-complement addition never yields +0 from non-zero words, so
 * only the data can tell; it is summed only in this case (1 in 65536 updates). `b[off, off+len)` is the
 * covered data with the checksum field in it; `pseudo` the unfolded pseudo-header sum, if one is covered.
 */
export function checksumSettleZero(
  csum: number,
  b: Uint8Array,
  off: number,
  len: number,
  pseudo = 0,
): number {
  if (csum !== 0) return csum;
  return onesComplementSum(b, off, len, pseudo) === 0 ? 0xffff : 0;
}

/**
 * The checksum after the covered bytes whose sum was `oldSum` became bytes whose sum is `newSum` (both
 * unfolded, both taken at the same 16-bit alignment). Used when a whole header region is rewritten.
 */
export function checksumReplaceSum(csum: number, oldSum: number, newSum: number): number {
  let s = (~csum & 0xffff) + (~foldSum(oldSum) & 0xffff) + foldSum(newSum);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/**
 * The unfolded delta one 16-bit word changing from `oldW` to `newW` adds to any checksum covering it
 * (RFC 1624 eqn. 3: ~old + new). Deltas of several fields add up and are applied once.
 */
export function checksumDelta16(oldW: number, newW: number): number {
  return (~oldW & 0xffff) + (newW & 0xffff);
}

/** The unfolded delta of one 32-bit field (an IPv4 address, a sequence number) changing. */
export function checksumDelta32(oldV: number, newV: number): number {
  return (~(oldV >>> 16) & 0xffff) + (~oldV & 0xffff) + ((newV >>> 16) & 0xffff) + (newV & 0xffff);
}

/**
 * Applies an unfolded delta to a *full* checksum — the complemented sum a header stores (RFC 1624).
 * Complement, add, fold, complement back.
 */
export function applySumDelta(csum: number, delta: number): number {
  let s = (~csum & 0xffff) + delta;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

/**
 * {@link applySumDelta} for a UDP checksum (RFC 768): 0 means none was sent and stays 0 (IPv4 only; over
 * IPv6 a zero checksum is invalid anyway), and a computed 0 is sent as 0xffff.
 */
export function applyUdpSumDelta(csum: number, delta: number): number {
  if (csum === 0) return 0;
  const n = applySumDelta(csum, delta);
  return n === 0 ? 0xffff : n;
}

/**
 * Applies an unfolded delta to a *partial* checksum — the uncomplemented pseudo-header sum the kernel leaves
 * in the field for checksum offload to complete (virtio_net_hdr NEEDS_CSUM). Only pseudo-header changes
 * (addresses, length) belong in `delta`: the offload sums the segment's own bytes, ports included.
 */
export function applyPartialSumDelta(partial: number, delta: number): number {
  return ~applySumDelta(~partial & 0xffff, delta) & 0xffff;
}

/** Reads a big-endian 16-bit value. */
export function read16(b: Uint8Array, off: number): number {
  return (b[off] << 8) | b[off + 1];
}

/** Writes a big-endian 16-bit value. */
export function write16(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 8;
  b[off + 1] = v;
}

/** Reads a big-endian unsigned 32-bit value. */
export function read32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}

/** Writes a big-endian 32-bit value. */
export function write32(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 24;
  b[off + 1] = v >>> 16;
  b[off + 2] = v >>> 8;
  b[off + 3] = v;
}
