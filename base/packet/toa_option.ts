/**
 * The TOA TCP option ("TCP option address"): the client's address and port that a FULLNAT gateway puts into
 * the segments it forwards to a real server, whose peer address is otherwise the gateway's local address.
 *
 * ```
 * IPv4 form (alibaba/LVS toa.ko, dpvs), 8 bytes:
 * +--------+--------+-----------------+-----------------------------------+
 * | kind   | len=8  | client port     | client IPv4 address               |
 * | 254    |        | (network order) | (network order)                   |
 * +--------+--------+-----------------+-----------------------------------+
 *
 * IPv6 form (dpvs), 20 bytes: kind 254, len 20, port (2 bytes), IPv6 address (16 bytes).
 * ```
 *
 * Both lengths are multiples of 4, so the option is inserted without padding. A decoder trusts the option
 * only on connections whose peer is one of the gateway's local addresses (see docs/toa.md).
 *
 * @module
 */
import { read16, read32, write16, write32 } from "./checksum.ts";
import { formatIpv4 } from "./ipv4.ts";
import { formatIpv6 } from "./ipv6.ts";
import { PacketInfo } from "./packet_info.ts";
import { IPPROTO_TCP } from "./ipv4.ts";
import { classifyPacket, PACKET_LENGTH_MISMATCH, PACKET_OK, PACKET_OPTION_OVERFLOW } from "./validate.ts";
import { TCP_MIN_HEADER_LEN, tcpHeaderLength, tcpNextOption, tcpOptionsWellFormed } from "./tcp.ts";

/** TCP option kind of TOA. */
export const TCPOPT_TOA = 254;
/** Length of the IPv4 TOA option. */
export const TOA_V4_LEN = 8;
/** Length of the IPv6 TOA option. */
export const TOA_V6_LEN = 20;

/** A client address carried in TOA, in the form servers and logs use. */
export interface ToaAddress {
  /** 4 or 6. */
  family: 4 | 6;
  /** Dotted-quad or RFC 5952 text. */
  address: string;
  /** Client TCP port. */
  port: number;
}

/**
 * Writes the TOA option of `family` (4: 8 bytes, 6: 20 bytes) at `b[off]` with the address held as words
 * `words[wOff…]` (IPv4: one word), as the gateway's connection table keeps it; returns the option length.
 */
export function writeToaWords(
  b: Uint8Array,
  off: number,
  family: number,
  port: number,
  words: Uint32Array,
  wOff: number,
): number {
  const len = family === 4 ? TOA_V4_LEN : TOA_V6_LEN;
  b[off] = TCPOPT_TOA;
  b[off + 1] = len;
  write16(b, off + 2, port);
  for (let k = 0; k < (len - 4) >>> 2; k++) write32(b, off + 4 + k * 4, words[wOff + k]);
  return len;
}

/** Scratch words for the byte- and number-taking writers below, which go through {@link writeToaWords}. */
const scratchWords = new Uint32Array(4);

/** Writes an IPv4 TOA option (8 bytes) at `b[off]`; `addr` is an unsigned 32-bit address. */
export function writeToaV4(b: Uint8Array, off: number, port: number, addr: number): void {
  scratchWords[0] = addr;
  writeToaWords(b, off, 4, port, scratchWords, 0);
}

/** Writes an IPv6 TOA option (20 bytes) at `b[off]`, the address taken from `addr[addrOff…addrOff+16]`. */
export function writeToaV6(
  b: Uint8Array,
  off: number,
  port: number,
  addr: Uint8Array,
  addrOff: number,
): void {
  for (let k = 0; k < 4; k++) scratchWords[k] = read32(addr, addrOff + k * 4);
  writeToaWords(b, off, 6, port, scratchWords, 0);
}

/** The TOA family of the option at `optOff` by its length: 4, 6, or 0 when it is no valid TOA. */
export function toaOptionFamily(b: Uint8Array, optOff: number): 0 | 4 | 6 {
  if (b[optOff] !== TCPOPT_TOA) return 0;
  const len = b[optOff + 1];
  return len === TOA_V4_LEN ? 4 : len === TOA_V6_LEN ? 6 : 0;
}

/** Decodes the TOA option at `optOff` (kind and length already in the buffer), or null when invalid. */
export function readToaOption(b: Uint8Array, optOff: number): ToaAddress | null {
  const family = toaOptionFamily(b, optOff);
  if (family === 4) {
    const a = ((b[optOff + 4] << 24) | (b[optOff + 5] << 16) | (b[optOff + 6] << 8) | b[optOff + 7]) >>> 0;
    return { family, address: formatIpv4(a), port: read16(b, optOff + 2) };
  }
  if (family === 6) return { family, address: formatIpv6(b, optOff + 4), port: read16(b, optOff + 2) };
  return null;
}

/** What {@link scanToa} found in a SYN: the TOA to use, and how many kind-254 options it had to skip. */
export interface ToaScan {
  /** The first kind-254 option of the packet's own IP family's length (8 in IPv4, 20 in IPv6), or null. */
  toa: ToaAddress | null;
  /**
   * Kind-254 options skipped as malformed: a length of neither form, or the other family's form. A broken
   * option list (an option running past the header, a length below 2) counts as one, and yields no TOA.
   */
  malformed: number;
}

/**
 * Finds TOA in an IP packet that holds a TCP header — typically a SYN saved by the kernel with TCP_SAVE_SYN,
 * whose bytes stop after the TCP header while the IP length counts any payload — and counts the kind-254
 * options it skipped. Like toa.ko, a kind-254 option of the wrong length is passed over and a later valid one
 * taken; unlike toa.ko, a broken option list yields nothing (half a header is no address to believe). A
 * valid form of the other IP family is skipped too: the gateway never changes the family (docs/toa.md).
 */
export function scanToa(syn: Uint8Array): ToaScan {
  const info = new PacketInfo();
  let r = classifyPacket(syn, 0, syn.length, info);
  if (r === PACKET_LENGTH_MISMATCH) r = classifyPacket(syn, 0, syn.length, info, true);
  // classifyPacket walks the option list: a broken one is a malformed header, not "no TOA".
  if (r === PACKET_OPTION_OVERFLOW) return { toa: null, malformed: 1 };
  if (r !== PACKET_OK || info.l4Proto !== IPPROTO_TCP) return { toa: null, malformed: 0 };
  const o = info.l4Off;
  if (info.end - o < TCP_MIN_HEADER_LEN) return { toa: null, malformed: 0 };
  // A saved SYN is classified as a quote, which checks neither the data offset nor the options: check both
  // here as for a whole packet, so a cut SYN is believed no more than the same SYN whole.
  const hl = tcpHeaderLength(syn, o);
  if (hl < TCP_MIN_HEADER_LEN || o + hl > info.end) return { toa: null, malformed: 0 };
  if (!tcpOptionsWellFormed(syn, o)) return { toa: null, malformed: 1 };
  let malformed = 0;
  for (let p = tcpNextOption(syn, o, -1); p >= 0; p = tcpNextOption(syn, o, p)) {
    if (syn[p] !== TCPOPT_TOA) continue;
    if (toaOptionFamily(syn, p) === info.family) return { toa: readToaOption(syn, p), malformed };
    malformed++;
  }
  return { toa: null, malformed };
}

/**
 * Finds and decodes TOA in an IP packet that holds a TCP header (see {@link scanToa}). Returns null when the
 * bytes are no sound IPv4/IPv6 TCP packet or carry no valid TOA of the packet's family.
 */
export function decodeToa(syn: Uint8Array): ToaAddress | null {
  return scanToa(syn).toa;
}
