/**
 * IP addresses parsed once, at the edge (config, CLI), into a typed value: the family and four 32-bit words
 * in network order (IPv4 uses word 0; words 1–3 are 0), as smoltcp's `IpAddress`. Everything downstream —
 * engine tables, routes, stats labels, sockaddrs, PROXY headers — works from this value and never asks
 * whether a string contains a colon.
 *
 * @module
 */
import { formatIpv4, parseIpv4 } from "./packet/ipv4.ts";
import { formatIpv6, parseIpv6 } from "./packet/ipv6.ts";

/** An IPv4 or IPv6 address: family, four network-order words, canonical text. Structured-clonable. */
export interface IpAddress {
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** The address as four unsigned 32-bit words in network order; IPv4 fills word 0 only. */
  readonly words: readonly [number, number, number, number];
  /** Canonical text: dotted quad, or RFC 5952 compressed lowercase IPv6. */
  readonly text: string;
}

/** Parses IPv4 or IPv6 text; null when it is neither. */
export function parseIpAddress(text: string): IpAddress | null {
  const v4 = parseIpv4(text);
  if (v4 >= 0) return { family: 4, words: [v4, 0, 0, 0], text: formatIpv4(v4) };
  const b = parseIpv6(text);
  return b === null ? null : ipAddressFromBytes(b, 0, 16);
}

/** The address in `b[off, off + len)` (len 4 or 16), as it stands in a packet or a sockaddr. */
export function ipAddressFromBytes(b: Uint8Array, off: number, len: 4 | 16): IpAddress {
  const w = (i: number) =>
    ((b[off + i] << 24) | (b[off + i + 1] << 16) | (b[off + i + 2] << 8) | b[off + i + 3]) >>> 0;
  if (len === 4) {
    const v = w(0);
    return { family: 4, words: [v, 0, 0, 0], text: formatIpv4(v) };
  }
  return { family: 6, words: [w(0), w(4), w(8), w(12)], text: formatIpv6(b, off) };
}

/** The address's bytes in network order: 4 for IPv4, 16 for IPv6. */
export function ipAddressBytes(a: IpAddress): Uint8Array {
  const n = a.family === 4 ? 1 : 4;
  const out = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    const v = a.words[i];
    out[i * 4] = v >>> 24;
    out[i * 4 + 1] = (v >>> 16) & 255;
    out[i * 4 + 2] = (v >>> 8) & 255;
    out[i * 4 + 3] = v & 255;
  }
  return out;
}

/** True when both are the same address. */
export function ipAddressEquals(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.words[0] === b.words[0] && a.words[1] === b.words[1] &&
    a.words[2] === b.words[2] && a.words[3] === b.words[3];
}

/** `addr:port` as URLs and logs write it: `198.18.0.1:80`, `[fd00::1]:80`. */
export function hostPort(a: IpAddress, port: number): string {
  return a.family === 4 ? `${a.text}:${port}` : `[${a.text}]:${port}`;
}

/** The host route of the address: `a/32` or `a/128`. */
export function hostPrefix(a: IpAddress): string {
  return `${a.text}/${a.family === 4 ? 32 : 128}`;
}
