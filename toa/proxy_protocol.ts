/**
 * PROXY protocol versions 1 and 2: the header a relay sends before any data to tell the server the original
 * connection's endpoints. Follows HAProxy's specification (doc/proxy-protocol.txt), sections 2.1 and 2.2.
 *
 * ```
 * v1, one US-ASCII line, at most 107 bytes with the CRLF:
 *   "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"     (TCP6 likewise; "PROXY UNKNOWN…\r\n")
 *
 * v2, 16-byte header then the address block:
 *  0                                            12       13       14       16
 * +---------------------------------------------+--------+--------+--------+----------------------+
 * | signature 0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A | ver|cmd | fam|tr | length | addresses [+ TLVs]   |
 * +---------------------------------------------+--------+--------+--------+----------------------+
 *   ver|cmd: 0x21 PROXY, 0x20 LOCAL.  fam|tr: 0x11 TCP4, 0x21 TCP6, 0x12/0x22 UDP, 0x31/0x32 UNIX, 0x00.
 *   TCP4 block (12): src addr 4, dst addr 4, src port 2, dst port 2.  TCP6 block (36): 16, 16, 2, 2.
 *   TLVs after the block: type 1 byte, length 2 bytes (network order), value.
 * ```
 *
 * Decoders never throw on input: they return `incomplete` (read more) or `invalid` with a reason (abort the
 * connection, as the specification requires).
 *
 * @module
 */
import { type IpAddress, ipAddressBytes, ipAddressFromBytes, parseIpAddress } from "../base/addr.ts";

/** The 12-byte v2 signature. */
export const PROXY_V2_SIGNATURE: Uint8Array = new Uint8Array([
  13,
  10,
  13,
  10,
  0,
  13,
  10,
  0x51,
  0x55,
  0x49,
  0x54,
  10,
]);
/** Longest v1 line a receiver must accept, CRLF included. */
export const PROXY_V1_MAX_LEN = 107;
/** Length of the fixed v2 header before the address block. */
export const PROXY_V2_HEADER_LEN = 16;

/** One end of a proxied connection. */
export interface ProxyEndpoint {
  /** Dotted-quad or IPv6 text, of the header's family. */
  address: string;
  /** Port, 0..65535. */
  port: number;
}

/** A v2 type-length-value extension. */
export interface ProxyTlv {
  /** Type byte (0x01 ALPN, 0x02 AUTHORITY, 0x04 NOOP, 0x20 SSL, …). */
  type: number;
  /** Value bytes, at most 65535. */
  value: Uint8Array;
}

/** A decoded or to-be-encoded PROXY header. */
export type ProxyHeader =
  | {
    /** Relayed connection with known endpoints (v1 TCP4/TCP6, v2 PROXY over INET/INET6). */
    command: "proxy";
    /** Address family of both endpoints. */
    family: 4 | 6;
    /** Transport; v1 knows only stream (TCP). */
    transport: "stream" | "dgram";
    /** The original client. */
    source: ProxyEndpoint;
    /** The address the client connected to. */
    destination: ProxyEndpoint;
    /** v2 extensions (ignored by v1). */
    tlvs?: ProxyTlv[];
  }
  | {
    /**
     * `local`: v2 LOCAL, a connection the proxy made on its own (health checks); `unknown`: v1 UNKNOWN or a
     * v2 PROXY header with a family/transport the receiver should not use. Either way the receiver uses the
     * real connection's endpoints.
     */
    command: "local" | "unknown";
    /** v2 extensions (ignored by v1). */
    tlvs?: ProxyTlv[];
  };

/** Result of a decoder: a header and the bytes it took, or more bytes needed, or a reason to abort. */
export type ProxyDecodeResult =
  | { status: "ok"; header: ProxyHeader; length: number; version: 1 | 2 }
  | { status: "incomplete" }
  | { status: "invalid"; reason: string };

const enc = new TextEncoder();

/**
 * The v1 line for `h`. A `local` header becomes `PROXY UNKNOWN\r\n` (v1 has no LOCAL; the specification
 * gives UNKNOWN that meaning); a `dgram` transport cannot be said in v1 and throws.
 */
export function encodeProxyV1(h: ProxyHeader): Uint8Array {
  return enc.encode(proxyV1Line(h));
}

/** The v1 line for `h`, as text (see {@link encodeProxyV1}). */
export function proxyV1Line(h: ProxyHeader): string {
  if (h.command !== "proxy") return "PROXY UNKNOWN\r\n";
  if (h.transport !== "stream") throw new Error("PROXY v1 carries TCP only");
  const src = canonicalAddress(h.source.address, h.family);
  const dst = canonicalAddress(h.destination.address, h.family);
  checkPort(h.source.port);
  checkPort(h.destination.port);
  return `PROXY TCP${h.family} ${src} ${dst} ${h.source.port} ${h.destination.port}\r\n`;
}

/**
 * Writes the v1 line of a TCP connection into `out` from index 0 and returns its length, with no string or
 * array made on the way: the relay's per-connection path (toa/relay.ts), where {@link encodeProxyV1}'s parse,
 * check and TextEncoder cost more than the line. It checks nothing: `src` and `dst` must be canonical text of
 * `family` (what toa/sockaddr.ts `formatAddress` writes), the ports 0..65535, and `out` hold
 * {@link PROXY_V1_MAX_LEN} bytes; on such input the bytes equal {@link encodeProxyV1}'s.
 */
export function writeProxyV1Tcp(
  out: Uint8Array,
  family: 4 | 6,
  src: string,
  dst: string,
  srcPort: number,
  dstPort: number,
): number {
  // "PROXY TCP4 " / "PROXY TCP6 ", byte by byte: TypedArray set() of 11 bytes costs more (a runtime call).
  const prefix = family === 4 ? V1_TCP4 : V1_TCP6;
  let p = 0;
  for (; p < prefix.length; p++) out[p] = prefix[p];
  p = writeAscii(out, p, src);
  out[p++] = 0x20;
  p = writeAscii(out, p, dst);
  out[p++] = 0x20;
  p = writeDecimal(out, p, srcPort);
  out[p++] = 0x20;
  p = writeDecimal(out, p, dstPort);
  out[p++] = 0x0d;
  out[p++] = 0x0a;
  return p;
}

const V1_TCP4 = enc.encode("PROXY TCP4 ");
const V1_TCP6 = enc.encode("PROXY TCP6 ");

function writeAscii(out: Uint8Array, p: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[p++] = s.charCodeAt(i);
  return p;
}

/** Writes `n` (0..65535) in decimal without leading zeros. */
function writeDecimal(out: Uint8Array, p: number, n: number): number {
  let div = 10000;
  while (div > 1 && n < div) div /= 10;
  for (; div >= 1; div /= 10) {
    const d = Math.floor(n / div);
    out[p++] = 0x30 + d;
    n -= d * div;
  }
  return p;
}

/** The v2 header for `h`: LOCAL with an empty address block, or PROXY with the TCP/UDP address block. */
export function encodeProxyV2(h: ProxyHeader): Uint8Array {
  const tlvs = h.tlvs ?? [];
  const tlvLen = tlvs.reduce((n, t) => n + 3 + t.value.length, 0);
  let famByte = 0x00;
  let addrLen = 0;
  if (h.command === "proxy") {
    famByte = (h.family === 4 ? 0x10 : 0x20) | (h.transport === "stream" ? 0x01 : 0x02);
    addrLen = h.family === 4 ? 12 : 36;
  }
  const len = addrLen + tlvLen;
  if (len > 0xffff) throw new Error("PROXY v2 address block and TLVs exceed 65535 bytes");
  const out = new Uint8Array(PROXY_V2_HEADER_LEN + len);
  out.set(PROXY_V2_SIGNATURE);
  // "unknown" is the PROXY command with AF_UNSPEC: relayed, but with nothing the receiver should use.
  out[12] = h.command === "local" ? 0x20 : 0x21;
  out[13] = famByte;
  out[14] = len >>> 8;
  out[15] = len & 255;
  let p = PROXY_V2_HEADER_LEN;
  if (h.command === "proxy") {
    const n = h.family === 4 ? 4 : 16;
    out.set(addressBytesOf(h.source.address, h.family), p);
    out.set(addressBytesOf(h.destination.address, h.family), p + n);
    checkPort(h.source.port);
    checkPort(h.destination.port);
    p += 2 * n;
    out[p++] = h.source.port >>> 8;
    out[p++] = h.source.port & 255;
    out[p++] = h.destination.port >>> 8;
    out[p++] = h.destination.port & 255;
  }
  for (const t of tlvs) {
    out[p++] = t.type;
    out[p++] = t.value.length >>> 8;
    out[p++] = t.value.length & 255;
    out.set(t.value, p);
    p += t.value.length;
  }
  return out;
}

/**
 * Decodes a v1 or v2 header at the start of `b`, telling the versions apart by their first bytes. A receiver
 * configured for the PROXY protocol must not guess whether a header is present: anything else is `invalid`.
 */
export function decodeProxyHeader(b: Uint8Array): ProxyDecodeResult {
  if (b.length > 0 && b[0] === 0x0d) return decodeProxyV2(b);
  return decodeProxyV1(b);
}

const V1_PREFIX = enc.encode("PROXY ");

/** Decodes a v1 line at the start of `b` (section 2.1). */
export function decodeProxyV1(b: Uint8Array): ProxyDecodeResult {
  for (let i = 0; i < V1_PREFIX.length; i++) {
    if (i >= b.length) return { status: "incomplete" };
    if (b[i] !== V1_PREFIX[i]) return { status: "invalid", reason: "no PROXY v1 signature" };
  }
  let end = -1;
  const limit = Math.min(b.length, PROXY_V1_MAX_LEN);
  for (let i = 0; i < limit; i++) {
    if (b[i] === 0x0d) {
      // Its LF would be byte 108 or later: the line is too long, whatever follows (section 2.1).
      if (i + 2 > PROXY_V1_MAX_LEN) break;
      if (i + 1 >= b.length) break;
      if (b[i + 1] !== 0x0a) return { status: "invalid", reason: "CR without LF" };
      end = i;
      break;
    }
    if (b[i] === 0x0a) return { status: "invalid", reason: "LF without CR" };
  }
  if (end < 0) {
    return b.length >= PROXY_V1_MAX_LEN
      ? { status: "invalid", reason: "no CRLF within 107 bytes" }
      : { status: "incomplete" };
  }
  const line = new TextDecoder().decode(b.subarray(0, end));
  const length = end + 2;
  const parts = line.split(" ");
  // UNKNOWN: "the receiver must ignore anything presented before the CRLF".
  if (parts[1] === "UNKNOWN") return { status: "ok", header: { command: "unknown" }, length, version: 1 };
  if (parts.length !== 6) return { status: "invalid", reason: "expected 6 space-separated fields" };
  const [, proto, src, dst, sport, dport] = parts;
  if (proto !== "TCP4" && proto !== "TCP6") return { status: "invalid", reason: `bad protocol ${proto}` };
  const family = proto === "TCP4" ? 4 : 6;
  const srcText = parseV1Address(src, family);
  const dstText = parseV1Address(dst, family);
  if (srcText === null || dstText === null) return { status: "invalid", reason: `bad ${proto} address` };
  const sp = parseV1Port(sport);
  const dp = parseV1Port(dport);
  if (sp < 0 || dp < 0) return { status: "invalid", reason: "bad port" };
  return {
    status: "ok",
    header: {
      command: "proxy",
      family,
      transport: "stream",
      source: { address: srcText, port: sp },
      destination: { address: dstText, port: dp },
    },
    length,
    version: 1,
  };
}

/** Decodes a v2 header at the start of `b` (section 2.2). */
export function decodeProxyV2(b: Uint8Array): ProxyDecodeResult {
  for (let i = 0; i < PROXY_V2_SIGNATURE.length; i++) {
    if (i >= b.length) return { status: "incomplete" };
    if (b[i] !== PROXY_V2_SIGNATURE[i]) return { status: "invalid", reason: "no PROXY v2 signature" };
  }
  if (b.length < PROXY_V2_HEADER_LEN) return { status: "incomplete" };
  const ver = b[12] >>> 4;
  const cmd = b[12] & 15;
  if (ver !== 2) return { status: "invalid", reason: `version ${ver}` };
  if (cmd > 1) return { status: "invalid", reason: `command ${cmd}` };
  const fam = b[13] >>> 4;
  const tr = b[13] & 15;
  if (fam > 3 || tr > 2) return { status: "invalid", reason: `family/transport 0x${b[13].toString(16)}` };
  const len = (b[14] << 8) | b[15];
  const length = PROXY_V2_HEADER_LEN + len;
  if (b.length < length) return { status: "incomplete" };
  const block = b.subarray(PROXY_V2_HEADER_LEN, length);
  const addrLen = tr === 0 ? 0 : [0, 12, 36, 216][fam];
  if (block.length < addrLen) return { status: "invalid", reason: "address block shorter than its family" };
  const tlvs = decodeTlvs(block.subarray(addrLen));
  if (tlvs === null) return { status: "invalid", reason: "TLV overruns the header" };
  // LOCAL: "the receiver must ... discard the protocol block including the family".
  if (cmd === 0) return { status: "ok", header: { command: "local", tlvs }, length, version: 2 };
  if ((fam !== 1 && fam !== 2) || tr === 0) {
    return { status: "ok", header: { command: "unknown", tlvs }, length, version: 2 };
  }
  const n = fam === 1 ? 4 : 16;
  const fmt = (o: number) => ipAddressFromBytes(block, o, n).text;
  return {
    status: "ok",
    header: {
      command: "proxy",
      family: fam === 1 ? 4 : 6,
      transport: tr === 1 ? "stream" : "dgram",
      source: { address: fmt(0), port: (block[2 * n] << 8) | block[2 * n + 1] },
      destination: { address: fmt(n), port: (block[2 * n + 2] << 8) | block[2 * n + 3] },
      tlvs,
    },
    length,
    version: 2,
  };
}

function decodeTlvs(b: Uint8Array): ProxyTlv[] | null {
  const out: ProxyTlv[] = [];
  for (let p = 0; p < b.length;) {
    if (p + 3 > b.length) return null;
    const n = (b[p + 1] << 8) | b[p + 2];
    if (p + 3 + n > b.length) return null;
    out.push({ type: b[p], value: b.slice(p + 3, p + 3 + n) });
    p += 3 + n;
  }
  return out;
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port ${port}`);
}

function addressOf(text: string, family: 4 | 6): IpAddress {
  const a = parseIpAddress(text);
  if (a?.family !== family) throw new Error(`not an IPv${family} address: ${JSON.stringify(text)}`);
  return a;
}

function addressBytesOf(text: string, family: 4 | 6): Uint8Array {
  return ipAddressBytes(addressOf(text, family));
}

/** The canonical text the v1 line requires (no leading zeros in IPv4; compressed lowercase IPv6). */
function canonicalAddress(text: string, family: 4 | 6): string {
  return addressOf(text, family).text;
}

function parseV1Address(text: string, family: 4 | 6): string | null {
  if (family === 4) {
    // "Heading zeroes are not permitted in front of numbers" (octal confusion).
    if (!/^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/.test(text)) return null;
  } else if (!/^[0-9a-fA-F:]+$/.test(text)) return null; // hex groups and colons only: no dotted tail, no zone
  const a = parseIpAddress(text);
  return a?.family === family ? a.text : null;
}

function parseV1Port(text: string): number {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return -1;
  const n = Number(text);
  return n > 65535 ? -1 : n;
}
