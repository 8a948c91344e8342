/**
 * Which peers may speak for a client: the CIDR list of `toa-proxy --trust`, normally the gateway's local
 * addresses. TOA from any other peer is ignored, because any host that reaches the real server directly can
 * put a kind-254 option in its own SYN (docs/toa.md, "What a decoder trusts").
 *
 * @module
 */
import { addressBytes } from "./sockaddr.ts";

/** One CIDR block: network bytes (4 or 16) and prefix length. */
export interface Cidr {
  /** Network address bytes, host bits cleared. */
  network: Uint8Array;
  /** Prefix length, 0..32 or 0..128. */
  prefix: number;
  /** The text it was parsed from, for logs. */
  text: string;
}

/** Parses `ADDR/LEN` or a bare address (a /32 or /128); throws an Error naming the bad entry. */
export function parseCidr(text: string): Cidr {
  const [addr, len, extra] = text.trim().split("/");
  const bytes = addressBytes(addr);
  if (bytes === null || extra !== undefined) {
    throw new Error(`${JSON.stringify(text)} is not ADDR/LEN with an IPv4 or IPv6 address`);
  }
  const max = bytes.length * 8;
  const prefix = len === undefined ? max : Number(len);
  if (len !== undefined && (!/^\d{1,3}$/.test(len) || prefix > max)) {
    throw new Error(`${JSON.stringify(text)}: prefix length must be 0..${max}`);
  }
  return { network: maskTo(bytes, prefix), prefix, text: text.trim() };
}

/** Parses a comma-separated CIDR list (`198.18.2.0/24,fd00:2::/64`); empty entries are errors. */
export function parseTrustList(text: string): Cidr[] {
  return text.split(",").map(parseCidr);
}

function maskTo(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = bytes.slice();
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] &= bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return out;
}

/** True when `address` (text or 4/16 bytes) lies inside `cidr`; families never match across. */
export function cidrContains(cidr: Cidr, address: string | Uint8Array): boolean {
  const bytes = typeof address === "string" ? addressBytes(address) : address;
  return bytes !== null && containsBytes(cidr, bytes);
}

/** {@link cidrContains} over bytes, allocating nothing: the prefix's whole bytes, then its last bits. */
function containsBytes(cidr: Cidr, bytes: Uint8Array): boolean {
  if (bytes.length !== cidr.network.length) return false;
  for (let i = 0, bits = cidr.prefix; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((bytes[i] & mask) !== cidr.network[i]) return false;
  }
  return true;
}

/**
 * Verdicts of {@link isTrusted} for address texts, per trust list. The peers of a real server are few (the
 * gateway's local addresses), and parsing one's text on every accepted connection cost 0.8 µs (IPv4) to
 * 3.6 µs (IPv6); a lookup is a hash of a short string. Bounded: a flood of distinct sources empties it.
 */
const verdicts = new WeakMap<readonly Cidr[], Map<string, boolean>>();
const VERDICTS_MAX = 4096;

/**
 * True when `address` lies inside any block of `trust`. Verdicts for texts are remembered per `trust` array,
 * which must not change once used (a proxy's list is fixed at start).
 */
export function isTrusted(trust: readonly Cidr[], address: string | Uint8Array): boolean {
  if (typeof address !== "string") return containedIn(trust, address);
  let known = verdicts.get(trust);
  if (known === undefined) verdicts.set(trust, known = new Map());
  let v = known.get(address);
  if (v === undefined) {
    const bytes = addressBytes(address);
    v = bytes !== null && containedIn(trust, bytes);
    if (known.size >= VERDICTS_MAX) known.clear();
    known.set(address, v);
  }
  return v;
}

function containedIn(trust: readonly Cidr[], bytes: Uint8Array): boolean {
  for (const c of trust) if (containsBytes(c, bytes)) return true;
  return false;
}
