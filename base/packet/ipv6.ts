/**
 * IPv6 header view (RFC 8200) and the walk over extension headers to the transport header.
 *
 * ```
 * |Version| Traffic Class |           Flow Label                  |
 * |         Payload Length        |  Next Header  |   Hop Limit   |
 * |                 Source Address (16 bytes, offset 8)           |
 * |              Destination Address (16 bytes, offset 24)        |
 * ```
 *
 * There is no header checksum; an address change is carried into the transport checksum by the caller with
 * {@link ipv6AddressSumDelta}.
 *
 * @module
 */
import { read16, write16 } from "./checksum.ts";

/** Length of the fixed IPv6 header. */
export const IPV6_HEADER_LEN = 40;
/** Next-header value of Hop-by-Hop Options. */
export const IPV6_EXT_HOP_BY_HOP = 0;
/** Next-header value of the Routing header. */
export const IPV6_EXT_ROUTING = 43;
/** Next-header value of the Fragment header. */
export const IPV6_EXT_FRAGMENT = 44;
/** Next-header value of the Authentication Header. */
export const IPV6_EXT_AH = 51;
/** Next-header value of Destination Options. */
export const IPV6_EXT_DEST_OPTS = 60;
/** Next-header value meaning no next header. */
export const IPV6_NO_NEXT_HEADER = 59;
/** Offset of the Payload Length field. */
export const IPV6_PAYLOAD_LENGTH = 4;
/** Offset of the Next Header field. */
export const IPV6_NEXT_HEADER = 6;
/** Offset of the Hop Limit field (no checksum covers it). */
export const IPV6_HOP_LIMIT = 7;
/** Offset of the source address (16 bytes). */
export const IPV6_SRC = 8;
/** Offset of the destination address (16 bytes). */
export const IPV6_DST = 24;

/** The Payload Length field: everything after the fixed 40-byte header. */
export function ipv6PayloadLength(b: Uint8Array, o: number): number {
  return read16(b, o + IPV6_PAYLOAD_LENGTH);
}

/** Sets the Payload Length field (IPv6 has no header checksum to fix). */
export function ipv6SetPayloadLength(b: Uint8Array, o: number, len: number): void {
  write16(b, o + IPV6_PAYLOAD_LENGTH, len);
}

/** The Next Header field of the fixed header. */
export function ipv6NextHeader(b: Uint8Array, o: number): number {
  return b[o + IPV6_NEXT_HEADER];
}

/** The Hop Limit field. */
export function ipv6HopLimit(b: Uint8Array, o: number): number {
  return b[o + IPV6_HOP_LIMIT];
}

/** Offset of the source address. */
export function ipv6SrcOffset(o: number): number {
  return o + IPV6_SRC;
}

/** Offset of the destination address. */
export function ipv6DstOffset(o: number): number {
  return o + IPV6_DST;
}

/** True when the 16 bytes at `aOff` in `a` equal the 16 bytes at `bOff` in `b`. */
export function ipv6AddressEquals(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < 16; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/**
 * The unfolded sum to add to a transport checksum when the 16-byte address at `oldOff` in `b` is replaced by
 * the one at `newOff` in `src` (ones-complement: add the new words and the complements of the old ones).
 * Apply it to a checksum with `applySumDelta` (checksum.ts).
 */
export function ipv6AddressSumDelta(b: Uint8Array, oldOff: number, src: Uint8Array, newOff: number): number {
  let s = 0;
  for (let i = 0; i < 16; i += 2) {
    s += (~((b[oldOff + i] << 8) | b[oldOff + i + 1]) & 0xffff) +
      ((src[newOff + i] << 8) | src[newOff + i + 1]);
  }
  return s;
}

/** Copies a 16-byte address from `src[srcOff]` into `b[dstOff]`. */
export function ipv6CopyAddress(b: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number): void {
  for (let i = 0; i < 16; i++) b[dstOff + i] = src[srcOff + i];
}

/** Parses IPv6 text (with `::` compression and an optional embedded IPv4 tail) into 16 bytes, or null. */
export function parseIpv6(text: string): Uint8Array | null {
  const out = new Uint8Array(16);
  let head = text;
  let tail = "";
  const dbl = text.indexOf("::");
  if (dbl >= 0) {
    if (text.indexOf("::", dbl + 1) >= 0) return null;
    head = text.slice(0, dbl);
    tail = text.slice(dbl + 2);
  }
  const words = (s: string): number[] | null => {
    if (s === "") return [];
    const r: number[] = [];
    const parts = s.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes(".")) {
        const q = p.split(".");
        if (q.length !== 4 || q.some((x) => !/^\d{1,3}$/.test(x) || Number(x) > 255)) return null;
        r.push(Number(q[0]) * 256 + Number(q[1]), Number(q[2]) * 256 + Number(q[3]));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
        r.push(parseInt(p, 16));
      }
    }
    return r;
  };
  const h = words(head);
  const t = words(tail);
  if (!h || !t) return null;
  if (dbl < 0 ? h.length !== 8 : h.length + t.length > 7) return null;
  h.forEach((w, i) => write16(out, i * 2, w));
  t.forEach((w, i) => write16(out, 16 - (t.length - i) * 2, w));
  return out;
}

/** Formats 16 address bytes as RFC 5952 text (longest zero run compressed). */
export function formatIpv6(b: Uint8Array, off = 0): string {
  const w: number[] = [];
  for (let i = 0; i < 16; i += 2) w.push(read16(b, off + i));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(":");
  if (bestStart < 0) return hex(w);
  return `${hex(w.slice(0, bestStart))}::${hex(w.slice(bestStart + bestLen))}`;
}
