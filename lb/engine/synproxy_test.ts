// The SYN proxy end to end through one engine: the client's handshake with the gateway (a cookie, no state),
// the server's handshake once the ACK proves it, the sequence spaces bridged both ways, windows rescaled,
// the server refusing, the `auto` switch. Every packet out is re-parsed and its checksums verified.
import assert from "node:assert/strict";
import { validateConfig } from "../config.ts";
import { read16, read32 } from "../../base/packet/checksum.ts";
import { formatIpv4, ipv4ChecksumOk } from "../../base/packet/ipv4.ts";
import { formatIpv6 } from "../../base/packet/ipv6.ts";
import { PacketInfo } from "../../base/packet/packet_info.ts";
import {
  TCP_ACK,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_WINDOW,
  tcpFindOption,
  tcpMss,
  TCPOPT_SACK,
  TCPOPT_SACK_PERMITTED,
  TCPOPT_TIMESTAMP,
  TCPOPT_WINDOW_SCALE,
} from "../../base/packet/tcp.ts";
import { transportChecksumOk } from "../../base/packet/transport_checksum.ts";
import { classifyPacket, PACKET_OK } from "../../base/packet/validate.ts";
import { decodeToa } from "../../base/packet/toa_option.ts";
import * as C from "./counters.ts";
import { Engine } from "./engine.ts";
import { optMss, optSack, optTimestamp, tcp, type TcpSpec } from "./testing/packets.ts";
import { STATE_ESTABLISHED, STATE_SYN_SENT } from "./tcp_state.ts";

const CLIENT = "198.18.1.2";
const VIP = "198.18.0.100";
const LOCAL = "198.18.2.1";
const RS = "198.18.3.10";
const CLIENT6 = "fd00:1::2";
const VIP6 = "fd00::100";
const LOCAL6 = "fd00:2::1";
const RS6 = "fd00:3::10";
const ISN = 0x10000000;
const GET = new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n");
/** MSS 1460, window scale 8, SACK permitted, timestamps: what a Linux client's SYN asks. */
const SYN_OPTIONS = [...optMss(1460), 1, 3, 3, 8, 4, 2, ...optTimestamp(7, 0)];

function engine(synproxy = "on", extra: Record<string, unknown> = {}, toaPlacement?: string): Engine {
  const config = validateConfig({
    tun: "t0",
    localAddresses: [LOCAL, LOCAL6],
    portRange: [2000, 2003],
    services: [
      {
        vip: VIP,
        port: 80,
        scheduler: "rr",
        synproxy,
        toaPlacement,
        realServers: [{ address: RS, port: 8080 }],
      },
      {
        vip: VIP6,
        port: 80,
        scheduler: "rr",
        synproxy,
        toaPlacement,
        realServers: [{ address: RS6, port: 80 }],
      },
    ],
    ...extra,
  });
  let isn = ISN;
  return new Engine(config, {
    now: 1000,
    random: () => 0,
    random32: () => {
      const v = isn;
      isn += 0x1000;
      return v;
    },
  });
}

/** One packet out, parsed: where it goes, its numbers, and its checksums verified. */
interface Out {
  b: Uint8Array;
  len: number;
  info: PacketInfo;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
}

function parse(b: Uint8Array, len: number, label: string): Out {
  const info = new PacketInfo();
  assert.equal(classifyPacket(b, 0, len, info), PACKET_OK, `${label}: parses`);
  assert.ok(transportChecksumOk(b, info), `${label}: TCP checksum`);
  if (info.family === 4) assert.ok(ipv4ChecksumOk(b, 0), `${label}: IPv4 checksum`);
  const o = info.l4Off;
  const v6 = info.family === 6;
  return {
    b,
    len,
    info,
    src: v6 ? formatIpv6(b, 8) : formatIpv4(read32(b, 12)),
    dst: v6 ? formatIpv6(b, 24) : formatIpv4(read32(b, 16)),
    sport: read16(b, o),
    dport: read16(b, o + 2),
    seq: read32(b, o + 4),
    ack: read32(b, o + 8),
    flags: b[o + 13],
    window: read16(b, o + TCP_WINDOW),
  };
}

/** Runs one segment through the engine; returns every packet out (nextOutput's too). */
function send(e: Engine, spec: TcpSpec, now = 1000, label = "segment"): Out[] {
  const { b, len } = tcp(spec);
  const n = e.process(b, len, now);
  const outs: Out[] = [];
  if (n <= 0) return outs;
  outs.push(parse(b.slice(0, n), n, label));
  for (let m = e.nextOutput(b); m > 0; m = e.nextOutput(b)) {
    outs.push(parse(b.slice(0, m), m, `${label} (more)`));
  }
  return outs;
}

const client = (s: Partial<TcpSpec>): TcpSpec => ({
  src: CLIENT,
  dst: VIP,
  sport: 40000,
  dport: 80,
  flags: TCP_ACK,
  ...s,
});
const server = (s: Partial<TcpSpec>): TcpSpec => ({
  src: RS,
  dst: LOCAL,
  sport: 8080,
  dport: 2000,
  flags: TCP_ACK,
  ...s,
});

/** The client's handshake with the gateway: returns the cookie. */
function clientHandshake(e: Engine, seq = 1000): number {
  const [sa] = send(e, client({ flags: TCP_SYN, seq, options: SYN_OPTIONS }), 1000, "SYN");
  return sa.seq;
}

Deno.test("synproxy: a SYN gets a cookie SYN+ACK (MSS, WS 7, SACK, no timestamps) and creates nothing", () => {
  const e = engine();
  const outs = send(e, client({ flags: TCP_SYN, seq: 1000, options: SYN_OPTIONS }));
  assert.equal(outs.length, 1);
  const sa = outs[0];
  assert.deepEqual([sa.src, sa.dst, sa.sport, sa.dport], [VIP, CLIENT, 80, 40000]);
  assert.equal(sa.flags, TCP_SYN | TCP_ACK);
  assert.equal(sa.ack, 1001);
  const o = sa.info.l4Off;
  assert.equal(tcpMss(sa.b, o), 1500 - 20 - 20 - 8);
  const ws = tcpFindOption(sa.b, o, TCPOPT_WINDOW_SCALE);
  assert.ok(ws > 0 && sa.b[ws + 2] === 7, "window scale 7");
  assert.ok(tcpFindOption(sa.b, o, TCPOPT_SACK_PERMITTED) > 0, "SACK permitted");
  assert.ok(tcpFindOption(sa.b, o, TCPOPT_TIMESTAMP) < 0, "no timestamps");
  assert.ok(e.generated);
  assert.equal(e.conns.size, 0);
  assert.equal(e.pool.free(0), 4);
  assert.equal(e.counters.events[C.EV_SYNCOOKIE_SENT], 1);
  // A SYN without options gets no window scale and no SACK back.
  const [bare] = send(e, client({ flags: TCP_SYN, seq: 5, sport: 40001 }));
  assert.ok(tcpFindOption(bare.b, bare.info.l4Off, TCPOPT_WINDOW_SCALE) < 0);
  assert.ok(tcpFindOption(bare.b, bare.info.l4Off, TCPOPT_SACK_PERMITTED) < 0);
});

Deno.test("synproxy: an ACK with a wrong cookie, another tuple's cookie, or an old one opens nothing", () => {
  const e = engine();
  const cookie = clientHandshake(e);
  const before = e.counters.drops[C.DROP_NO_CONNECTION];
  // Each is a segment of no connection: answered with a RST (fail fast), never a connection.
  const refused = (spec: TcpSpec, now = 1000) => {
    const outs = send(e, spec, now);
    assert.equal(outs.length, 1);
    assert.equal(outs[0].flags & TCP_RST, TCP_RST);
    assert.equal(outs[0].dst, CLIENT);
  };
  // The low 7 bits carry options, unauthenticated (a forged value changes only the forger's own options).
  refused(client({ seq: 1001, ack: cookie + 1 + 0x80 }));
  refused(client({ seq: 1002, ack: cookie + 1 })); // another ISN
  refused(client({ seq: 1001, ack: cookie + 1, sport: 40001 }));
  refused(client({ seq: 1001, ack: cookie + 1 }), 1000 + 200); // 200 s later
  assert.equal(e.counters.events[C.EV_SYNCOOKIE_BAD], 4);
  assert.equal(e.counters.drops[C.DROP_NO_CONNECTION] - before, 4);
  assert.equal(e.conns.size, 0);
  // The right one, within two cookie slots, opens it.
  assert.equal(send(e, client({ seq: 1001, ack: cookie + 1 }), 1000 + 60).length, 1);
  assert.equal(e.conns.size, 1);
});

Deno.test("synproxy: cookie ACK → SYN to the server with the client's options and TOA; data kept until open", () => {
  const e = engine();
  const cookie = clientHandshake(e);
  const outs = send(
    e,
    client({ seq: 1001, ack: cookie + 1, flags: TCP_ACK | TCP_PSH, payload: GET, window: 500 }),
  );
  assert.equal(outs.length, 1);
  const syn = outs[0];
  assert.deepEqual([syn.src, syn.dst, syn.sport, syn.dport], [LOCAL, RS, 2000, 8080]);
  assert.equal(syn.flags, TCP_SYN);
  assert.equal(syn.seq, ISN);
  assert.equal(syn.window, 0xffff, "500 << 8, capped: a SYN window is never scaled");
  const o = syn.info.l4Off;
  assert.equal(tcpMss(syn.b, o), 1452, "the client's 1460, clamped for TOA");
  const ws = tcpFindOption(syn.b, o, TCPOPT_WINDOW_SCALE);
  assert.equal(syn.b[ws + 2], 8, "the client's own window scale");
  assert.ok(tcpFindOption(syn.b, o, TCPOPT_SACK_PERMITTED) > 0);
  assert.deepEqual(decodeToa(syn.b.subarray(0, syn.len)), { family: 4, port: 40000, address: CLIENT });
  assert.equal(e.conns.size, 1);
  assert.equal(e.conns.state(0), STATE_SYN_SENT);
  assert.equal(e.counters.events[C.EV_SYNCOOKIE_VALID], 1);
  assert.equal(e.counters.events[C.EV_SYNPROXY_KEPT], 1);

  // The server's SYN+ACK: the ACK completing its handshake (with TOA), then the kept request.
  const S = 0x70000000;
  const [ack, data] = send(
    e,
    server({ flags: TCP_SYN | TCP_ACK, seq: S, ack: ISN + 1, options: [...optMss(1460), 1, 3, 3, 6] }),
  );
  assert.equal(ack.flags, TCP_ACK);
  assert.deepEqual([ack.src, ack.dst, ack.seq, ack.ack], [LOCAL, RS, ISN + 1, S + 1]);
  assert.ok(decodeToa(ack.b.subarray(0, ack.len)) !== null, "TOA in the handshake ACK");
  assert.equal(ack.window, 500, "the client's window in its own scale");
  assert.deepEqual([data.dst, data.seq, data.ack], [RS, ISN + 1, S + 1]);
  assert.deepEqual(data.b.subarray(data.len - GET.length, data.len), GET);
  assert.equal(e.conns.state(0), STATE_ESTABLISHED);

  // Server → client: the cookie's numbering; its window (scale 6) told in the client's scale (7).
  const [reply] = send(e, server({ seq: S + 1, ack: ISN + 1 + GET.length, payload: GET, window: 1000 }));
  assert.deepEqual([reply.src, reply.dst, reply.sport, reply.dport], [VIP, CLIENT, 80, 40000]);
  assert.deepEqual([reply.seq, reply.ack], [cookie + 1, 1001 + GET.length]);
  assert.equal(reply.window, 500);

  // Client → server: ack and SACK blocks in the server's numbering.
  const k = cookie + 1;
  const [sack] = send(
    e,
    client({ seq: 1001 + GET.length, ack: k + 10, options: [1, 1, ...optSack([[k + 20, k + 30]])] }),
  );
  assert.deepEqual([sack.seq, sack.ack], [ISN + 1 + GET.length, S + 1 + 10]);
  const p = tcpFindOption(sack.b, sack.info.l4Off, TCPOPT_SACK);
  assert.deepEqual([read32(sack.b, p + 2), read32(sack.b, p + 6)], [S + 1 + 20, S + 1 + 30]);
});

Deno.test("synproxy: a server that declines window scaling reads the client's windows scaled up", () => {
  const e = engine();
  const cookie = clientHandshake(e);
  send(e, client({ seq: 1001, ack: cookie + 1, window: 100 }));
  const S = 5000;
  const [ack] = send(e, server({ flags: TCP_SYN | TCP_ACK, seq: S, ack: ISN + 1, options: optMss(1460) }));
  assert.equal(ack.window, 100 << 8, "the client's window, scaled by its shift 8, raw for the server");
  const [up] = send(e, client({ seq: 1001, ack: cookie + 1, window: 200 }));
  assert.equal(up.window, 200 << 8);
  // What the client advertised (bounds a server RST's window), counted once: 200 in its own scale 8.
  assert.equal(e.conns.clientMaxWin(0), 200 << 8);
  const [down] = send(e, server({ seq: S + 1, ack: ISN + 1, window: 64000 }));
  assert.equal(down.window, 64000 >>> 7, "an unscaled window in the client's scale 7");
});

Deno.test("synproxy: the server refuses (RST): the client, connected to the gateway, gets a RST at once", () => {
  const e = engine();
  const cookie = clientHandshake(e);
  send(e, client({ seq: 1001, ack: cookie + 1 }));
  // A RST that does not acknowledge the SYN is not the server's answer.
  assert.equal(send(e, server({ flags: TCP_RST | TCP_ACK, ack: ISN + 7 })).length, 0);
  assert.equal(e.conns.size, 1);
  const [rst] = send(e, server({ flags: TCP_RST | TCP_ACK, ack: ISN + 1 }));
  assert.deepEqual([rst.src, rst.dst, rst.sport, rst.dport], [VIP, CLIENT, 80, 40000]);
  assert.equal(rst.flags & TCP_RST, TCP_RST);
  assert.deepEqual([rst.seq, rst.ack], [cookie + 1, 1001]);
  assert.equal(e.conns.size, 0);
  assert.equal(e.pool.free(0), 4);
  assert.equal(e.counters.events[C.EV_SYNPROXY_REFUSED], 1);
});

Deno.test("synproxy: while the server side opens, a retransmission resends the SYN (at most every 0.5 s)", () => {
  const e = engine();
  const cookie = clientHandshake(e);
  send(e, client({ seq: 1001, ack: cookie + 1, payload: GET }));
  const notKept = e.counters.drops[C.DROP_SYNPROXY_NOT_KEPT];
  assert.equal(send(e, client({ seq: 1001, ack: cookie + 1, payload: GET }), 1000.2).length, 0);
  assert.equal(e.counters.drops[C.DROP_SYNPROXY_NOT_KEPT] - notKept, 1);
  const [syn] = send(e, client({ seq: 1001, ack: cookie + 1, payload: GET }), 1001);
  assert.deepEqual([syn.flags, syn.seq, syn.dst], [TCP_SYN, ISN, RS]);
  assert.equal(e.counters.events[C.EV_SYNPROXY_SYN_RETRANSMIT], 1);
});

Deno.test("synproxy: IPv6, TOA of 20 bytes in the SYN", () => {
  const e = engine();
  const [sa] = send(e, client({ src: CLIENT6, dst: VIP6, flags: TCP_SYN, seq: 9, options: SYN_OPTIONS }));
  assert.equal(tcpMss(sa.b, sa.info.l4Off), 1500 - 40 - 20 - 20);
  const [syn] = send(e, client({ src: CLIENT6, dst: VIP6, seq: 10, ack: sa.seq + 1 }));
  assert.deepEqual([syn.src, syn.dst, syn.flags], [LOCAL6, RS6, TCP_SYN]);
  assert.deepEqual(decodeToa(syn.b.subarray(0, syn.len)), {
    family: 6,
    port: 40000,
    address: CLIENT6,
  });
});

Deno.test("synproxy auto: on past the threshold of half-open entries, off again when the flood is gone", () => {
  const e = engine("auto", { synproxyThreshold: 3, timeouts: { synSent: 3 } });
  for (let p = 0; p < 3; p++) {
    const [syn] = send(e, client({ flags: TCP_SYN, seq: 1, sport: 41000 + p }));
    assert.equal(syn.dst, RS, "forwarded while off");
  }
  assert.equal(e.halfOpen, 3);
  assert.ok(e.synproxyActive);
  assert.equal(e.counters.events[C.EV_SYNPROXY_ON], 1);
  const [cookie] = send(e, client({ flags: TCP_SYN, seq: 1, sport: 42000 }));
  assert.equal(cookie.dst, CLIENT, "answered by the gateway while on");
  // Unanswered cookies keep it on; once the half-open entries expired and no cookie went unanswered, off.
  for (let p = 0; p < 5; p++) send(e, client({ flags: TCP_SYN, seq: 1, sport: 43000 + p }), 1005);
  e.tick(1010);
  assert.ok(e.synproxyActive, "still flooded");
  assert.equal(e.halfOpen, 0);
  e.tick(1020);
  assert.ok(!e.synproxyActive);
  assert.equal(e.counters.events[C.EV_SYNPROXY_OFF], 1);
  const [again] = send(e, client({ flags: TCP_SYN, seq: 1, sport: 44000 }), 1020);
  assert.equal(again.dst, RS);
});

Deno.test("synproxy: a server that still holds the tuple (ACK to our SYN) is taken over: RST, then the SYN again", () => {
  const e = engine();
  const cookie = clientHandshake(e);
  send(e, client({ seq: 1001, ack: cookie + 1, payload: GET }));
  const outs = send(e, server({ seq: 777, ack: 0x5555 }), 1000.01, "stale ACK");
  assert.equal(outs.length, 2);
  const [rst, syn] = outs;
  assert.deepEqual([rst.src, rst.dst, rst.flags & TCP_RST, rst.seq], [LOCAL, RS, TCP_RST, 0x5555]);
  assert.deepEqual([syn.src, syn.dst, syn.sport, syn.flags, syn.seq], [LOCAL, RS, 2000, TCP_SYN, ISN]);
  assert.equal(tcpMss(syn.b, syn.info.l4Off), 1452);
  assert.ok(decodeToa(syn.b.subarray(0, syn.len)) !== null, "TOA in the SYN sent again");
  assert.equal(e.counters.events[C.EV_TAKEOVER_RST], 1);
  // Then the server's SYN+ACK opens it as usual, and the kept request follows.
  const [ack, data] = send(e, server({ flags: TCP_SYN | TCP_ACK, seq: 9000, ack: ISN + 1 }));
  assert.deepEqual([ack.seq, ack.ack], [ISN + 1, 9001]);
  assert.deepEqual(data.b.subarray(data.len - GET.length, data.len), GET);
});

for (
  const row of [
    { placement: "syn+ack", syn: true, ack: true },
    { placement: "ack", syn: false, ack: true },
    { placement: "syn", syn: true, ack: false },
  ]
) {
  for (const v6 of [false, true]) {
    const where = `its SYN ${row.syn ? "with" : "without"} TOA (sent again too), its ACK ${
      row.ack ? "with" : "without"
    }`;
    Deno.test(`synproxy, toaPlacement ${row.placement}, IPv${v6 ? 6 : 4}: ${where}`, () => {
      const e = engine("on", {}, row.placement);
      const c = v6 ? { src: CLIENT6, dst: VIP6 } : {};
      const s = v6 ? { src: RS6, dst: LOCAL6, sport: 80 } : {};
      const toa = { family: v6 ? 6 : 4, port: 40000, address: v6 ? CLIENT6 : CLIENT };
      const toaOf = (o: Out) => decodeToa(o.b.subarray(0, o.len));
      const [sa] = send(e, client({ ...c, flags: TCP_SYN, seq: 1000, options: SYN_OPTIONS }), 1000, "SYN");
      const inserted = () => e.counters.events[C.EV_TOA_INSERTED];
      const [syn] = send(e, client({ ...c, seq: 1001, ack: sa.seq + 1, payload: GET }), 1000, "cookie ACK");
      assert.equal(syn.flags, TCP_SYN);
      assert.deepEqual(toaOf(syn), row.syn ? toa : null, "TOA in the proxy's SYN");
      assert.equal(inserted(), row.syn ? 1 : 0);
      // The server still holds the tuple: the SYN sent again carries TOA exactly when the first did.
      const [rst, again] = send(e, server({ ...s, seq: 777, ack: 0x5555 }), 1000.01, "stale ACK");
      assert.equal(rst.flags & TCP_RST, TCP_RST);
      assert.deepEqual([again.flags, again.seq], [TCP_SYN, ISN]);
      assert.deepEqual(toaOf(again), row.syn ? toa : null, "TOA in the SYN sent again");
      const [ack, data] = send(e, server({ ...s, flags: TCP_SYN | TCP_ACK, seq: 9000, ack: ISN + 1 }));
      assert.deepEqual([ack.flags, ack.seq, ack.ack], [TCP_ACK, ISN + 1, 9001]);
      assert.deepEqual(toaOf(ack), row.ack ? toa : null, "TOA in the ACK completing the server's handshake");
      assert.deepEqual(toaOf(data), null, "none in the kept data");
      assert.equal(
        inserted(),
        (row.syn ? 2 : 0) + (row.ack ? 1 : 0),
        "toa_inserted: each TOA sent, the takeover's SYN too",
      );
    });
  }
}
