/**
 * Socket addresses: the `ADDR:PORT` text of the command line, and the kernel's `sockaddr_in` /
 * `sockaddr_in6` bytes that bind, connect, accept and getpeername speak.
 *
 * ```
 * sockaddr_in  (16 bytes): family u16 (host order) | port u16 (network order) | IPv4 (4) | zero (8)
 * sockaddr_in6 (28 bytes): family u16 (host order) | port u16 (network order) | flowinfo u32 |
 *                          IPv6 (16) | scope id u32
 * ```
 *
 * An IPv4 peer of a dual-stack IPv6 listener arrives as `::ffff:a.b.c.d`; {@link readSockaddr} turns it
 * back into IPv4, so trust checks and PROXY headers see one form of each address.
 *
 * @module
 */
import { ipAddressBytes, parseIpAddress } from "../base/addr.ts";
import { formatIpv4 } from "../base/packet/ipv4.ts";
import { formatIpv6 } from "../base/packet/ipv6.ts";
import { AF_INET, AF_INET6 } from "../base/sys/libc.ts";

/** An address and port, in the form logs and PROXY headers use (same shape as `ToaAddress`). */
export interface SocketAddress {
  /** 4 or 6. */
  family: 4 | 6;
  /** Dotted-quad or RFC 5952 text. */
  address: string;
  /** TCP port. */
  port: number;
}

/** Room for the largest sockaddr we handle (`sockaddr_in6`). */
export const SOCKADDR_MAX = 28;

/** Address bytes of `text` (4 or 16), or null when it is no IPv4/IPv6 address. */
export function addressBytes(text: string): Uint8Array | null {
  const a = parseIpAddress(text);
  return a === null ? null : ipAddressBytes(a);
}

/** True when 16 address bytes are an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`). */
export function isV4Mapped(b: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 10; i++) if (b[off + i] !== 0) return false;
  return b[off + 10] === 0xff && b[off + 11] === 0xff;
}

/** Address text of 4 or 16 bytes; a v4-mapped IPv6 address comes back as IPv4. */
export function formatAddress(b: Uint8Array, off: number, len: 4 | 16): { family: 4 | 6; address: string } {
  if (len === 16 && !isV4Mapped(b, off)) return { family: 6, address: formatIpv6(b, off) };
  const o = len === 16 ? off + 12 : off;
  return {
    family: 4,
    address: formatIpv4(((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0),
  };
}

/**
 * Parses `ADDR:PORT` (`198.18.3.10:80`, `[fd00:3::10]:80`); throws an Error whose message says what is
 * wrong, for the CLI to prefix with the flag's name.
 */
export function parseHostPort(text: string): SocketAddress {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:\[\]]+):(\d+)$/.exec(text);
  if (!m) throw new Error(`expected ADDR:PORT or [IPV6]:PORT, got ${JSON.stringify(text)}`);
  const port = Number(m[2]);
  if (!/^(0|[1-9]\d{0,4})$/.test(m[2]) || port > 65535) {
    throw new Error(`port must be 0..65535, got ${JSON.stringify(m[2])}`);
  }
  const bytes = addressBytes(m[1]);
  const bracketed = text.startsWith("[");
  if (bytes === null || (bytes.length === 16) !== bracketed) {
    throw new Error(`expected an IPv4 address or a bracketed IPv6 address, got ${JSON.stringify(m[1])}`);
  }
  return { ...formatAddress(bytes, 0, bytes.length as 4 | 16), port, family: bytes.length === 4 ? 4 : 6 };
}

/** `ADDR:PORT` text of an address (`[v6]:port` for IPv6), as logs show it. */
export function formatHostPort(a: SocketAddress): string {
  return a.family === 6 ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** Encodes `a` as a `sockaddr_in`/`sockaddr_in6` (IPv6 text that is v4-mapped stays IPv6 here). */
export function encodeSockaddr(a: SocketAddress): Uint8Array {
  const bytes = addressBytes(a.address);
  if (bytes === null) throw new Error(`not an IP address: ${JSON.stringify(a.address)}`);
  const v6 = bytes.length === 16;
  const out = new Uint8Array(v6 ? 28 : 16);
  new DataView(out.buffer).setUint16(0, v6 ? AF_INET6 : AF_INET, true);
  out[2] = a.port >>> 8;
  out[3] = a.port & 255;
  out.set(bytes, v6 ? 8 : 4);
  return out;
}

/** Decodes a sockaddr the kernel wrote into `b`, or null for families other than IPv4/IPv6. */
export function readSockaddr(b: Uint8Array): SocketAddress | null {
  const family = b[0] | (b[1] << 8); // host order, little-endian on the ABIs we target
  const port = (b[2] << 8) | b[3];
  if (family === AF_INET) return { ...formatAddress(b, 4, 4), port };
  if (family === AF_INET6) return { ...formatAddress(b, 8, 16), port };
  return null;
}
