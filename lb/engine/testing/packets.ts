/**
 * Test-only packet builder for engine tests: IPv4/IPv6 TCP, UDP and ICMP packets with chosen options and
 * correct checksums (computed with base/packet's full checksum, which the scapy fixture tests prove), in a
 * buffer with room to grow, as the TUN loop provides.
 *
 * @module
 */
import { write16, write32 } from "../../../base/packet/checksum.ts";
import { type IpAddress, parseIpAddress } from "../../../base/addr.ts";
import { ipv4FillChecksum, parseIpv4 } from "../../../base/packet/ipv4.ts";
import { PacketInfo } from "../../../base/packet/packet_info.ts";
import { fillTransportChecksum } from "../../../base/packet/transport_checksum.ts";
import { classifyPacket, PACKET_OK } from "../../../base/packet/validate.ts";

/** Capacity of every buffer the builder returns (as the TUN loop's read buffer). */
export const BUF_SIZE = 2048;

/** A TCP segment's description. */
export interface TcpSpec {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  flags: number;
  window?: number;
  /** Raw option bytes (padded by the builder with EOL to a multiple of 4). */
  options?: number[];
  payload?: Uint8Array;
}

/** The address of `text`; a test that writes a bad one fails here, not with a garbled packet. */
function addr(text: string): IpAddress {
  const a = parseIpAddress(text);
  if (a === null) throw new Error(`not an IP address: ${JSON.stringify(text)}`);
  return a;
}

function isV6(text: string): boolean {
  return addr(text).family === 6;
}

function writeIp(b: Uint8Array, src: string, dst: string, proto: number, l4Len: number): number {
  if (isV6(src)) {
    write32(b, 0, 0x60000000);
    write16(b, 4, l4Len);
    b[6] = proto;
    b[7] = 64;
    addr(src).words.forEach((w, i) => write32(b, 8 + i * 4, w));
    addr(dst).words.forEach((w, i) => write32(b, 24 + i * 4, w));
    return 40;
  }
  b[0] = 0x45;
  write16(b, 2, 20 + l4Len);
  write16(b, 4, 0x1234);
  write16(b, 6, 0x4000);
  b[8] = 64;
  b[9] = proto;
  write32(b, 12, parseIpv4(src));
  write32(b, 16, parseIpv4(dst));
  ipv4FillChecksum(b, 0);
  return 20;
}

/** Fills the transport checksum of the packet in `b[0, len)`. */
export function finish(b: Uint8Array, len: number): void {
  const info = new PacketInfo();
  const r = classifyPacket(b, 0, len, info);
  if (r !== PACKET_OK) throw new Error(`builder made an invalid packet (${r})`);
  fillTransportChecksum(b, info);
}

/** Builds a TCP segment; returns the buffer (capacity BUF_SIZE) and the used length. */
export function tcp(s: TcpSpec): { b: Uint8Array; len: number } {
  const b = new Uint8Array(BUF_SIZE);
  const opts = s.options ?? [];
  const optLen = (opts.length + 3) & ~3;
  const payload = s.payload ?? new Uint8Array(0);
  const l4Len = 20 + optLen + payload.length;
  const ip = writeIp(b, s.src, s.dst, 6, l4Len);
  write16(b, ip, s.sport);
  write16(b, ip + 2, s.dport);
  write32(b, ip + 4, s.seq ?? 0);
  write32(b, ip + 8, s.ack ?? 0);
  b[ip + 12] = ((20 + optLen) >>> 2) << 4;
  b[ip + 13] = s.flags;
  write16(b, ip + 14, s.window ?? 65535);
  b.set(opts, ip + 20);
  b.set(payload, ip + 20 + optLen);
  const len = ip + l4Len;
  finish(b, len);
  return { b, len };
}

/** Builds a UDP datagram (in a buffer of `size` bytes: BUF_SIZE, or more for a datagram to fragment). */
export function udp(
  src: string,
  dst: string,
  sport: number,
  dport: number,
  payload: Uint8Array,
  size = BUF_SIZE,
) {
  const b = new Uint8Array(size);
  const ip = writeIp(b, src, dst, 17, 8 + payload.length);
  write16(b, ip, sport);
  write16(b, ip + 2, dport);
  write16(b, ip + 4, 8 + payload.length);
  b.set(payload, ip + 8);
  const len = ip + 8 + payload.length;
  finish(b, len);
  return { b, len };
}

/** Builds an ICMP (IPv4) or ICMPv6 message with the given type, code, 4 rest-of-header bytes and body. */
export function icmp(
  src: string,
  dst: string,
  type: number,
  code: number,
  rest: number,
  body: Uint8Array,
  size = BUF_SIZE,
) {
  const b = new Uint8Array(size);
  const v6 = isV6(src);
  const ip = writeIp(b, src, dst, v6 ? 58 : 1, 8 + body.length);
  b[ip] = type;
  b[ip + 1] = code;
  write32(b, ip + 4, rest);
  b.set(body, ip + 8);
  const len = ip + 8 + body.length;
  finish(b, len);
  return { b, len };
}

/** MSS option bytes. */
export function optMss(mss: number): number[] {
  return [2, 4, mss >>> 8, mss & 255];
}

/** Timestamp option bytes. */
export function optTimestamp(val: number, echo: number): number[] {
  return [
    8,
    10,
    val >>> 24,
    (val >>> 16) & 255,
    (val >>> 8) & 255,
    val & 255,
    echo >>> 24,
    (echo >>> 16) & 255,
    (echo >>> 8) & 255,
    echo & 255,
  ];
}

/** SACK option bytes for [left, right) pairs. */
export function optSack(blocks: [number, number][]): number[] {
  const out = [5, 2 + blocks.length * 8];
  for (const [l, r] of blocks) {
    for (const v of [l, r]) out.push(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
  }
  return out;
}

/** IPv4 TOA option bytes (a forged one, in client tests). */
export function optToa4(port: number, addr: string): number[] {
  const a = parseIpv4(addr);
  return [254, 8, port >>> 8, port & 255, a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255];
}
