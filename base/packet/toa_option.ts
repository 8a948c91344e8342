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
 * IPv6 form, 20 bytes: kind, len 20, port (2 bytes), IPv6 address (16 bytes). dpvs writes it with kind
 * 254; Alibaba Cloud's and Huawei Cloud's load balancers with kind 253.
 * ```
 *
 * Both lengths are multiples of 4, so the option is inserted without padding. The gateway writes kind 254;
 * a decoder takes any kind of its {@link ToaKindSet} (default 253 and 254), in the packet's own family's
 * form. It trusts the option only on connections whose peer is one of the gateway's local addresses (see
 * docs/toa.md).
 *
 * @module
 */
import { read16, read32, write16, write32 } from "./checksum.ts";
import { formatIpv4 } from "./ipv4.ts";
import { formatIpv6 } from "./ipv6.ts";
import { PacketInfo } from "./packet_info.ts";
import { IPPROTO_TCP } from "./ipv4.ts";
import { classifyPacket, PACKET_LENGTH_MISMATCH, PACKET_OK, PACKET_OPTION_OVERFLOW } from "./validate.ts";
import {
  TCP_MIN_HEADER_LEN,
  tcpHeaderLength,
  tcpNextOption,
  tcpNopOption,
  tcpOptionsWellFormed,
} from "./tcp.ts";

/** TCP option kind of TOA: the one the gateway writes (toa.ko, dpvs), both forms. */
export const TCPOPT_TOA = 254;
/** TCP option kind of the IPv6 TOA of Alibaba Cloud's and Huawei Cloud's load balancers (20 bytes). */
export const TCPOPT_TOA_ALT = 253;
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

/**
 * The TCP option kinds a decoder takes as TOA. Each kind carries either form, told by the length (8: IPv4,
 * 20: IPv6); any other length is malformed. Built by {@link toaKindSet}; read `has[kind]`.
 */
export interface ToaKindSet {
  /** The kinds, ascending. */
  readonly kinds: readonly number[];
  /** 256 entries: 1 for a kind of the set. */
  readonly has: Uint8Array;
}

/**
 * Kinds that are never TOA: EOL, NOP and the options a client's own stack puts in a SYN (MSS, window scale,
 * SACK, timestamps, MD5, MPTCP, TCP-AO, TFO). A decoder told to take one would count every SYN as malformed.
 */
const NOT_TOA: Readonly<Record<number, string>> = {
  0: "end of option list",
  1: "NOP",
  2: "MSS",
  3: "window scale",
  4: "SACK permitted",
  5: "SACK",
  8: "timestamps",
  19: "TCP MD5",
  29: "TCP-AO",
  30: "MPTCP",
  34: "TCP Fast Open",
};

/**
 * The set of `kinds` (integers 0..255, each at most once); throws a RangeError naming the first kind that
 * cannot be TOA (a standard option, out of range, twice).
 *
 * @example
 * ```ts
 * const kinds = toaKindSet([254, 253, 252]);
 * console.log(kinds.has[252] === 1);
 * ```
 */
export function toaKindSet(kinds: readonly number[]): ToaKindSet {
  if (kinds.length === 0) throw new RangeError("expected at least one option kind");
  const has = new Uint8Array(256);
  for (const k of kinds) {
    if (!Number.isInteger(k) || k < 0 || k > 255) throw new RangeError(`${k} is no TCP option kind (0..255)`);
    if (NOT_TOA[k] !== undefined) throw new RangeError(`${k} is the ${NOT_TOA[k]} option, not TOA`);
    if (has[k]) throw new RangeError(`${k} given twice`);
    has[k] = 1;
  }
  return { kinds: [...kinds].sort((a, b) => a - b), has };
}

/**
 * What a decoder takes by default: 254 (toa.ko and dpvs, both forms) and 253 (Alibaba's and Huawei's IPv6
 * form). The gateway strips both from what clients send ({@link nopToaOptions}), so neither can be forged
 * through it.
 */
export const DEFAULT_TOA_KINDS: ToaKindSet = toaKindSet([TCPOPT_TOA, TCPOPT_TOA_ALT]);

/**
 * NOPs every option of a default TOA kind (253, 254) in the TCP header at `o`, in one walk; returns how many.
 * The gateway's strip: no sender may choose the address a decoder believes.
 */
export function nopToaOptions(b: Uint8Array, o: number): number {
  let n = 0;
  for (let p = tcpNextOption(b, o, -1); p >= 0; p = tcpNextOption(b, o, p)) {
    const k = b[p];
    if (k === TCPOPT_TOA || k === TCPOPT_TOA_ALT) {
      tcpNopOption(b, o, p);
      n++;
    }
  }
  return n;
}

/**
 * The TOA family of the option at `optOff` by its length: 4, 6, or 0 when its kind is not in `kinds`
 * (default 253, 254) or its length is neither form.
 */
export function toaOptionFamily(b: Uint8Array, optOff: number, kinds = DEFAULT_TOA_KINDS): 0 | 4 | 6 {
  if (kinds.has[b[optOff]] !== 1) return 0;
  const len = b[optOff + 1];
  return len === TOA_V4_LEN ? 4 : len === TOA_V6_LEN ? 6 : 0;
}

/**
 * Decodes the TOA option at `optOff` (kind and length already in the buffer), or null when it is none of
 * `kinds` (default 253, 254) or of neither length.
 */
export function readToaOption(b: Uint8Array, optOff: number, kinds = DEFAULT_TOA_KINDS): ToaAddress | null {
  const family = toaOptionFamily(b, optOff, kinds);
  if (family === 4) {
    const a = ((b[optOff + 4] << 24) | (b[optOff + 5] << 16) | (b[optOff + 6] << 8) | b[optOff + 7]) >>> 0;
    return { family, address: formatIpv4(a), port: read16(b, optOff + 2) };
  }
  if (family === 6) return { family, address: formatIpv6(b, optOff + 4), port: read16(b, optOff + 2) };
  return null;
}

/** What {@link scanToa} found in a SYN: the TOA to use, and how many options of a TOA kind it had to skip. */
export interface ToaScan {
  /** The first option of a TOA kind with its packet's family's length (8 in IPv4, 20 in IPv6), or null. */
  toa: ToaAddress | null;
  /**
   * Options of a TOA kind skipped as malformed: a length of neither form, or the other family's form. A
   * broken option list (an option running past the header, a length below 2) counts as one, and yields no
   * TOA.
   */
  malformed: number;
}

/**
 * Finds TOA — an option of one of `kinds` (default 253 and 254) — in an IP packet that holds a TCP
 * header, typically a SYN saved by the kernel with TCP_SAVE_SYN, whose bytes stop after the TCP header
 * while the IP length counts any payload; counts the options of those kinds it skipped. Like toa.ko, an option of the
 * wrong length is passed over and a later valid one taken; unlike toa.ko, a broken option list yields nothing
 * (half a header is no address to believe). A valid form of the other IP family is skipped too: the gateway
 * never changes the family (docs/toa.md).
 */
export function scanToa(syn: Uint8Array, kinds = DEFAULT_TOA_KINDS): ToaScan {
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
    if (kinds.has[syn[p]] !== 1) continue;
    if (toaOptionFamily(syn, p, kinds) === info.family) {
      return { toa: readToaOption(syn, p, kinds), malformed };
    }
    malformed++;
  }
  return { toa: null, malformed };
}

/**
 * Finds and decodes TOA of one of `kinds` (default 253, 254) in an IP packet that holds a TCP header (see
 * {@link scanToa}). Returns null when the bytes are no sound IPv4/IPv6 TCP packet or carry no valid TOA of
 * the packet's family.
 */
export function decodeToa(syn: Uint8Array, kinds = DEFAULT_TOA_KINDS): ToaAddress | null {
  return scanToa(syn, kinds).toa;
}
