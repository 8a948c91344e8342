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
  if (bytes === null || bytes.length !== cidr.network.length) return false;
  const masked = maskTo(bytes, cidr.prefix);
  for (let i = 0; i < masked.length; i++) if (masked[i] !== cidr.network[i]) return false;
  return true;
}

/** True when `address` lies inside any block of `trust`. */
export function isTrusted(trust: readonly Cidr[], address: string | Uint8Array): boolean {
  for (const c of trust) if (cidrContains(c, address)) return true;
  return false;
}
