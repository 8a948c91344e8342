/**
 * A seeded fuzzer for `Engine.process` (lb/engine/engine.ts), after Envoy's PROXY fuzzer and Katran's
 * fixtures: packets in, invariants checked by oracles that share no code with base/packet.
 *
 * ```
 * seed ─► PRNG ─► packet kind (SYN, segment, UDP, echo, ICMP error, no service, random bytes; both directions,
 *                 IPv4 and IPv6, over connections the fuzzer learned from earlier outputs)
 *              ─► mutation (bit flips, byte sets, truncation, trailing bytes, length-field lies, TCP option
 *                 soup), checksums re-fixed or not, partial checksum (offload) or complete
 *              ─► Engine.process(b, len, now, csumPartial) ─► oracles ─► classified violations
 * ```
 *
 * The oracles: process never throws; the result is 0 (a drop), a length within the buffer, or −(owner+1)
 * for another worker's packet, left untouched; a packet out re-parses; its IPv4 header checksum is right; its
 * transport checksum is right when the input's was (an incremental update keeps a bad one bad, and a
 * translated ICMP error must not make a bad one good); with offload the field holds the folded pseudo-header
 * sum, uncomplemented, as the kernel's CHECKSUM_PARTIAL expects; a generated reply is always complete; TOA
 * (kind 254) appears at most once toward a real server, carrying the client's true address and port, and
 * never toward a client; the connection table stays within its share of maxConnections; the drop counters
 * grow by exactly one for each packet dropped (returned 0, or refused with a generated RST or unreachable).
 *
 * Every violation gets a class (such as `partial-checksum:tcp:client-toa`) so a test can allow known
 * defects by class, and a reproducer: seed, index, engine, csumPartial and the input's bytes in hex. The
 * engine's state matters, so a reproducer from a run replays exactly with the same seed and count.
 *
 * @module
 */
import { type Timeouts, validateConfig } from "../../lb/config.ts";
import * as C from "../../lb/engine/counters.ts";
import { Engine } from "../../lb/engine/engine.ts";
import { icmp, tcp, udp } from "../../lb/engine/testing/packets.ts";
import { prng, Rand } from "../helpers/prng.ts";

// ---------------------------------------------------------------------------------------------------------
// An independent parser and checksum (RFC 791, RFC 8200, RFC 1071): nothing from base/packet.

/** RFC 1071 sum of `b[from, to)` added to `seed`, not folded (exact in a double up to 2^53). */
export function rfc1071Sum(b: Uint8Array, from: number, to: number, seed = 0): number {
  let s = seed;
  let i = from;
  for (; i + 1 < to; i += 2) s += (b[i] << 8) | b[i + 1];
  if (i < to) s += b[i] << 8;
  return s;
}

/** Folds a sum to 16 bits with end-around carry. */
export function fold16(s: number): number {
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

/** Where the layers of a packet are, as this file's own parser finds them. */
export interface Layers {
  /** 4 or 6. */
  family: 4 | 6;
  /** IPv4 header length (20 for IPv6, extension headers not counted). */
  ipHeaderLen: number;
  /** Offset of the transport header. */
  l4Off: number;
  /** Transport protocol. */
  proto: number;
  /** One past the last byte the IP length fields cover. */
  end: number;
}

/**
 * Parses the IP layer of `b[0, len)`: IPv4 with options, IPv6 with hop-by-hop, routing, destination
 * options, AH and atomic fragment headers. Null when the bytes are no whole, unfragmented IP packet.
 */
export function parseLayers(b: Uint8Array, len: number): Layers | null {
  if (len < 1) return null;
  const v = b[0] >> 4;
  if (v === 4) {
    if (len < 20) return null;
    const ihl = (b[0] & 15) * 4;
    const total = (b[2] << 8) | b[3];
    if (ihl < 20 || total < ihl || total > len) return null;
    if ((((b[6] << 8) | b[7]) & 0x3fff) !== 0) return null; // MF or an offset: a fragment
    return { family: 4, ipHeaderLen: ihl, l4Off: ihl, proto: b[9], end: total };
  }
  if (v === 6) {
    if (len < 40) return null;
    const end = 40 + ((b[4] << 8) | b[5]);
    if (end > len || end === 40 && b[6] === 0) return null;
    let nh = b[6];
    let p = 40;
    for (let n = 0; n < 9; n++) {
      if (nh === 0 || nh === 43 || nh === 60 || nh === 51) {
        if (p + 2 > end) return null;
        const hl = nh === 51 ? (b[p + 1] + 2) * 4 : (b[p + 1] + 1) * 8;
        nh = b[p];
        p += hl;
      } else if (nh === 44) {
        if (p + 8 > end || (((b[p + 2] << 8) | b[p + 3]) & 0xfff9) !== 0) return null;
        nh = b[p];
        p += 8;
      } else {
        return p > end ? null : { family: 6, ipHeaderLen: 40, l4Off: p, proto: nh, end };
      }
      if (p > end) return null;
    }
    return null;
  }
  return null;
}

/** Sum of the pseudo-header (RFC 793 / RFC 8200 §8.1) for the transport bytes of `l`. */
export function pseudoSum(b: Uint8Array, l: Layers): number {
  const l4Len = l.end - l.l4Off;
  if (l.family === 4) return rfc1071Sum(b, 12, 20, l.proto + l4Len);
  return rfc1071Sum(b, 8, 40, l.proto + (l4Len >>> 16) + (l4Len & 0xffff));
}

/** Offset of the transport checksum field, or -1 when the protocol has none this file checks. */
export function checksumAt(l: Layers): number {
  if (l.proto === 6) return l.end - l.l4Off >= 20 ? l.l4Off + 16 : -1;
  if (l.proto === 17) return l.end - l.l4Off >= 8 ? l.l4Off + 6 : -1;
  const icmpProto = l.family === 4 ? 1 : 58;
  if (l.proto === icmpProto) return l.end - l.l4Off >= 8 ? l.l4Off + 2 : -1;
  return -1;
}

/** A transport checksum's state: verified, wrong, absent (IPv4 UDP zero) or not checkable. */
export type SumState = "good" | "bad" | "none" | "n/a";

/** The complete transport checksum of `l`: the sum over pseudo-header and segment must fold to 0xffff. */
export function completeState(b: Uint8Array, l: Layers): SumState {
  const at = checksumAt(l);
  if (at < 0) return "n/a";
  if (l.family === 4 && l.proto === 17 && b[at] === 0 && b[at + 1] === 0) return "none";
  const seed = l.family === 4 && l.proto === 1 ? 0 : pseudoSum(b, l);
  return fold16(rfc1071Sum(b, l.l4Off, l.end, seed)) === 0xffff ? "good" : "bad";
}

/** The partial transport checksum of `l` (TCP, UDP): the field is the folded pseudo-header sum. */
export function partialState(b: Uint8Array, l: Layers): SumState {
  if (l.proto !== 6 && l.proto !== 17) return "n/a";
  const at = checksumAt(l);
  if (at < 0) return "n/a";
  const field = (b[at] << 8) | b[at + 1];
  // 0x0000 and 0xffff are the same one's-complement number; either completes to the same checksum.
  return field % 0xffff === fold16(pseudoSum(b, l)) % 0xffff ? "good" : "bad";
}

/** Writes a correct IPv4 header checksum, when the packet is IPv4. */
export function fixIpv4Checksum(b: Uint8Array, len: number): void {
  if (len < 20 || b[0] >> 4 !== 4) return;
  const ihl = (b[0] & 15) * 4;
  if (ihl < 20 || ihl > len) return;
  b[10] = b[11] = 0;
  const c = ~fold16(rfc1071Sum(b, 0, ihl)) & 0xffff;
  b[10] = c >> 8;
  b[11] = c & 255;
}

/** Writes a correct complete transport checksum (or, with `partial`, the partial form) where one exists. */
export function fixTransportChecksum(b: Uint8Array, len: number, partial: boolean): void {
  const l = parseLayers(b, len);
  if (l === null) return;
  const at = checksumAt(l);
  if (at < 0) return;
  const icmp4 = l.family === 4 && l.proto === 1;
  if (partial && !icmp4) {
    const p = fold16(pseudoSum(b, l));
    b[at] = p >> 8;
    b[at + 1] = p & 255;
    return;
  }
  b[at] = b[at + 1] = 0;
  let c = ~fold16(rfc1071Sum(b, l.l4Off, l.end, icmp4 ? 0 : pseudoSum(b, l))) & 0xffff;
  if (c === 0 && l.proto === 17) c = 0xffff; // UDP sends a computed zero as all ones
  b[at] = c >> 8;
  b[at + 1] = c & 255;
}

/** IPv4 header checksum verified over the header. */
export function ipv4HeaderOk(b: Uint8Array, l: Layers): boolean {
  return l.family !== 4 || fold16(rfc1071Sum(b, 0, l.ipHeaderLen)) === 0xffff;
}

/** The TCP options of the segment at `l`, walked here: offsets of each option of `kind`, or null if broken. */
export function findTcpOptions(b: Uint8Array, l: Layers, kind: number): number[] | null {
  if (l.proto !== 6 || l.end - l.l4Off < 20) return null;
  const hl = (b[l.l4Off + 12] >> 4) * 4;
  if (hl < 20 || l.l4Off + hl > l.end) return null;
  const out: number[] = [];
  const end = l.l4Off + hl;
  for (let p = l.l4Off + 20; p < end;) {
    const k = b[p];
    if (k === 0) break;
    if (k === 1) {
      p++;
      continue;
    }
    if (p + 1 >= end || b[p + 1] < 2 || p + b[p + 1] > end) return null;
    if (k === kind) out.push(p);
    p += b[p + 1];
  }
  return out;
}

/** Lowercase hex of `b[0, len)`. */
export function toHex(b: Uint8Array, len = b.length): string {
  let s = "";
  for (let i = 0; i < len; i++) s += b[i].toString(16).padStart(2, "0");
  return s;
}

/** Bytes of a hex string, in a buffer of `size` bytes (room for the engine to grow the packet). */
export function fromHex(hex: string, size = 2048): { b: Uint8Array; len: number } {
  const clean = hex.replace(/\s+/g, "");
  const b = new Uint8Array(Math.max(size, clean.length / 2));
  for (let i = 0; i < clean.length; i += 2) b[i / 2] = parseInt(clean.slice(i, i + 2), 16);
  return { b, len: clean.length / 2 };
}

// ---------------------------------------------------------------------------------------------------------
// The engines under test.

/** Addresses of the fuzzed configuration. */
export const FUZZ_ADDR = {
  clients4: ["198.18.1.2", "198.18.1.3", "198.18.66.66"],
  clients6: ["fd00:1::2", "fd00:1::3"],
  router4: "198.18.1.1",
  router6: "fd00:1::1",
  vip4: "198.18.0.100",
  vip4b: "198.18.0.101",
  vip6: "fd00::100",
  locals4: ["198.18.2.1", "198.18.2.2"],
  local6: "fd00:2::1",
  rs4: ["198.18.3.10", "198.18.3.11"],
  rs6: "fd00:3::10",
  other4: "203.0.113.9",
} as const;

/** A service of the fuzzed configuration. */
interface Svc {
  vip: string;
  port: number;
  proto: 6 | 17;
  toa: boolean;
}

const A = FUZZ_ADDR;
/** The services, in config order. */
export const FUZZ_SERVICES: readonly Svc[] = [
  { vip: A.vip4, port: 80, proto: 6, toa: true },
  { vip: A.vip6, port: 80, proto: 6, toa: true },
  { vip: A.vip4, port: 53, proto: 17, toa: false },
  { vip: A.vip4, port: 81, proto: 6, toa: false },
  { vip: A.vip6, port: 53, proto: 17, toa: false },
  { vip: A.vip4b, port: 80, proto: 6, toa: true },
];

/** A named engine setup the fuzzer drives. */
export interface EngineSetup {
  /** Name shown in reproducers. */
  name: string;
  /** Extra config keys. */
  config: Record<string, unknown>;
  /** This engine's worker index. */
  worker: number;
  /** Generated replies per second. */
  replyRate: number;
}

/** The setups: one worker with small tables; two workers (hand-offs), a small MTU, a tight reply rate. */
export const SETUPS: readonly EngineSetup[] = [
  { name: "one-worker", config: { maxConnections: 64, portRange: [2000, 2047] }, worker: 0, replyRate: 200 },
  {
    name: "two-workers",
    config: { workers: 2, maxConnections: 48, portRange: [3000, 3063], mtu: 576 },
    worker: 1,
    replyRate: 20,
  },
  // The `auto` SYN proxy on from the first half-open entry: SYNs answered with cookies, ACKs checked.
  {
    name: "synproxy",
    config: { maxConnections: 64, portRange: [4000, 4047], synproxyThreshold: 1 },
    worker: 0,
    replyRate: 200,
  },
];

/** The validated config of a setup: the services above, with the setup's extra keys. */
export function fuzzConfig(extra: Record<string, unknown> = {}) {
  return validateConfig({
    tun: "fz0",
    localAddresses: [...A.locals4, A.local6],
    services: [
      {
        vip: A.vip4,
        port: 80,
        protocol: "tcp",
        scheduler: "rr",
        toa: true,
        realServers: [{ address: A.rs4[0], port: 80 }, { address: A.rs4[1], port: 8080 }],
      },
      { vip: A.vip6, port: 80, scheduler: "wrr", realServers: [{ address: A.rs6, port: 80 }] },
      {
        vip: A.vip4,
        port: 53,
        protocol: "udp",
        scheduler: "rr",
        realServers: [{ address: A.rs4[0], port: 5353 }],
      },
      { vip: A.vip4, port: 81, toa: false, scheduler: "lc", realServers: [{ address: A.rs4[1], port: 81 }] },
      {
        vip: A.vip6,
        port: 53,
        protocol: "udp",
        scheduler: "sh",
        realServers: [{ address: A.rs6, port: 53 }],
      },
      { vip: A.vip4b, port: 80, scheduler: "mh", realServers: [{ address: A.rs4[1], port: 80 }] },
    ],
    ...extra,
  });
}

/**
 * A deterministic engine for a setup (fixed ISN secret, epoch and port-ring starts, so runs replay); `Ctor` lets a test run a
 * deliberately broken subclass to prove the oracles notice.
 */
export function fuzzEngine(setup: EngineSetup, now = 1000, Ctor: typeof Engine = Engine): Engine {
  const random = prng(0x5eed + setup.worker);
  return new Ctor(fuzzConfig(setup.config), {
    random: () => random() / 0x100000000,
    now,
    worker: setup.worker,
    epoch: 0,
    isnSecret: new Uint32Array([1, 2, 3, 4]),
    replyRate: setup.replyRate,
  });
}

// ---------------------------------------------------------------------------------------------------------
// Oracles.

/** One broken invariant. */
export interface Violation {
  /** The class: the invariant, the protocol, and a cause tag where one is known. */
  cls: string;
  /** What was seen. */
  detail: string;
}

/** What the oracles need to know about the input beyond its bytes. */
export interface CaseInput {
  /** The input bytes, copied before processing. */
  input: Uint8Array;
  /** Input length. */
  len: number;
  /** The offload flag passed to process. */
  csumPartial: boolean;
}

const protoName = (p: number) =>
  p === 6 ? "tcp" : p === 17 ? "udp" : p === 1 ? "icmp" : p === 58 ? "icmpv6" : `proto${p}`;

/**
 * When the engine's output is the first of several IPv6 fragments (a datagram larger than the MTU, which the
 * gateway fragments itself: routers do not), collects the rest with `nextOutput`, checks each fragment fits
 * the MTU and the offsets line up, and writes the datagram they carry back into `b`; returns its length, or
 * a violation text. Any other output is returned as it is. The walk is this file's own (RFC 8200 §4).
 */
function joinIpv6Fragments(e: Engine, b: Uint8Array, ret: number): number | string {
  if (ret < 48 || b[0] >> 4 !== 6) return ret;
  let nhAt = 6;
  let p = 40;
  const word = (x: Uint8Array, at: number) => (x[at] << 8) | x[at + 1];
  // Past the headers before a Fragment header, and past an atomic fragment's (offset 0, M = 0) the input had.
  for (let n = 0; n < 9; n++) {
    const nh = b[nhAt];
    const atomic = nh === 44 && p + 8 <= ret && word(b, p + 2) === 0;
    if (nh !== 0 && nh !== 43 && nh !== 60 && !atomic) break;
    if (p + 2 > ret) return ret;
    nhAt = p;
    p += nh === 44 ? 8 : (b[p + 1] + 1) * 8;
  }
  if (b[nhAt] !== 44 || p + 8 > ret) return ret;
  if (word(b, p + 2) !== 1) return ret; // not the first of several fragments
  const unfrag = p;
  const next = b[p];
  const id = ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]) >>> 0;
  const head = b.slice(0, unfrag);
  const parts: Uint8Array[] = [b.slice(unfrag + 8, ret)];
  let expect = ret - unfrag - 8;
  let more = true;
  const f = new Uint8Array(b.length);
  for (let k = 0; more; k++) {
    if (k > 64) return "more than 64 fragments";
    const n = e.nextOutput(f);
    if (n === 0) return "fragments end before one without M";
    if (n > e.config.mtu) return `fragment of ${n} bytes over the MTU ${e.config.mtu}`;
    if (f[nhAt] !== 44 || f[unfrag] !== next) return "fragments disagree on their headers";
    const fid = ((f[unfrag + 4] << 24) | (f[unfrag + 5] << 16) | (f[unfrag + 6] << 8) | f[unfrag + 7]) >>> 0;
    if (fid !== id) return "fragments carry different ids";
    const off = word(f, unfrag + 2) & 0xfff8;
    if (off !== expect) return `fragment at ${off}, expected ${expect}`;
    more = (word(f, unfrag + 2) & 1) === 1;
    parts.push(f.slice(unfrag + 8, n));
    expect += n - unfrag - 8;
  }
  if (e.nextOutput(f) !== 0) return "a fragment after the last";
  if (ret > e.config.mtu) return `first fragment of ${ret} bytes over the MTU ${e.config.mtu}`;
  b.set(head, 0);
  b[nhAt] = next;
  let at = unfrag;
  for (const x of parts) {
    b.set(x, at);
    at += x.length;
  }
  b[4] = (at - 40) >> 8;
  b[5] = (at - 40) & 0xff;
  return at;
}

function sumDrops(e: Engine): number {
  let s = 0;
  for (const v of e.counters.drops) s += v;
  return s;
}

function addrEq(a: Uint8Array, ao: number, b: Uint8Array, bo: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

/** True when the address at `b[off]` (family `fam`) is one of the fuzzed configuration's real servers. */
function isRealServer(b: Uint8Array, off: number, fam: 4 | 6): boolean {
  if (fam === 4) {
    const a = `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
    return (A.rs4 as readonly string[]).includes(a);
  }
  // fd00:3::10
  const want = [0xfd, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
  for (let i = 0; i < 16; i++) if (b[off + i] !== want[i]) return false;
  return true;
}

/** What {@link checkPacket} found. */
export interface PacketVerdict {
  /** What process returned (NaN when it threw); for IPv6 fragments the engine cut, the datagram's length. */
  ret: number;
  /** The broken invariants. */
  violations: Violation[];
  /**
   * The output is a reply the engine built, not a forwarded packet. Not `Engine.generated` alone: that also
   * marks a forwarded datagram the engine cut into IPv6 fragments (their checksums are complete), which is
   * a forwarded packet for the NAT model all the same.
   */
  generated: boolean;
}

/**
 * Runs one packet through `e` and checks every invariant. `b` holds the packet in `b[0, len)` (and room to
 * grow); it is processed in place. Returns the result of process (NaN when it threw) and the violations.
 */
export function checkPacket(
  e: Engine,
  b: Uint8Array,
  len: number,
  now: number,
  csumPartial: boolean,
): PacketVerdict {
  const v: Violation[] = [];
  const input = b.slice(0, len);
  const inL = parseLayers(input, len);
  // What the input is, for the oracles and for cause tags.
  let inState: SumState = "n/a";
  let inInnerIpOk = true;
  let echo = false;
  let clientToa = false;
  let inIpOk = true;
  if (inL !== null) {
    inIpOk = ipv4HeaderOk(input, inL);
    inState = csumPartial && (inL.proto === 6 || inL.proto === 17)
      ? partialState(input, inL)
      : completeState(input, inL);
    const icmpProto = inL.family === 4 ? 1 : 58;
    if (inL.proto === icmpProto && inL.end - inL.l4Off >= 8) {
      echo = input[inL.l4Off] === (inL.family === 4 ? 8 : 128);
      const q = inL.l4Off + 8;
      if (inL.family === 4 && inL.end - q >= 20 && input[q] >> 4 === 4) {
        const ihl = (input[q] & 15) * 4;
        inInnerIpOk = ihl < 20 || q + ihl > inL.end || fold16(rfc1071Sum(input, q, q + ihl)) === 0xffff;
      }
    }
    const toas = findTcpOptions(input, inL, 254);
    clientToa = toas !== null && toas.length > 0;
  }
  const drops0 = sumDrops(e);
  const held0 = e.counters.events[C.EV_FRAG_HELD];
  const cookies0 = e.counters.events[C.EV_SYNCOOKIE_SENT];
  const kept0 = e.counters.events[C.EV_SYNPROXY_KEPT];
  const noSpace0 = e.counters.events[C.EV_TOA_NO_SPACE];
  let ret: number;
  try {
    ret = e.process(b, len, now, csumPartial);
  } catch (err) {
    v.push({ cls: "throws", detail: String((err as Error)?.stack ?? err) });
    return { ret: NaN, violations: v, generated: false };
  }
  const dDrops = sumDrops(e) - drops0;
  const max = Math.ceil(e.config.maxConnections / e.workers);
  if (e.conns.size > max) v.push({ cls: "conn-table-size", detail: `size ${e.conns.size} > ${max}` });
  if (!Number.isInteger(ret) || ret > b.length) {
    v.push({ cls: "length", detail: `returned ${ret} (buffer ${b.length})` });
    return { ret, violations: v, generated: false };
  }
  if (ret < 0) {
    const owner = -ret - 1;
    if (e.workers < 2 || owner >= e.workers || owner === e.worker) {
      v.push({ cls: "length", detail: `hand-off to worker ${owner} of ${e.workers} (this is ${e.worker})` });
    }
    if (!addrEq(b, 0, input, 0, len)) v.push({ cls: "handoff-modified", detail: "bytes changed" });
    if (dDrops !== 0) v.push({ cls: "drop-overcounted", detail: `hand-off counted ${dDrops} drops` });
    return { ret, violations: v, generated: false };
  }
  if (ret === 0) {
    // A fragment held for the rest of its datagram, and a segment the SYN proxy keeps until its server side
    // is open, are the 0s that are no drop: counted as frag_held and synproxy_kept.
    const dHeld = e.counters.events[C.EV_FRAG_HELD] - held0 + e.counters.events[C.EV_SYNPROXY_KEPT] - kept0;
    if (dDrops + dHeld !== 1) {
      const tag = echo ? ":echo" : "";
      v.push({
        cls: dDrops < 1 ? `drop-uncounted${tag}` : `drop-overcounted${tag}`,
        detail: `returned 0, drop counters moved by ${dDrops}`,
      });
    }
    return { ret, violations: v, generated: false };
  }
  // A packet out: a datagram the engine sent as IPv6 fragments is judged whole.
  const joined = joinIpv6Fragments(e, b, ret);
  if (typeof joined === "string") {
    v.push({ cls: "ipv6-fragments", detail: joined });
    return { ret, violations: v, generated: e.generated };
  }
  // `generated` also marks fragments the engine cut (complete checksums, no offload, for the worker): for a
  // joined datagram, a reply is what goes back to the input's sender.
  const wasCut = joined !== ret;
  ret = joined;
  const generated = wasCut && inL !== null
    ? addrEq(b, inL.family === 4 ? 16 : 24, input, inL.family === 4 ? 12 : 8, inL.family === 4 ? 4 : 16)
    : e.generated;
  const out = parseLayers(b, ret);
  if (ret < 20 || out === null) {
    v.push({ cls: "reparse", detail: `output of ${ret} bytes does not parse` });
    return { ret, violations: v, generated };
  }
  const p = protoName(out.proto);
  const trailing = inL === null ? 0 : len - inL.end;
  if (ret - out.end !== (generated || wasCut ? 0 : trailing)) {
    v.push({ cls: "ip-length", detail: `IP length ${out.end}, returned ${ret}, input trailer ${trailing}` });
  }
  // The kernel checks an IPv4 header before it routes the packet into the TUN: only a good one must stay good.
  if (inIpOk && !ipv4HeaderOk(b, out)) {
    v.push({ cls: "ipv4-header-checksum", detail: `${generated ? "reply" : p}` });
  }
  const isEchoReply = out.proto === (out.family === 4 ? 1 : 58) &&
    b[out.l4Off] === (out.family === 4 ? 0 : 129);
  // A SYN answered with a cookie is served, not refused: no drop. It is the SYN+ACK to the SYN's sender.
  const cookie = e.counters.events[C.EV_SYNCOOKIE_SENT] - cookies0 === 1;
  const wantDrops = generated && !isEchoReply && !cookie ? 1 : 0;
  if (cookie && inL !== null) {
    const srcOff = inL.family === 4 ? 12 : 8;
    const dstOff = out.family === 4 ? 16 : 24;
    const n = inL.family === 4 ? 4 : 16;
    const seq = ((input[inL.l4Off + 4] << 24) | (input[inL.l4Off + 5] << 16) | (input[inL.l4Off + 6] << 8) |
      input[inL.l4Off + 7]) >>> 0;
    const ack = ((b[out.l4Off + 8] << 24) | (b[out.l4Off + 9] << 16) | (b[out.l4Off + 10] << 8) |
      b[out.l4Off + 11]) >>> 0;
    if (
      !generated || out.proto !== 6 || b[out.l4Off + 13] !== 0x12 || ack !== ((seq + 1) >>> 0) ||
      !addrEq(b, dstOff, input, srcOff, n)
    ) v.push({ cls: "syncookie-reply", detail: "not a SYN+ACK acknowledging the SYN, to its sender" });
  }
  if (dDrops !== wantDrops) {
    v.push({
      cls: dDrops < wantDrops ? "drop-uncounted" : "drop-overcounted",
      detail: `${generated ? "reply" : "forwarded"} ${p}: drop counters moved by ${dDrops}`,
    });
  }
  const tag = clientToa && !generated ? ":client-toa" : "";
  if (generated) {
    const s = completeState(b, out);
    if (echo && inState === "bad") {
      // A host verifies an echo request's checksum and drops a bad one (Linux icmp_rcv); answering it with
      // an incrementally updated (so still bad) reply is the engine's own choice, reported apart.
      v.push({ cls: `reply-to-bad-checksum:${p}`, detail: "echo request with a bad checksum answered" });
    } else if (s === "bad" || s === "n/a") {
      const at = checksumAt(out);
      const field = at < 0 ? -1 : (b[at] << 8) | b[at + 1];
      const zero = at >= 0 && fold16(rfc1071Sum(b, out.l4Off, out.end) - field) === 0 ? ":all-zero" : "";
      v.push({
        cls: `reply-checksum:${p}${zero}`,
        detail: `reply checksum field 0x${field.toString(16)} is wrong`,
      });
    }
  } else if (csumPartial && (out.proto === 6 || out.proto === 17)) {
    if (inState === "good" && partialState(b, out) !== "good") {
      const at = checksumAt(out);
      const field = (b[at] << 8) | b[at + 1];
      const want = fold16(pseudoSum(b, out));
      v.push({
        cls: `partial-checksum:${p}${tag}`,
        detail: `partial field 0x${field.toString(16)}, pseudo-header sum 0x${want.toString(16)}`,
      });
    }
  } else if (!csumPartial) {
    const s = completeState(b, out);
    if ((inState === "good" || inState === "none") && s === "bad") {
      v.push({ cls: `checksum-broken:${p}${tag}`, detail: "good checksum in, bad out" });
    } else if (inState === "bad" && s === "good") {
      v.push({ cls: `checksum-laundered:${p}`, detail: "bad checksum in, good out" });
    } else if (inState === "none" && s === "none" && out.proto !== 17) {
      v.push({ cls: `checksum-broken:${p}`, detail: "zero checksum out" });
    }
  }
  // A translated ICMP error: the quoted IPv4 header stays as sound as it came.
  if (!generated && out.family === 4 && out.proto === 1 && inInnerIpOk) {
    const q = out.l4Off + 8;
    if (out.end - q >= 20 && b[q] >> 4 === 4) {
      const ihl = (b[q] & 15) * 4;
      if (ihl >= 20 && q + ihl <= out.end && fold16(rfc1071Sum(b, q, q + ihl)) !== 0xffff) {
        v.push({ cls: "quoted-ipv4-checksum", detail: "quoted IPv4 header checksum broken" });
      }
    }
  }
  // TOA: once toward a real server, with the client's tuple; never toward a client.
  if (out.proto === 6) {
    const toas = findTcpOptions(b, out, 254);
    const dstOff = out.family === 4 ? 16 : 24;
    const towardServer = !generated && isRealServer(b, dstOff, out.family);
    if (toas === null) {
      v.push({ cls: "tcp-options-broken", detail: "output TCP options do not walk" });
    } else if (!towardServer) {
      if (toas.length > 0) {
        // Tagged when the input carried as many: a server's own option 254 passed through, not inserted.
        const tag = inL !== null && findTcpOptions(input, inL, 254)?.length === toas.length
          ? ":from-server"
          : "";
        v.push({ cls: `toa-toward-client${tag}`, detail: `${toas.length} TOA option(s)` });
      }
    } else if (toas.length > 1) {
      v.push({ cls: "toa-duplicate", detail: `${toas.length} TOA options` });
    } else if (toas.length === 1 && inL !== null) {
      const t = toas[0];
      const n = out.family === 4 ? 4 : 16;
      const srcOff = inL.family === 4 ? 12 : 8;
      const ok = b[t + 1] === 4 + n && b[t + 2] === input[inL.l4Off] && b[t + 3] === input[inL.l4Off + 1] &&
        addrEq(b, t + 4, input, srcOff, n);
      if (!ok) {
        v.push({
          cls: "toa-wrong-address",
          detail: `TOA ${toHex(b.subarray(t, t + b[t + 1]))}, client ${
            toHex(input.subarray(srcOff, srcOff + n))
          }`,
        });
      }
    }
    // A SYN that also carries ACK, RST or FIN is no connection request: the engine makes no handshake edits
    // to it (RST and FIN win, as IPVS's tcp_state_idx; docs/engine.md), and no Linux peer takes it as one.
    const syn = (b[out.l4Off + 13] & 0x17) === 0x02;
    if (toas !== null && towardServer && syn && inL !== null) {
      // A SYN to a TOA service carries TOA, unless the engine counted that it had no room.
      const vport = (input[inL.l4Off + 2] << 8) | input[inL.l4Off + 3];
      const toaService = FUZZ_SERVICES.some((s) => s.proto === 6 && s.port === vport && s.toa);
      if (toaService && toas.length === 0 && e.counters.events[C.EV_TOA_NO_SPACE] === noSpace0) {
        v.push({ cls: "toa-missing", detail: "SYN toward the server without TOA, none counted as no space" });
      }
      const ts = findTcpOptions(b, out, 8);
      if (ts !== null && ts.length > 0) {
        v.push({ cls: "timestamp-toward-server", detail: "SYN keeps its timestamp" });
      }
    }
    if (toas !== null && (b[out.l4Off + 13] & 0x06) === 0x02) {
      // The MSS of any segment with SYN and no RST (a SYN, a SYN+ACK) leaves room for TOA within the MTU.
      const limit = e.config.mtu - (out.family === 4 ? 48 : 80);
      // Linux takes the last MSS option of a segment, so every one must be clamped, not just the first.
      const all = findTcpOptions(b, out, 2) ?? [];
      const cls = all.length > 1 ? "mss-not-clamped:repeated-option" : "mss-not-clamped";
      for (const m of all) {
        const mss = b[m + 1] === 4 ? (b[m + 2] << 8) | b[m + 3] : -1;
        if (mss > limit) {
          v.push({ cls, detail: `MSS ${mss} above ${limit}` });
          break;
        }
      }
    }
  }
  return { ret, violations: v, generated };
}

// ---------------------------------------------------------------------------------------------------------
// Packet generation.

/** A connection the fuzzer learned from an output: both tuples. */
interface Flow {
  fam: 4 | 6;
  proto: 6 | 17;
  client: string;
  cport: number;
  vip: string;
  vport: number;
  local: string;
  lport: number;
  rs: string;
  rport: number;
}

const TCP_FLAG_CHOICES = [0x10, 0x18, 0x11, 0x04, 0x14, 0x02, 0x12, 0x01, 0x00, 0x3f];

function u32Bytes(v: number): number[] {
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
}

/** A well-formed option list of at most 40 bytes: the usual options, forged TOA, unknown kinds, NOPs. */
function optionSoup(r: Rand, fam: 4 | 6): number[] {
  const out: number[] = [];
  const n = r.int(7);
  for (let i = 0; i < n; i++) {
    let o: number[];
    switch (r.int(10)) {
      case 0:
        o = [2, 4, r.int(256), r.int(256)];
        break;
      case 1:
        o = [3, 3, r.int(15)];
        break;
      case 2:
        o = [4, 2];
        break;
      case 3:
        o = [8, 10, ...u32Bytes(r.next()), ...u32Bytes(r.next())];
        break;
      case 4: {
        const k = 1 + r.int(3);
        o = [5, 2 + 8 * k];
        for (let j = 0; j < 2 * k; j++) o.push(...u32Bytes(r.next()));
        break;
      }
      case 5:
        o = [254, 8, r.int(256), r.int(256), 198, 18, 66, 66];
        break;
      case 6:
        o = fam === 6 || r.chance(0.3) ? [254, 20, ...r.bytes(18)] : [254, 8, ...r.bytes(6)];
        break;
      case 7: {
        const l = 2 + r.int(8);
        o = [r.pick([6, 7, 9, 19, 28, 30, 34, 253, 254, 255]), l, ...r.bytes(l - 2)];
        break;
      }
      default:
        o = [1];
    }
    if (out.length + o.length > 40) break;
    out.push(...o);
  }
  return out;
}

/** Raw option bytes, possibly broken: what a mutation writes over the option area. */
function brokenSoup(r: Rand, n: number): Uint8Array {
  const b = r.bytes(n);
  // Bias towards the kinds the engine looks at and lengths near the edges.
  for (let i = 0; i < n; i++) {
    if (r.chance(0.3)) b[i] = r.pick([0, 1, 2, 4, 5, 8, 254]);
    else if (r.chance(0.2)) b[i] = r.pick([0, 1, 2, 3, 8, 10, 20, 40, 255]);
  }
  return b;
}

/** A generated input: buffer, length, the flag, and what kind it was. */
export interface FuzzCase {
  b: Uint8Array;
  len: number;
  csumPartial: boolean;
  kind: string;
}

/** Generates inputs for one engine, learning connections from what the engine forwards. */
class Generator {
  readonly flows: Flow[] = [];
  constructor(readonly r: Rand) {}

  learn(input: Uint8Array, inLen: number, out: Uint8Array, ret: number, generated: boolean): void {
    if (ret <= 0 || generated) return;
    const il = parseLayers(input, inLen);
    const ol = parseLayers(out, ret);
    if (il === null || ol === null || il.proto !== ol.proto || (il.proto !== 6 && il.proto !== 17)) return;
    const fam = il.family;
    const dst = fam === 4 ? fmt4(input, 16) : fmt6(input, 24);
    if (dst !== A.vip4 && dst !== A.vip4b && dst !== "fd00:0:0:0:0:0:0:100") return;
    const vip = fam === 4 ? dst : A.vip6;
    const flow: Flow = {
      fam,
      proto: il.proto as 6 | 17,
      client: fam === 4 ? fmt4(input, 12) : fmt6(input, 8),
      cport: rd16(input, il.l4Off),
      vip,
      vport: rd16(input, il.l4Off + 2),
      local: fam === 4 ? fmt4(out, 12) : fmt6(out, 8),
      lport: rd16(out, ol.l4Off),
      rs: fam === 4 ? fmt4(out, 16) : fmt6(out, 24),
      rport: rd16(out, ol.l4Off + 2),
    };
    const same = this.flows.findIndex((f) =>
      f.client === flow.client && f.cport === flow.cport && f.vport === flow.vport && f.proto === flow.proto
    );
    if (same >= 0) this.flows[same] = flow;
    else if (this.flows.length < 64) this.flows.push(flow);
    else this.flows[this.r.int(64)] = flow;
  }

  private client(fam: 4 | 6): string {
    return this.r.pick(fam === 4 ? A.clients4 : A.clients6);
  }

  private cport(): number {
    return 40000 + this.r.int(48);
  }

  private payload(): Uint8Array {
    const r = this.r;
    return r.chance(0.5) ? new Uint8Array(0) : r.bytes(r.int(r.chance(0.1) ? 1400 : 64));
  }

  /** A valid packet of some kind. */
  private base(): { b: Uint8Array; len: number; kind: string } {
    const r = this.r;
    const flow = this.flows.length > 0 && r.chance(0.7) ? r.pick(this.flows) : null;
    const fam: 4 | 6 = r.chance(0.3) ? 6 : 4;
    let k = r.int(100);
    // Kinds that need a connection fall back to a SYN that makes one; TCP kinds over a UDP flow to UDP.
    if (flow === null && k >= 14 && k < 84 && (k < 54 || k >= 62)) k = 0;
    else if (flow !== null && flow.proto === 17 && k >= 14 && k < 54) k = 54;
    if (k < 14) {
      const svcs = FUZZ_SERVICES.filter((s) => s.proto === 6 && (s.vip === A.vip6) === (fam === 6));
      const s = r.pick(svcs);
      const p = tcp({
        src: this.client(fam),
        dst: s.vip,
        sport: this.cport(),
        dport: s.port,
        seq: r.next(),
        flags: r.chance(0.9) ? 0x02 : r.pick(TCP_FLAG_CHOICES),
        options: optionSoup(r, fam),
        payload: r.chance(0.1) ? this.payload() : undefined,
      });
      return { ...p, kind: "client-syn" };
    }
    if (k < 34 && flow !== null && flow.proto === 6) {
      const p = tcp({
        src: flow.client,
        dst: flow.vip,
        sport: flow.cport,
        dport: flow.vport,
        seq: r.next(),
        ack: r.next(),
        flags: r.pick(TCP_FLAG_CHOICES),
        options: r.chance(0.4) ? optionSoup(r, flow.fam) : [],
        payload: this.payload(),
      });
      return { ...p, kind: "client-segment" };
    }
    if (k < 54 && flow !== null && flow.proto === 6) {
      const p = tcp({
        src: r.chance(0.95) ? flow.rs : (flow.fam === 4 ? A.rs4[1] : A.rs6),
        dst: flow.local,
        sport: r.chance(0.95) ? flow.rport : r.int(65536),
        dport: flow.lport,
        seq: r.next(),
        ack: r.next(),
        flags: r.pick([0x12, 0x12, 0x10, 0x18, 0x11, 0x04, 0x02, 0x14, 0x3f]),
        options: r.chance(0.5) ? optionSoup(r, flow.fam) : [],
        payload: this.payload(),
      });
      return { ...p, kind: "server-segment" };
    }
    if (k < 62) {
      if (flow !== null && flow.proto === 17 && r.chance(0.6)) {
        return { ...udp(flow.rs, flow.local, flow.rport, flow.lport, this.payload()), kind: "server-udp" };
      }
      const vip = fam === 4 ? A.vip4 : A.vip6;
      return { ...udp(this.client(fam), vip, this.cport(), 53, this.payload()), kind: "client-udp" };
    }
    if (k < 68) {
      const dst = r.pick(fam === 4 ? [A.vip4, A.locals4[0], A.locals4[1]] : [A.vip6, A.local6]);
      const body = r.chance(0.3) ? new Uint8Array(0) : r.bytes(r.int(56));
      const rest = r.chance(0.3) ? 0 : r.next();
      return { ...icmp(this.client(fam), dst, fam === 4 ? 8 : 128, 0, rest, body), kind: "echo" };
    }
    if (k < 84 && flow !== null) {
      // An ICMP error about a packet of a known connection: from the client side (about VIP → client) or
      // from the server side (about local → RS).
      const fromClient = r.chance(0.5);
      const q = flow.proto === 6
        ? tcp({
          src: fromClient ? flow.vip : flow.local,
          dst: fromClient ? flow.client : flow.rs,
          sport: fromClient ? flow.vport : flow.lport,
          dport: fromClient ? flow.cport : flow.rport,
          seq: r.next(),
          ack: r.next(),
          flags: 0x10,
          options: r.chance(0.3) ? optionSoup(r, flow.fam) : [],
          payload: this.payload(),
        })
        : udp(
          fromClient ? flow.vip : flow.local,
          fromClient ? flow.client : flow.rs,
          fromClient ? flow.vport : flow.lport,
          fromClient ? flow.cport : flow.rport,
          this.payload(),
        );
      const ihl = flow.fam === 4 ? 20 : 40;
      const quoteLen = r.chance(0.5) ? Math.min(q.len, ihl + 8) : Math.min(q.len, ihl + 8 + r.int(q.len));
      const body = q.b.slice(0, quoteLen);
      const v4 = flow.fam === 4;
      const [type, code] = v4
        ? r.pick([[3, 3], [3, 4], [3, 1], [11, 0], [12, 0], [3, 13]])
        : r.pick([[1, 4], [2, 0], [3, 0], [4, 0], [1, 0]]);
      const src = fromClient
        ? (r.chance(0.5) ? flow.client : (v4 ? A.router4 : A.router6))
        : (r.chance(0.5) ? flow.rs : (v4 ? "198.18.3.1" : "fd00:3::1"));
      // Now and then to the other IPv4 VIP than the one the quote names.
      const otherVip = flow.vip === A.vip4 ? A.vip4b : A.vip4;
      const dst = fromClient ? (v4 && r.chance(0.1) ? otherVip : flow.vip) : flow.local;
      const rest = type === 3 && code === 4 || type === 2 ? r.int(1500) : 0;
      return {
        ...icmp(src, dst, type, code, rest, body),
        kind: fromClient ? "icmp-error-client" : "icmp-error-server",
      };
    }
    if (k < 88) {
      const vip = fam === 4 ? A.vip4 : A.vip6;
      const p = r.chance(0.5)
        ? tcp({
          src: this.client(fam),
          dst: vip,
          sport: this.cport(),
          dport: 9999,
          flags: r.pick(TCP_FLAG_CHOICES),
        })
        : udp(this.client(fam), vip, this.cport(), 9999, this.payload());
      return { ...p, kind: "no-service" };
    }
    if (k < 92) {
      const dst = r.pick(fam === 4 ? [A.vip4, A.locals4[0]] : [A.vip6, A.local6]);
      const type = r.pick(fam === 4 ? [0, 13, 17, 5, 9, 42] : [129, 133, 135, 136, 200]);
      return {
        ...icmp(this.client(fam), dst, type, r.int(4), r.next(), r.bytes(r.int(40))),
        kind: "icmp-other",
      };
    }
    if (k < 95) {
      const p = tcp({ src: this.client(4), dst: A.other4, sport: this.cport(), dport: 80, flags: 0x02 });
      return { ...p, kind: "not-for-us" };
    }
    // Random bytes, shaped to pass the first checks some of the time.
    const n = r.int(r.chance(0.2) ? 1500 : 120);
    const b = new Uint8Array(2048);
    b.set(r.bytes(n));
    if (n > 0 && r.chance(0.7)) b[0] = r.chance(0.7) ? 0x45 : 0x60 | (b[0] & 15);
    if (n >= 20 && r.chance(0.5) && b[0] >> 4 === 4) {
      b[2] = n >> 8;
      b[3] = n & 255;
      b[6] &= 0x40;
      b[7] = 0;
      b[9] = r.pick([1, 6, 17, 47]);
      b.set([198, 18, 0, 100], 16);
    }
    if (n >= 40 && b[0] >> 4 === 6 && r.chance(0.5)) {
      b[4] = (n - 40) >> 8;
      b[5] = (n - 40) & 255;
      b[6] = r.pick([6, 17, 58, 0, 44, 60]);
    }
    return { b, len: n, kind: "random" };
  }

  /** Damages the packet in place; returns the new length. */
  private mutate(b: Uint8Array, len: number): number {
    const r = this.r;
    const n = 1 + r.int(3);
    for (let i = 0; i < n; i++) {
      const l = parseLayers(b, len);
      switch (r.int(8)) {
        case 0: // bit flip
          if (len > 0) b[r.int(len)] ^= 1 << r.int(8);
          break;
        case 1: // byte set
          if (len > 0) b[r.int(len)] = r.pick([0, 0xff, 0x7f, 0x80, r.int(256)]);
          break;
        case 2: // truncation
          len = r.int(len + 1);
          break;
        case 3: // trailing bytes
          for (let j = r.int(16) + 1; j > 0 && len < b.length - 64; j--) b[len++] = r.int(256);
          break;
        case 4: // the IP length field lies
          if (l === null) break;
          if (l.family === 4) {
            const t = Math.max(0, l.end + r.pick([-1, 1, -8, 8, -20, r.int(3000) - 1500]));
            b[2] = (t >> 8) & 255;
            b[3] = t & 255;
          } else {
            const t = Math.max(0, l.end - 40 + r.pick([-1, 1, -8, 8, -40, r.int(3000) - 1500]));
            b[4] = (t >> 8) & 255;
            b[5] = t & 255;
          }
          break;
        case 5: // the transport length field lies (UDP length, TCP data offset), or the IPv4 IHL
          if (l === null) break;
          if (l.proto === 17 && l.end - l.l4Off >= 8) {
            const t = Math.max(0, l.end - l.l4Off + r.pick([-1, 1, -8, 8, 100]));
            b[l.l4Off + 4] = (t >> 8) & 255;
            b[l.l4Off + 5] = t & 255;
          } else if (l.proto === 6 && l.end - l.l4Off >= 20) {
            b[l.l4Off + 12] = (r.int(16) << 4) | (b[l.l4Off + 12] & 15);
          } else if (l.family === 4) {
            b[0] = 0x40 | r.int(16);
          }
          break;
        default: { // option soup over the TCP option area (or a fresh, wider one)
          if (l === null || l.proto !== 6 || l.end - l.l4Off < 20) break;
          const hl = (b[l.l4Off + 12] >> 4) * 4;
          const avail = Math.min(hl, l.end - l.l4Off) - 20;
          if (avail > 0) b.set(brokenSoup(r, avail), l.l4Off + 20);
          else if (r.chance(0.5)) b[l.l4Off + 12] = (5 + r.int(11)) << 4 | (b[l.l4Off + 12] & 15);
        }
      }
    }
    return len;
  }

  /**
   * Puts an IPv6 extension header (hop-by-hop or destination options with PadN, or an atomic fragment
   * header) between the fixed header and the transport header; the transport checksum stays right, as the
   * pseudo-header counts the upper-layer length only.
   */
  private addExtension(b: Uint8Array, len: number): number {
    const r = this.r;
    const nh = r.pick([0, 60, 44]);
    const ext = nh === 44 ? [b[6], 0, 0, 0, ...this.r.bytes(4)] : [b[6], 0, 1, 4, 0, 0, 0, 0];
    b.copyWithin(48, 40, len);
    b.set(ext, 40);
    b[6] = nh;
    const plen = ((b[4] << 8) | b[5]) + 8;
    b[4] = plen >> 8;
    b[5] = plen & 255;
    return len + 8;
  }

  /**
   * Puts IPv4 options (NOPs, a router alert, a record-route with room, EOL padding) into the header: IHL,
   * total length and header checksum follow; the transport checksum is unchanged (not in the pseudo-header).
   */
  private addIpv4Options(b: Uint8Array, len: number): number {
    const r = this.r;
    const opts = r.pick([[1, 1, 1, 0], [148, 4, 0, 0], [7, 7, 4, 0, 0, 0, 0, 1], [1, 0, 0, 0]]);
    const n = opts.length;
    b.copyWithin(20 + n, 20, len);
    b.set(opts, 20);
    b[0] = 0x40 | ((20 + n) >> 2);
    const total = ((b[2] << 8) | b[3]) + n;
    b[2] = total >> 8;
    b[3] = total & 255;
    fixIpv4Checksum(b, len + n);
    return len + n;
  }

  /** The next input. */
  next(): FuzzCase {
    const r = this.r;
    const base = this.base();
    let { b, len } = base;
    let kind = base.kind;
    if (kind !== "random" && len >= 48 && b[0] >> 4 === 6 && r.chance(0.15)) {
      len = this.addExtension(b, len);
      kind += "+ext";
    } else if (kind !== "random" && len >= 20 && b[0] === 0x45 && r.chance(0.08)) {
      len = this.addIpv4Options(b, len);
      kind += "+ipopt";
    }
    if (kind !== "random" && r.chance(0.35)) {
      len = this.mutate(b, len);
      kind += "+mutated";
      if (r.chance(0.6)) {
        fixIpv4Checksum(b, len);
        fixTransportChecksum(b, len, false);
        kind += "+fixed";
      }
    }
    let csumPartial = false;
    const l = parseLayers(b, len);
    if (l !== null && (l.proto === 6 || l.proto === 17) && r.chance(0.3)) {
      csumPartial = true;
      fixTransportChecksum(b, len, true);
    } else if (r.chance(0.01)) {
      csumPartial = true; // the flag on something the kernel would not mark: must still not break anything
    }
    return { b, len, csumPartial, kind };
  }
}

function rd16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}
function rd32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}
function fmt4(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}
/** IPv6 text as the builders accept it (uncompressed groups are fine for parseIpv6). */
function fmt6(b: Uint8Array, o: number): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(rd16(b, o + i).toString(16));
  return g.join(":");
}

// ---------------------------------------------------------------------------------------------------------
// The NAT model: what each connection's two tuples are, learned from what the engine forwarded.

/** Both tuples of a connection as hex text: client side and server side. */
interface Mapping {
  client: string;
  cport: number;
  vip: string;
  vport: number;
  local: string;
  lport: number;
  rs: string;
  rport: number;
  /** TCP sequence delta: what the engine adds to the client's sequence numbers. */
  delta: number;
  /** When a packet of the connection was last forwarded (either way): the engine's idle timer restarts. */
  seen: number;
  /** TCP: a FIN or RST was forwarded, either way: it may be in FIN_WAIT, TIME_WAIT or CLOSE. */
  closing: boolean;
  /** The engine's `evicted` count when last seen: an entry evicted since may have made way for another. */
  evicted: number;
}

function addrHex(b: Uint8Array, off: number, fam: 4 | 6): string {
  return toHex(b.subarray(off, off + (fam === 4 ? 4 : 16)));
}

const VIP_HEX = new Set(["c6120064", "c6120065", "fd000000000000000000000000000100"]);
const LOCAL_HEX = new Set(["c6120201", "c6120202", "fd000002000000000000000000000001"]);

/**
 * Follows the engine's connections from the outside. A client's packet forwarded for a known client tuple
 * must keep its local and server tuple unless the connection may have ended: expiry, the only way a UDP flow
 * ends, needs its whole idle timeout; a TCP connection also ends when a SYN finds it in TIME_WAIT or CLOSE
 * (`reused`), so a SYN may move a tuple that was idle for the shortest timeout of the states before any FIN
 * or RST (SYN_SENT, SYN_RECV, ESTABLISHED) or that saw a FIN or RST, or once the engine evicted an entry
 * since (a half-open one makes way under pressure), and nothing else may move it; a
 * server's packet forwarded for a local tuple must go back to that connection's client from its VIP, and
 * come from its real server.
 */
export class NatModel {
  private readonly byClient = new Map<string, Mapping>();
  private readonly byLocal = new Map<string, Mapping>();
  private readonly udpTimeout: number;
  private readonly openTimeout: number;

  /** A model for an engine with these idle timeouts (its config's `timeouts`). */
  constructor(timeouts: Readonly<Timeouts>) {
    this.udpTimeout = timeouts.udp;
    this.openTimeout = Math.min(timeouts.synSent, timeouts.synRecv, timeouts.established);
  }

  /**
   * Checks one forwarded packet (`out[0, ret)`, input `input[0, len)`) at time `now`, and learns from it;
   * `evicted` is the engine's count of evicted entries so far.
   */
  check(input: Uint8Array, len: number, out: Uint8Array, ret: number, now: number, evicted = 0): Violation[] {
    const il = parseLayers(input, len);
    const ol = parseLayers(out, ret);
    if (il === null && ol !== null) this.touch(out, ol);
    if (il === null || ol === null || ol.proto !== il.proto) return [];
    if (il.proto === (il.family === 4 ? 1 : 58)) return this.checkIcmp(input, il, out, ol);
    if (il.proto !== 6 && il.proto !== 17) return [];
    const fam = il.family;
    const [s, d] = fam === 4 ? [12, 16] : [8, 24];
    const dst = addrHex(input, d, fam);
    const tcp = il.proto === 6;
    const v: Violation[] = [];
    if (VIP_HEX.has(dst)) {
      const m: Mapping = {
        client: addrHex(input, s, fam),
        cport: rd16(input, il.l4Off),
        vip: dst,
        vport: rd16(input, il.l4Off + 2),
        local: addrHex(out, s, fam),
        lport: rd16(out, ol.l4Off),
        rs: addrHex(out, d, fam),
        rport: rd16(out, ol.l4Off + 2),
        delta: tcp ? (rd32(out, ol.l4Off + 4) - rd32(input, il.l4Off + 4)) >>> 0 : 0,
        seen: now,
        closing: tcp && (input[il.l4Off + 13] & 0x05) !== 0,
        evicted,
      };
      const key = `${il.proto}|${m.client}|${m.cport}|${m.vip}|${m.vport}`;
      const old = this.byClient.get(key);
      const syn = tcp && (input[il.l4Off + 13] & 0x16) === 0x02;
      // The engine expires a connection at the first tick with its deadline (last packet + timeout) ≤ now.
      const live = old !== undefined &&
        (tcp
          ? !syn || !old.closing && old.seen + this.openTimeout > now && old.evicted === evicted
          : old.seen + this.udpTimeout > now);
      const moved = old !== undefined &&
        (old.local !== m.local || old.lport !== m.lport || old.rs !== m.rs || old.rport !== m.rport);
      if (live && moved) {
        const idle = `${(now - old.seen).toFixed(3)} s idle`;
        v.push({
          cls: "nat-remapped",
          detail:
            `client ${m.client}:${m.cport} moved from ${old.local}:${old.lport}→${old.rs}:${old.rport} ` +
            `to ${m.local}:${m.lport}→${m.rs}:${m.rport} ` +
            (!tcp
              ? `after ${idle} (timeout ${this.udpTimeout} s)`
              : syn
              ? `with a SYN, no FIN or RST seen, after ${idle} (timeout ${this.openTimeout} s at least)`
              : "without a SYN"),
        });
      } else if (live && tcp && !syn && old.delta !== m.delta) {
        v.push({ cls: "nat-seq-delta", detail: `sequence delta ${m.delta}, connection's ${old.delta}` });
      }
      // The same connection (or one on the same tuples, which makes the model no stricter) keeps its FIN/RST.
      if (old !== undefined && !moved && old.closing) m.closing = true;
      if (!LOCAL_HEX.has(m.local)) v.push({ cls: "nat-wrong-local", detail: `source ${m.local}` });
      this.byClient.set(key, m);
      this.byLocal.set(`${il.proto}|${m.local}|${m.lport}`, m);
    } else if (LOCAL_HEX.has(dst)) {
      const key = `${il.proto}|${dst}|${rd16(input, il.l4Off + 2)}`;
      const m = this.byLocal.get(key);
      if (m === undefined) {
        v.push({
          cls: "nat-unknown-connection",
          detail: `forwarded for ${key}, which no client packet opened`,
        });
        return v;
      }
      if (addrHex(input, s, fam) !== m.rs || rd16(input, il.l4Off) !== m.rport) {
        v.push({
          cls: "nat-wrong-server",
          detail: `from ${addrHex(input, s, fam)}, connection's server ${m.rs}`,
        });
      }
      const got = `${addrHex(out, s, fam)}:${rd16(out, ol.l4Off)}→${addrHex(out, d, fam)}:${
        rd16(out, ol.l4Off + 2)
      }`;
      const want = `${m.vip}:${m.vport}→${m.client}:${m.cport}`;
      if (got !== want) v.push({ cls: "nat-wrong-client", detail: `out ${got}, connection ${want}` });
      else {
        m.seen = now;
        if (tcp && (input[il.l4Off + 13] & 0x05) !== 0) m.closing = true;
      }
      if (tcp && (input[il.l4Off + 13] & 0x10) !== 0) {
        const want = (rd32(input, il.l4Off + 8) - m.delta) >>> 0;
        const ack = rd32(out, ol.l4Off + 8);
        if (ack !== want) {
          v.push({ cls: "nat-ack", detail: `ack ${ack}, expected ${want} (delta ${m.delta})` });
        }
      }
      if (tcp) v.push(...this.checkSack(input, il, out, ol, m.delta));
    }
    return v;
  }

  /**
   * A forwarded packet whose input this file cannot parse as one packet (a datagram the engine reassembled
   * from fragments): a FIN or RST in it may be closing the connection its output's tuple names. Nothing
   * else is learned (the connection it refreshed or opened may be one the model never saw), so the model
   * only gets more lenient, never stricter, about what it did not see.
   */
  private touch(out: Uint8Array, ol: Layers): void {
    if (ol.proto !== 6 && ol.proto !== 17) return;
    const [s, d] = ol.family === 4 ? [12, 16] : [8, 24];
    const src = addrHex(out, s, ol.family);
    const sport = rd16(out, ol.l4Off);
    const m = LOCAL_HEX.has(src) ? this.byLocal.get(`${ol.proto}|${src}|${sport}`) : this.byClient.get(
      `${ol.proto}|${addrHex(out, d, ol.family)}|${rd16(out, ol.l4Off + 2)}|${src}|${sport}`,
    );
    if (m !== undefined && ol.proto === 6 && ol.end - ol.l4Off >= 14 && (out[ol.l4Off + 13] & 0x05) !== 0) {
      m.closing = true;
    }
  }

  /** SACK edges toward the client are the server's minus the connection's sequence delta. */
  private checkSack(input: Uint8Array, il: Layers, out: Uint8Array, ol: Layers, delta: number): Violation[] {
    const a = findTcpOptions(input, il, 5);
    const b = findTcpOptions(out, ol, 5);
    if (a === null || b === null || a.length !== b.length) return [];
    // Linux reads the last SACK option of a segment, so every one must be translated, not just the first.
    const cls = a.length > 1 ? "nat-sack:repeated-option" : "nat-sack";
    for (let k = 0; k < a.length; k++) {
      const n = input[a[k] + 1];
      if (out[b[k] + 1] !== n) return [{ cls, detail: "SACK option length changed" }];
      if (n < 10 || (n - 2) % 8 !== 0) continue; // Linux ignores a SACK option of any other length
      for (let q = 2; q + 4 <= n; q += 4) {
        const want = (rd32(input, a[k] + q) - delta) >>> 0;
        const got = rd32(out, b[k] + q);
        if (got !== want) return [{ cls, detail: `SACK option ${k + 1}: edge ${got}, expected ${want}` }];
      }
    }
    return [];
  }

  /** A translated ICMP error: addressed to the other side, its quote rewritten to that side's tuple. */
  private checkIcmp(input: Uint8Array, il: Layers, out: Uint8Array, ol: Layers): Violation[] {
    const fam = il.family;
    const [s, d] = fam === 4 ? [12, 16] : [8, 24];
    const qi = il.l4Off + 8;
    const qo = ol.l4Off + 8;
    if (il.end - qi < (fam === 4 ? 28 : 48) || ol.end - qo < (fam === 4 ? 28 : 48)) return [];
    const qhl = (b: Uint8Array, q: number) => fam === 4 ? (b[q] & 15) * 4 : 40;
    const qp = fam === 4 ? input[qi + 9] : input[qi + 6];
    if (qp !== 6 && qp !== 17) return [];
    const li = qi + qhl(input, qi);
    const lo = qo + qhl(out, qo);
    if (li + 8 > il.end || lo + 8 > ol.end) return [];
    const tuple = (b: Uint8Array, q: number, l: number) =>
      `${addrHex(b, q + s, fam)}:${rd16(b, l)}→${addrHex(b, q + d, fam)}:${rd16(b, l + 2)}`;
    const outer = (b: Uint8Array) => `${addrHex(b, s, fam)}→${addrHex(b, d, fam)}`;
    const dst = addrHex(input, d, fam);
    let m: Mapping | undefined;
    let wantOuter: string;
    let wantQuote: string;
    let wantSeq = rd32(input, li + 4);
    if (LOCAL_HEX.has(dst)) {
      // About local:lport → RS: to the client, about client:cport → VIP:vport, its sequence number back.
      // The quote must name the whole connection (the local address the error came to, and its server), as
      // IPVS's ip_vs_in_icmp looks it up; a matching local port alone is not enough.
      m = this.byLocal.get(`${qp}|${dst}|${rd16(input, li)}`);
      const quoted = tuple(input, qi, li);
      if (m === undefined) return [{ cls: "nat-unknown-connection", detail: `ICMP error about ${quoted}` }];
      if (quoted !== `${m.local}:${m.lport}→${m.rs}:${m.rport}`) {
        return [{
          cls: "icmp-quote-mismatch",
          detail: `error to ${dst} about ${quoted} translated for ${m.local}:${m.lport}→${m.rs}:${m.rport}`,
        }];
      }
      wantOuter = `${m.vip}→${m.client}`;
      wantQuote = `${m.client}:${m.cport}→${m.vip}:${m.vport}`;
      wantSeq = (wantSeq - m.delta) >>> 0;
    } else {
      // About VIP:vport → client: to the real server, about RS:rport → local:lport.
      const q = `${qp}|${addrHex(input, qi + d, fam)}|${rd16(input, li + 2)}|${addrHex(input, qi + s, fam)}|${
        rd16(input, li)
      }`;
      m = this.byClient.get(q);
      if (m === undefined) return [{ cls: "nat-unknown-connection", detail: "ICMP error translated" }];
      if (m.vip !== dst) {
        return [{
          cls: "icmp-quote-mismatch",
          detail: `error to VIP ${dst} about a packet from VIP ${m.vip}`,
        }];
      }
      wantOuter = `${m.local}→${m.rs}`;
      wantQuote = `${m.rs}:${m.rport}→${m.local}:${m.lport}`;
    }
    const v: Violation[] = [];
    if (outer(out) !== wantOuter) {
      v.push({ cls: "icmp-wrong-address", detail: `${outer(out)}, want ${wantOuter}` });
    }
    const gotQuote = tuple(out, qo, lo);
    if (gotQuote !== wantQuote) v.push({ cls: "icmp-wrong-quote", detail: `${gotQuote}, want ${wantQuote}` });
    if (qp === 6 && rd32(out, lo + 4) !== wantSeq) {
      v.push({ cls: "icmp-quote-seq", detail: `quoted seq ${rd32(out, lo + 4)}, want ${wantSeq}` });
    }
    return v;
  }
}

/**
 * The schedulers' books: every real server's active and inactive counts are whole and not negative, and
 * over all servers they add up to the connection table's size.
 */
export function checkBookkeeping(e: Engine): Violation[] {
  let sum = 0;
  for (const set of e.sets) {
    for (let k = 0; k < set.active.length; k++) {
      const a = set.active[k];
      const n = set.inactive[k];
      if (!(a >= 0 && n >= 0 && Number.isInteger(a) && Number.isInteger(n))) {
        return [{ cls: "server-counts", detail: `server ${k}: active ${a}, inactive ${n}` }];
      }
      sum += a + n;
    }
  }
  if (sum !== e.conns.size) {
    return [{
      cls: "server-counts",
      detail: `servers count ${sum} connections, the table holds ${e.conns.size}`,
    }];
  }
  return [];
}

/** {@link checkPacket}, then the NAT model's checks on a forwarded packet (the model learns from it). */
export function checkWithModel(
  e: Engine,
  model: NatModel,
  b: Uint8Array,
  len: number,
  now: number,
  csumPartial: boolean,
): PacketVerdict {
  const input = b.slice(0, len);
  const r = checkPacket(e, b, len, now, csumPartial);
  if (r.ret > 0 && !r.generated) {
    r.violations.push(...model.check(input, len, b, r.ret, now, e.counters.events[C.EV_EVICTED]));
  }
  return r;
}

// ---------------------------------------------------------------------------------------------------------
// The run.

/** A violation with everything needed to replay it. */
export interface Finding extends Violation {
  /** The run's seed. */
  seed: number;
  /** Index of the packet in the run (replay with the same seed and count > index). */
  index: number;
  /** The engine setup's name. */
  engine: string;
  /** The generator's kind of input. */
  kind: string;
  /** The offload flag. */
  csumPartial: boolean;
  /** The input packet in hex. */
  hex: string;
}

/** Counts of a run, and its findings grouped by class. */
export interface FuzzReport {
  /** Packets processed. */
  packets: number;
  /** Packets forwarded, replies generated, drops, hand-offs. */
  outcomes: { forwarded: number; generated: number; dropped: number; handedOff: number };
  /** Inputs per generator kind. */
  kinds: Record<string, number>;
  /** Drop reasons and events summed over the engines, by name (what the run reached). */
  counters: Record<string, number>;
  /** Violations by class: how many, and the first few reproducers. */
  classes: Map<string, { count: number; first: Finding[] }>;
}

/** Options of a run. */
export interface FuzzOptions {
  /** PRNG seed. */
  seed: number;
  /** Packets to process. */
  count: number;
  /** Reproducers kept per class. */
  keep?: number;
  /** The engine class to fuzz (a test passes a sabotaged subclass to check the oracles). */
  engine?: typeof Engine;
  /** Called after each packet (debugging: replay a run and watch the state a violation needs). */
  trace?: (t: TraceEntry) => void;
}

/** One processed packet, for {@link FuzzOptions.trace}. */
export interface TraceEntry {
  /** Index in the run. */
  index: number;
  /** Index of the engine setup. */
  which: number;
  /** The engine. */
  engine: Engine;
  /** Clock. */
  now: number;
  /** Generator kind. */
  kind: string;
  /** Input bytes. */
  input: Uint8Array;
  /** Output bytes (the buffer after process), valid when ret > 0. */
  out: Uint8Array;
  /** What process returned (for IPv6 fragments the engine cut, the length of the datagram joined in `out`). */
  ret: number;
  /** The output is a reply the engine built ({@link PacketVerdict.generated}). */
  generated: boolean;
  /** Violations found on this packet. */
  violations: Violation[];
}

/** Runs `count` packets from `seed` through the fuzzed engines and returns the classified findings. */
export function runEngineFuzz(opts: FuzzOptions): FuzzReport {
  const keep = opts.keep ?? 3;
  const r = new Rand(opts.seed);
  let now = 1000;
  const engines = SETUPS.map((s) => fuzzEngine(s, now, opts.engine));
  const gens = SETUPS.map(() => new Generator(r));
  const models = engines.map((e) => new NatModel(e.config.timeouts));
  const report: FuzzReport = {
    packets: 0,
    outcomes: { forwarded: 0, generated: 0, dropped: 0, handedOff: 0 },
    kinds: {},
    counters: {},
    classes: new Map(),
  };
  let nextTick = now + 1;
  for (let i = 0; i < opts.count; i++) {
    now += r.chance(0.001) ? 100 + r.int(1000) : r.int(4) * 0.001;
    if (now >= nextTick) {
      for (const e of engines) e.tick(now);
      nextTick = now + 1;
    }
    const which = r.chance(0.7) ? 0 : r.chance(0.67) ? 1 : 2;
    const e = engines[which];
    const g = gens[which];
    const c = g.next();
    const input = c.b.slice(0, c.len);
    const { ret, violations, generated } = checkWithModel(e, models[which], c.b, c.len, now, c.csumPartial);
    if (i % 16 === 0) violations.push(...checkBookkeeping(e));
    report.packets++;
    report.kinds[c.kind.split("+")[0]] = (report.kinds[c.kind.split("+")[0]] ?? 0) + 1;
    if (ret < 0) report.outcomes.handedOff++;
    else if (ret === 0) report.outcomes.dropped++;
    else if (generated) report.outcomes.generated++;
    else report.outcomes.forwarded++;
    if (ret > 0) g.learn(input, c.len, c.b, ret, generated);
    opts.trace?.({
      index: i,
      which,
      engine: e,
      now,
      kind: c.kind,
      input,
      out: c.b,
      ret,
      generated,
      violations,
    });
    for (const v of violations) {
      let entry = report.classes.get(v.cls);
      if (entry === undefined) report.classes.set(v.cls, entry = { count: 0, first: [] });
      entry.count++;
      if (entry.first.length < keep) {
        entry.first.push({
          ...v,
          seed: opts.seed,
          index: i,
          engine: SETUPS[which].name,
          kind: c.kind,
          csumPartial: c.csumPartial,
          hex: toHex(input),
        });
      }
    }
  }
  for (const e of engines) {
    e.counters.drops.forEach((n, i) => {
      if (n > 0) {
        report.counters[`drop.${C.DROP_NAMES[i]}`] = (report.counters[`drop.${C.DROP_NAMES[i]}`] ?? 0) + n;
      }
    });
    e.counters.events.forEach((n, i) => {
      if (n > 0) report.counters[C.EVENT_NAMES[i]] = (report.counters[C.EVENT_NAMES[i]] ?? 0) + n;
    });
  }
  return report;
}

/** One line per finding: class, seed, index, engine, flag, detail and the hex reproducer. */
export function formatFinding(f: Finding): string {
  return `[${f.cls}] seed=${f.seed} index=${f.index} engine=${f.engine} kind=${f.kind} ` +
    `csumPartial=${f.csumPartial}: ${f.detail}\n  input: ${f.hex}`;
}

/** The report as text: counts, then each class with its count and first reproducers. */
export function formatReport(rep: FuzzReport): string {
  const lines = [
    `packets ${rep.packets}: forwarded ${rep.outcomes.forwarded}, generated ${rep.outcomes.generated}, ` +
    `dropped ${rep.outcomes.dropped}, handed off ${rep.outcomes.handedOff}`,
    `kinds: ${Object.entries(rep.kinds).map(([k, n]) => `${k} ${n}`).join(", ")}`,
    `counters: ${Object.entries(rep.counters).map(([k, n]) => `${k} ${n}`).join(", ")}`,
  ];
  if (rep.classes.size === 0) lines.push("no violations");
  for (const [cls, { count, first }] of [...rep.classes].sort()) {
    lines.push(`${cls}: ${count}`);
    for (const f of first) lines.push("  " + formatFinding(f).replace(/\n/g, "\n  "));
  }
  return lines.join("\n");
}
