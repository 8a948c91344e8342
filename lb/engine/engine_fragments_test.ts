// The engine with fragments, as rows: scapy's fragments of a datagram to a VIP come out as one rewritten
// datagram (IPv4) or as fragments of the rewritten one (IPv6, past the MTU), with checksums verified from
// scratch; a real server's fragmented reply goes back to the client whole; several workers meet the
// fragments of one datagram in one reassembler; stale fragments expire on tick.
import assert from "node:assert/strict";
import { read16, read32, write16, write32 } from "../../base/packet/checksum.ts";
import { ipv6FragmentOffset, ipv6MoreFragments } from "../../base/packet/fragment.ts";
import { formatIpv4, ipv4ChecksumOk, ipv4FillChecksum } from "../../base/packet/ipv4.ts";
import { formatIpv6 } from "../../base/packet/ipv6.ts";
import { PacketInfo } from "../../base/packet/packet_info.ts";
import { transportChecksumOk } from "../../base/packet/transport_checksum.ts";
import { classifyPacket, PACKET_FRAGMENT, PACKET_OK } from "../../base/packet/validate.ts";
import { validateConfig } from "../config.ts";
import * as C from "./counters.ts";
import { Engine } from "./engine.ts";
import { Reassembler } from "./reassembly.ts";
import { steerClient, steerFragment } from "./steering.ts";
import { icmp, tcp, udp } from "./testing/packets.ts";
import { TCP_SYN } from "../../base/packet/tcp.ts";

const CLIENT = "198.18.1.2";
const VIP = "198.18.0.100";
const LOCAL = "198.18.2.1";
const RS = "198.18.3.10";
const CLIENT6 = "fd00:1::2";
const VIP6 = "fd00::100";
const LOCAL6 = "fd00:2::1";
const RS6 = "fd00:3::10";
const BUF = 65536 + 64;

interface FragFixture {
  name: string;
  datagram: string;
  fragments: string[];
}
const FIXTURES: FragFixture[] = JSON.parse(
  Deno.readTextFileSync(new URL("./testdata/frag_fixtures.json", import.meta.url)),
);

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!.map((x) => parseInt(x, 16)));
}

function fixture(name: string): { datagram: Uint8Array; fragments: Uint8Array[] } {
  const f = FIXTURES.find((x) => x.name === name)!;
  return { datagram: hex(f.datagram), fragments: f.fragments.map(hex) };
}

function config(workers = 1) {
  return validateConfig({
    tun: "t0",
    workers,
    localAddresses: [LOCAL, LOCAL6],
    portRange: [2000, 2003],
    services: [
      { vip: VIP, port: 53, protocol: "udp", scheduler: "rr", realServers: [{ address: RS, port: 5353 }] },
      { vip: VIP6, port: 53, protocol: "udp", scheduler: "rr", realServers: [{ address: RS6, port: 5353 }] },
      { vip: VIP, port: 80, scheduler: "rr", realServers: [{ address: RS, port: 8080 }] },
    ],
  });
}

function engine(workers = 1, worker = 0) {
  return new Engine(config(workers), { now: 1000, worker, workers, random32: () => 0x10000000 });
}

/** The counters that moved, by name. */
function moved(e: Engine): Record<string, number> {
  const out: Record<string, number> = {};
  e.counters.drops.forEach((v, i) => v && (out[C.DROP_NAMES[i]] = v));
  e.counters.events.forEach((v, i) => v && (out[C.EVENT_NAMES[i]] = v));
  return out;
}

/** Runs `pkts` through `e`; returns every packet it sent (copies), and asserts nothing else came out. */
function run(e: Engine, pkts: Uint8Array[], now = 1000): Uint8Array[] {
  const out: Uint8Array[] = [];
  const b = new Uint8Array(BUF);
  for (const p of pkts) {
    b.set(p);
    for (let n = e.process(b, p.length, now); n !== 0; n = e.nextOutput(b)) {
      assert.ok(n > 0, "no hand-off with one worker");
      out.push(b.slice(0, n));
    }
  }
  return out;
}

/** Parses `p` as a whole packet and verifies its checksums from scratch. */
function sound(p: Uint8Array): PacketInfo {
  const info = new PacketInfo();
  assert.equal(classifyPacket(p, 0, p.length, info), PACKET_OK);
  if (info.family === 4) assert.ok(ipv4ChecksumOk(p, 0), "IPv4 header checksum");
  assert.ok(transportChecksumOk(p, info), "transport checksum");
  return info;
}

function addrs(p: Uint8Array): [string, string] {
  return p[0] >>> 4 === 4
    ? [formatIpv4(read32(p, 12)), formatIpv4(read32(p, 16))]
    : [formatIpv6(p, 8), formatIpv6(p, 24)];
}

/** Fragments an IPv4 datagram (20-byte header) into pieces of at most `mtu` bytes. */
function fragment4(d: Uint8Array, mtu: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const data = d.length - 20;
  const chunk = (mtu - 20) & ~7;
  for (let off = 0; off < data; off += chunk) {
    const n = Math.min(chunk, data - off);
    const f = new Uint8Array(20 + n);
    f.set(d.subarray(0, 20));
    f.set(d.subarray(20 + off, 20 + off + n), 20);
    write16(f, 2, 20 + n);
    write16(f, 6, (off + n < data ? 0x2000 : 0) | (off >>> 3));
    ipv4FillChecksum(f, 0);
    out.push(f);
  }
  return out;
}

/** Fragments an IPv6 datagram without extension headers into pieces of at most `mtu` bytes. */
function fragment6(d: Uint8Array, mtu: number, id: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const data = d.length - 40;
  const chunk = (mtu - 48) & ~7;
  for (let off = 0; off < data; off += chunk) {
    const n = Math.min(chunk, data - off);
    const f = new Uint8Array(48 + n);
    f.set(d.subarray(0, 40));
    f[6] = 44;
    f[40] = d[6];
    write16(f, 42, off | (off + n < data ? 1 : 0));
    write32(f, 44, id);
    f.set(d.subarray(40 + off, 40 + off + n), 48);
    write16(f, 4, 8 + n);
    out.push(f);
  }
  return out;
}

/** Reassembles the engine's own IPv6 fragments with a fresh reassembler (the RS kernel's part). */
function reassemble(frags: Uint8Array[]): Uint8Array {
  const r = new Reassembler(new C.Counters(0, 0));
  const b = new Uint8Array(BUF);
  const info = new PacketInfo();
  let n = 0;
  for (const f of frags) {
    b.set(f);
    assert.equal(classifyPacket(b, 0, f.length, info), PACKET_FRAGMENT);
    n = r.add(b, info, 0);
  }
  assert.ok(n > 0, "the engine's fragments make a whole datagram");
  return b.slice(0, n);
}

Deno.test("engine: scapy's fragmented 4000-byte UDP datagram to a UDP VIP goes out as one rewritten datagram", () => {
  const { datagram, fragments } = fixture("v4_udp_4000");
  const e = engine();
  const out = run(e, fragments);
  assert.equal(out.length, 1);
  const p = out[0];
  assert.equal(p.length, datagram.length, "the kernel fragments it again on output (no DF)");
  const info = sound(p);
  assert.deepEqual(addrs(p), [LOCAL, RS]);
  assert.equal(read16(p, info.l4Off + 2), 5353);
  assert.deepEqual(p.subarray(28), datagram.subarray(28), "payload intact");
  assert.deepEqual(moved(e), { frag_received: 3, frag_held: 2, frag_reassembled: 1, connections: 1 });
});

Deno.test("engine: the real server's fragmented reply reaches the client whole, from the VIP", () => {
  const { fragments } = fixture("v4_udp_4000");
  const e = engine();
  const fwd = run(e, fragments)[0];
  const lport = read16(fwd, 20);
  const payload = new Uint8Array(3000).map((_, i) => i * 7);
  const reply = udp(RS, LOCAL, 5353, lport, payload, BUF);
  const back = run(e, fragment4(reply.b.slice(0, reply.len), 1500));
  assert.equal(back.length, 1);
  sound(back[0]);
  assert.deepEqual(addrs(back[0]), [VIP, CLIENT]);
  assert.equal(read16(back[0], 20), 53);
  assert.equal(read16(back[0], 22), 40000);
  assert.deepEqual(back[0].subarray(28), payload);
});

for (const name of ["v6_udp_4000", "v6_hbh_frag_dest_udp"]) {
  Deno.test(`engine: scapy's ${name} to a UDP VIP: rewritten, sent on as fragments within the MTU`, () => {
    const { datagram, fragments } = fixture(name);
    const e = engine();
    const out = run(e, fragments);
    assert.ok(out.length >= 3);
    for (const f of out) assert.ok(f.length <= 1500, `fragment of ${f.length} bytes within the MTU`);
    const whole = reassemble(out);
    const info = sound(whole);
    assert.deepEqual(addrs(whole), [LOCAL6, RS6]);
    assert.equal(read16(whole, info.l4Off + 2), 5353);
    assert.equal(whole.length, datagram.length);
    assert.deepEqual(whole.subarray(info.l4Off + 8), datagram.subarray(info.l4Off + 8), "payload intact");
    // The Hop-by-Hop header is in every fragment (unfragmentable); offsets are in order, the last has no M.
    const hbh = datagram[6] === 0;
    for (const [i, f] of out.entries()) {
      assert.equal(f[6], hbh ? 0 : 44);
      const fh = hbh ? 48 : 40;
      if (hbh) assert.equal(f[40], 44);
      assert.equal(ipv6MoreFragments(f, fh), i < out.length - 1);
      if (i > 0) assert.ok(ipv6FragmentOffset(f, fh) > 0);
    }
    assert.deepEqual(moved(e), {
      frag_received: fragments.length,
      frag_held: fragments.length - 1,
      frag_reassembled: 1,
      frag_sent: out.length,
      connections: 1,
    });
  });
}

Deno.test("engine: a fragmented IPv6 reply from the real server goes back fragmented, from the VIP", () => {
  const { fragments } = fixture("v6_udp_4000");
  const e = engine();
  const fwd = reassemble(run(e, fragments));
  const lport = read16(fwd, 40);
  const payload = new Uint8Array(5000).map((_, i) => i * 13);
  const reply = udp(RS6, LOCAL6, 5353, lport, payload, BUF);
  const back = reassemble(run(e, fragment6(reply.b.slice(0, reply.len), 1280, 0xfeed)));
  sound(back);
  assert.deepEqual(addrs(back), [VIP6, CLIENT6]);
  assert.equal(read16(back, 40), 53);
  assert.deepEqual(back.subarray(48), payload);
});

Deno.test("engine: a fragmented TCP segment on a connection is rewritten whole (seq moved, checksum right)", () => {
  const { datagram, fragments } = fixture("v4_tcp_3000");
  const e = engine();
  const syn = tcp({ src: CLIENT, dst: VIP, sport: 40001, dport: 80, seq: 999, flags: TCP_SYN });
  assert.equal(run(e, [syn.b.slice(0, syn.len)]).length, 1);
  const out = run(e, fragments);
  assert.equal(out.length, 1);
  sound(out[0]);
  assert.deepEqual(addrs(out[0]), [LOCAL, RS]);
  assert.equal(read16(out[0], 22), 8080);
  assert.equal(read32(out[0], 24), (read32(datagram, 24) + 0x10000000 - 999) >>> 0, "seq += delta");
  assert.deepEqual(out[0].subarray(52), datagram.subarray(52));
});

Deno.test("engine: fragments not for us are dropped as not_for_us; stale fragments expire on tick", () => {
  const { fragments } = fixture("v4_udp_4000");
  const e = engine();
  const other = fragments[0].slice();
  other[19] = 7; // another destination
  ipv4FillChecksum(other, 0);
  assert.deepEqual(run(e, [other]), []);
  assert.deepEqual(run(e, [fragments[0]]), []);
  e.tick(1029);
  assert.equal(e.frags.inProgress, 1);
  e.tick(1030);
  assert.equal(e.frags.inProgress, 0);
  assert.deepEqual(moved(e), { not_for_us: 1, frag_received: 1, frag_held: 1, frag_timeout: 1 });
});

Deno.test("engine: fragments of a protocol the gateway does not serve are not held (counted as fragment)", () => {
  const { fragments } = fixture("v4_udp_4000");
  const e = engine();
  const gre = fragments[1].slice();
  gre[9] = 47;
  ipv4FillChecksum(gre, 0);
  const v6 = fixture("v6_udp_4000").fragments[1].slice();
  v6[40] = 50; // ESP
  assert.deepEqual(run(e, [gre, v6]), []);
  assert.deepEqual(moved(e), { fragment: 2 });
  assert.equal(e.frags.inProgress, 0);
});

Deno.test("engine: with several workers, a datagram's fragments meet on one worker, then go to the flow's owner", () => {
  const { datagram, fragments } = fixture("v4_udp_4000");
  const addrXor = read32(datagram, 12) ^ read32(datagram, 16);
  // A worker count where the reassembling worker is not the flow's owner, so both hand-offs happen.
  const workers = [2, 3, 4, 5, 6, 7].find((n) =>
    steerFragment(addrXor, 0x1234, n) !== steerClient(read32(datagram, 12), 40000, n)
  )!;
  const reassembler = steerFragment(addrXor, 0x1234, workers);
  const owner = steerClient(read32(datagram, 12), 40000, workers);
  const es = Array.from({ length: workers }, (_, w) => engine(workers, w));
  const b = new Uint8Array(BUF);
  const hops: string[] = [];
  let sent: Uint8Array | undefined;
  // Each fragment arrives at the worker after the reassembler (the BPF program cannot read fragments).
  for (const f of fragments) {
    b.set(f);
    let w = (reassembler + 1) % workers;
    let n = es[w].process(b, f.length, 1000);
    while (n < 0) {
      hops.push(`${w}→${-n - 1}:${es[w].length}`);
      const len = es[w].length;
      w = -n - 1;
      n = es[w].process(b, len, 1000);
    }
    if (n > 0) sent = b.slice(0, n);
  }
  const from = (reassembler + 1) % workers;
  assert.deepEqual(hops, [
    ...fragments.map((f) => `${from}→${reassembler}:${f.length}`),
    `${reassembler}→${owner}:${datagram.length}`,
  ]);
  assert.ok(sent, "the datagram came out");
  sound(sent!);
  assert.deepEqual(addrs(sent!), [LOCAL, RS]);
  assert.equal(es[owner].conns.size, 1, "the flow's owner holds the connection");
  assert.equal(es[reassembler].counters.events[C.EV_FRAG_REASSEMBLED], 1);
});

Deno.test("engine: an IPv6 atomic fragment (offset 0, M = 0) is a plain packet, never held (RFC 6946)", () => {
  const d = udp(CLIENT6, VIP6, 40000, 53, new Uint8Array(100).fill(7));
  const p = new Uint8Array(d.len + 8);
  p.set(d.b.subarray(0, 40));
  p.set(d.b.subarray(40, d.len), 48);
  p[6] = 44;
  p.set([17, 0, 0, 0, 0, 0, 0x12, 0x34], 40);
  write16(p, 4, d.len - 40 + 8);
  const e = engine();
  const out = run(e, [p]);
  assert.equal(out.length, 1);
  sound(out[0]);
  assert.deepEqual(addrs(out[0]), [LOCAL6, RS6]);
  assert.equal(out[0][6], 44, "the Fragment header stays");
  assert.deepEqual(moved(e), { connections: 1 });
});

Deno.test("engine: a fragmented echo request to a VIP is answered, IPv6 in fragments within the MTU", () => {
  for (const [src, dst, mtu] of [[CLIENT, VIP, 1500], [CLIENT6, VIP6, 1280]] as const) {
    const body = new Uint8Array(3000).map((_, i) => i);
    const req = icmp(src, dst, src === CLIENT ? 8 : 128, 0, 0x00420001, body, BUF);
    const whole = req.b.slice(0, req.len);
    const e = engine();
    const out = run(e, src === CLIENT ? fragment4(whole, 1500) : fragment6(whole, mtu, 0x1234));
    const reply = src === CLIENT ? out[0] : reassemble(out);
    assert.equal(out.length, src === CLIENT ? 1 : 3, "IPv4 whole (the kernel fragments), IPv6 in fragments");
    for (const f of out.slice(src === CLIENT ? 1 : 0)) assert.ok(f.length <= 1500);
    const info = sound(reply);
    assert.deepEqual(addrs(reply), [dst, src]);
    assert.equal(reply[info.l4Off], src === CLIENT ? 0 : 129, "echo reply");
    assert.deepEqual(reply.subarray(info.l4Off + 8), body);
    assert.equal(e.counters.events[C.EV_ECHO_REPLIED], 1);
  }
});

Deno.test("engine: the random option fixes the port rings' starts and the first fragment id (runs replay)", () => {
  // Four ports, 2000–2003: a ring starts at floor(random · 4); the first id sent is (start · workers +
  // worker) + workers, with start = floor(random · 2^32).
  for (const [r, lport, id] of [[0, 2000, 1], [0.5, 2002, 0x80000001], [0.99, 2003, 0xfd70a3d8]]) {
    const e = new Engine(config(), { now: 1000, random32: () => 0x10000000, random: () => r });
    const big = udp(CLIENT6, VIP6, 40000, 53, new Uint8Array(3000), BUF);
    const out = run(e, [big.b.slice(0, big.len)]);
    assert.ok(out.length > 1, "cut into fragments");
    assert.equal(read32(out[0], 44), id, `first fragment id with random ${r}`);
    assert.equal(read16(reassemble(out), 40), lport, `local port with random ${r}`);
  }
});
