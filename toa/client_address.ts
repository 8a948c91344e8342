/**
 * The client address of an accepted connection: TOA from the saved SYN when the peer is trusted, otherwise
 * the peer itself. For servers built on our listener (toa/listener.ts) or on any socket whose listener had
 * `TCP_SAVE_SYN` set.
 *
 * The kernel keeps the SYN (IP header + TCP header, no payload) when the listener has `TCP_SAVE_SYN`, and
 * hands it out once through `getsockopt(TCP_SAVED_SYN)`. It keeps none when the connection was set up by a
 * SYN cookie (the SYN was not stored under SYN flood) — then the peer address is all there is.
 *
 * @example
 * ```ts
 * import { clientAddressOf, parseTrustList } from "./mod.ts";
 * const trust = parseTrustList("198.18.2.0/24");
 * // fd: an accepted socket of a listener with TCP_SAVE_SYN
 * declare const fd: number;
 * const { client, reason } = clientAddressOf(fd, trust);
 * console.log(`client=${client.address}:${client.port} via=${reason}`);
 * ```
 *
 * @module
 */
import { DEFAULT_TOA_KINDS, scanToa, type ToaKindSet } from "../base/packet/toa_option.ts";
import { errno, IPPROTO_TCP, libc, TCP_SAVED_SYN } from "../base/sys/libc.ts";
import { formatAddress, readSockaddr, SOCKADDR_MAX, type SocketAddress } from "./sockaddr.ts";
import { type Cidr, isTrusted } from "./trust.ts";

/** Why the announced client address is what it is; stable strings for logs and counters. */
export type ClientAddressReason =
  /** Trusted peer, TOA present: the client from TOA. */
  | "toa_trusted"
  /** TOA present but the peer is not trusted: the option is ignored, the peer is the client. */
  | "toa_untrusted_ignored"
  /** Trusted or not, the saved SYN carries no option of a TOA kind: the peer is the client. */
  | "no_toa"
  /** Trusted peer, but every option of a TOA kind was malformed (length, family): the peer is the client. */
  | "toa_malformed"
  /** The kernel saved no SYN (SYN cookie, or a listener without TCP_SAVE_SYN): the peer is the client. */
  | "no_saved_syn";

/** The address to announce for a connection, and why. */
export interface ClientAddress {
  /** The client: from TOA or the peer. */
  client: SocketAddress;
  /** The connection's peer as the kernel sees it. */
  peer: SocketAddress;
  /** Why `client` was chosen. */
  reason: ClientAddressReason;
  /** Malformed options of a TOA kind skipped in a trusted peer's SYN (a gateway bug); 0 otherwise. */
  malformedToa: number;
}

/** Largest saved SYN: IPv6 header with extension headers plus a 60-byte TCP header fits easily. */
const SAVED_SYN_MAX = 512;
const synBuf = new Uint8Array(SAVED_SYN_MAX);
const lenBuf = new Uint8Array(4);
const lenView = new DataView(lenBuf.buffer);
const addrBuf = new Uint8Array(SOCKADDR_MAX);

/**
 * The saved SYN of accepted socket `fd` (a view into a buffer reused by the next call: copy to keep), or
 * null when the kernel saved none. The kernel frees it on the first read, so a second call returns null.
 */
export function readSavedSyn(fd: number): Uint8Array | null {
  lenView.setUint32(0, SAVED_SYN_MAX, true);
  const r = libc().getsockopt(fd, IPPROTO_TCP, TCP_SAVED_SYN, synBuf, lenBuf);
  if (r !== 0) return null;
  const n = lenView.getUint32(0, true);
  return n === 0 ? null : synBuf.subarray(0, n);
}

/** The peer address of connected socket `fd`; throws with the errno when the call fails. */
export function peerAddressOf(fd: number): SocketAddress {
  return sockName(fd, true);
}

/** The local address of socket `fd`; throws with the errno when the call fails. */
export function localAddressOf(fd: number): SocketAddress {
  return sockName(fd, false);
}

function sockName(fd: number, peer: boolean): SocketAddress {
  lenView.setUint32(0, SOCKADDR_MAX, true);
  const lib = libc();
  const r = peer ? lib.getpeername(fd, addrBuf, lenBuf) : lib.getsockname(fd, addrBuf, lenBuf);
  const a = r === 0 ? readSockaddr(addrBuf) : null;
  if (a === null) throw new Error(`${peer ? "getpeername" : "getsockname"}(${fd}) failed (errno ${errno()})`);
  return a;
}

/**
 * Decides the client address from a saved SYN (or null) and the peer: TOA — an option of one of `kinds`,
 * default 253 and 254 — only when `peer` lies inside `trust`, the one rule that keeps a forged option from
 * any other host from changing anything. Malformed options are counted only for trusted peers: from anyone
 * else a TOA option is ignored whatever its shape.
 */
export function toaClientAddress(
  savedSyn: Uint8Array | null,
  peer: SocketAddress,
  trust: readonly Cidr[],
  kinds: ToaKindSet = DEFAULT_TOA_KINDS,
): ClientAddress {
  if (savedSyn === null) return { client: peer, peer, reason: "no_saved_syn", malformedToa: 0 };
  const { toa, malformed } = scanToa(savedSyn, kinds);
  if (toa === null && malformed === 0) return { client: peer, peer, reason: "no_toa", malformedToa: 0 };
  if (!isTrusted(trust, peer.address)) {
    return { client: peer, peer, reason: "toa_untrusted_ignored", malformedToa: 0 };
  }
  if (toa === null) return { client: peer, peer, reason: "toa_malformed", malformedToa: malformed };
  return {
    client: { family: toa.family, address: toa.address, port: toa.port },
    peer,
    reason: "toa_trusted",
    malformedToa: malformed,
  };
}

/** The client address of accepted socket `fd`: reads (and so consumes) its saved SYN, then decides. */
export function clientAddressOf(
  fd: number,
  trust: readonly Cidr[],
  kinds: ToaKindSet = DEFAULT_TOA_KINDS,
): ClientAddress {
  const syn = readSavedSyn(fd);
  return toaClientAddress(syn, peerAddressOf(fd), trust, kinds);
}

/** A TOA the sockops program recorded for a socket in the kernel (toa/bpf/sockops_toa.ts). */
export interface RecordedToa {
  /** Family of the client address. */
  family: 4 | 6;
  /** Client address bytes (4 or 16). */
  address: Uint8Array;
  /** Client port. */
  port: number;
  /** Where the kernel program found it: the handshake's ACK, or the saved SYN. */
  source: "ack" | "syn";
}

/** Where a connection's TOA can be looked up in the kernel, by accepted socket fd. */
export interface RecordedToaTable {
  /** The record of accepted socket `fd`, or null. */
  lookup(fd: number): RecordedToa | null;
}

/**
 * The client from a TOA the kernel recorded for the connection, or null when there is none — the same trust
 * rule as {@link toaClientAddress} (the kernel program applies it too): only a peer inside `trust` speaks for
 * a client, and only with a TOA of the connection's own family.
 */
export function recordedClientAddress(
  rec: RecordedToa | null,
  peer: SocketAddress,
  trust: readonly Cidr[],
): ClientAddress | null {
  if (rec === null || rec.family !== peer.family || !isTrusted(trust, peer.address)) return null;
  const { address } = formatAddress(rec.address, 0, rec.family === 4 ? 4 : 16);
  return {
    client: { family: rec.family, address, port: rec.port },
    peer,
    reason: "toa_trusted",
    malformedToa: 0,
  };
}
