// Engine tests: packet byte arrays in, packet byte arrays out, a fake clock. Every output is re-parsed with
// the validator and its checksums verified from scratch, so an incremental update gone wrong fails here.
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
import { classifyPacket, PACKET_OK } from "../../base/packet/validate.ts";
import { decodeToa, TCPOPT_TOA } from "../../base/packet/toa_option.ts";
import * as C from "./counters.ts";
import { Engine } from "./engine.ts";
import { icmp, optMss, optSack, optTimestamp, optToa4, tcp, type TcpSpec, udp } from "./testing/packets.ts";
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
const LOCAL = "198.18.2.1";
const RS1 = "198.18.3.10";
const RS2 = "198.18.3.11";

function config(extra: Record<string, unknown> = {}) {
  return validateConfig({
    tun: "t0",
    localAddresses: [LOCAL, "fd00:2::1"],
    portRange: [2000, 2003],
    services: [
      {
        vip: VIP,
        port: 80,
        protocol: "tcp",
        scheduler: "rr",
        toa: true,
        realServers: [{ address: RS1, port: 80, weight: 1 }, { address: RS2, port: 8080, weight: 1 }],
      },
      { vip: "fd00::100", port: 80, scheduler: "rr", realServers: [{ address: "fd00:3::10", port: 80 }] },
      { vip: VIP, port: 53, protocol: "udp", scheduler: "rr", realServers: [{ address: RS1, port: 5353 }] },
      { vip: VIP, port: 81, toa: false, scheduler: "rr", realServers: [{ address: RS1, port: 81 }] },
    ],
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

/** Re-parses an output packet and checks every checksum from scratch. */
function parse(b: Uint8Array, len: number): PacketInfo {
  const info = new PacketInfo();
  assert.equal(classifyPacket(b, 0, len, info), PACKET_OK, "output packet must be valid");
  if (info.family === 4) assert.ok(ipv4ChecksumOk(b, 0), "IPv4 header checksum");
  assert.ok(transportChecksumOk(b, info), "transport checksum");
  return info;
}

function src(b: Uint8Array, info: PacketInfo): string {
  return info.family === 4 ? formatIpv4(ipv4Src(b, 0)) : formatIpv6(b, 8);
}
function dst(b: Uint8Array, info: PacketInfo): string {
  return info.family === 4 ? formatIpv4(ipv4Dst(b, 0)) : formatIpv6(b, 24);
}

/** Runs a full handshake; returns the handles the tests need. */
function handshake(e: Engine, cport = 40000, now = 1000) {
  const syn = tcp({
    src: CLIENT,
    dst: VIP,
    sport: cport,
    dport: 80,
    seq: 1000,
    flags: TCP_SYN,
    options: [...optMss(1460), 1, 1, ...optTimestamp(7, 0), 1, 3, 3, 7, 4, 2],
  });
  const synLen = e.process(syn.b, syn.len, now);
  assert.ok(synLen > 0);
  const si = parse(syn.b, synLen);
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
  const saLen = e.process(synack.b, synack.len, now);
  assert.ok(saLen > 0);
  const ack = tcp({ src: CLIENT, dst: VIP, sport: cport, dport: 80, seq: 1001, ack: 5001, flags: TCP_ACK });
  const ackLen = e.process(ack.b, ack.len, now);
  assert.ok(ackLen > 0);
  return { cport, syn, synLen, si, lport, rs, rsPort, isn, synack, saLen, ack, ackLen };
}

/** A connection set up by {@link handshake}. */
type Handshake = ReturnType<typeof handshake>;
/** The TCP fields a test chooses; the addresses and ports are the connection's. */
type Segment = Omit<TcpSpec, "src" | "dst" | "sport" | "dport">;

/** A segment the client of `h` sends to the VIP. */
function fromClient(h: Handshake, seg: Segment) {
  return tcp({ src: CLIENT, dst: VIP, sport: h.cport, dport: 80, ...seg });
}

/** A segment the real server of `h` sends back to the gateway's local address. */
function fromServer(h: Handshake, seg: Segment) {
  return tcp({ src: h.rs, dst: LOCAL, sport: h.rsPort, dport: h.lport, ...seg });
}

Deno.test("SYN: rewritten to local→RS, new ISN, timestamp removed, MSS clamped, TOA inserted", () => {
  const e = engine();
  const h = handshake(e);
  const { syn, si } = h;
  assert.equal(src(syn.b, si), LOCAL);
  assert.equal(h.rs, RS1);
  assert.equal(h.rsPort, 80);
  assert.ok(h.lport >= 2000 && h.lport <= 2003);
  assert.equal(h.isn, 0x10000000);
  assert.equal(tcpFindOption(syn.b, si.l4Off, TCPOPT_TIMESTAMP), -1, "timestamp removed");
  assert.equal(tcpMss(syn.b, si.l4Off), 1500 - 20 - 20 - 8);
  assert.deepEqual(decodeToa(syn.b.subarray(0, h.synLen)), { family: 4, address: CLIENT, port: 40000 });
  assert.equal(h.synLen, syn.len + 8);
  assert.equal(e.counters.events[C.EV_TOA_INSERTED], 2, "SYN and handshake ACK");
  assert.equal(e.counters.events[C.EV_TIMESTAMP_REMOVED], 1);
});

Deno.test("SYN+ACK back to the client: VIP source, ack minus the offset; handshake ACK carries TOA", () => {
  const e = engine();
  const h = handshake(e);
  const ai = parse(h.synack.b, h.saLen);
  assert.equal(src(h.synack.b, ai), VIP);
  assert.equal(dst(h.synack.b, ai), CLIENT);
  assert.equal(read16(h.synack.b, ai.l4Off), 80);
  assert.equal(read16(h.synack.b, ai.l4Off + 2), 40000);
  assert.equal(tcpAck(h.synack.b, ai.l4Off), 1001, "client sees its own ISN+1 acknowledged");
  assert.equal(tcpSeq(h.synack.b, ai.l4Off), 5000, "server sequence untouched");
  assert.equal(tcpMss(h.synack.b, ai.l4Off), 1452, "SYN+ACK MSS leaves room for TOA");
  const ki = parse(h.ack.b, h.ackLen);
  assert.equal(tcpSeq(h.ack.b, ki.l4Off), (1001 - 1000 + 0x10000000) >>> 0);
  assert.deepEqual(decodeToa(h.ack.b.subarray(0, h.ackLen)), { family: 4, address: CLIENT, port: 40000 });
  const id = e.conns.findLocal(0, h.lport);
  assert.equal(e.conns.state[id], STATE_ESTABLISHED);
  assert.equal(e.sets[0].active[0], 1);
  assert.equal(e.sets[0].inactive[0], 0);
});

Deno.test("data both ways: seq and ack offsets, payload intact, no more TOA", () => {
  const e = engine();
  const h = handshake(e);
  const payload = new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n");
  const d = fromClient(h, { seq: 1001, ack: 5001, flags: TCP_ACK | TCP_PSH, payload });
  const n = e.process(d.b, d.len, 1001);
  assert.equal(n, d.len);
  const di = parse(d.b, n);
  assert.equal(tcpSeq(d.b, di.l4Off), (h.isn + 1) >>> 0);
  assert.equal(tcpAck(d.b, di.l4Off), 5001);
  assert.deepEqual(d.b.subarray(di.l4Off + 20, n), payload);
  assert.equal(tcpFindOption(d.b, di.l4Off, TCPOPT_TOA), -1);
  const r = fromServer(h, { seq: 5001, ack: h.isn + 1 + payload.length, flags: TCP_ACK, payload });
  const rn = e.process(r.b, r.len, 1001);
  const ri = parse(r.b, rn);
  assert.equal(tcpAck(r.b, ri.l4Off), 1001 + payload.length);
  assert.equal(dst(r.b, ri), CLIENT);
  const svc = e.counters.services;
  assert.equal(svc[C.T_PKTS_IN], 3);
  assert.equal(svc[C.T_PKTS_OUT], 2);
  assert.equal(svc[C.T_CONNS], 1);
});

Deno.test("sequence offsets wrap around 2^32", () => {
  let first = true;
  const e = new Engine(config(), { now: 0, random32: () => (first ? ((first = false), 5) : 9) });
  const syn = tcp({ src: CLIENT, dst: VIP, sport: 1, dport: 80, seq: 0xfffffff0, flags: TCP_SYN });
  const n = e.process(syn.b, syn.len, 0);
  const si = parse(syn.b, n);
  assert.equal(tcpSeq(syn.b, si.l4Off), 5);
  const lport = read16(syn.b, si.l4Off);
  const sa = tcp({ src: RS1, dst: LOCAL, sport: 80, dport: lport, seq: 1, ack: 6, flags: TCP_SYN | TCP_ACK });
  const sn = e.process(sa.b, sa.len, 0);
  assert.equal(tcpAck(sa.b, parse(sa.b, sn).l4Off), 0xfffffff1);
});

Deno.test("SACK blocks from the server are moved back into the client's sequence space", () => {
  const e = engine();
  const h = handshake(e);
  const base = (h.isn + 1) >>> 0;
  const r = fromServer(h, {
    seq: 5001,
    ack: base,
    flags: TCP_ACK,
    options: [1, 1, ...optSack([[base + 1000, base + 2000], [base + 3000, base + 4000]])],
  });
  const n = e.process(r.b, r.len, 1001);
  const ri = parse(r.b, n);
  const p = tcpFindOption(r.b, ri.l4Off, TCPOPT_SACK);
  assert.ok(p > 0);
  assert.deepEqual([read32(r.b, p + 2), read32(r.b, p + 6), read32(r.b, p + 10), read32(r.b, p + 14)], [
    2001,
    3001,
    4001,
    5001,
  ]);
  assert.equal(tcpAck(r.b, ri.l4Off), 1001);
});

Deno.test("a client-sent TOA is removed from every segment; only the gateway's reaches the server", () => {
  const e = engine();
  const syn = tcp({
    src: CLIENT,
    dst: VIP,
    sport: 40001,
    dport: 80,
    seq: 1,
    flags: TCP_SYN,
    options: [...optToa4(1, "6.6.6.6"), ...optMss(1400)],
  });
  const n = e.process(syn.b, syn.len, 1000);
  const si = parse(syn.b, n);
  let count = 0;
  for (let p = si.l4Off + 20; p < si.l4Off + si.l4HeaderLen;) {
    if (syn.b[p] === 0) break;
    if (syn.b[p] === 1) {
      p++;
      continue;
    }
    if (syn.b[p] === TCPOPT_TOA) count++;
    p += syn.b[p + 1];
  }
  assert.equal(count, 1, "exactly one TOA");
  assert.deepEqual(decodeToa(syn.b.subarray(0, n)), { family: 4, address: CLIENT, port: 40001 });
  assert.equal(e.counters.events[C.EV_TOA_STRIPPED], 1);
  // A forged TOA in a later data segment is removed too.
  const lport = read16(syn.b, si.l4Off);
  const sa = tcp({
    src: RS1,
    dst: LOCAL,
    sport: 80,
    dport: lport,
    seq: 9,
    ack: tcpSeq(syn.b, si.l4Off) + 1,
    flags: TCP_SYN | TCP_ACK,
  });
  e.process(sa.b, sa.len, 1000);
  const d = tcp({
    src: CLIENT,
    dst: VIP,
    sport: 40001,
    dport: 80,
    seq: 2,
    ack: 10,
    flags: TCP_ACK,
    options: optToa4(2, "6.6.6.6"),
  });
  const dn = e.process(d.b, d.len, 1000);
  const got = decodeToa(d.b.subarray(0, dn));
  assert.deepEqual(
    got,
    { family: 4, address: CLIENT, port: 40001 },
    "the handshake ACK's TOA is the gateway's",
  );
  assert.equal(e.counters.events[C.EV_TOA_STRIPPED], 2);
});

Deno.test("a SYN whose option space is full: NOPs packed to make room, or TOA left out and counted", () => {
  const e = engine();
  // 40 bytes: MSS(4) + 8 NOPs + TS(10) + WS(3) + SACK-perm(2) + 13 NOPs: packing frees room for TOA.
  const opts = [
    ...optMss(1460),
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    ...optTimestamp(1, 0),
    3,
    3,
    7,
    4,
    2,
    ...Array(13).fill(1),
  ];
  assert.equal(opts.length, 40);
  const syn = tcp({ src: CLIENT, dst: VIP, sport: 40002, dport: 80, seq: 1, flags: TCP_SYN, options: opts });
  const n = e.process(syn.b, syn.len, 1000);
  parse(syn.b, n);
  assert.deepEqual(decodeToa(syn.b.subarray(0, n)), { family: 4, address: CLIENT, port: 40002 });
  // 40 bytes of real options (unknown kind 99 of length 38 + MSS... no room even packed.
  const full = [...optMss(1460), 99, 36, ...Array(34).fill(0xaa)];
  assert.equal(full.length, 40);
  const syn2 = tcp({ src: CLIENT, dst: VIP, sport: 40003, dport: 80, seq: 1, flags: TCP_SYN, options: full });
  const n2 = e.process(syn2.b, syn2.len, 1000);
  const i2 = parse(syn2.b, n2);
  assert.equal(n2, syn2.len, "forwarded unchanged in length");
  assert.equal(i2.l4HeaderLen, 60);
  assert.equal(decodeToa(syn2.b.subarray(0, n2)), null);
  assert.equal(e.counters.events[C.EV_TOA_NO_SPACE], 1);
});

Deno.test("toa: false service inserts no TOA", () => {
  const e = engine();
  const syn = tcp({
    src: CLIENT,
    dst: VIP,
    sport: 40004,
    dport: 81,
    seq: 1,
    flags: TCP_SYN,
    options: optMss(1460),
  });
  const n = e.process(syn.b, syn.len, 1000);
  assert.equal(n, syn.len);
  assert.equal(decodeToa(syn.b.subarray(0, n)), null);
});

Deno.test("FIN both ways → TIME_WAIT, then expiry frees the connection and the port", () => {
  const e = engine();
  const h = handshake(e);
  const id = e.conns.findLocal(0, h.lport);
  const f1 = fromClient(h, { seq: 1001, ack: 5001, flags: TCP_FIN | TCP_ACK });
  assert.ok(e.process(f1.b, f1.len, 1001) > 0);
  assert.equal(e.conns.state[id], STATE_FIN_WAIT);
  assert.equal(e.sets[0].active[0], 0);
  const f2 = fromServer(h, { seq: 5001, ack: h.isn + 2, flags: TCP_FIN | TCP_ACK });
  assert.ok(e.process(f2.b, f2.len, 1001) > 0);
  assert.equal(e.conns.state[id], STATE_TIME_WAIT);
  const avail = e.pool.available(4);
  assert.equal(e.tick(1001 + 119), 0, "not before the TIME_WAIT timeout (120 s)");
  assert.equal(e.tick(1001 + 121), 1);
  assert.equal(e.conns.size, 0);
  assert.equal(e.pool.available(4), avail + 1);
  assert.equal(e.sets[0].inactive[0], 0);
});

Deno.test("RST from either side → CLOSE, removed after the close timeout", () => {
  const e = engine();
  const h = handshake(e);
  const id = e.conns.findLocal(0, h.lport);
  const r = fromServer(h, { seq: 5001, flags: TCP_RST });
  assert.ok(e.process(r.b, r.len, 2000) > 0);
  assert.equal(e.conns.state[id], STATE_CLOSE);
  assert.equal(e.tick(2009), 0);
  assert.equal(e.tick(2011), 1);
  assert.equal(e.conns.size, 0);
});

Deno.test("every state times out after its own timeout, and traffic refreshes it", () => {
  const timeouts = { synSent: 5, synRecv: 7, established: 50, finWait: 11, timeWait: 13, close: 3, udp: 17 };
  const e = engine({ timeouts });
  const syn = tcp({ src: CLIENT, dst: VIP, sport: 1, dport: 80, seq: 1, flags: TCP_SYN });
  e.process(syn.b, syn.len, 1000);
  assert.equal(e.conns.state[0], STATE_SYN_SENT);
  assert.equal(e.tick(1004), 0);
  assert.equal(e.tick(1005), 1, "syn_sent after 5 s");
  const h = handshake(e, 2, 1100);
  const id = e.conns.findLocal(0, h.lport);
  // Data at 1140 refreshes the 50 s established timeout.
  const d = tcp({ src: CLIENT, dst: VIP, sport: 2, dport: 80, seq: 1001, ack: 5001, flags: TCP_ACK });
  e.process(d.b, d.len, 1140);
  assert.equal(e.tick(1189), 0);
  assert.equal(e.conns.state[id], STATE_ESTABLISHED);
  assert.equal(e.tick(1190), 1);
  // syn_recv
  const syn3 = tcp({ src: CLIENT, dst: VIP, sport: 3, dport: 80, seq: 1, flags: TCP_SYN });
  const n3 = e.process(syn3.b, syn3.len, 1200);
  const i3 = parse(syn3.b, n3);
  const sa = tcp({
    src: dst(syn3.b, i3),
    dst: LOCAL,
    sport: read16(syn3.b, i3.l4Off + 2),
    dport: read16(syn3.b, i3.l4Off),
    seq: 1,
    ack: tcpSeq(syn3.b, i3.l4Off) + 1,
    flags: TCP_SYN | TCP_ACK,
  });
  assert.ok(e.process(sa.b, sa.len, 1200) > 0);
  assert.equal(e.conns.state[e.conns.findLocal(0, read16(syn3.b, i3.l4Off))], STATE_SYN_RECV);
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
  e.process(f.b, f.len, 1300);
  assert.equal(e.conns.state[e.conns.findLocal(0, h4.lport)], STATE_FIN_WAIT);
  assert.equal(e.tick(1310), 0);
  assert.equal(e.tick(1311), 1, "fin_wait after 11 s");
  // udp
  const u = udp(CLIENT, VIP, 5, 53, new Uint8Array([1, 2, 3]));
  assert.ok(e.process(u.b, u.len, 1400) > 0);
  assert.equal(e.tick(1416), 0);
  assert.equal(e.tick(1417), 1, "udp after 17 s");
  assert.equal(e.conns.size, 0);
  assert.equal(e.counters.events[C.EV_EXPIRED], 5);
});

Deno.test("port exhaustion: the SYN is dropped, the client gets a RST, counted; ports come back", () => {
  const e = engine(); // 4 ports: 2000..2003
  for (let i = 0; i < 4; i++) {
    const s = tcp({ src: CLIENT, dst: VIP, sport: 100 + i, dport: 80, seq: 1, flags: TCP_SYN });
    assert.ok(e.process(s.b, s.len, 1000) > 0);
  }
  const ports = new Set<number>();
  for (let i = 0; i < 4; i++) ports.add(e.conns.localPort[i]);
  assert.equal(ports.size, 4, "no tuple handed out twice");
  const s = tcp({ src: CLIENT, dst: VIP, sport: 200, dport: 80, seq: 77, flags: TCP_SYN });
  const n = e.process(s.b, s.len, 1000);
  const ri = parse(s.b, n);
  assert.equal(s.b[ri.l4Off + 13], TCP_RST | TCP_ACK);
  assert.equal(tcpAck(s.b, ri.l4Off), 78);
  assert.equal(src(s.b, ri), VIP);
  assert.equal(dst(s.b, ri), CLIENT);
  assert.equal(read16(s.b, ri.l4Off + 2), 200);
  assert.equal(e.counters.drops[C.DROP_PORT_EXHAUSTED], 1);
  assert.equal(e.counters.events[C.EV_RST_SENT], 1);
  assert.equal(e.tick(1000 + 120), 4, "SYN_SENT entries expire");
  const again = tcp({ src: CLIENT, dst: VIP, sport: 201, dport: 80, seq: 1, flags: TCP_SYN });
  assert.ok(e.process(again.b, again.len, 1121) > again.len - 1);
});

Deno.test("no service on a VIP port: RST for TCP, ICMP port unreachable for UDP; not ours: dropped", () => {
  const e = engine();
  const s = tcp({ src: CLIENT, dst: VIP, sport: 5, dport: 9999, seq: 1, ack: 42, flags: TCP_ACK });
  const n = e.process(s.b, s.len, 1000);
  const si = parse(s.b, n);
  assert.equal(s.b[si.l4Off + 13], TCP_RST);
  assert.equal(tcpSeq(s.b, si.l4Off), 42);
  const u = udp(CLIENT, VIP, 5, 9999, new Uint8Array(10));
  const un = e.process(u.b, u.len, 1000);
  const ui = parse(u.b, un);
  assert.equal(ui.l4Proto, 1);
  assert.deepEqual([u.b[ui.l4Off], u.b[ui.l4Off + 1]], [3, 3]);
  assert.equal(dst(u.b, ui), CLIENT);
  assert.equal(formatIpv4(read32(u.b, ui.l4Off + 8 + 16)), VIP, "quotes the offending datagram");
  assert.equal(e.counters.drops[C.DROP_NO_SERVICE], 2);
  const other = tcp({ src: CLIENT, dst: "198.18.9.9", sport: 5, dport: 80, seq: 1, flags: TCP_SYN });
  assert.equal(e.process(other.b, other.len, 1000), 0);
  assert.equal(e.counters.drops[C.DROP_NOT_FOR_US], 1);
  const stray = tcp({ src: CLIENT, dst: VIP, sport: 6, dport: 80, seq: 1, flags: TCP_ACK });
  assert.equal(e.process(stray.b, stray.len, 1000), 0);
  assert.equal(e.counters.drops[C.DROP_NO_CONNECTION], 1);
  const spoof = tcp({ src: "198.18.3.99", dst: LOCAL, sport: 80, dport: 2000, seq: 1, flags: TCP_ACK });
  assert.equal(e.process(spoof.b, spoof.len, 1000), 0);
  assert.equal(e.counters.drops[C.DROP_NO_CONNECTION_REPLY], 1);
  const bad = new Uint8Array(64);
  bad[0] = 0x45;
  assert.equal(e.process(bad, 10, 1000), 0);
  assert.equal(e.counters.drops[1], 1, "truncated");
});

Deno.test("rr spreads connections over both real servers; weight 0 drains without cutting connections", () => {
  const e = engine({ portRange: [2000, 2999] });
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) {
    const s = tcp({ src: CLIENT, dst: VIP, sport: 300 + i, dport: 80, seq: 1, flags: TCP_SYN });
    const n = e.process(s.b, s.len, 1000);
    seen.push(dst(s.b, parse(s.b, n)));
  }
  assert.deepEqual(seen, [RS1, RS2, RS1, RS2]);
  e.setWeight(0, 1, 0);
  for (let i = 0; i < 3; i++) {
    const s = tcp({ src: CLIENT, dst: VIP, sport: 400 + i, dport: 80, seq: 1, flags: TCP_SYN });
    assert.equal(dst(s.b, parse(s.b, e.process(s.b, s.len, 1000))), RS1);
  }
  // The drained server's existing connection still flows.
  const again = tcp({ src: CLIENT, dst: VIP, sport: 301, dport: 80, seq: 1, flags: TCP_SYN });
  assert.equal(dst(again.b, parse(again.b, e.process(again.b, again.len, 1000))), RS2);
  assert.equal(e.counters.servers[e.serverIndex(0, 1) * C.TRAFFIC_FIELDS + C.T_CONNS], 2);
});

Deno.test("a new SYN on a TIME_WAIT tuple replaces the old connection", () => {
  const e = engine();
  const h = handshake(e);
  const f1 = fromClient(h, { seq: 1001, ack: 5001, flags: TCP_FIN | TCP_ACK });
  e.process(f1.b, f1.len, 1001);
  const f2 = fromServer(h, { seq: 5001, ack: h.isn + 2, flags: TCP_FIN | TCP_ACK });
  e.process(f2.b, f2.len, 1001);
  const syn = tcp({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, seq: 99999, flags: TCP_SYN });
  const n = e.process(syn.b, syn.len, 1002);
  const si = parse(syn.b, n);
  assert.notEqual(read16(syn.b, si.l4Off), h.lport, "a fresh local port");
  assert.equal(e.conns.size, 1);
  assert.equal(e.counters.events[C.EV_REUSED], 1);
});

Deno.test("IPv6: FULLNAT with the 20-byte TOA and IPv6 checksums", () => {
  const e = engine();
  const syn = tcp({
    src: "fd00:1::2",
    dst: "fd00::100",
    sport: 7000,
    dport: 80,
    seq: 1,
    flags: TCP_SYN,
    options: optMss(1440),
  });
  const n = e.process(syn.b, syn.len, 1000);
  assert.equal(n, syn.len + 20);
  const si = parse(syn.b, n);
  assert.equal(src(syn.b, si), "fd00:2::1");
  assert.equal(dst(syn.b, si), "fd00:3::10");
  assert.equal(tcpMss(syn.b, si.l4Off), 1500 - 40 - 20 - 20);
  assert.deepEqual(decodeToa(syn.b.subarray(0, n)), { family: 6, address: "fd00:1::2", port: 7000 });
  const lport = read16(syn.b, si.l4Off);
  const sa = tcp({
    src: "fd00:3::10",
    dst: "fd00:2::1",
    sport: 80,
    dport: lport,
    seq: 1,
    ack: tcpSeq(syn.b, si.l4Off) + 1,
    flags: TCP_SYN | TCP_ACK,
  });
  const sn = e.process(sa.b, sa.len, 1000);
  const ai = parse(sa.b, sn);
  assert.equal(src(sa.b, ai), "fd00::100");
  assert.equal(dst(sa.b, ai), "fd00:1::2");
  assert.equal(tcpAck(sa.b, ai.l4Off), 2);
});

Deno.test("UDP: both directions NATed, zero IPv4 checksum stays zero", () => {
  const e = engine();
  const u = udp(CLIENT, VIP, 5555, 53, new Uint8Array([9, 8, 7]));
  const n = e.process(u.b, u.len, 1000);
  const ui = parse(u.b, n);
  assert.equal(dst(u.b, ui), RS1);
  assert.equal(read16(u.b, ui.l4Off + 2), 5353);
  const lport = read16(u.b, ui.l4Off);
  const r = udp(RS1, LOCAL, 5353, lport, new Uint8Array([1]));
  r.b[20 + 6] = 0;
  r.b[20 + 7] = 0; // no checksum
  const rn = e.process(r.b, r.len, 1000);
  const ri = parse(r.b, rn);
  assert.equal(src(r.b, ri), VIP);
  assert.equal(read16(r.b, ri.l4Off), 53);
  assert.equal(read16(r.b, ri.l4Off + 2), 5555);
  assert.equal(read16(r.b, ri.l4Off + 6), 0);
});

Deno.test("ICMP frag-needed from the server side reaches the client about its own packet", () => {
  const e = engine();
  const h = handshake(e);
  // The real server's router quotes the packet the gateway sent: LOCAL:lport → RS1:80, seq isn+1.
  const q = tcp({
    src: LOCAL,
    dst: RS1,
    sport: h.lport,
    dport: 80,
    seq: h.isn + 1,
    ack: 5001,
    flags: TCP_ACK,
    payload: new Uint8Array(100),
  });
  const quoted = q.b.slice(0, 28 + 20); // IP header + 28 bytes of TCP: a truncated quote, checksum included
  const m = icmp("198.18.3.1", LOCAL, 3, 4, 1400, quoted);
  const n = e.process(m.b, m.len, 1001);
  const mi = parse(m.b, n);
  assert.equal(src(m.b, mi), VIP);
  assert.equal(dst(m.b, mi), CLIENT);
  assert.equal(read16(m.b, mi.l4Off + 6), 1400, "next-hop MTU kept");
  const qi = new PacketInfo();
  assert.equal(classifyPacket(m.b, mi.l4Off + 8, n - mi.l4Off - 8, qi, true), PACKET_OK);
  assert.ok(ipv4ChecksumOk(m.b, mi.l4Off + 8), "inner IPv4 checksum");
  assert.equal(src(m.b.subarray(mi.l4Off + 8), { ...qi, family: 4 } as PacketInfo), CLIENT);
  assert.equal(formatIpv4(read32(m.b, mi.l4Off + 8 + 16)), VIP);
  assert.equal(read16(m.b, qi.l4Off), 40000);
  assert.equal(read16(m.b, qi.l4Off + 2), 80);
  assert.equal(tcpSeq(m.b, qi.l4Off), 1001, "the client's own sequence number");
  assert.equal(e.counters.events[C.EV_ICMP_TRANSLATED], 1);
});

Deno.test("ICMP error from the client side reaches the real server about its own packet", () => {
  const e = engine();
  const h = handshake(e);
  const q = tcp({ src: VIP, dst: CLIENT, sport: 80, dport: 40000, seq: 5001, ack: 1001, flags: TCP_ACK });
  const m = icmp("198.18.1.1", VIP, 11, 0, 0, q.b.slice(0, 28));
  const n = e.process(m.b, m.len, 1001);
  const mi = parse(m.b, n);
  assert.equal(src(m.b, mi), LOCAL);
  assert.equal(dst(m.b, mi), RS1);
  const qo = mi.l4Off + 8;
  assert.equal(formatIpv4(read32(m.b, qo + 12)), RS1);
  assert.equal(formatIpv4(read32(m.b, qo + 16)), LOCAL);
  assert.equal(read16(m.b, qo + 20), 80);
  assert.equal(read16(m.b, qo + 22), h.lport);
  assert.equal(read32(m.b, qo + 24), 5001);
  const none = icmp(
    "198.18.1.1",
    VIP,
    3,
    1,
    0,
    tcp({ src: VIP, dst: CLIENT, sport: 80, dport: 1, flags: TCP_ACK }).b.slice(0, 28),
  );
  assert.equal(e.process(none.b, none.len, 1001), 0);
  assert.equal(e.counters.drops[C.DROP_ICMP_NO_CONNECTION], 1);
});

Deno.test("ping to a VIP is answered", () => {
  const e = engine();
  const m = icmp(CLIENT, VIP, 8, 0, 0x12340001, new Uint8Array([1, 2, 3, 4, 5]));
  const n = e.process(m.b, m.len, 1000);
  const mi = parse(m.b, n);
  assert.equal(m.b[mi.l4Off], 0);
  assert.equal(dst(m.b, mi), CLIENT);
  assert.equal(src(m.b, mi), VIP);
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

/** Completes a partial checksum as the offload does: ~fold(sum from csum_start, the field included). */
function completePartial(b: Uint8Array, len: number): void {
  const info = new PacketInfo();
  assert.equal(classifyPacket(b, 0, len, info), PACKET_OK);
  const at = info.l4Off + (info.l4Proto === 6 ? 16 : 6);
  write16(b, at, finishChecksum(onesComplementSum(b, info.l4Off, info.l4Len)));
}

Deno.test("offload: partial checksums stay partial and complete correctly (address, length, TOA)", () => {
  const e = engine();
  for (const v6 of [false, true]) {
    const s = tcp({
      src: v6 ? "fd00:1::2" : CLIENT,
      dst: v6 ? "fd00::100" : VIP,
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
    const si = parse(s.b, n);
    const lport = read16(s.b, si.l4Off);
    const r = tcp({
      src: v6 ? "fd00:3::10" : RS1,
      dst: v6 ? "fd00:2::1" : LOCAL,
      sport: 80,
      dport: lport,
      seq: 5,
      ack: tcpSeq(s.b, si.l4Off) + 1,
      flags: TCP_SYN | TCP_ACK,
      payload: new Uint8Array(333).fill(7),
    });
    makePartial(r.b, r.len);
    const rn = e.process(r.b, r.len, 1000, true);
    assert.equal(e.headerDelta, 0);
    completePartial(r.b, rn);
    const ri = parse(r.b, rn);
    assert.equal(tcpAck(r.b, ri.l4Off), 78);
  }
});
