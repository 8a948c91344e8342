// Engine tests as Katran's fixtures are: a row is an input packet and its verdict — dropped under a reason,
// or a packet out (forwarded or a generated reply) with the fields it must carry — and one driver runs every
// row. Every output is re-parsed with the validator and its checksums verified from scratch twice (the
// library's full sum and a naive RFC 1071 sum written here), so an incremental update gone wrong fails here.
// Every row also states the exact change in the drop, event and traffic counters: anything it does not list
// must stay put. Sequences (handshake, FIN, timeouts) stay scenarios but step through the same driver.
import assert from "node:assert/strict";
import { validateConfig } from "../config.ts";
import {
  finishChecksum,
  foldSum,
  ipv4PseudoHeaderSum,
  ipv6PseudoHeaderSum,
  onesComplementSum,
  read16,
  read32,
  write16,
} from "../../base/packet/checksum.ts";
import { formatIpv4, ipv4ChecksumOk, ipv4Dst, ipv4Src } from "../../base/packet/ipv4.ts";
import { formatIpv6 } from "../../base/packet/ipv6.ts";
import { PacketInfo } from "../../base/packet/packet_info.ts";
import {
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  tcpAck,
  tcpFindOption,
  tcpMss,
  TCPOPT_SACK,
  TCPOPT_TIMESTAMP,
  tcpSeq,
} from "../../base/packet/tcp.ts";
import { transportChecksumOk } from "../../base/packet/transport_checksum.ts";
import { classifyPacket, PACKET_OK, type PACKET_REASONS } from "../../base/packet/validate.ts";
import { decodeToa, TCPOPT_TOA, type ToaAddress } from "../../base/packet/toa_option.ts";
import { prng } from "../../tests/helpers/prng.ts";
import * as C from "./counters.ts";
import { Engine } from "./engine.ts";
import { fromHex } from "../../tests/fixtures/fixtures.ts";
import {
  BUF_SIZE,
  icmp,
  optMss,
  optSack,
  optTimestamp,
  optToa4,
  tcp,
  type TcpSpec,
  udp,
} from "./testing/packets.ts";
import {
  STATE_CLOSE,
  STATE_ESTABLISHED,
  STATE_FIN_WAIT,
  STATE_SYN_RECV,
  STATE_SYN_SENT,
  STATE_TIME_WAIT,
} from "./tcp_state.ts";

const CLIENT = "198.18.1.2";
const VIP = "198.18.0.100";
/** A second IPv4 VIP (its own service), for errors that name one VIP and quote another. */
const VIP2 = "198.18.0.101";
const LOCAL = "198.18.2.1";
const RS1 = "198.18.3.10";
const RS2 = "198.18.3.11";
const CLIENT6 = "fd00:1::2";
const VIP6 = "fd00::100";
const LOCAL6 = "fd00:2::1";
const RS6 = "fd00:3::10";

/** Service indexes of {@link config}, in its order. */
const SVC_TCP = 0;
const SVC_TCP6 = 1;
const SVC_UDP = 2;
const SVC_NO_TOA = 3;

/** The services of {@link config} as raw config values, a fresh copy each call (reload rows edit them). */
function rawServices(): Record<string, unknown>[] {
  return [
    {
      vip: VIP,
      port: 80,
      protocol: "tcp",
      scheduler: "rr",
      toa: true,
      realServers: [{ address: RS1, port: 80, weight: 1 }, { address: RS2, port: 8080, weight: 1 }],
    },
    { vip: VIP6, port: 80, scheduler: "rr", realServers: [{ address: RS6, port: 80 }] },
    { vip: VIP, port: 53, protocol: "udp", scheduler: "rr", realServers: [{ address: RS1, port: 5353 }] },
    { vip: VIP, port: 81, toa: false, scheduler: "rr", realServers: [{ address: RS1, port: 81 }] },
    { vip: VIP2, port: 80, scheduler: "rr", realServers: [{ address: RS2, port: 80 }] },
  ];
}

function config(extra: Record<string, unknown> = {}) {
  return validateConfig({
    tun: "t0",
    localAddresses: [LOCAL, LOCAL6],
    portRange: [2000, 2003],
    services: rawServices(),
    ...extra,
  });
}

/** A deterministic ISN source: the engine's first ISN is 0x10000000, then +0x1000 each. */
function engine(extra: Record<string, unknown> = {}) {
  let isn = 0x10000000;
  return new Engine(config(extra), {
    now: 1000,
    random32: () => {
      const v = isn;
      isn += 0x1000;
      return v;
    },
  });
}

// ---------------------------------------------------------------------------------------------------------
// The oracle: re-parse, re-checksum, read fields.

/** RFC 1071 over `b[from, to)` plus `seed`, folded: written here so it shares no code with base/packet. */
function naiveSum(b: Uint8Array, from: number, to: number, seed = 0): number {
  let s = seed;
  for (let i = from; i < to; i += 2) s += (b[i] << 8) | (i + 1 < to ? b[i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** Checks the IPv4 header and transport checksums of `b[0, n)` with {@link naiveSum} alone. */
function naiveChecksumsOk(b: Uint8Array, n: number, label: string): void {
  const v4 = b[0] >>> 4 === 4;
  const hl = v4 ? (b[0] & 15) * 4 : 40;
  const total = v4 ? (b[2] << 8) | b[3] : 40 + ((b[4] << 8) | b[5]);
  assert.equal(total, n, `${label}: IP length is the returned length`);
  const proto = v4 ? b[9] : b[6];
  if (v4) assert.equal(naiveSum(b, 0, hl), 0xffff, `${label}: IPv4 header checksum (naive)`);
  const l4Len = total - hl;
  let pseudo = 0;
  if (!(v4 && proto === 1)) {
    const a = v4 ? 12 : 8;
    const alen = v4 ? 8 : 32;
    pseudo = naiveSum(b, a, a + alen, proto + l4Len);
  }
  if (v4 && proto === 17 && b[hl + 6] === 0 && b[hl + 7] === 0) return; // IPv4 UDP: zero means none
  assert.equal(
    naiveSum(b, hl, total, pseudo),
    0xffff,
    `${label}: transport checksum (naive)`,
  );
}

/** Re-parses an output packet and checks every checksum from scratch. */
function parse(b: Uint8Array, len: number): PacketInfo {
  const info = new PacketInfo();
  assert.equal(classifyPacket(b, 0, len, info), PACKET_OK, "output packet must be valid");
  if (info.family === 4) assert.ok(ipv4ChecksumOk(b, 0), "IPv4 header checksum");
  assert.ok(transportChecksumOk(b, info), "transport checksum");
  naiveChecksumsOk(b, len, "output");
  return info;
}

/** The source (`dstSide` false) or destination address of the IP header at `b[ip]`. */
function addr(b: Uint8Array, ip: number, family: number, dstSide: boolean): string {
  if (family === 4) return formatIpv4(dstSide ? ipv4Dst(b, ip) : ipv4Src(b, ip));
  return formatIpv6(b, ip + (dstSide ? 24 : 8));
}
function src(b: Uint8Array, info: PacketInfo): string {
  return addr(b, 0, info.family, false);
}
function dst(b: Uint8Array, info: PacketInfo): string {
  return addr(b, 0, info.family, true);
}

/** The TCP option kinds in the header, in order (NOP and EOL left out): an independent walk. */
function optionKinds(b: Uint8Array, info: PacketInfo): number[] {
  const kinds: number[] = [];
  for (let p = info.l4Off + 20; p < info.l4Off + info.l4HeaderLen;) {
    if (b[p] === 0) break;
    if (b[p] === 1) {
      p++;
      continue;
    }
    kinds.push(b[p]);
    p += b[p + 1];
  }
  return kinds;
}

/** The tuple (and TCP sequence number) of the packet an ICMP error quotes. */
interface Quote {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq?: number;
}

/** What a packet out must carry; a row states only the fields it cares about, and each one is compared. */
interface Out {
  /** Output length minus input length (a TOA inserted: 8 or 20). */
  grow?: number;
  /** IP source address. */
  src?: string;
  /** IP destination address. */
  dst?: string;
  /** Source port. */
  sport?: number;
  /** Source port within [lo, hi] (a local port from the pool). */
  sportIn?: [number, number];
  /** Destination port. */
  dport?: number;
  /** Transport protocol number. */
  proto?: number;
  /** TCP sequence number. */
  seq?: number;
  /** TCP acknowledgement number. */
  ack?: number;
  /** TCP flags byte. */
  flags?: number;
  /** TCP MSS option value. */
  mss?: number;
  /** TCP header length, options included. */
  tcpHeaderLen?: number;
  /** The TOA option decoded (null: none). */
  toa?: ToaAddress | null;
  /** How many TOA options the header holds. */
  toaOptions?: number;
  /** Whether a timestamp option is present. */
  timestamp?: boolean;
  /** SACK block edges, in order. */
  sack?: number[];
  /** Bytes after the transport header. */
  payload?: Uint8Array;
  /** UDP checksum field. */
  udpChecksum?: number;
  /** ICMP type and code. */
  icmp?: [number, number];
  /** ICMP bytes 6–7 (a frag-needed's next-hop MTU). */
  icmpMtu?: number;
  /** The packet an ICMP error quotes: valid as a quote, its IPv4 header checksum right. */
  quoted?: Quote;
  /** The checksum field as the engine left it, before the driver completes a partial checksum. */
  partialChecksum?: number;
  /** IPv4 TTL or IPv6 hop limit. */
  ttl?: number;
}

/** An output packet as the field readers see it. */
interface Seen {
  b: Uint8Array;
  n: number;
  inLen: number;
  info: PacketInfo;
  /** The checksum field before a partial checksum was completed (undefined: it was complete). */
  partial?: number;
}

/** How each {@link Out} field is read from an output packet. */
const READ: { [K in keyof Out]-?: (p: Seen, label: string) => unknown } = {
  grow: (p) => p.n - p.inLen,
  src: (p) => src(p.b, p.info),
  dst: (p) => dst(p.b, p.info),
  sport: (p) => read16(p.b, p.info.l4Off),
  sportIn: () => undefined, // compared as a range in expectOut
  dport: (p) => read16(p.b, p.info.l4Off + 2),
  proto: (p) => p.info.l4Proto,
  seq: (p) => tcpSeq(p.b, p.info.l4Off),
  ack: (p) => tcpAck(p.b, p.info.l4Off),
  flags: (p) => p.b[p.info.l4Off + 13],
  mss: (p) => tcpMss(p.b, p.info.l4Off),
  tcpHeaderLen: (p) => p.info.l4HeaderLen,
  toa: (p) => decodeToa(p.b.subarray(0, p.n)),
  toaOptions: (p, label) => {
    const count = optionKinds(p.b, p.info).filter((k) => k === TCPOPT_TOA).length;
    assert.equal(tcpFindOption(p.b, p.info.l4Off, TCPOPT_TOA) !== -1, count > 0, `${label}: TOA found`);
    return count;
  },
  timestamp: (p, label) => {
    const found = tcpFindOption(p.b, p.info.l4Off, TCPOPT_TIMESTAMP) !== -1;
    assert.equal(optionKinds(p.b, p.info).includes(TCPOPT_TIMESTAMP), found, `${label}: timestamp walk`);
    return found;
  },
  sack: (p, label) => {
    const at = tcpFindOption(p.b, p.info.l4Off, TCPOPT_SACK);
    assert.ok(at > 0, `${label}: SACK option present`);
    const edges: number[] = [];
    for (let q = at + 2; q < at + p.b[at + 1]; q += 4) edges.push(read32(p.b, q));
    return edges;
  },
  payload: (p) => p.b.subarray(p.info.l4Off + p.info.l4HeaderLen, p.n),
  udpChecksum: (p) => read16(p.b, p.info.l4Off + 6),
  icmp: (p) => [p.b[p.info.l4Off], p.b[p.info.l4Off + 1]],
  icmpMtu: (p) => read16(p.b, p.info.l4Off + 6),
  partialChecksum: (p) => p.partial,
  ttl: (p) => p.info.family === 4 ? p.b[8] : p.b[7],
  quoted: (p, label) => {
    const qOff = p.info.l4Off + 8;
    const qi = new PacketInfo();
    assert.equal(classifyPacket(p.b, qOff, p.n - qOff, qi, true), PACKET_OK, `${label}: quote is valid`);
    if (qi.family === 4) assert.ok(ipv4ChecksumOk(p.b, qOff), `${label}: inner IPv4 checksum`);
    const q: Quote = {
      src: addr(p.b, qOff, qi.family, false),
      dst: addr(p.b, qOff, qi.family, true),
      sport: read16(p.b, qi.l4Off),
      dport: read16(p.b, qi.l4Off + 2),
    };
    if (qi.l4Proto === 6) q.seq = tcpSeq(p.b, qi.l4Off);
    return q;
  },
};

/** Re-parses the packet out in `b[0, n)` (input `inLen` bytes) and compares every field `want` gives. */
function expectOut(
  label: string,
  b: Uint8Array,
  n: number,
  inLen: number,
  want: Out,
  partial?: number,
): PacketInfo {
  assert.ok(n > 0, `${label}: a packet out, not a drop`);
  const info = parse(b, n);
  const seen = { b, n, inLen, info, partial };
  for (const [k, v] of Object.entries(want) as [keyof Out, unknown][]) {
    if (k === "sportIn") {
      const [lo, hi] = v as [number, number];
      const port = read16(b, info.l4Off);
      assert.ok(port >= lo && port <= hi, `${label}: source port ${port} in [${lo}, ${hi}]`);
      continue;
    }
    assert.deepEqual(READ[k](seen, label), v, `${label}: ${k}`);
  }
  return info;
}

// ---------------------------------------------------------------------------------------------------------
// Counters: every row states the exact change it makes.

/** A drop reason's name (the validator's and the engine's share one code space). */
type DropName = keyof typeof PACKET_REASONS | keyof typeof C.DROP_REASONS;
/** An event's name. */
type EventName = keyof typeof C.EVENTS;
/** A traffic field's name. */
type TrafficName = "conns" | "pkts_in" | "pkts_out" | "bytes_in" | "bytes_out";
const TRAFFIC: Record<TrafficName, number> = {
  conns: C.T_CONNS,
  pkts_in: C.T_PKTS_IN,
  pkts_out: C.T_PKTS_OUT,
  bytes_in: C.T_BYTES_IN,
  bytes_out: C.T_BYTES_OUT,
};

/** A change in the counters: only what is listed may change, by exactly that much. */
interface Counts {
  drops?: Partial<Record<DropName, number>>;
  events?: Partial<Record<EventName, number>>;
  /** Traffic of service `svc`: a new connection's first packet, or one more packet in or out. */
  flow?: "new" | "in" | "out";
  /** The service `flow` counts for (default: the first). */
  svc?: number;
}

/** A copy of every counter. */
interface Snapshot {
  drops: Float64Array;
  events: Float64Array;
  services: Float64Array;
  servers: Float64Array;
}

function snapshot(e: Engine): Snapshot {
  const c = e.counters;
  return {
    drops: c.drops.slice(),
    events: c.events.slice(),
    services: c.services.slice(),
    servers: c.servers.slice(),
  };
}

/** The non-zero differences of `now - before`, by name. */
function delta(
  names: (i: number) => string,
  now: Float64Array,
  before: Float64Array,
): Record<string, number> {
  const out: Record<string, number> = {};
  now.forEach((v, i) => {
    if (v !== before[i]) out[names(i)] = v - before[i];
  });
  return out;
}

const TRAFFIC_NAMES: string[] = [];
for (const [name, field] of Object.entries(TRAFFIC)) TRAFFIC_NAMES[field] = name;
const trafficName = (i: number) =>
  `svc${Math.floor(i / C.TRAFFIC_FIELDS)}.${TRAFFIC_NAMES[i % C.TRAFFIC_FIELDS]}`;

/** Checks that the counters moved from `before` by exactly `want` (a packet of `n` bytes out). */
function expectCounts(label: string, e: Engine, before: Snapshot, want: Counts, n: number): void {
  const now = snapshot(e);
  assert.deepEqual(
    delta((i) => C.DROP_NAMES[i], now.drops, before.drops),
    want.drops ?? {},
    `${label}: drops`,
  );
  assert.deepEqual(
    delta((i) => C.EVENT_NAMES[i], now.events, before.events),
    want.events ?? {},
    `${label}: events`,
  );
  const traffic: Record<string, number> = {};
  const svc = `svc${want.svc ?? 0}`;
  if (want.flow === "new") traffic[`${svc}.conns`] = 1;
  if (want.flow === "new" || want.flow === "in") {
    Object.assign(traffic, { [`${svc}.pkts_in`]: 1, [`${svc}.bytes_in`]: n });
  }
  if (want.flow === "out") Object.assign(traffic, { [`${svc}.pkts_out`]: 1, [`${svc}.bytes_out`]: n });
  assert.deepEqual(delta(trafficName, now.services, before.services), traffic, `${label}: service traffic`);
  // The real servers' counters move as their services' do.
  for (let f = 0; f < C.TRAFFIC_FIELDS; f++) {
    let s = 0;
    let r = 0;
    for (let i = f; i < now.services.length; i += C.TRAFFIC_FIELDS) s += now.services[i] - before.services[i];
    for (let i = f; i < now.servers.length; i += C.TRAFFIC_FIELDS) r += now.servers[i] - before.servers[i];
    assert.equal(r, s, `${label}: server traffic ${TRAFFIC_NAMES[f]} matches the service's`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The driver.

/** A packet in: a buffer (with room to grow) and the bytes used. */
interface Pkt {
  b: Uint8Array;
  len: number;
  /** Its transport checksum is partial (virtio_net_hdr NEEDS_CSUM): the engine is told so. */
  partial?: boolean;
}

/** A row's verdict: dropped under a reason, or a packet out with these fields. */
type Verdict = { drop: DropName } | { out: Out };

/**
 * Runs one packet through the engine and checks its verdict; with `counts` also the exact counter change
 * (a drop's own reason is added to it). Returns the length out and the output's PacketInfo (empty for a
 * drop).
 */
function run(
  e: Engine,
  label: string,
  p: Pkt,
  now: number,
  verdict: Verdict,
  counts?: Counts,
): { n: number; info: PacketInfo } {
  const before = snapshot(e);
  const n = e.process(p.b, p.len, now, p.partial ?? false);
  let info = new PacketInfo();
  if ("drop" in verdict) {
    assert.equal(n, 0, `${label}: dropped`);
  } else {
    // A forwarded packet keeps a partial checksum partial; complete it as the offload would, then check it.
    const partial = p.partial && n > 0 && !e.generated ? completePartial(p.b, n) : undefined;
    info = expectOut(label, p.b, n, p.len, verdict.out, partial);
  }
  if (counts) {
    const want = "drop" in verdict
      ? { ...counts, drops: { ...counts.drops, [verdict.drop]: (counts.drops?.[verdict.drop] ?? 0) + 1 } }
      : counts;
    expectCounts(label, e, before, want, n);
  }
  return { n, info };
}

// ---------------------------------------------------------------------------------------------------------
// Connections set up before a row's packet.

/** A connection as the gateway opened it: the client side and the side toward the real server. */
interface Conn {
  client: string;
  vip: string;
  cport: number;
  vport: number;
  /** The gateway's local address and port toward the real server. */
  local: string;
  lport: number;
  rs: string;
  rsPort: number;
  /** The gateway's ISN toward the real server (TCP). */
  isn: number;
}

/** The client SYN options of {@link handshake}: MSS, timestamp, window scale, SACK permitted. */
const HANDSHAKE_SYN_OPTIONS = [...optMss(1460), 1, 1, ...optTimestamp(7, 0), 1, 3, 3, 7, 4, 2];

/** Sends a client's first packet (a SYN, or `udp` a datagram) and reads the connection off what comes out. */
function open(
  e: Engine,
  o: { v6?: boolean; cport?: number; vport?: number; seq?: number; options?: number[]; udp?: boolean } = {},
): Conn {
  const client = o.v6 ? CLIENT6 : CLIENT;
  const vip = o.v6 ? VIP6 : VIP;
  const cport = o.cport ?? 40000;
  const vport = o.vport ?? 80;
  const p = o.udp ? udp(client, vip, cport, vport, new Uint8Array([9, 8, 7])) : tcp({
    src: client,
    dst: vip,
    sport: cport,
    dport: vport,
    seq: o.seq ?? 1000,
    flags: TCP_SYN,
    options: o.options,
  });
  const n = e.process(p.b, p.len, 1000);
  const info = parse(p.b, n);
  return {
    client,
    vip,
    cport,
    vport,
    local: src(p.b, info),
    lport: read16(p.b, info.l4Off),
    rs: dst(p.b, info),
    rsPort: read16(p.b, info.l4Off + 2),
    isn: o.udp ? 0 : tcpSeq(p.b, info.l4Off),
  };
}

/** Runs a full handshake through the driver, checking each of its three packets out; returns the handles. */
function handshake(e: Engine, cport = 40000, now = 1000) {
  const syn = tcp({
    src: CLIENT,
    dst: VIP,
    sport: cport,
    dport: 80,
    seq: 1000,
    flags: TCP_SYN,
    options: HANDSHAKE_SYN_OPTIONS,
  });
  const toa: ToaAddress = { family: 4, address: CLIENT, port: cport };
  const { n: synLen, info: si } = run(e, "handshake SYN", syn, now, {
    out: { src: LOCAL, flags: TCP_SYN, grow: 8, toa, toaOptions: 1, timestamp: false, mss: 1452 },
  });
  const lport = read16(syn.b, si.l4Off);
  const rs = dst(syn.b, si);
  const rsPort = read16(syn.b, si.l4Off + 2);
  const isn = tcpSeq(syn.b, si.l4Off);
  const synack = tcp({
    src: rs,
    dst: LOCAL,
    sport: rsPort,
    dport: lport,
    seq: 5000,
    ack: isn + 1,
    flags: TCP_SYN | TCP_ACK,
    options: [...optMss(1460), 1, 1, 4, 2],
  });
  const { n: saLen } = run(e, "handshake SYN+ACK", synack, now, {
    out: { src: VIP, dst: CLIENT, sport: 80, dport: cport, flags: TCP_SYN | TCP_ACK, grow: 0, mss: 1452 },
  });
  const ack = tcp({ src: CLIENT, dst: VIP, sport: cport, dport: 80, seq: 1001, ack: 5001, flags: TCP_ACK });
  const { n: ackLen } = run(e, "handshake ACK", ack, now, {
    out: { src: LOCAL, dst: rs, sport: lport, dport: rsPort, seq: (isn + 1) >>> 0, ack: 5001, grow: 8, toa },
  });
  const conn: Conn = { client: CLIENT, vip: VIP, cport, vport: 80, local: LOCAL, lport, rs, rsPort, isn };
  return { ...conn, syn, synLen, si, synack, saLen, ack, ackLen };
}

/** The TCP fields a test chooses; the addresses and ports are the connection's. */
type Segment = Omit<TcpSpec, "src" | "dst" | "sport" | "dport">;

/** A segment the client of `c` sends to the VIP. */
function fromClient(c: Conn, seg: Segment) {
  return tcp({ src: c.client, dst: c.vip, sport: c.cport, dport: c.vport, ...seg });
}

/** A segment the real server of `c` sends back to the gateway's local address. */
function fromServer(c: Conn, seg: Segment) {
  return tcp({ src: c.rs, dst: c.local, sport: c.rsPort, dport: c.lport, ...seg });
}

// ---------------------------------------------------------------------------------------------------------
// Rows: one packet into a fresh engine.

/** One packet into a fresh engine, and what must come of it. */
interface PacketRow {
  name: string;
  input: () => Pkt;
  verdict: Verdict;
  /** The exact counter change (nothing listed: none but a drop's own reason). */
  counts?: Counts;
}

const GET = new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n");

/** A packet given as hex (an issue's reproducer), in a buffer with room to grow. */
function hex(h: string, partial = false): Pkt {
  return { b: fromHex(h, BUF_SIZE), len: h.length >>> 1, partial };
}

/** 40 bytes of options a packing of NOPs makes room in: MSS, 8 NOPs, TS, WS, SACK-permitted, 13 NOPs. */
const PACKABLE_OPTIONS = [
  ...optMss(1460),
  ...Array(8).fill(1),
  ...optTimestamp(1, 0),
  3,
  3,
  7,
  4,
  2,
  ...Array(13).fill(1),
];
/** 40 bytes of real options (MSS and an unknown kind 99 of length 36): no room for TOA even packed. */
const FULL_OPTIONS = [...optMss(1460), 99, 36, ...Array(34).fill(0xaa)];

const PACKET_ROWS: PacketRow[] = [
  {
    name: "SYN: rewritten local→RS, first ISN, timestamp removed, MSS clamped, TOA inserted",
    input: () =>
      tcp({
        src: CLIENT,
        dst: VIP,
        sport: 40000,
        dport: 80,
        seq: 1000,
        flags: TCP_SYN,
        options: HANDSHAKE_SYN_OPTIONS,
      }),
    verdict: {
      out: {
        grow: 8,
        src: LOCAL,
        dst: RS1,
        sportIn: [2000, 2003],
        dport: 80,
        flags: TCP_SYN,
        seq: 0x10000000,
        timestamp: false,
        mss: 1500 - 20 - 20 - 8,
        toa: { family: 4, address: CLIENT, port: 40000 },
        toaOptions: 1,
      },
    },
    counts: {
      events: { toa_inserted: 1, timestamp_removed: 1, mss_clamped: 1, connections: 1 },
      flow: "new",
    },
  },
  {
    name: "SYN with a client-sent TOA: removed; only the gateway's reaches the server",
    input: () =>
      tcp({
        src: CLIENT,
        dst: VIP,
        sport: 40001,
        dport: 80,
        seq: 1,
        flags: TCP_SYN,
        options: [...optToa4(1, "6.6.6.6"), ...optMss(1400)],
      }),
    // The client's TOA is blanked to NOPs in place; the gateway's is then added.
    verdict: { out: { grow: 8, toa: { family: 4, address: CLIENT, port: 40001 }, toaOptions: 1, mss: 1400 } },
    counts: { events: { toa_stripped: 1, toa_inserted: 1, connections: 1 }, flow: "new" },
  },
  {
    name:
      "SYN with client-sent TOAs of kind 253 and 254: both removed; only the gateway's reaches the server",
    input: () =>
      tcp({
        src: CLIENT,
        dst: VIP,
        sport: 40001,
        dport: 80,
        seq: 1,
        flags: TCP_SYN,
        options: [253, 8, 0, 1, 6, 6, 6, 6, ...optToa4(1, "6.6.6.6"), ...optMss(1400)],
      }),
    verdict: { out: { grow: 8, toa: { family: 4, address: CLIENT, port: 40001 }, toaOptions: 1, mss: 1400 } },
    counts: { events: { toa_stripped: 2, toa_inserted: 1, connections: 1 }, flow: "new" },
  },
  {
    name: "SYN with 40 bytes of options: NOPs packed to make room for TOA",
    input: () => {
      assert.equal(PACKABLE_OPTIONS.length, 40);
      return tcp({
        src: CLIENT,
        dst: VIP,
        sport: 40002,
        dport: 80,
        seq: 1,
        flags: TCP_SYN,
        options: PACKABLE_OPTIONS,
      });
    },
    verdict: { out: { toa: { family: 4, address: CLIENT, port: 40002 }, toaOptions: 1, timestamp: false } },
    counts: {
      events: { toa_inserted: 1, timestamp_removed: 1, mss_clamped: 1, connections: 1 },
      flow: "new",
    },
  },
  {
    name: "SYN with 40 bytes of real options: forwarded unchanged in length, TOA left out and counted",
    input: () => {
      assert.equal(FULL_OPTIONS.length, 40);
      return tcp({
        src: CLIENT,
        dst: VIP,
        sport: 40003,
        dport: 80,
        seq: 1,
        flags: TCP_SYN,
        options: FULL_OPTIONS,
      });
    },
    verdict: { out: { grow: 0, tcpHeaderLen: 60, toa: null, toaOptions: 0, mss: 1452 } },
    counts: { events: { toa_no_space: 1, mss_clamped: 1, connections: 1 }, flow: "new" },
  },
  {
    // Issue 9 #1: the client's TOA blanked to NOPs must not disturb a partial checksum (0x9404 was wrong).
    name: "partial-checksum SYN with a client TOA: stays partial (0x915a), TOA replaced",
    input: () =>
      hex(
        "450000301ab040004006928dc6120102c61200649c400050000003e80000000070021fa68dad0000fe080050c6124242",
        true,
      ),
    verdict: {
      out: {
        grow: 8,
        partialChecksum: 0x915a,
        toa: { family: 4, address: CLIENT, port: 40000 },
        toaOptions: 1,
      },
    },
    counts: { events: { toa_stripped: 1, toa_inserted: 1, connections: 1 }, flow: "new" },
  },
  {
    name: "SYN to a toa: false service: no TOA",
    input: () =>
      tcp({ src: CLIENT, dst: VIP, sport: 40004, dport: 81, seq: 1, flags: TCP_SYN, options: optMss(1460) }),
    verdict: { out: { grow: 0, toa: null, toaOptions: 0, src: LOCAL, dst: RS1, dport: 81, mss: 1452 } },
    counts: { events: { mss_clamped: 1, connections: 1 }, flow: "new", svc: SVC_NO_TOA },
  },
  {
    name: "IPv6 SYN: FULLNAT with the 20-byte TOA and IPv6 checksums",
    input: () =>
      tcp({ src: CLIENT6, dst: VIP6, sport: 7000, dport: 80, seq: 1, flags: TCP_SYN, options: optMss(1440) }),
    verdict: {
      out: {
        grow: 20,
        src: LOCAL6,
        dst: RS6,
        dport: 80,
        mss: 1500 - 40 - 20 - 20,
        toa: { family: 6, address: CLIENT6, port: 7000 },
        toaOptions: 1,
      },
    },
    counts: { events: { toa_inserted: 1, mss_clamped: 1, connections: 1 }, flow: "new", svc: SVC_TCP6 },
  },
  {
    name: "UDP to a VIP: forwarded to the real server",
    input: () => udp(CLIENT, VIP, 5555, 53, new Uint8Array([9, 8, 7])),
    verdict: {
      out: {
        grow: 0,
        src: LOCAL,
        dst: RS1,
        sportIn: [2000, 2003],
        dport: 5353,
        payload: new Uint8Array([9, 8, 7]),
      },
    },
    counts: { events: { connections: 1 }, flow: "new", svc: SVC_UDP },
  },
  {
    name: "TCP to a VIP port with no service: RST",
    input: () => tcp({ src: CLIENT, dst: VIP, sport: 5, dport: 9999, seq: 1, ack: 42, flags: TCP_ACK }),
    verdict: { out: { src: VIP, dst: CLIENT, sport: 9999, dport: 5, flags: TCP_RST, seq: 42 } },
    counts: { drops: { no_service: 1 }, events: { rst_sent: 1 } },
  },
  {
    name: "UDP to a VIP port with no service: ICMP port unreachable quoting the datagram",
    input: () => udp(CLIENT, VIP, 5, 9999, new Uint8Array(10)),
    verdict: {
      out: {
        proto: 1,
        icmp: [3, 3],
        src: VIP,
        dst: CLIENT,
        quoted: { src: CLIENT, dst: VIP, sport: 5, dport: 9999 },
      },
    },
    counts: { drops: { no_service: 1 }, events: { icmp_unreach_sent: 1 } },
  },
  {
    name: "not addressed to us: dropped",
    input: () => tcp({ src: CLIENT, dst: "198.18.9.9", sport: 5, dport: 80, seq: 1, flags: TCP_SYN }),
    verdict: { drop: "not_for_us" },
  },
  // Fail fast after a restart: the client of a connection the gateway no longer holds gets a RST at once.
  {
    name: "an ACK of no connection (the gateway restarted): RST with seq = its ACK, no ACK flag; counted",
    input: () => tcp({ src: CLIENT, dst: VIP, sport: 6, dport: 80, seq: 1, ack: 777, flags: TCP_ACK }),
    verdict: { out: { src: VIP, dst: CLIENT, sport: 80, dport: 6, flags: TCP_RST, seq: 777, ack: 0 } },
    counts: { drops: { no_connection: 1 }, events: { rst_sent: 1 } },
  },
  {
    name: "data of no connection: RST answers with seq = its ACK (RFC 793), whatever the length",
    input: () =>
      tcp({
        src: CLIENT,
        dst: VIP,
        sport: 6,
        dport: 80,
        seq: 1,
        ack: 9,
        flags: TCP_ACK | TCP_PSH,
        payload: GET,
      }),
    verdict: { out: { flags: TCP_RST, seq: 9, grow: -GET.length } },
    counts: { drops: { no_connection: 1 }, events: { rst_sent: 1 } },
  },
  {
    name: "a FIN without ACK of no connection: RST+ACK, seq 0, ACK = its seq + 1 (the FIN)",
    input: () => tcp({ src: CLIENT, dst: VIP, sport: 6, dport: 80, seq: 100, flags: TCP_FIN }),
    verdict: { out: { flags: TCP_RST | TCP_ACK, seq: 0, ack: 101 } },
    counts: { drops: { no_connection: 1 }, events: { rst_sent: 1 } },
  },
  {
    name: "IPv6 ACK of no connection: RST from the VIP",
    input: () => tcp({ src: CLIENT6, dst: VIP6, sport: 6, dport: 80, seq: 1, ack: 5, flags: TCP_ACK }),
    verdict: { out: { src: VIP6, dst: CLIENT6, flags: TCP_RST, seq: 5 } },
    counts: { drops: { no_connection: 1 }, events: { rst_sent: 1 } },
  },
  {
    name: "a RST of no connection: dropped, never answered",
    input: () =>
      tcp({ src: CLIENT, dst: VIP, sport: 6, dport: 80, seq: 1, ack: 5, flags: TCP_RST | TCP_ACK }),
    verdict: { drop: "no_connection" },
  },
  {
    name: "an ACK of no connection with a bad checksum: not answered (bad_checksum)",
    input: () => corrupt(tcp({ src: CLIENT, dst: VIP, sport: 6, dport: 80, seq: 1, ack: 5, flags: TCP_ACK })),
    verdict: { drop: "bad_checksum" },
  },
  {
    name: "to a local address, of no connection: dropped",
    input: () => tcp({ src: "198.18.3.99", dst: LOCAL, sport: 80, dport: 2000, seq: 1, flags: TCP_ACK }),
    verdict: { drop: "no_connection_reply" },
  },
  {
    name: "10 bytes of an IPv4 header: dropped as truncated",
    input: () => {
      const b = new Uint8Array(64);
      b[0] = 0x45;
      return { b, len: 10 };
    },
    verdict: { drop: "truncated" },
  },
  {
    name: "ping to a VIP: answered",
    input: () => icmp(CLIENT, VIP, 8, 0, 0x12340001, new Uint8Array([1, 2, 3, 4, 5])),
    verdict: {
      out: { grow: 0, icmp: [0, 0], src: VIP, dst: CLIENT, payload: new Uint8Array([1, 2, 3, 4, 5]) },
    },
    counts: { events: { echo_replied: 1 } },
  },
];

/** `p` with its transport checksum made wrong (one bit of the field flipped). */
function corrupt(p: Pkt): Pkt {
  const info = new PacketInfo();
  assert.equal(classifyPacket(p.b, 0, p.len, info), PACKET_OK);
  p.b[info.l4Off + (info.l4Proto === 6 ? 16 : info.l4Proto === 17 ? 6 : 2) + 1] ^= 1;
  return p;
}

/** `p` with its IPv4 TTL (or IPv6 hop limit) set to `ttl`, the IPv4 header checksum kept right. */
function withTtl(p: Pkt, ttl: number): Pkt {
  if (p.b[0] >>> 4 === 6) {
    p.b[7] = ttl;
  } else {
    p.b[8] = ttl;
    write16(p.b, 10, 0);
    write16(p.b, 10, 0xffff - naiveSum(p.b, 0, 20));
  }
  return p;
}

/** A client SYN to VIP:80 (or, with an IPv6 source, VIP6:80) from `source`. */
function synFrom(source: string, dport = 80): Pkt {
  const v6 = source.includes(":");
  return tcp({ src: source, dst: v6 ? VIP6 : VIP, sport: 4242, dport, seq: 1, flags: TCP_SYN });
}

/** Sources no client can have, for packets to a VIP: each is dropped as martian_source, answered never. */
const MARTIANS: [string, string][] = [
  ["a VIP (land)", VIP],
  ["another VIP", VIP2],
  ["a local address", LOCAL],
  ["loopback", "127.0.0.1"],
  ["loopback 127/8", "127.255.0.9"],
  ["multicast", "224.0.0.1"],
  ["multicast 239/8", "239.1.2.3"],
  ["unspecified", "0.0.0.0"],
  ["limited broadcast", "255.255.255.255"],
  ["IPv6 loopback", "::1"],
  ["IPv6 multicast", "ff02::1"],
  ["IPv6 unspecified", "::"],
  ["the IPv6 VIP (land)", VIP6],
  ["the IPv6 local address", LOCAL6],
];

const HYGIENE_ROWS: PacketRow[] = [
  // Issue 9 #8: a SYN creates state and takes a port, so its checksum must hold (when it is complete).
  {
    name: "SYN with a bad TCP checksum: no connection, no port",
    input: () => corrupt(tcp({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, seq: 1, flags: TCP_SYN })),
    verdict: { drop: "bad_checksum" },
  },
  {
    name: "the same SYN marked partial (offload finishes it): accepted",
    input: () => {
      const p = tcp({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, seq: 1, flags: TCP_SYN });
      makePartial(p.b, p.len);
      return { ...p, partial: true };
    },
    verdict: { out: { grow: 8, src: LOCAL, toa: { family: 4, address: CLIENT, port: 40000 } } },
    counts: { events: { toa_inserted: 1, connections: 1 }, flow: "new" },
  },
  {
    name: "IPv6 SYN with a bad TCP checksum: no connection",
    input: () => corrupt(tcp({ src: CLIENT6, dst: VIP6, sport: 7000, dport: 80, seq: 1, flags: TCP_SYN })),
    verdict: { drop: "bad_checksum" },
  },
  {
    name: "UDP first datagram with a bad checksum: no connection, no port",
    input: () => corrupt(udp(CLIENT, VIP, 5555, 53, new Uint8Array([9, 8, 7]))),
    verdict: { drop: "bad_checksum" },
  },
  // Issue 9 #5: an ICMP message is verified before it is answered or translated.
  {
    name: "ping to a VIP with a bad ICMP checksum: dropped, not answered",
    input: () => corrupt(icmp(CLIENT, VIP, 8, 0, 0x12340001, new Uint8Array([1, 2, 3, 4, 5]))),
    verdict: { drop: "bad_checksum" },
  },
  {
    name: "IPv6 ping with a bad ICMPv6 checksum: dropped, not answered",
    input: () => corrupt(icmp(CLIENT6, VIP6, 128, 0, 0x12340001, new Uint8Array([1, 2, 3]))),
    verdict: { drop: "bad_checksum" },
  },
  {
    name: "IPv6 ping to a VIP: answered",
    input: () => icmp(CLIENT6, VIP6, 128, 0, 0x12340001, new Uint8Array([1, 2, 3])),
    verdict: { out: { icmp: [129, 0], src: VIP6, dst: CLIENT6, ttl: 64 } },
    counts: { events: { echo_replied: 1 } },
  },
  // Issue 9 #4: the all-zero echo reply's checksum is 0xffff, not 0x0000 (the driver verifies it).
  {
    name: "echo request whose reply is all zeros: checksum 0xffff",
    input: () => hex("4500001ca33d400040010a19c6120102c61200640800f7ff00000000"),
    verdict: { out: { icmp: [0, 0], src: VIP, dst: CLIENT } },
    counts: { events: { echo_replied: 1 } },
  },
  // Issue 9 #6: the kernel takes a hop routing into the TUN device and one forwarding out; the gateway
  // gives one back so that it counts as one hop (as IPVS does). Its own replies start at 64.
  {
    name: "forwarded SYN: TTL 64 in, 65 out (the kernel's second decrement is given back)",
    input: () => tcp({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, seq: 1, flags: TCP_SYN }),
    verdict: { out: { ttl: 65, dst: RS1 } },
    counts: { events: { toa_inserted: 1, connections: 1 }, flow: "new" },
  },
  {
    name: "forwarded SYN with TTL 255: stays 255",
    input: () =>
      withTtl(tcp({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, seq: 1, flags: TCP_SYN }), 255),
    verdict: { out: { ttl: 255, dst: RS1 } },
    counts: { events: { toa_inserted: 1, connections: 1 }, flow: "new" },
  },
  {
    name: "forwarded IPv6 SYN: hop limit 1 in, 2 out",
    input: () => withTtl(tcp({ src: CLIENT6, dst: VIP6, sport: 7000, dport: 80, seq: 1, flags: TCP_SYN }), 1),
    verdict: { out: { ttl: 2, dst: RS6 } },
    counts: { events: { toa_inserted: 1, connections: 1 }, flow: "new", svc: SVC_TCP6 },
  },
  {
    name: "forwarded UDP: TTL 7 in, 8 out",
    input: () => withTtl(udp(CLIENT, VIP, 5555, 53, new Uint8Array([9, 8, 7])), 7),
    verdict: { out: { ttl: 8, dst: RS1 } },
    counts: { events: { connections: 1 }, flow: "new", svc: SVC_UDP },
  },
  {
    name: "RST the gateway generates: TTL 64",
    input: () => tcp({ src: CLIENT, dst: VIP, sport: 5, dport: 9999, seq: 1, ack: 42, flags: TCP_ACK }),
    verdict: { out: { flags: TCP_RST, ttl: 64 } },
    counts: { drops: { no_service: 1 }, events: { rst_sent: 1 } },
  },
  // Issue 9 #9: only a SYN without ACK, RST or FIN creates a connection (as dpvs; IPVS schedules on any SYN).
  ...([
    ["SYN+FIN", TCP_SYN | TCP_FIN],
    ["SYN+RST", TCP_SYN | TCP_RST],
    ["SYN+ACK", TCP_SYN | TCP_ACK],
    ["no flags", 0],
    ["Xmas FIN+PSH+URG", TCP_FIN | TCP_PSH | 0x20],
    ["all six flags", 0x3f],
    ["all eight flags", 0xff],
  ] as [string, number][]).map(([what, flags]): PacketRow => ({
    name: `${what} of no connection: creates nothing${flags & TCP_RST ? "" : ", answered with a RST"}`,
    input: () => tcp({ src: CLIENT, dst: VIP, sport: 4242, dport: 80, seq: 1, ack: 3, flags }),
    // A RST is never answered; the rest get one (as a restarted gateway's stale segments do).
    verdict: flags & TCP_RST ? { drop: "no_connection" } : {
      out: flags & TCP_ACK ? { flags: TCP_RST, seq: 3 } : {
        flags: TCP_RST | TCP_ACK,
        seq: 0,
        ack: 1 + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0),
      },
    },
    counts: flags & TCP_RST ? {} : { drops: { no_connection: 1 }, events: { rst_sent: 1 } },
  })),
  // Issue 9 #7: martian and land sources never create state and are never answered.
  ...MARTIANS.map(([what, source]): PacketRow => ({
    name: `SYN to a VIP from ${what} (${source}): martian_source`,
    input: () => synFrom(source),
    verdict: { drop: "martian_source" },
  })),
  {
    name: "SYN to a VIP port with no service from loopback: martian_source, no RST",
    input: () => synFrom("127.0.0.1", 9999),
    verdict: { drop: "martian_source" },
  },
  {
    name: "UDP to a VIP port with no service from multicast: martian_source, no port unreachable",
    input: () => udp("224.0.0.9", VIP, 5, 9999, new Uint8Array(4)),
    verdict: { drop: "martian_source" },
  },
  {
    name: "UDP to a VIP service from broadcast: martian_source",
    input: () => udp("255.255.255.255", VIP, 5, 53, new Uint8Array(4)),
    verdict: { drop: "martian_source" },
  },
  {
    name: "ping to a VIP from multicast: martian_source, no echo reply",
    input: () => icmp("224.0.0.5", VIP, 8, 0, 1, new Uint8Array(4)),
    verdict: { drop: "martian_source" },
  },
  {
    name: "ping to a VIP from the VIP itself (land): martian_source",
    input: () => icmp(VIP, VIP, 8, 0, 1, new Uint8Array(4)),
    verdict: { drop: "martian_source" },
  },
  {
    name: "IPv6 ping to a VIP from ff02::1: martian_source",
    input: () => icmp("ff02::1", VIP6, 128, 0, 1, new Uint8Array(4)),
    verdict: { drop: "martian_source" },
  },
];

for (const row of HYGIENE_ROWS) {
  Deno.test(`hygiene: ${row.name}`, () => {
    const e = engine();
    const ports = e.pool.available(4) + e.pool.available(6);
    run(e, row.name, row.input(), 1000, row.verdict, row.counts ?? {});
    if ("drop" in row.verdict || e.generated) {
      assert.equal(e.conns.size, 0, `${row.name}: no connection`);
      assert.equal(e.pool.available(4) + e.pool.available(6), ports, `${row.name}: no local port taken`);
    }
  });
}

for (const row of PACKET_ROWS) {
  Deno.test(`packet: ${row.name}`, () => {
    run(engine(), row.name, row.input(), 1000, row.verdict, row.counts ?? {});
  });
}

// ---------------------------------------------------------------------------------------------------------
// Rows: one packet on a connection set up first.

/** One packet on a connection `setup` opened, and what must come of it. */
interface ConnRow {
  name: string;
  setup: (e: Engine) => Conn;
  input: (c: Conn) => Pkt;
  verdict: (c: Conn) => Verdict;
  /** The exact counter change (nothing listed: none but a drop's own reason). */
  counts?: Counts;
}

/** A SYN carrying a forged TOA, and the server's SYN+ACK (seq 9): the client's ACK is still to come. */
function synWithForgedToa(e: Engine): Conn {
  const c = open(e, { cport: 40001, seq: 1, options: [...optToa4(1, "6.6.6.6"), ...optMss(1400)] });
  const sa = fromServer(c, { seq: 9, ack: c.isn + 1, flags: TCP_SYN | TCP_ACK });
  assert.ok(e.process(sa.b, sa.len, 1000) > 0);
  return c;
}

/** The packet the gateway sent the real server on `c` after the handshake, with 100 bytes of data. */
function sentToServer(c: Conn) {
  return tcp({
    src: c.local,
    dst: c.rs,
    sport: c.lport,
    dport: c.rsPort,
    seq: c.isn + 1,
    ack: 5001,
    flags: TCP_ACK,
    payload: new Uint8Array(100),
  });
}

const CONN_ROWS: ConnRow[] = [
  {
    name: "client data: sequence moved into the server's space, payload intact, no more TOA",
    setup: handshake,
    input: (c) => fromClient(c, { seq: 1001, ack: 5001, flags: TCP_ACK | TCP_PSH, payload: GET }),
    verdict: (c) => ({
      out: {
        grow: 0,
        src: LOCAL,
        dst: c.rs,
        sport: c.lport,
        dport: c.rsPort,
        seq: (c.isn + 1) >>> 0,
        ack: 5001,
        payload: GET,
        toa: null,
        toaOptions: 0,
      },
    }),
    counts: { flow: "in", svc: SVC_TCP },
  },
  {
    name: "server data: acknowledgement moved back into the client's space",
    setup: handshake,
    input: (c) => fromServer(c, { seq: 5001, ack: c.isn + 1 + GET.length, flags: TCP_ACK, payload: GET }),
    verdict: () => ({
      out: {
        grow: 0,
        src: VIP,
        dst: CLIENT,
        sport: 80,
        dport: 40000,
        seq: 5001,
        ack: 1001 + GET.length,
        payload: GET,
      },
    }),
    counts: { flow: "out" },
  },
  {
    name: "server SACK blocks: moved back into the client's sequence space",
    setup: handshake,
    input: (c) => {
      const base = (c.isn + 1) >>> 0;
      return fromServer(c, {
        seq: 5001,
        ack: base,
        flags: TCP_ACK,
        options: [1, 1, ...optSack([[base + 1000, base + 2000], [base + 3000, base + 4000]])],
      });
    },
    verdict: () => ({ out: { grow: 0, dst: CLIENT, sack: [2001, 3001, 4001, 5001], ack: 1001 } }),
    counts: { flow: "out" },
  },
  {
    name: "SYN+ACK with a server-sent option 254: NOPed, no TOA reaches the client",
    setup: (e) => open(e, { cport: 40005, seq: 1 }),
    input: (c) =>
      fromServer(c, {
        seq: 9,
        ack: c.isn + 1,
        flags: TCP_SYN | TCP_ACK,
        options: [...optToa4(80, "10.0.0.1"), ...optMss(1400)],
      }),
    verdict: () => ({ out: { grow: 0, dst: CLIENT, dport: 40005, ack: 2, toaOptions: 0, mss: 1400 } }),
    counts: { events: { toa_stripped: 1 }, flow: "out" },
  },
  {
    name: "handshake ACK with a forged TOA: removed; the gateway's TOA is the one inserted",
    setup: synWithForgedToa,
    input: (c) => fromClient(c, { seq: 2, ack: 10, flags: TCP_ACK, options: optToa4(2, "6.6.6.6") }),
    verdict: (c) => ({
      out: {
        grow: 8,
        toa: { family: 4, address: CLIENT, port: 40001 },
        toaOptions: 1,
        seq: (c.isn + 1) >>> 0,
      },
    }),
    counts: { events: { toa_stripped: 1, toa_inserted: 1 }, flow: "in" },
  },
  {
    name: "IPv6 SYN+ACK: back to the client from the VIP",
    setup: (e) => open(e, { v6: true, cport: 7000, seq: 1, options: optMss(1440) }),
    input: (c) => fromServer(c, { seq: 1, ack: c.isn + 1, flags: TCP_SYN | TCP_ACK }),
    verdict: () => ({ out: { grow: 0, src: VIP6, dst: CLIENT6, sport: 80, dport: 7000, ack: 2, seq: 1 } }),
    counts: { flow: "out", svc: SVC_TCP6 },
  },
  {
    name: "UDP reply with no checksum: NATed back, the zero IPv4 checksum stays zero",
    setup: (e) => open(e, { udp: true, cport: 5555, vport: 53 }),
    input: (c) => {
      const r = udp(c.rs, c.local, c.rsPort, c.lport, new Uint8Array([1]));
      r.b[20 + 6] = 0;
      r.b[20 + 7] = 0; // no checksum
      return r;
    },
    verdict: () => ({ out: { grow: 0, src: VIP, dst: CLIENT, sport: 53, dport: 5555, udpChecksum: 0 } }),
    counts: { flow: "out", svc: SVC_UDP },
  },
  {
    name: "ICMP frag-needed from the server side: to the client, about its own packet",
    setup: handshake,
    // The real server's router quotes the packet the gateway sent: IP header + 28 bytes of TCP.
    input: (c) => icmp("198.18.3.1", LOCAL, 3, 4, 1400, sentToServer(c).b.slice(0, 20 + 28)),
    verdict: () => ({
      out: {
        src: VIP,
        dst: CLIENT,
        icmp: [3, 4],
        icmpMtu: 1400,
        quoted: { src: CLIENT, dst: VIP, sport: 40000, dport: 80, seq: 1001 },
      },
    }),
    counts: { events: { icmp_translated: 1 } },
  },
  {
    name: "ICMP time exceeded from the client side: to the real server, about its own packet",
    setup: handshake,
    input: () =>
      icmp(
        "198.18.1.1",
        VIP,
        11,
        0,
        0,
        tcp({ src: VIP, dst: CLIENT, sport: 80, dport: 40000, seq: 5001, ack: 1001, flags: TCP_ACK }).b.slice(
          0,
          28,
        ),
      ),
    verdict: (c) => ({
      out: {
        src: LOCAL,
        dst: RS1,
        icmp: [11, 0],
        quoted: { src: RS1, dst: LOCAL, sport: 80, dport: c.lport, seq: 5001 },
      },
    }),
    counts: { events: { icmp_translated: 1 } },
  },
  {
    name: "ICMP error quoting a packet of no connection: dropped",
    setup: handshake,
    input: () =>
      icmp(
        "198.18.1.1",
        VIP,
        3,
        1,
        0,
        tcp({ src: VIP, dst: CLIENT, sport: 80, dport: 1, flags: TCP_ACK }).b.slice(0, 28),
      ),
    verdict: () => ({ drop: "icmp_no_connection" }),
  },
  // Issue 9 #3: an error to a local address must quote the connection's whole tuple, its real server too.
  {
    name: "ICMP error to a local address quoting another destination: dropped, not sent to the client",
    setup: handshake,
    input: (c) => {
      const q = tcp({ src: LOCAL, dst: "198.18.9.9", sport: c.lport, dport: 9999, seq: 1, flags: TCP_ACK });
      return icmp("198.18.9.9", LOCAL, 3, 3, 0, q.b.slice(0, 28));
    },
    verdict: () => ({ drop: "icmp_no_connection" }),
  },
  {
    name: "ICMP error to a local address quoting the real server's address on another port: dropped",
    setup: handshake,
    input: (c) => {
      const q = tcp({ src: LOCAL, dst: c.rs, sport: c.lport, dport: 9999, seq: 1, flags: TCP_ACK });
      return icmp("198.18.3.1", LOCAL, 3, 3, 0, q.b.slice(0, 28));
    },
    verdict: () => ({ drop: "icmp_no_connection" }),
  },
  {
    name: "ICMP error to a local address quoting a packet from another source: dropped",
    setup: handshake,
    input: (c) => {
      const q = tcp({
        src: "198.18.2.77",
        dst: c.rs,
        sport: c.lport,
        dport: c.rsPort,
        seq: 1,
        flags: TCP_ACK,
      });
      return icmp("198.18.3.1", LOCAL, 3, 4, 1400, q.b.slice(0, 28));
    },
    verdict: () => ({ drop: "icmp_no_connection" }),
  },
  {
    name: "ICMP error to one VIP quoting a packet from another: dropped",
    setup: handshake,
    input: () =>
      icmp(
        "198.18.1.1",
        VIP2,
        11,
        0,
        0,
        tcp({ src: VIP, dst: CLIENT, sport: 80, dport: 40000, seq: 5001, ack: 1001, flags: TCP_ACK }).b.slice(
          0,
          28,
        ),
      ),
    verdict: () => ({ drop: "icmp_no_connection" }),
  },
  {
    name: "ICMP error from the server side with a bad ICMP checksum: dropped, not re-summed",
    setup: handshake,
    input: (c) => corrupt(icmp("198.18.3.1", LOCAL, 3, 4, 1400, sentToServer(c).b.slice(0, 20 + 28))),
    verdict: () => ({ drop: "bad_checksum" }),
  },
  {
    name: "ICMP frag-needed translated: a forwarded packet, TTL 64 in, 65 out",
    setup: handshake,
    input: (c) => icmp("198.18.3.1", LOCAL, 3, 4, 1400, sentToServer(c).b.slice(0, 20 + 28)),
    verdict: () => ({ out: { src: VIP, dst: CLIENT, icmp: [3, 4], ttl: 65 } }),
    counts: { events: { icmp_translated: 1 } },
  },
  {
    name: "server data: TTL 64 in, 65 out",
    setup: handshake,
    input: (c) => fromServer(c, { seq: 5001, ack: c.isn + 1, flags: TCP_ACK, payload: GET }),
    verdict: () => ({ out: { dst: CLIENT, ttl: 65 } }),
    counts: { flow: "out" },
  },
];

for (const row of CONN_ROWS) {
  Deno.test(`connection: ${row.name}`, () => {
    const e = engine();
    const c = row.setup(e);
    run(e, row.name, row.input(c), 1001, row.verdict(c), row.counts ?? {});
  });
}

// ---------------------------------------------------------------------------------------------------------
// Odd flag combinations on a live connection follow IPVS's tcp_state_idx: RST wins, then SYN, then FIN,
// then ACK; no flag at all changes nothing (docs/engine.md has the table).

/** One segment on an established connection and the state it must leave; then a follow-up may check more. */
interface FlagRow {
  name: string;
  /** The client's segment (its flags; seq/ack are the connection's). */
  flags: number;
  /** A FIN from the server first (the connection is in FIN_WAIT). */
  serverFinFirst?: boolean;
  state: number;
  /** The state after a later server FIN|ACK (SYN+FIN must not have counted as the client's FIN). */
  thenServerFin?: number;
}

const FLAG_ROWS: FlagRow[] = [
  {
    name: "SYN+FIN: a SYN (the FIN is not the client's close)",
    flags: TCP_SYN | TCP_FIN,
    state: STATE_ESTABLISHED,
    thenServerFin: STATE_FIN_WAIT,
  },
  {
    name: "RST+FIN after the server's FIN: RST wins, CLOSE (not TIME_WAIT)",
    flags: TCP_RST | TCP_FIN | TCP_ACK,
    serverFinFirst: true,
    state: STATE_CLOSE,
  },
  { name: "SYN+RST: RST wins, CLOSE", flags: TCP_SYN | TCP_RST, state: STATE_CLOSE },
  { name: "all eight flags: RST wins, CLOSE", flags: 0xff, state: STATE_CLOSE },
  { name: "no flags: no change", flags: 0, state: STATE_ESTABLISHED, thenServerFin: STATE_FIN_WAIT },
  {
    name: "Xmas FIN+PSH+URG: a FIN",
    flags: TCP_FIN | TCP_PSH | 0x20,
    state: STATE_FIN_WAIT,
    thenServerFin: STATE_TIME_WAIT,
  },
];

for (const row of FLAG_ROWS) {
  Deno.test(`flags on a live connection: ${row.name}`, () => {
    const e = engine();
    const h = handshake(e);
    const id = e.conns.findLocal(0, h.lport);
    if (row.serverFinFirst) {
      const f = fromServer(h, { seq: 5001, ack: h.isn + 1, flags: TCP_FIN | TCP_ACK });
      run(e, "server FIN", f, 1001, { out: { flags: TCP_FIN | TCP_ACK } }, { flow: "out" });
      assert.equal(e.conns.state(id), STATE_FIN_WAIT);
    }
    const seg = fromClient(h, { seq: 1001, ack: 5001, flags: row.flags });
    run(e, row.name, seg, 1001, { out: { flags: row.flags, dst: h.rs } }, { flow: "in" });
    assert.equal(e.conns.state(id), row.state, `${row.name}: state`);
    if (row.thenServerFin !== undefined) {
      const f = fromServer(h, { seq: 5001, ack: h.isn + 1, flags: TCP_FIN | TCP_ACK });
      run(e, "server FIN after", f, 1001, { out: { flags: TCP_FIN | TCP_ACK } }, { flow: "out" });
      assert.equal(e.conns.state(id), row.thenServerFin, `${row.name}: state after the server's FIN`);
    }
  });
}

// ---------------------------------------------------------------------------------------------------------
// Blind RSTs: a RST closes the entry only when its sequence number is within the largest window its
// receiver advertised of the sender's next one; otherwise it is forwarded (the endpoint judges it, RFC 5961)
// and counted, the state and timer untouched.

/** Window scale options: `[client's SYN shift, server's SYN+ACK shift]`, undefined for none. */
type Scales = [number | undefined, number | undefined];

/**
 * A handshake whose SYN and SYN+ACK carry the window scale options `scales` (windows 65535 in both, never
 * scaled), then a client ACK advertising `clientWin` (scaled by its shift if scaling is on). The client's
 * next sequence number is 1001, the server's 5001.
 */
function scaledHandshake(e: Engine, scales: Scales, clientWin = 65535): Conn {
  const ws = (s: number | undefined) => (s === undefined ? [] : [1, 3, 3, s]);
  const c = open(e, { options: [...optMss(1460), ...ws(scales[0])] });
  const sa = fromServer(c, { seq: 5000, ack: c.isn + 1, flags: TCP_SYN | TCP_ACK, options: ws(scales[1]) });
  assert.ok(e.process(sa.b, sa.len, 1000) > 0, "SYN+ACK forwarded");
  const ack = fromClient(c, { seq: 1001, ack: 5001, flags: TCP_ACK, window: clientWin });
  assert.ok(e.process(ack.b, ack.len, 1000) > 0, "ACK forwarded");
  return c;
}

/** One RST on a connection and whether it may close it. */
interface RstRow {
  name: string;
  setup: (e: Engine) => Conn;
  /** Who sends the RST. */
  from: "client" | "server";
  seq: number;
  flags?: number;
  ack?: (c: Conn) => number;
  /** In its receiver's window: the entry goes to CLOSE; else forwarded, counted, nothing changes. */
  inWindow: boolean;
}

/** 65535: the largest window each side of {@link scaledHandshake} advertised with scaling off. */
const W = 65535;

const RST_ROWS: RstRow[] = [
  {
    name: "server RST at the server's next sequence number",
    setup: (e) => scaledHandshake(e, [7, undefined]),
    from: "server",
    seq: 5001,
    inWindow: true,
  },
  {
    name: "server RST a whole client window ahead (the client may still miss data)",
    setup: (e) => scaledHandshake(e, [7, undefined]),
    from: "server",
    seq: 5001 + W,
    inWindow: true,
  },
  {
    name: "server RST one past the client's window: blind",
    setup: (e) => scaledHandshake(e, [7, undefined]),
    from: "server",
    seq: 5001 + W + 1,
    inWindow: false,
  },
  {
    name: "server RST a whole window behind: in",
    setup: (e) => scaledHandshake(e, [7, undefined]),
    from: "server",
    seq: 5001 - W,
    inWindow: true,
  },
  {
    name: "server RST one more behind: blind",
    setup: (e) => scaledHandshake(e, [7, undefined]),
    from: "server",
    seq: 5001 - W - 1,
    inWindow: false,
  },
  {
    name: "server RST half the sequence space away: blind",
    setup: (e) => scaledHandshake(e, [7, undefined]),
    from: "server",
    seq: (5001 + 0x80000000) >>> 0,
    inWindow: false,
  },
  {
    name: "client RST at the client's next sequence number",
    setup: (e) => scaledHandshake(e, [7, undefined]),
    from: "client",
    seq: 1001,
    inWindow: true,
  },
  {
    name: "client RST a whole server window ahead",
    setup: (e) => scaledHandshake(e, [7, undefined]),
    from: "client",
    seq: 1001 + W,
    inWindow: true,
  },
  {
    name: "client RST past the server's window: blind",
    setup: (e) => scaledHandshake(e, [7, undefined]),
    from: "client",
    seq: 1001 + W + 1,
    inWindow: false,
  },
  {
    name: "client RST+ACK past the server's window: blind (the ACK changes nothing)",
    setup: (e) => scaledHandshake(e, [7, undefined]),
    from: "client",
    seq: 1001 - W - 1,
    flags: TCP_RST | TCP_ACK,
    ack: () => 5001,
    inWindow: false,
  },
  {
    name: "scaling on (both offered): the client's window 1000 << 7 = 128000 takes a server RST 100000 ahead",
    setup: (e) => scaledHandshake(e, [7, 2], 1000),
    from: "server",
    seq: 5001 + 100000,
    inWindow: true,
  },
  {
    name: "scaling on: 128001 ahead is past the client's scaled window: blind",
    setup: (e) => scaledHandshake(e, [7, 2], 1000),
    from: "server",
    seq: 5001 + 128001,
    inWindow: false,
  },
  {
    name: "only the client offered scaling: off, its window 1000 is not scaled; 100000 ahead is blind",
    setup: (e) => scaledHandshake(e, [7, undefined], 1000),
    from: "server",
    seq: 5001 + 100000,
    inWindow: false,
  },
  {
    name: "only the server offered scaling (against RFC 7323): off, 100000 ahead is blind",
    setup: (e) => scaledHandshake(e, [undefined, 7], 1000),
    from: "server",
    seq: 5001 + 100000,
    inWindow: false,
  },
  {
    name: "SYN_SENT: a server RST+ACK acknowledging the gateway's SYN (a closed port) closes",
    setup: (e) => open(e),
    from: "server",
    seq: 0,
    flags: TCP_RST | TCP_ACK,
    ack: (c) => c.isn + 1,
    inWindow: true,
  },
  {
    name: "SYN_SENT: a server RST+ACK acknowledging anything else: blind (the client drops it too)",
    setup: (e) => open(e),
    from: "server",
    seq: 0,
    flags: TCP_RST | TCP_ACK,
    ack: (c) => c.isn + 2,
    inWindow: false,
  },
  {
    name: "SYN_SENT: a server RST without ACK: blind (RFC 793 SYN-SENT drops it)",
    setup: (e) => open(e),
    from: "server",
    seq: 1234,
    inWindow: false,
  },
  {
    name: "SYN_RECV: the client's RST answering the SYN+ACK (seq = its ISN + 1) closes",
    setup: (e) => {
      const c = open(e);
      const sa = fromServer(c, { seq: 5000, ack: c.isn + 1, flags: TCP_SYN | TCP_ACK });
      assert.ok(e.process(sa.b, sa.len, 1000) > 0);
      return c;
    },
    from: "client",
    seq: 1001,
    inWindow: true,
  },
];

for (const row of RST_ROWS) {
  Deno.test(`blind RST: ${row.name}`, () => {
    const e = engine();
    const c = row.setup(e);
    const id = e.conns.findLocal(0, c.lport);
    const state = e.conns.state(id);
    const deadline = e.wheel.deadline(id);
    const next = [e.conns.nextFromClient(id), e.conns.nextFromServer(id)];
    const flags = row.flags ?? TCP_RST;
    const seg = { seq: row.seq, ack: row.ack?.(c) ?? 0, flags };
    const p = row.from === "client" ? fromClient(c, seg) : fromServer(c, seg);
    // Forwarded either way, with the usual rewrite; only the entry's fate differs.
    const out: Out = row.from === "client"
      ? { dst: c.rs, dport: c.rsPort, flags, seq: (row.seq + c.isn - 1000) >>> 0 }
      : { dst: CLIENT, dport: c.cport, flags, seq: row.seq >>> 0 };
    run(e, row.name, p, 1002, { out }, {
      flow: row.from === "client" ? "in" : "out",
      events: row.inWindow ? {} : { rst_out_of_window: 1 },
    });
    if (row.inWindow) {
      assert.equal(e.conns.state(id), STATE_CLOSE, "closed");
      assert.equal(e.wheel.deadline(id), 1002 + 3, "the CLOSE timeout");
    } else {
      assert.equal(e.conns.state(id), state, "state untouched");
      assert.equal(e.wheel.deadline(id), deadline, "timer untouched");
      assert.deepEqual([e.conns.nextFromClient(id), e.conns.nextFromServer(id)], next, "sequence tracking");
    }
  });
}

Deno.test("blind RST: window tracking keeps the largest scaled window, a SYN's never scaled", () => {
  const e = engine();
  const c = scaledHandshake(e, [7, 2], 1000);
  const id = e.conns.findLocal(0, c.lport);
  assert.deepEqual([e.conns.clientWscale(id), e.conns.serverWscale(id)], [7, 2]);
  assert.equal(e.conns.clientMaxWin(id), 128000, "client: 1000 << 7 beats the SYN's 65535");
  assert.equal(e.conns.serverMaxWin(id), 65535, "server: its SYN+ACK's, unscaled");
  const d = fromServer(c, { seq: 5001, ack: c.isn + 1, flags: TCP_ACK, window: 30000 });
  assert.ok(e.process(d.b, d.len, 1001) > 0);
  assert.equal(e.conns.serverMaxWin(id), 120000, "server: 30000 << 2");
  const small = fromClient(c, { seq: 1001, ack: 5001, flags: TCP_ACK, window: 10 });
  assert.ok(e.process(small.b, small.len, 1001) > 0);
  assert.equal(e.conns.clientMaxWin(id), 128000, "a smaller window later keeps the largest");
  // A retransmitted SYN+ACK (in SYN_RECV or later) settles nothing again.
  const e2 = engine();
  const c2 = open(e2, { options: [1, 3, 3, 5] });
  const id2 = e2.conns.findLocal(0, c2.lport);
  const sa = fromServer(c2, { seq: 5000, ack: c2.isn + 1, flags: TCP_SYN | TCP_ACK, options: [1, 3, 3, 9] });
  assert.ok(e2.process(sa.b, sa.len, 1000) > 0);
  const sa2 = fromServer(c2, { seq: 5000, ack: c2.isn + 1, flags: TCP_SYN | TCP_ACK, options: [1, 3, 3, 9] });
  assert.ok(e2.process(sa2.b, sa2.len, 1000) > 0);
  assert.deepEqual([e2.conns.clientWscale(id2), e2.conns.serverWscale(id2)], [5, 9]);
});

// ---------------------------------------------------------------------------------------------------------
// Takeover: a real server that answers the gateway's SYN with an ACK still holds the tuple (TIME_WAIT, or a
// stale connection). The ACK is dropped; the server gets a RST with seq = that ACK's acknowledgement, then
// the SYN again at once (nextOutput), rebuilt from the entry.

/** A client SYN with Linux's options: MSS 1460, SACK permitted, timestamps, window scale 7. */
const LINUX_SYN_OPTIONS = [...optMss(1460), 4, 2, ...optTimestamp(7, 0), 1, 3, 3, 7];

/** The server's bare ACK to the gateway's SYN on `c`: a TIME_WAIT's (ack = the old connection's RCV.NXT). */
function staleAck(c: Conn, ack = 0xdeadbeef) {
  return fromServer(c, { seq: 0x12345678, ack, flags: TCP_ACK });
}

/** The SYN the takeover queued, checked as the original forwarded one was (fields in `want`). */
function expectRetransmittedSyn(e: Engine, label: string, want: Out): void {
  const b = new Uint8Array(BUF_SIZE);
  const n = e.nextOutput(b);
  assert.ok(e.generated, `${label}: generated (complete checksums)`);
  expectOut(label, b, n, n, want);
  assert.equal(e.nextOutput(b), 0, `${label}: nothing more`);
}

Deno.test("takeover: the server's ACK to our SYN → RST to the server (seq = its ACK), then the SYN again", () => {
  const e = engine();
  const syn = tcp({
    src: CLIENT,
    dst: VIP,
    sport: 40000,
    dport: 80,
    seq: 1000,
    flags: TCP_SYN,
    window: 29200,
    options: LINUX_SYN_OPTIONS,
  });
  const { info: si } = run(e, "SYN", syn, 1000, { out: { flags: TCP_SYN, mss: 1452, timestamp: false } });
  const c: Conn = {
    client: CLIENT,
    vip: VIP,
    cport: 40000,
    vport: 80,
    local: src(syn.b, si),
    lport: read16(syn.b, si.l4Off),
    rs: dst(syn.b, si),
    rsPort: read16(syn.b, si.l4Off + 2),
    isn: tcpSeq(syn.b, si.l4Off),
  };
  const id = e.conns.findLocal(0, c.lport);
  const sentKinds = optionKinds(syn.b, si);
  run(e, "stale ACK", staleAck(c), 1001, {
    out: {
      src: LOCAL,
      dst: c.rs,
      sport: c.lport,
      dport: c.rsPort,
      flags: TCP_RST,
      seq: 0xdeadbeef,
      ack: 0,
      ttl: 64,
    },
  }, { drops: { takeover: 1 }, events: { takeover_rst: 1, toa_inserted: 1 } });
  assert.ok(e.generated);
  const b = new Uint8Array(BUF_SIZE);
  const n = e.nextOutput(b);
  const info = expectOut("SYN again", b, n, n, {
    src: LOCAL,
    dst: c.rs,
    sport: c.lport,
    dport: c.rsPort,
    seq: c.isn,
    ack: 0,
    flags: TCP_SYN,
    mss: 1452,
    timestamp: false,
    toa: { family: 4, address: CLIENT, port: 40000 },
    toaOptions: 1,
    ttl: 64,
  });
  assert.deepEqual(
    optionKinds(b, info).sort(),
    sentKinds.sort(),
    "the options the first SYN carried (TOA first, as inserted)",
  );
  assert.equal(optionKinds(b, info)[0], TCPOPT_TOA);
  assert.equal(read16(b, info.l4Off + 14), 29200, "the client's window");
  const ws = tcpFindOption(b, info.l4Off, 3);
  assert.deepEqual([b[ws + 1], b[ws + 2]], [3, 7], "window scale 7");
  assert.equal(e.nextOutput(b), 0, "RST and SYN, nothing more");
  assert.equal(e.conns.state(id), STATE_SYN_SENT);
  assert.equal(e.wheel.deadline(id), 1001 + 3, "the SYN_SENT timer starts again");
  // The server, freed, answers the SYN: the connection goes on as any other.
  const sa = fromServer(c, { seq: 5000, ack: c.isn + 1, flags: TCP_SYN | TCP_ACK });
  run(e, "SYN+ACK", sa, 1001, { out: { dst: CLIENT, dport: 40000, ack: 1001 } }, { flow: "out" });
  assert.equal(e.conns.state(id), STATE_SYN_RECV);
});

Deno.test("takeover: twice per connection at most, then the ACK is only dropped (takeover)", () => {
  const e = engine();
  const c = open(e, { options: LINUX_SYN_OPTIONS });
  for (let i = 0; i < 2; i++) {
    run(e, `stale ACK ${i + 1}`, staleAck(c), 1000, { out: { flags: TCP_RST, dst: c.rs } }, {
      drops: { takeover: 1 },
      events: { takeover_rst: 1, toa_inserted: 1 }, // the SYN sent again carries TOA
    });
    expectRetransmittedSyn(e, `SYN again ${i + 1}`, { flags: TCP_SYN, seq: c.isn });
  }
  run(e, "stale ACK 3", staleAck(c), 1000, { drop: "takeover" }, {});
  assert.equal(e.nextOutput(new Uint8Array(BUF_SIZE)), 0, "no SYN queued by a drop");
  // The client's own SYN retransmission still goes through.
  const again = fromClient(c, { seq: 1000, flags: TCP_SYN, options: LINUX_SYN_OPTIONS });
  run(e, "client SYN again", again, 1001, { out: { flags: TCP_SYN, seq: c.isn, dst: c.rs } }, {
    events: { mss_clamped: 1, timestamp_removed: 1, toa_inserted: 1 },
    flow: "in",
  });
});

Deno.test("takeover: under the reply rate limit; a bad checksum is not answered", () => {
  const e = new Engine(config({ replyRate: 0 }), { now: 1000, random32: () => 0x10000000 });
  const c = open(e);
  run(e, "stale ACK, no reply budget", staleAck(c), 1000, { drop: "takeover" }, {
    events: { reply_rate_limited: 1 },
  });
  const e2 = engine();
  const c2 = open(e2);
  run(e2, "stale ACK, corrupt", corrupt(staleAck(c2)), 1000, { drop: "bad_checksum" }, {});
});

Deno.test("takeover: IPv6, the 20-byte TOA; a SYN without options comes back without options", () => {
  const e = engine();
  const c6 = open(e, { v6: true, cport: 40100, options: [...optMss(1440), 1, 3, 3, 2] });
  run(e, "stale ACK v6", staleAck(c6, 77), 1000, { out: { flags: TCP_RST, seq: 77, dst: RS6 } }, {
    drops: { takeover: 1 },
    events: { takeover_rst: 1, toa_inserted: 1 },
  });
  expectRetransmittedSyn(e, "SYN again v6", {
    src: LOCAL6,
    dst: RS6,
    seq: c6.isn,
    flags: TCP_SYN,
    mss: 1420, // 1440 clamped to 1500 − 40 − 20 − 20, as the first SYN was
    toa: { family: 6, address: CLIENT6, port: 40100 },
  });
  const e2 = engine();
  const c = open(e2, { vport: 81 }); // toa: false, and no options at all
  run(e2, "stale ACK", staleAck(c), 1000, { out: { flags: TCP_RST } }, {
    drops: { takeover: 1 },
    events: { takeover_rst: 1 },
  });
  expectRetransmittedSyn(e2, "bare SYN again", { flags: TCP_SYN, tcpHeaderLen: 20, seq: c.isn, dport: 81 });
});

Deno.test("takeover: a SYN that carried data (TFO) is not rebuilt: RST only, the client retransmits", () => {
  const e = engine();
  const c = open(e, { options: optMss(1460) });
  const id = e.conns.findLocal(0, c.lport);
  // Reopen the same entry's SYN with data: a retransmission in SYN_SENT records it.
  const withData = fromClient(c, { seq: 1000, flags: TCP_SYN, options: optMss(1460), payload: GET });
  assert.ok(e.process(withData.b, withData.len, 1000) > 0);
  run(e, "stale ACK", staleAck(c), 1000, { out: { flags: TCP_RST } }, {
    drops: { takeover: 1 },
    events: { takeover_rst: 1 },
  });
  assert.equal(e.nextOutput(new Uint8Array(BUF_SIZE)), 0, "no SYN rebuilt");
  assert.equal(e.conns.state(id), STATE_SYN_SENT);
});

Deno.test("takeover: only in SYN_SENT; an ACK in SYN_RECV is forwarded as before", () => {
  const e = engine();
  const c = open(e);
  const sa = fromServer(c, { seq: 5000, ack: c.isn + 1, flags: TCP_SYN | TCP_ACK });
  assert.ok(e.process(sa.b, sa.len, 1000) > 0);
  const ack = fromServer(c, { seq: 5001, ack: c.isn + 1, flags: TCP_ACK });
  run(e, "server ACK in SYN_RECV", ack, 1000, { out: { dst: CLIENT, flags: TCP_ACK } }, { flow: "out" });
});

Deno.test("server SYN+ACK+FIN in SYN_SENT: a SYN+ACK (SYN wins); the FIN is not the server's close", () => {
  const e = engine();
  const c = open(e);
  const id = e.conns.findLocal(0, c.lport);
  const sa = fromServer(c, { seq: 5000, ack: c.isn + 1, flags: TCP_SYN | TCP_ACK | TCP_FIN });
  run(e, "SYN+ACK+FIN", sa, 1000, { out: { dst: CLIENT } }, { flow: "out" });
  assert.equal(e.conns.state(id), STATE_SYN_RECV);
  const ack = fromClient(c, { seq: 1001, ack: 5001, flags: TCP_ACK });
  run(e, "ACK", ack, 1000, { out: { dst: c.rs, toaOptions: 1 } }, {
    events: { toa_inserted: 1 },
    flow: "in",
  });
  const fin = fromClient(c, { seq: 1001, ack: 5001, flags: TCP_FIN | TCP_ACK });
  run(e, "client FIN", fin, 1000, { out: { dst: c.rs } }, { flow: "in" });
  assert.equal(e.conns.state(id), STATE_FIN_WAIT, "one FIN so far: the client's");
});

// ---------------------------------------------------------------------------------------------------------
// Issue 9 #2: every 0 the engine returns is exactly one counted drop.

Deno.test("a rate-limited echo request is a counted drop (echo_rate_limited), the limit refills with time", () => {
  const e = new Engine(config(), { now: 1000, replyRate: 2, random32: () => 1 });
  const ping = () => icmp(CLIENT, VIP, 8, 0, 1, new Uint8Array(4));
  run(e, "ping 1", ping(), 1000, { out: { icmp: [0, 0] } }, { events: { echo_replied: 1 } });
  run(e, "ping 2", ping(), 1000, { out: { icmp: [0, 0] } }, { events: { echo_replied: 1 } });
  run(e, "ping 3", ping(), 1000, { drop: "echo_rate_limited" }, { events: { reply_rate_limited: 1 } });
  run(e, "ping 4, a second later", ping(), 1001, { out: { icmp: [0, 0] } }, { events: { echo_replied: 1 } });
  // A refused SYN counts its refusal once, answered or not.
  const syn = () => tcp({ src: CLIENT, dst: VIP, sport: 9, dport: 9999, seq: 1, flags: TCP_SYN });
  run(e, "refused SYN", syn(), 1001, { out: { flags: TCP_RST | TCP_ACK } }, {
    drops: { no_service: 1 },
    events: { rst_sent: 1 },
  });
  run(e, "refused SYN, rate-limited", syn(), 1001, { drop: "no_service" }, {
    events: { reply_rate_limited: 1 },
  });
});

Deno.test("replyRate from the config, shared by the workers: 4/s over 2 workers is 2/s each", () => {
  const e = new Engine(config({ replyRate: 4, workers: 2 }), { now: 1000, worker: 0, workers: 2 });
  const ping = () => icmp(CLIENT, VIP, 8, 0, 1, new Uint8Array(4));
  run(e, "ping 1", ping(), 1000, { out: { icmp: [0, 0] } }, { events: { echo_replied: 1 } });
  run(e, "ping 2", ping(), 1000, { out: { icmp: [0, 0] } }, { events: { echo_replied: 1 } });
  run(e, "ping 3", ping(), 1000, { drop: "echo_rate_limited" }, { events: { reply_rate_limited: 1 } });
  const never = new Engine(config({ replyRate: 0 }), { now: 1000 });
  run(never, "replyRate 0: never answered", ping(), 1000, { drop: "echo_rate_limited" }, {
    events: { reply_rate_limited: 1 },
  });
});

Deno.test("mixed stream of 4,000 packets: each 0 returned is one drop, each refusal one drop, nothing else", () => {
  const rnd = prng(9);
  const e = new Engine(config({ portRange: [2000, 2007] }), {
    now: 1000,
    replyRate: 20,
    random32: () => rnd(),
  });
  const pick = <T>(xs: readonly T[]): T => xs[rnd() % xs.length];
  const clients = [CLIENT, "198.18.1.3", "198.18.1.4", CLIENT6];
  const lports = [2000, 2001, 2002, 2003, 2004, 2005, 2006, 2007];
  const makers: (() => Pkt)[] = [
    // New and repeated SYNs (the pool of 8 ports runs out: refused with a RST).
    () => {
      const c = pick(clients);
      return tcp({
        src: c,
        dst: c.includes(":") ? VIP6 : VIP,
        sport: 1000 + (rnd() % 40),
        dport: 80,
        seq: rnd(),
        flags: TCP_SYN,
      });
    },
    // Segments with any flags, on tuples that may or may not exist.
    () =>
      tcp({
        src: CLIENT,
        dst: VIP,
        sport: 1000 + (rnd() % 40),
        dport: 80,
        seq: rnd(),
        ack: rnd(),
        flags: rnd() & 0xff,
      }),
    // Server replies to local ports, from the right or a wrong server.
    () =>
      tcp({
        src: pick([RS1, RS2, "198.18.3.99"]),
        dst: LOCAL,
        sport: pick([80, 8080]),
        dport: pick(lports),
        seq: rnd(),
        ack: rnd(),
        flags: pick([TCP_ACK, TCP_SYN | TCP_ACK, TCP_FIN | TCP_ACK, TCP_RST, TCP_SYN]),
      }),
    // No service: RST or port unreachable, rate-limited.
    () =>
      tcp({
        src: pick(clients.slice(0, 3)),
        dst: VIP,
        sport: 5,
        dport: 9999,
        seq: 1,
        flags: pick([TCP_SYN, TCP_ACK, TCP_RST]),
      }),
    () => udp(pick(clients.slice(0, 3)), VIP, 5, 9999, new Uint8Array(rnd() % 20)),
    // UDP flows.
    () => udp(pick(clients.slice(0, 3)), VIP, 2000 + (rnd() % 20), 53, new Uint8Array(rnd() % 20)),
    // Echo requests, rate-limited.
    () => icmp(pick(clients.slice(0, 3)), pick([VIP, LOCAL]), 8, 0, rnd(), new Uint8Array(rnd() % 30)),
    () => icmp(CLIENT6, VIP6, 128, 0, rnd(), new Uint8Array(rnd() % 30)),
    // ICMP errors quoting packets of random ports.
    () =>
      icmp(
        "198.18.3.1",
        LOCAL,
        3,
        4,
        1400,
        tcp({
          src: LOCAL,
          dst: pick([RS1, RS2]),
          sport: pick(lports),
          dport: pick([80, 8080]),
          seq: rnd(),
          flags: TCP_ACK,
        }).b.slice(0, 28),
      ),
    () => icmp("198.18.3.1", VIP, pick([0, 13, 3]), 0, 0, new Uint8Array(4)),
    // Martians, bad checksums, not for us, truncated, other protocols.
    () => synFrom(pick(MARTIANS)[1]),
    () =>
      corrupt(tcp({ src: CLIENT, dst: VIP, sport: 3000 + (rnd() % 40), dport: 80, seq: 1, flags: TCP_SYN })),
    () => corrupt(icmp(CLIENT, VIP, 8, 0, 1, new Uint8Array(4))),
    () => tcp({ src: CLIENT, dst: "198.18.9.9", sport: 5, dport: 80, seq: 1, flags: TCP_SYN }),
    () => {
      const p = tcp({ src: CLIENT, dst: VIP, sport: 5, dport: 80, seq: 1, flags: TCP_SYN });
      return { b: p.b, len: 10 + (rnd() % 30) };
    },
    () => {
      const p = udp(CLIENT, VIP, 5, 53, new Uint8Array(4));
      p.b[9] = 47; // GRE
      return p;
    },
  ];
  let now = 1000;
  let zeros = 0, refusals = 0, limited = 0;
  const dropSum = () => e.counters.drops.reduce((a, b) => a + b, 0);
  for (let i = 0; i < 4000; i++) {
    if (i % 50 === 0) e.tick(now += rnd() % 3);
    const p = pick(makers)();
    const drops = dropSum();
    const ev = e.counters.events.slice();
    const n = e.process(p.b, p.len, now);
    assert.ok(n >= 0, `packet ${i}: one worker owns everything`);
    const refused = e.counters.events[C.EV_RST_SENT] - ev[C.EV_RST_SENT] +
      e.counters.events[C.EV_ICMP_UNREACH_SENT] - ev[C.EV_ICMP_UNREACH_SENT] +
      e.counters.events[C.EV_TAKEOVER_RST] - ev[C.EV_TAKEOVER_RST];
    limited += e.counters.events[C.EV_REPLY_RATE_LIMITED] - ev[C.EV_REPLY_RATE_LIMITED];
    const want = n === 0 ? 1 : refused;
    assert.equal(dropSum() - drops, want, `packet ${i} (returned ${n}): drops counted`);
    if (n === 0) zeros++;
    refusals += refused;
  }
  assert.equal(dropSum(), zeros + refusals, "sum of drops = packets returned 0 + refusals answered");
  // The stream exercised what it is about.
  const d = e.counters.drops;
  for (
    const r of [
      "echo_rate_limited",
      "no_service",
      "port_exhausted",
      "martian_source",
      "bad_checksum",
      "no_connection",
    ] as const
  ) {
    assert.ok(d[C.DROP_REASONS[r]] > 0, `stream has ${r}`);
  }
  assert.ok(limited > 0 && refusals > 0 && zeros > 1000, `${limited} ${refusals} ${zeros}`);
});

// ---------------------------------------------------------------------------------------------------------
// Scenarios: sequences whose steps depend on one another, stepped through the same driver.

Deno.test("handshake: SYN to the first real server, SYN+ACK from the VIP, handshake ACK with TOA; counted", () => {
  const e = engine();
  const before = snapshot(e);
  const h = handshake(e);
  assert.equal(h.rs, RS1);
  assert.equal(h.rsPort, 80);
  assert.ok(h.lport >= 2000 && h.lport <= 2003);
  assert.equal(h.isn, 0x10000000);
  assert.equal(h.synLen, h.syn.len + 8);
  expectOut("SYN+ACK", h.synack.b, h.saLen, h.synack.len, {
    src: VIP,
    dst: CLIENT,
    sport: 80,
    dport: 40000,
    ack: 1001, // the client sees its own ISN+1 acknowledged
    seq: 5000, // server sequence untouched
    mss: 1452, // SYN+ACK MSS leaves room for TOA
  });
  expectOut("handshake ACK", h.ack.b, h.ackLen, h.ack.len, {
    seq: (1001 - 1000 + 0x10000000) >>> 0,
    toa: { family: 4, address: CLIENT, port: 40000 },
  });
  const id = e.conns.findLocal(0, h.lport);
  assert.equal(e.conns.state(id), STATE_ESTABLISHED);
  assert.equal(e.sets[0].active[0], 1);
  assert.equal(e.sets[0].inactive[0], 0);
  const now = snapshot(e);
  assert.deepEqual(delta((i) => C.DROP_NAMES[i], now.drops, before.drops), {}, "no drops");
  assert.deepEqual(
    delta((i) => C.EVENT_NAMES[i], now.events, before.events),
    { toa_inserted: 2, timestamp_removed: 1, mss_clamped: 2, connections: 1 }, // TOA: in the SYN and the ACK
  );
  const svc = e.counters.services;
  assert.equal(svc[C.T_CONNS], 1);
  assert.equal(svc[C.T_PKTS_IN], 2);
  assert.equal(svc[C.T_PKTS_OUT], 1);
  assert.equal(svc[C.T_BYTES_IN], h.synLen + h.ackLen);
  assert.equal(svc[C.T_BYTES_OUT], h.saLen);
});

/** `toaPlacement` and where it puts TOA: the SYN toward the server, the ACK completing its handshake. */
const PLACEMENT_ROWS = [
  { placement: "syn+ack", syn: true, ack: true },
  { placement: "ack", syn: false, ack: true },
  { placement: "syn", syn: true, ack: false },
] as const;

/** An engine whose services all have `toaPlacement: placement`. */
function placementEngine(placement: string): Engine {
  return engine({ services: rawServices().map((s) => ({ ...s, toaPlacement: placement })) });
}

for (const row of PLACEMENT_ROWS) {
  for (const v6 of [false, true]) {
    const where = `SYN ${row.syn ? "with" : "without"} TOA, handshake ACK ${row.ack ? "with" : "without"}`;
    Deno.test(`toaPlacement ${row.placement}, IPv${v6 ? 6 : 4}: ${where}; a takeover's SYN as the first`, () => {
      const e = placementEngine(row.placement);
      const client = v6 ? CLIENT6 : CLIENT;
      const vip = v6 ? VIP6 : VIP;
      const svc = v6 ? SVC_TCP6 : SVC_TCP;
      const toa: ToaAddress = { family: v6 ? 6 : 4, address: client, port: 40000 };
      const grow = v6 ? 20 : 8;
      const inserted = (yes: boolean) => (yes ? { toa_inserted: 1 } : {});
      const syn = tcp({
        src: client,
        dst: vip,
        sport: 40000,
        dport: 80,
        seq: 1000,
        flags: TCP_SYN,
        options: optMss(1400),
      });
      const { info: si } = run(e, "SYN", syn, 1000, {
        out: {
          flags: TCP_SYN,
          grow: row.syn ? grow : 0,
          toa: row.syn ? toa : null,
          toaOptions: row.syn ? 1 : 0,
        },
      }, { events: { connections: 1, ...inserted(row.syn) }, flow: "new", svc });
      const c: Conn = {
        client,
        vip,
        cport: 40000,
        vport: 80,
        local: src(syn.b, si),
        lport: read16(syn.b, si.l4Off),
        rs: dst(syn.b, si),
        rsPort: read16(syn.b, si.l4Off + 2),
        isn: tcpSeq(syn.b, si.l4Off),
      };
      // The server still holds the tuple: the SYN sent again carries TOA exactly when the first did.
      run(e, "stale ACK", staleAck(c), 1000, { out: { flags: TCP_RST } }, {
        drops: { takeover: 1 },
        events: { takeover_rst: 1, ...inserted(row.syn) },
      });
      expectRetransmittedSyn(e, "SYN again", {
        flags: TCP_SYN,
        seq: c.isn,
        mss: 1400,
        toa: row.syn ? toa : null,
        toaOptions: row.syn ? 1 : 0,
      });
      const sa = fromServer(c, { seq: 5000, ack: c.isn + 1, flags: TCP_SYN | TCP_ACK });
      run(e, "SYN+ACK", sa, 1000, { out: { dst: client, toaOptions: 0 } }, { flow: "out", svc });
      const ack = fromClient(c, { seq: 1001, ack: 5001, flags: TCP_ACK });
      run(e, "handshake ACK", ack, 1000, {
        out: { dst: c.rs, grow: row.ack ? grow : 0, toa: row.ack ? toa : null, toaOptions: row.ack ? 1 : 0 },
      }, { events: inserted(row.ack), flow: "in", svc });
      // Later segments never carry it, whatever the placement.
      const data = fromClient(c, { seq: 1001, ack: 5001, flags: TCP_ACK | TCP_PSH, payload: GET });
      run(e, "data", data, 1000, { out: { grow: 0, toaOptions: 0 } }, { flow: "in", svc });
    });
  }
}

Deno.test("toaPlacement: a reload applies to new connections; an open one keeps the placement it started with", () => {
  const e = placementEngine("syn");
  const c = open(e);
  e.reconfigure(config({ services: rawServices().map((s) => ({ ...s, toaPlacement: "ack" })) }));
  const toa: ToaAddress = { family: 4, address: CLIENT, port: 40000 };
  run(e, "SYN+ACK", fromServer(c, { seq: 5000, ack: c.isn + 1, flags: TCP_SYN | TCP_ACK }), 1000, {
    out: { dst: CLIENT },
  });
  run(
    e,
    "old connection's ACK: no TOA (it started as syn)",
    fromClient(c, { seq: 1001, ack: 5001, flags: TCP_ACK }),
    1000,
    {
      out: { toaOptions: 0 },
    },
  );
  const c2 = open(e, { cport: 40001 });
  assert.notEqual(c2.lport, c.lport);
  run(
    e,
    "new connection's SYN+ACK",
    fromServer(c2, { seq: 7000, ack: c2.isn + 1, flags: TCP_SYN | TCP_ACK }),
    1000,
    {
      out: { dst: CLIENT },
    },
  );
  run(e, "new connection's ACK: TOA (ack)", fromClient(c2, { seq: 1001, ack: 7001, flags: TCP_ACK }), 1000, {
    out: { toa: { ...toa, port: 40001 }, toaOptions: 1 },
  });
});

Deno.test("sequence offsets wrap around 2^32", () => {
  let first = true;
  const e = new Engine(config(), { now: 0, random32: () => (first ? ((first = false), 5) : 9) });
  const syn = tcp({ src: CLIENT, dst: VIP, sport: 1, dport: 80, seq: 0xfffffff0, flags: TCP_SYN });
  const { info: si } = run(e, "SYN", syn, 0, { out: { seq: 5 } });
  const lport = read16(syn.b, si.l4Off);
  const sa = tcp({ src: RS1, dst: LOCAL, sport: 80, dport: lport, seq: 1, ack: 6, flags: TCP_SYN | TCP_ACK });
  run(e, "SYN+ACK", sa, 0, { out: { ack: 0xfffffff1 } });
});

Deno.test("FIN both ways → TIME_WAIT, then expiry frees the connection and the port", () => {
  const e = engine();
  const h = handshake(e);
  const id = e.conns.findLocal(0, h.lport);
  const f1 = fromClient(h, { seq: 1001, ack: 5001, flags: TCP_FIN | TCP_ACK });
  run(e, "client FIN", f1, 1001, { out: { flags: TCP_FIN | TCP_ACK, dst: h.rs } }, { flow: "in" });
  assert.equal(e.conns.state(id), STATE_FIN_WAIT);
  assert.equal(e.sets[0].active[0], 0);
  const f2 = fromServer(h, { seq: 5001, ack: h.isn + 2, flags: TCP_FIN | TCP_ACK });
  run(e, "server FIN", f2, 1001, { out: { flags: TCP_FIN | TCP_ACK, dst: CLIENT, ack: 1002 } }, {
    flow: "out",
  });
  assert.equal(e.conns.state(id), STATE_TIME_WAIT);
  const avail = e.pool.available(4);
  assert.equal(e.tick(1001 + 6), 0, "not before the TIME_WAIT timeout (dpvs's 7 s)");
  assert.equal(e.tick(1001 + 7), 1);
  assert.equal(e.conns.size, 0);
  assert.equal(e.pool.available(4), avail + 1);
  assert.equal(e.sets[0].inactive[0], 0);
});

Deno.test("RST from either side → CLOSE, removed after the close timeout", () => {
  const e = engine();
  const h = handshake(e);
  const id = e.conns.findLocal(0, h.lport);
  const r = fromServer(h, { seq: 5001, flags: TCP_RST });
  run(e, "server RST", r, 2000, { out: { flags: TCP_RST, dst: CLIENT } }, { flow: "out" });
  assert.equal(e.conns.state(id), STATE_CLOSE);
  assert.equal(e.tick(2002), 0, "not before the CLOSE timeout (dpvs's 3 s)");
  assert.equal(e.tick(2003), 1);
  assert.equal(e.conns.size, 0);
});

Deno.test("every state times out after its own timeout, and traffic refreshes it", () => {
  const timeouts = { synSent: 5, synRecv: 7, established: 50, finWait: 11, timeWait: 13, close: 3, udp: 17 };
  const e = engine({ timeouts });
  const syn = tcp({ src: CLIENT, dst: VIP, sport: 1, dport: 80, seq: 1, flags: TCP_SYN });
  run(e, "SYN", syn, 1000, { out: { flags: TCP_SYN } });
  assert.equal(e.conns.state(0), STATE_SYN_SENT);
  assert.equal(e.tick(1004), 0);
  assert.equal(e.tick(1005), 1, "syn_sent after 5 s");
  const h = handshake(e, 2, 1100);
  const id = e.conns.findLocal(0, h.lport);
  // Data at 1140 refreshes the 50 s established timeout.
  const d = tcp({ src: CLIENT, dst: VIP, sport: 2, dport: 80, seq: 1001, ack: 5001, flags: TCP_ACK });
  run(e, "data", d, 1140, { out: { flags: TCP_ACK } });
  assert.equal(e.tick(1189), 0);
  assert.equal(e.conns.state(id), STATE_ESTABLISHED);
  assert.equal(e.tick(1190), 1);
  // syn_recv
  const syn3 = tcp({ src: CLIENT, dst: VIP, sport: 3, dport: 80, seq: 1, flags: TCP_SYN });
  const { info: i3 } = run(e, "SYN 3", syn3, 1200, { out: { flags: TCP_SYN } });
  const sa = tcp({
    src: dst(syn3.b, i3),
    dst: LOCAL,
    sport: read16(syn3.b, i3.l4Off + 2),
    dport: read16(syn3.b, i3.l4Off),
    seq: 1,
    ack: tcpSeq(syn3.b, i3.l4Off) + 1,
    flags: TCP_SYN | TCP_ACK,
  });
  run(e, "SYN+ACK 3", sa, 1200, { out: { flags: TCP_SYN | TCP_ACK, dst: CLIENT, dport: 3 } });
  assert.equal(e.conns.state(e.conns.findLocal(0, read16(syn3.b, i3.l4Off))), STATE_SYN_RECV);
  assert.equal(e.tick(1206), 0);
  assert.equal(e.tick(1207), 1, "syn_recv after 7 s");
  // fin_wait
  const h4 = handshake(e, 4, 1300);
  const f = tcp({
    src: CLIENT,
    dst: VIP,
    sport: 4,
    dport: 80,
    seq: 1001,
    ack: 5001,
    flags: TCP_FIN | TCP_ACK,
  });
  run(e, "FIN 4", f, 1300, { out: { flags: TCP_FIN | TCP_ACK } });
  assert.equal(e.conns.state(e.conns.findLocal(0, h4.lport)), STATE_FIN_WAIT);
  assert.equal(e.tick(1310), 0);
  assert.equal(e.tick(1311), 1, "fin_wait after 11 s");
  // udp
  const u = udp(CLIENT, VIP, 5, 53, new Uint8Array([1, 2, 3]));
  run(e, "UDP", u, 1400, { out: { dst: RS1, dport: 5353 } });
  assert.equal(e.tick(1416), 0);
  assert.equal(e.tick(1417), 1, "udp after 17 s");
  assert.equal(e.conns.size, 0);
  assert.equal(e.counters.events[C.EV_EXPIRED], 5);
});

Deno.test("port exhaustion, all established: the SYN is dropped, the client gets a RST, counted; ports come back", () => {
  const e = engine(); // 4 ports: 2000..2003
  for (let i = 0; i < 4; i++) handshake(e, 100 + i);
  const ports = new Set<number>();
  for (let i = 0; i < 4; i++) ports.add(e.conns.localPort(i));
  assert.equal(ports.size, 4, "no tuple handed out twice");
  const s = tcp({ src: CLIENT, dst: VIP, sport: 200, dport: 80, seq: 77, flags: TCP_SYN });
  run(e, "SYN past the pool", s, 1000, {
    out: { flags: TCP_RST | TCP_ACK, ack: 78, src: VIP, dst: CLIENT, sport: 80, dport: 200 },
  }, { drops: { port_exhausted: 1 }, events: { rst_sent: 1 } });
  assert.equal(e.counters.drops[C.DROP_PORT_EXHAUSTED], 1);
  assert.equal(e.counters.events[C.EV_RST_SENT], 1);
  assert.deepEqual(e.poolUsage()[0], { address: LOCAL, used: 4, free: 0, misses: 1 });
  assert.equal(e.tick(1000 + 89), 0, "not before the ESTABLISHED timeout (dpvs's 90 s)");
  assert.equal(e.tick(1000 + 90), 4, "ESTABLISHED entries expire");
  const again = tcp({ src: CLIENT, dst: VIP, sport: 201, dport: 80, seq: 1, flags: TCP_SYN });
  run(e, "SYN after expiry", again, 1091, { out: { flags: TCP_SYN, grow: 8, sportIn: [2000, 2003] } });
});

// ---------------------------------------------------------------------------------------------------------
// Under pressure (table full, or the pool of the new connection's family exhausted), half-open and closed
// entries give way, the ones nearest their deadline first (IPVS's drop_entry); never an established one.

/** A client SYN from port `sport`, `family` 4 or 6. */
function synFromPort(sport: number, v6 = false): Pkt {
  return tcp({ src: v6 ? CLIENT6 : CLIENT, dst: v6 ? VIP6 : VIP, sport, dport: 80, seq: 1, flags: TCP_SYN });
}

Deno.test("pressure: pool exhausted, the oldest half-open entry gives way; established ones never", () => {
  const e = engine(); // 4 IPv4 ports
  handshake(e, 100);
  handshake(e, 101);
  // Two half-open entries: 102 (SYN at 1000, due first) and 103 (SYN at 1001).
  run(e, "SYN 102", synFromPort(102), 1000, { out: { flags: TCP_SYN } });
  run(e, "SYN 103", synFromPort(103), 1001, { out: { flags: TCP_SYN } });
  const old = e.conns.findClient(SVC_TCP, 0xc6120102, 0, 0, 0, 102);
  const port = e.conns.localPort(old);
  run(e, "SYN 200, pool empty", synFromPort(200), 1002, { out: { flags: TCP_SYN, sport: port } }, {
    drops: {},
    events: { evicted: 1, connections: 1, toa_inserted: 1 },
    flow: "new",
  });
  assert.equal(e.conns.findClient(SVC_TCP, 0xc6120102, 0, 0, 0, 102), -1, "the oldest half-open entry went");
  assert.notEqual(e.conns.findClient(SVC_TCP, 0xc6120102, 0, 0, 0, 103), -1, "the younger one stays");
  assert.deepEqual(e.poolUsage()[0], { address: LOCAL, used: 4, free: 0, misses: 0 });
  // Its client's next segment finds nothing and is told so at once.
  const ack = tcp({ src: CLIENT, dst: VIP, sport: 102, dport: 80, seq: 2, ack: 9, flags: TCP_ACK });
  run(e, "evicted client's ACK", ack, 1002, { out: { flags: TCP_RST, seq: 9 } }, {
    drops: { no_connection: 1 },
    events: { rst_sent: 1 },
  });
  // 103 goes next (due at 1004, 200 at 1005); then only established entries are left: refused.
  run(e, "SYN 201", synFromPort(201), 1002, { out: { flags: TCP_SYN } }, {
    events: { evicted: 1, connections: 1, toa_inserted: 1 },
    flow: "new",
  });
  const id200 = e.conns.findClient(SVC_TCP, 0xc6120102, 0, 0, 0, 200);
  const id201 = e.conns.findClient(SVC_TCP, 0xc6120102, 0, 0, 0, 201);
  // Complete 200 and 201 so that all four are established.
  for (const [id, cport] of [[id200, 200], [id201, 201]]) {
    const c: Conn = {
      client: CLIENT,
      vip: VIP,
      cport,
      vport: 80,
      local: LOCAL,
      lport: e.conns.localPort(id),
      rs: e.conns.server(id) === 0 ? RS1 : RS2,
      rsPort: e.conns.server(id) === 0 ? 80 : 8080,
      isn: (1 + e.conns.seqDelta(id)) >>> 0,
    };
    const sa = fromServer(c, { seq: 1, ack: c.isn + 1, flags: TCP_SYN | TCP_ACK });
    assert.ok(e.process(sa.b, sa.len, 1002) > 0, "SYN+ACK");
    const a = fromClient(c, { seq: 2, ack: 2, flags: TCP_ACK });
    assert.ok(e.process(a.b, a.len, 1002) > 0, "ACK");
    assert.equal(e.conns.state(id), STATE_ESTABLISHED);
  }
  run(e, "SYN 202, all established", synFromPort(202), 1002, { out: { flags: TCP_RST | TCP_ACK } }, {
    drops: { port_exhausted: 1 },
    events: { rst_sent: 1 },
  });
});

Deno.test("pressure: closed entries (TIME_WAIT, CLOSE) give way too, after half-open ones", () => {
  const e = engine();
  const h = handshake(e, 100);
  handshake(e, 101);
  handshake(e, 102);
  handshake(e, 103);
  // 100 closes (TIME_WAIT); 101 is reset (CLOSE, due sooner).
  const f1 = fromClient(h, { seq: 1001, ack: 5001, flags: TCP_FIN | TCP_ACK });
  assert.ok(e.process(f1.b, f1.len, 1000) > 0);
  const f2 = fromServer(h, { seq: 5001, ack: h.isn + 2, flags: TCP_FIN | TCP_ACK });
  assert.ok(e.process(f2.b, f2.len, 1000) > 0);
  const tw = e.conns.findClient(SVC_TCP, 0xc6120102, 0, 0, 0, 100);
  assert.equal(e.conns.state(tw), STATE_TIME_WAIT);
  const r = tcp({ src: CLIENT, dst: VIP, sport: 101, dport: 80, seq: 1001, flags: TCP_RST });
  assert.ok(e.process(r.b, r.len, 1000) > 0);
  const closed = e.conns.findClient(SVC_TCP, 0xc6120102, 0, 0, 0, 101);
  assert.equal(e.conns.state(closed), STATE_CLOSE);
  run(e, "SYN 200", synFromPort(200), 1000, { out: { flags: TCP_SYN } }, {
    events: { evicted: 1, connections: 1, toa_inserted: 1 },
    flow: "new",
  });
  assert.equal(e.conns.findClient(SVC_TCP, 0xc6120102, 0, 0, 0, 101), -1, "CLOSE (3 s) went first");
  // 200 is half-open now: it goes before the TIME_WAIT entry.
  run(e, "SYN 201", synFromPort(201), 1000, { out: { flags: TCP_SYN } }, {
    events: { evicted: 1, connections: 1, toa_inserted: 1 },
    flow: "new",
  });
  assert.equal(e.conns.findClient(SVC_TCP, 0xc6120102, 0, 0, 0, 200), -1, "the half-open one first");
  assert.equal(e.conns.state(tw), STATE_TIME_WAIT, "TIME_WAIT still there");
});

Deno.test("pressure: table full, any family's half-open entry gives way; a pool only frees its own family", () => {
  // Room for 2 connections; IPv4 has 4 ports, IPv6 4.
  const e = engine({ maxConnections: 2 });
  const h = handshake(e, 100);
  run(e, "IPv6 SYN", synFromPort(300, true), 1000, { out: { flags: TCP_SYN } });
  run(e, "SYN 101, table full", synFromPort(101), 1000, { out: { flags: TCP_SYN, src: LOCAL } }, {
    events: { evicted: 1, connections: 1, toa_inserted: 1 },
    flow: "new",
  });
  assert.equal(e.conns.size, 2);
  assert.equal(e.poolUsage()[1].used, 0, "the IPv6 entry went, its port back");
  assert.equal(e.conns.state(e.conns.findLocal(0, h.lport)), STATE_ESTABLISHED);
  // IPv4 pool exhausted by established entries; an IPv6 half-open entry does not free an IPv4 port.
  const f = engine({ portRange: [2000, 2001] });
  handshake(f, 100);
  handshake(f, 101);
  run(f, "IPv6 SYN", synFromPort(300, true), 1000, { out: { flags: TCP_SYN } });
  run(f, "SYN 102, IPv4 pool empty", synFromPort(102), 1000, { out: { flags: TCP_RST | TCP_ACK } }, {
    drops: { port_exhausted: 1 },
    events: { rst_sent: 1 },
  });
  assert.equal(f.conns.size, 3, "the IPv6 half-open entry stays");
});

Deno.test("rr spreads connections over both real servers; weight 0 drains without cutting connections", () => {
  const e = engine({ portRange: [2000, 2999] });
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) {
    const s = tcp({ src: CLIENT, dst: VIP, sport: 300 + i, dport: 80, seq: 1, flags: TCP_SYN });
    const { info } = run(e, `SYN ${i}`, s, 1000, { out: { flags: TCP_SYN } });
    seen.push(dst(s.b, info));
  }
  assert.deepEqual(seen, [RS1, RS2, RS1, RS2]);
  e.setWeight(0, 1, 0);
  for (let i = 0; i < 3; i++) {
    const s = tcp({ src: CLIENT, dst: VIP, sport: 400 + i, dport: 80, seq: 1, flags: TCP_SYN });
    run(e, `SYN ${i} after the drain`, s, 1000, { out: { dst: RS1 } });
  }
  // The drained server's existing connection still flows.
  const again = tcp({ src: CLIENT, dst: VIP, sport: 301, dport: 80, seq: 1, flags: TCP_SYN });
  run(e, "SYN of a drained server's connection", again, 1000, { out: { dst: RS2, dport: 8080 } });
  assert.equal(e.counters.servers[e.serverIndex(0, 1) * C.TRAFFIC_FIELDS + C.T_CONNS], 2);
});

Deno.test("a new SYN on a TIME_WAIT tuple replaces the old connection", () => {
  const e = engine();
  const h = handshake(e);
  const f1 = fromClient(h, { seq: 1001, ack: 5001, flags: TCP_FIN | TCP_ACK });
  run(e, "client FIN", f1, 1001, { out: { flags: TCP_FIN | TCP_ACK } });
  const f2 = fromServer(h, { seq: 5001, ack: h.isn + 2, flags: TCP_FIN | TCP_ACK });
  run(e, "server FIN", f2, 1001, { out: { flags: TCP_FIN | TCP_ACK } });
  assert.equal(e.conns.state(e.conns.findLocal(0, h.lport)), STATE_TIME_WAIT);
  const syn = tcp({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, seq: 99999, flags: TCP_SYN });
  const { info: si } = run(e, "new SYN", syn, 1002, { out: { flags: TCP_SYN, sportIn: [2000, 2003] } }, {
    events: { reused: 1, toa_inserted: 1, connections: 1 },
    flow: "new",
  });
  assert.notEqual(read16(syn.b, si.l4Off), h.lport, "a fresh local port");
  assert.equal(e.conns.size, 1);
  assert.equal(e.counters.events[C.EV_REUSED], 1);
});

/** Turns a packet's complete checksum into the partial form a CHECKSUM_PARTIAL skb carries. */
function makePartial(b: Uint8Array, len: number): number {
  const info = parse(b, len);
  const at = info.l4Off + (info.l4Proto === 6 ? 16 : 6);
  const pseudo = info.family === 4
    ? ipv4PseudoHeaderSum(b, 0, info.l4Proto, info.l4Len)
    : ipv6PseudoHeaderSum(b, 0, info.l4Proto, info.l4Len);
  write16(b, at, foldSum(pseudo));
  return at;
}

/**
 * Completes a partial checksum as the offload does: ~fold(sum from csum_start, the field included).
 * Returns the partial value it found.
 */
function completePartial(b: Uint8Array, len: number): number {
  const info = new PacketInfo();
  assert.equal(classifyPacket(b, 0, len, info), PACKET_OK);
  const at = info.l4Off + (info.l4Proto === 6 ? 16 : 6);
  const partial = read16(b, at);
  write16(b, at, finishChecksum(onesComplementSum(b, info.l4Off, info.l4Len)));
  return partial;
}

Deno.test("offload: partial checksums stay partial and complete correctly (address, length, TOA)", () => {
  const e = engine();
  for (const v6 of [false, true]) {
    const s = tcp({
      src: v6 ? CLIENT6 : CLIENT,
      dst: v6 ? VIP6 : VIP,
      sport: 9000,
      dport: 80,
      seq: 77,
      flags: TCP_SYN,
      options: [...optMss(1460), 1, 1, ...optTimestamp(5, 0)],
    });
    makePartial(s.b, s.len);
    const n = e.process(s.b, s.len, 1000, true);
    assert.ok(n > s.len, "TOA inserted");
    assert.equal(e.headerDelta, v6 ? 20 : 8);
    completePartial(s.b, n);
    const si = expectOut("completed SYN", s.b, n, s.len, {
      grow: v6 ? 20 : 8,
      src: v6 ? LOCAL6 : LOCAL,
      toa: { family: v6 ? 6 : 4, address: v6 ? CLIENT6 : CLIENT, port: 9000 } as ToaAddress,
      timestamp: false,
    });
    const lport = read16(s.b, si.l4Off);
    const r = tcp({
      src: v6 ? RS6 : RS1,
      dst: v6 ? LOCAL6 : LOCAL,
      sport: 80,
      dport: lport,
      seq: 5,
      ack: tcpSeq(s.b, si.l4Off) + 1,
      flags: TCP_SYN | TCP_ACK,
      // A server-sent option 254 is NOPed on the way out: the partial sum must not take a complete update.
      options: v6 ? [] : optToa4(80, "10.0.0.1"),
      payload: new Uint8Array(333).fill(7),
    });
    makePartial(r.b, r.len);
    const rn = e.process(r.b, r.len, 1000, true);
    assert.equal(e.headerDelta, 0);
    completePartial(r.b, rn);
    expectOut("completed SYN+ACK", r.b, rn, r.len, {
      ack: 78,
      toaOptions: 0,
      src: v6 ? VIP6 : VIP,
      payload: new Uint8Array(333).fill(7),
    });
  }
});

// ---------------------------------------------------------------------------------------------------------
// Live reconfiguration and health (issue 10): stable slots, draining, resets.

/** {@link config}'s services with `edit` applied to a copy of their raw form. */
function reloaded(edit: (services: Record<string, unknown>[]) => void, extra: Record<string, unknown> = {}) {
  const services = rawServices();
  edit(services);
  return config({ services, portRange: [2000, 2999], ...extra });
}

/** A SYN from CLIENT:`sport` to VIP:`vport`. */
function synTo(sport: number, vport = 80, vip = VIP): Pkt {
  return tcp({ src: CLIENT, dst: vip, sport, dport: vport, seq: 1, flags: TCP_SYN });
}

/** A reload and what must hold after it (each row starts from a fresh engine with two connections open). */
interface ReloadRow {
  name: string;
  config: () => ReturnType<typeof config>;
  check: (e: Engine, toRs2: Conn, toRs1: Conn) => void;
}

const RELOAD_ROWS: ReloadRow[] = [
  {
    name: "a server removed drains: its connection flows both ways, new SYNs go elsewhere, slots kept",
    config: () => reloaded((s) => (s[0].realServers as unknown[]).splice(1, 1)),
    check: (e, c2, c1) => {
      run(e, "data to the drained server", fromClient(c2, { seq: 2, ack: 9, flags: TCP_ACK }), 1001, {
        out: { dst: RS2, dport: 8080, sport: c2.lport },
      }, { flow: "in", events: { toa_inserted: 1 } }); // the ACK completing the handshake: TOA
      run(e, "its reply", fromServer(c2, { seq: 9, ack: c2.isn + 2, flags: TCP_ACK }), 1001, {
        out: { src: VIP, dst: CLIENT, dport: c2.cport },
      });
      for (let i = 0; i < 3; i++) run(e, `new SYN ${i}`, synTo(500 + i), 1001, { out: { dst: RS1 } });
      const x = e.exportCounters();
      assert.deepEqual(x.serverKeys[0], [`${RS1}:80`, `${RS2}:8080`], "slots kept, draining one listed");
      assert.deepEqual([...x.serverDraining[0]], [0, 1]);
      assert.deepEqual([...x.weights[0]], [1, 0], "effective weight 0 while draining");
      assert.deepEqual([...x.configuredWeights[0]], [1, 1]);
      // Counters continued in the same slots: RS1 had one connection before, three more now.
      assert.equal(e.counters.servers[e.serverIndex(0, 0) * C.TRAFFIC_FIELDS + C.T_CONNS], 4);
      assert.equal(e.counters.servers[e.serverIndex(0, 1) * C.TRAFFIC_FIELDS + C.T_CONNS], 1);
      assert.ok(c1.lport > 0);
    },
  },
  {
    name: "a service removed drains: its connection flows, a new SYN gets what no service gets (RST)",
    config: () => reloaded((s) => s.splice(0, 1)),
    check: (e, c2) => {
      run(e, "data of the drained service", fromClient(c2, { seq: 2, ack: 9, flags: TCP_ACK }), 1001, {
        out: { dst: RS2, dport: 8080 },
      });
      run(e, "its reply", fromServer(c2, { seq: 9, ack: c2.isn + 2, flags: TCP_ACK }), 1001, {
        out: { src: VIP, sport: 80, dst: CLIENT },
      });
      run(e, "new SYN", synTo(600), 1001, { out: { src: VIP, dst: CLIENT, flags: TCP_RST | TCP_ACK } }, {
        drops: { no_service: 1 },
        events: { rst_sent: 1 },
      });
      const x = e.exportCounters();
      assert.equal(x.serviceDraining[x.serviceKeys.indexOf(`tcp ${VIP}:80`)], 1);
      // Other services moved up in the config but kept their slots.
      assert.equal(e.serviceSlot(`udp ${VIP}:53`), SVC_UDP);
    },
  },
  {
    name: "a service, a server and a local address added: new slots, used by new connections",
    config: () =>
      reloaded((s) => {
        (s[0].realServers as unknown[]).push({ address: "198.18.3.12", port: 80, weight: 1 });
        s.push({ vip: VIP, port: 82, scheduler: "rr", realServers: [{ address: "198.18.3.13", port: 80 }] });
      }, { localAddresses: [LOCAL, LOCAL6, "198.18.2.2"] }),
    check: (e) => {
      const seen = [0, 1, 2].map((i) => {
        const p = synTo(700 + i);
        const { info } = run(e, `SYN ${i}`, p, 1001, { out: { flags: TCP_SYN } });
        return `${src(p.b, info)} ${dst(p.b, info)}`;
      });
      assert.ok(seen.some((s) => s.endsWith(" 198.18.3.12")), `the new server is scheduled: ${seen}`);
      assert.ok(seen.some((s) => s.startsWith("198.18.2.2 ")), `the new local address is used: ${seen}`);
      run(e, "SYN to the new service", synTo(800, 82), 1001, { out: { dst: "198.18.3.13", dport: 80 } });
      assert.deepEqual(e.poolUsage().map((p) => p.address), [LOCAL, LOCAL6, "198.18.2.2"]);
    },
  },
  {
    name: "a server removed and added again is no longer draining, and keeps its slot and counters",
    config: () => reloaded(() => {}),
    check: (e) => {
      e.reconfigure(reloaded((s) => (s[0].realServers as unknown[]).splice(1, 1)));
      e.reconfigure(reloaded(() => {}));
      const x = e.exportCounters();
      assert.deepEqual([...x.serverDraining[0]], [0, 0]);
      assert.deepEqual([...x.weights[0]], [1, 1]);
      assert.equal(e.counters.servers[e.serverIndex(0, 1) * C.TRAFFIC_FIELDS + C.T_CONNS], 1);
    },
  },
  {
    name: "weights and the scheduler change for new connections",
    config: () =>
      reloaded((s) => {
        s[0].scheduler = "wrr";
        s[0].realServers = [{ address: RS1, port: 80, weight: 0 }, { address: RS2, port: 8080, weight: 3 }];
      }),
    check: (e) => {
      for (let i = 0; i < 3; i++) run(e, `SYN ${i}`, synTo(900 + i), 1001, { out: { dst: RS2 } });
      assert.equal(e.exportCounters().schedulers[0], "wrr");
    },
  },
];

for (const row of RELOAD_ROWS) {
  Deno.test(`reload: ${row.name}`, () => {
    const e = engine({ portRange: [2000, 2999] });
    // rr: the first SYN goes to RS1, the second to RS2.
    const c1 = open(e, { cport: 40001 });
    const c2 = open(e, { cport: 40002 });
    assert.equal(c1.rs, RS1);
    assert.equal(c2.rs, RS2);
    const sa = fromServer(c2, { seq: 8, ack: c2.isn + 1, flags: TCP_SYN | TCP_ACK });
    assert.ok(e.process(sa.b, sa.len, 1000) > 0);
    e.reconfigure(row.config());
    row.check(e, c2, c1);
  });
}

Deno.test("reload: what needs a restart is refused and changes nothing", () => {
  const e = engine();
  const c = open(e);
  for (
    const [cfg, why] of [
      [config({ localAddresses: ["198.18.2.9", LOCAL6] }), /local address 198.18.2.1 removed/],
      [config({ portRange: [2000, 2010] }), /portRange changed/],
      [config({ maxConnections: 7 }), /maxConnections changed/],
      [config({ workers: 2 }), /workers changed/],
    ] as const
  ) assert.throws(() => e.reconfigure(cfg), why);
  run(e, "the connection still flows", fromClient(c, { seq: 2, ack: 9, flags: TCP_ACK }), 1001, {
    out: { dst: RS1, sport: c.lport },
  });
});

Deno.test("reload: timeouts and mtu apply after a reload", () => {
  const e = engine();
  e.reconfigure(config({ mtu: 1400, timeouts: { synSent: 7 } }));
  const p = tcp({
    src: CLIENT,
    dst: VIP,
    sport: 1,
    dport: 80,
    seq: 1,
    flags: TCP_SYN,
    options: optMss(1460),
  });
  run(e, "SYN", p, 1000, { out: { mss: 1400 - 20 - 20 - 8 } });
  assert.equal(e.connections()[0].expiresIn, 7);
});

Deno.test("health: a server down gets no new connections, keeps its configured weight, up again rejoins", () => {
  const e = engine({ portRange: [2000, 2999] });
  const svc = e.serviceSlot(`tcp ${VIP}:80`);
  const rs2 = e.serverSlot(svc, `${RS2}:8080`);
  assert.deepEqual([svc, rs2], [0, 1]);
  assert.equal(e.setServerUp(svc, rs2, false), true);
  for (let i = 0; i < 3; i++) run(e, `SYN ${i} while down`, synTo(100 + i), 1000, { out: { dst: RS1 } });
  const x = e.exportCounters();
  assert.deepEqual([[...x.weights[0]], [...x.configuredWeights[0]]], [[1, 0], [1, 1]]);
  e.setServerUp(svc, rs2, true);
  const seen = [0, 1].map((i) => {
    const p = synTo(200 + i);
    return dst(p.b, run(e, `SYN ${i} when up`, p, 1000, { out: { flags: TCP_SYN } }).info);
  });
  assert.ok(seen.includes(RS2));
  assert.equal(e.setServerUp(svc, 7, false), false, "no such server");
});

Deno.test("health: resetServer's RSTs carry where each side's data ends, not its last ACK (data in flight)", () => {
  const e = engine();
  const h = handshake(e);
  // The server sends 1000 bytes the client has not acknowledged yet, then the client sends 10 more of its
  // own: by the time a RST sent after them arrives, the client expects 6001 and the server isn + 11.
  run(
    e,
    "server data",
    fromServer(h, { seq: 5001, ack: h.isn + 1, flags: TCP_ACK, payload: new Uint8Array(1000) }),
    1000,
    {
      out: { dst: CLIENT },
    },
  );
  run(
    e,
    "client data",
    fromClient(h, { seq: 1001, ack: 5001, flags: TCP_ACK, payload: new Uint8Array(10) }),
    1000,
    {
      out: { dst: h.rs },
    },
  );
  // A retransmission of older data moves nothing back.
  run(
    e,
    "server retransmits",
    fromServer(h, { seq: 5001, ack: h.isn + 1, flags: TCP_ACK, payload: new Uint8Array(500) }),
    1000,
    {
      out: { dst: CLIENT },
    },
  );
  const out: { b: Uint8Array; n: number }[] = [];
  assert.equal(e.resetServer(0, 0, (b, n) => out.push({ b: b.slice(0, n), n })), 1);
  expectOut("RST to the client", out[0].b, out[0].n, out[0].n, {
    src: VIP,
    dst: CLIENT,
    seq: 6001,
    ack: 1011,
    flags: TCP_RST | TCP_ACK,
  });
  expectOut("RST to the server", out[1].b, out[1].n, out[1].n, {
    src: LOCAL,
    dst: h.rs,
    seq: (h.isn + 11) >>> 0,
    ack: 6001,
    flags: TCP_RST | TCP_ACK,
  });
});

Deno.test("health: resetServer sends a RST each way with the sequence numbers each side expects, frees the port", () => {
  const e = engine();
  const h = handshake(e); // client seq 1001, server seq 5001; the client acked 5001, the server isn + 1
  const other = open(e, { cport: 40009 }); // RS2: not reset
  assert.equal(other.rs, RS2);
  const out: { b: Uint8Array; n: number }[] = [];
  const removed = e.resetServer(0, 0, (b, n) => out.push({ b: b.slice(0, n), n }));
  assert.equal(removed, 1);
  assert.equal(out.length, 2);
  const [toServer, toClient] = [out[1], out[0]];
  const ti = expectOut("RST to the client", toClient.b, toClient.n, toClient.n, {
    src: VIP,
    dst: CLIENT,
    sport: 80,
    dport: h.cport,
    seq: 5001,
    ack: 1001,
    flags: TCP_RST | TCP_ACK,
  });
  assert.equal(ti.l4Proto, 6);
  expectOut("RST to the server", toServer.b, toServer.n, toServer.n, {
    src: LOCAL,
    dst: h.rs,
    sport: h.lport,
    dport: h.rsPort,
    seq: (h.isn + 1) >>> 0,
    ack: 5001,
    flags: TCP_RST | TCP_ACK,
  });
  assert.equal(e.conns.size, 1, "only the other server's connection is left");
  assert.equal(e.poolUsage()[0].used, 1);
  assert.equal(e.counters.events[C.EV_RST_SENT], 2);
});

Deno.test("listing: connections() as ipvsadm -Lnc shows them, poolUsage counts misses", () => {
  const e = engine();
  const h = handshake(e);
  open(e, { v6: true, cport: 40003 });
  open(e, { udp: true, cport: 40004, vport: 53 });
  const rows = e.connections();
  assert.deepEqual(rows[0], {
    proto: "tcp",
    state: "ESTABLISHED",
    expiresIn: 90,
    source: `${CLIENT}:40000`,
    virtual: `${VIP}:80`,
    local: `${LOCAL}:${h.lport}`,
    destination: `${RS1}:80`,
  });
  assert.deepEqual(
    rows[1].state + " " + rows[1].virtual + " " + rows[1].destination,
    `SYN_SENT [${VIP6}]:80 [${RS6}]:80`,
  );
  assert.deepEqual([rows[2].proto, rows[2].state], ["udp", "UDP"]);
  assert.equal(e.connections(1).length, 1);
  // The v4 pool holds four ports (2000–2003): two are used, two more SYNs take them, the next one evicts
  // one of those half-open entries (misses count only what is refused: see the pressure tests).
  for (let i = 0; i < 3; i++) e.process(synTo(3000 + i).b, synTo(3000 + i).len, 1000);
  assert.deepEqual(e.poolUsage()[0], { address: LOCAL, used: 4, free: 0, misses: 0 });
  assert.equal(e.counters.events[C.EV_EVICTED], 1);
});
