/**
 * IP fragmentation fields: the IPv4 flags/offset word (RFC 791) and the IPv6 Fragment extension header
 * (RFC 8200 §4.5). Accessors over the packet's bytes, like the other codecs.
 *
 * ```
 * IPv4, bytes 6–7 of the header:           IPv6 Fragment header (8 bytes):
 * |0|DF|MF|   Fragment Offset (13 bits)  |  | Next Header |  Reserved  | Fragment Offset (13) |Res|M|
 *                                          |                 Identification (32)                  |
 * ```
 *
 * Both offsets count 8-byte units; the accessors here return bytes. IPv4's Identification is at bytes 4–5
 * of the header (`ipv4Id`).
 *
 * @module
 */
import { read16, read32, write16 } from "./checksum.ts";
import { IPV4_FRAGMENT } from "./ipv4.ts";

/** IPv4 Don't Fragment flag, in the flags/offset word. */
export const IPV4_DF = 0x4000;
/** IPv4 More Fragments flag, in the flags/offset word. */
export const IPV4_MF = 0x2000;
/** IPv4 fragment offset mask (8-byte units), in the flags/offset word. */
export const IPV4_OFFSET_MASK = 0x1fff;
/** Length of the IPv6 Fragment extension header. */
export const IPV6_FRAGMENT_HEADER_LEN = 8;
/** Largest value of the IPv4 Total Length and the IPv6 Payload Length fields (no jumbograms). */
export const IP_MAX_LENGTH = 65535;

/** The IPv4 fragment offset of the header at `o`, in bytes. */
export function ipv4FragmentOffset(b: Uint8Array, o: number): number {
  return (read16(b, o + IPV4_FRAGMENT) & IPV4_OFFSET_MASK) << 3;
}

/** True when the IPv4 header at `o` has More Fragments set. */
export function ipv4MoreFragments(b: Uint8Array, o: number): boolean {
  return (read16(b, o + IPV4_FRAGMENT) & IPV4_MF) !== 0;
}

/** The Next Header of the IPv6 Fragment header at `f`: the first fragment's names the fragmentable part. */
export function ipv6FragmentNextHeader(b: Uint8Array, f: number): number {
  return b[f];
}

/** The fragment offset of the IPv6 Fragment header at `f`, in bytes. */
export function ipv6FragmentOffset(b: Uint8Array, f: number): number {
  return read16(b, f + 2) & 0xfff8;
}

/** True when the IPv6 Fragment header at `f` has the M (more fragments) flag. */
export function ipv6MoreFragments(b: Uint8Array, f: number): boolean {
  return (b[f + 3] & 1) !== 0;
}

/** The 32-bit Identification of the IPv6 Fragment header at `f`. */
export function ipv6FragmentId(b: Uint8Array, f: number): number {
  return read32(b, f + 4);
}

/** Writes an IPv6 Fragment header at `f`: next header, offset in bytes (a multiple of 8), M flag, id. */
export function ipv6WriteFragmentHeader(
  b: Uint8Array,
  f: number,
  next: number,
  offset: number,
  more: boolean,
  id: number,
): void {
  b[f] = next;
  b[f + 1] = 0;
  write16(b, f + 2, (offset & 0xfff8) | (more ? 1 : 0));
  write16(b, f + 4, id >>> 16);
  write16(b, f + 6, id & 0xffff);
}

/**
 * Finds the unfragmentable part of the IPv6 packet at `o` in `b[o, end)` (RFC 8200 §4.5: the IPv6 header,
 * Hop-by-Hop Options, and every header up to the last Routing header): `out[0]` = its length, `out[1]` =
 * the offset (from `o`) of the Next Header byte naming the first fragmentable header. False when the chain
 * is cut short or longer than 8 headers.
 */
export function ipv6Unfragmentable(b: Uint8Array, o: number, end: number, out: Int32Array): boolean {
  let nh = b[o + 6];
  let p = o + 40;
  out[0] = 40;
  out[1] = 6;
  for (let i = 0; i < 8; i++) {
    if (nh !== 0 && nh !== 43 && nh !== 60) return true; // upper layer, Fragment, AH …: fragmentable
    if (p + 2 > end) return false;
    const next = p + ((b[p + 1] + 1) << 3);
    if (next > end) return false;
    if (nh !== 60) {
      // Hop-by-Hop or Routing (and the Destination Options before a Routing header) stay in every fragment.
      out[0] = next - o;
      out[1] = p - o;
    }
    nh = b[p];
    p = next;
  }
  return false;
}
