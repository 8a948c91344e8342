// The reassembler against scapy: every datagram scapy cut into fragments (testdata/frag_fixtures.json) must
// come back byte for byte whatever the arrival order; then the defences, one case each, with the counters
// each must move (and nothing else).
import assert from "node:assert/strict";
import { read16, write16 } from "../../base/packet/checksum.ts";
import { ipv4ChecksumOk, ipv4FillChecksum } from "../../base/packet/ipv4.ts";
import { PacketInfo } from "../../base/packet/packet_info.ts";
import { classifyPacket, PACKET_FRAGMENT, PACKET_OK } from "../../base/packet/validate.ts";
import * as C from "./counters.ts";
import { Reassembler, type ReassemblyOptions } from "./reassembly.ts";

interface FragFixture {
  name: string;
  datagram: string;
  fragments: string[];
}

const FIXTURES: FragFixture[] = JSON.parse(
  Deno.readTextFileSync(new URL("./testdata/frag_fixtures.json", import.meta.url)),
);
const BUF = 65536 + 64;

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!.map((x) => parseInt(x, 16)));
}

function fixture(name: string): { datagram: Uint8Array; fragments: Uint8Array[] } {
  const f = FIXTURES.find((x) => x.name === name);
  if (!f) throw new Error(`no fixture ${name}`);
  return { datagram: hex(f.datagram), fragments: f.fragments.map(hex) };
}

/** A reassembler with its own counters, and a feeder that classifies each fragment as the engine does. */
function setup(opts: ReassemblyOptions = {}) {
  const counters = new C.Counters(0, 0);
  const r = new Reassembler(counters, opts);
  const info = new PacketInfo();
  const buf = new Uint8Array(BUF);
  /** Feeds one fragment at `now`; returns the datagram when it completed one, else null. */
  const feed = (frag: Uint8Array, now = 0): Uint8Array | null => {
    buf.set(frag);
    assert.equal(
      classifyPacket(buf, 0, frag.length, info),
      PACKET_FRAGMENT,
      "the validator calls it a fragment",
    );
    const n = r.add(buf, info, now);
    return n > 0 ? buf.slice(0, n) : null;
  };
  /** The counters that moved, by name. */
  const moved = () => {
    const out: Record<string, number> = {};
    counters.drops.forEach((v, i) => v && (out[C.DROP_NAMES[i]] = v));
    counters.events.forEach((v, i) => v && (out[C.EVENT_NAMES[i]] = v));
    return out;
  };
  return { r, feed, moved };
}

/** IPv4 fragment of `d` (a whole IPv4 datagram, 20-byte header): data [off, off+len), MF as given. */
function frag4(d: Uint8Array, off: number, len: number, more: boolean, id?: number): Uint8Array {
  const out = new Uint8Array(20 + len);
  out.set(d.subarray(0, 20));
  out.set(d.subarray(20 + off, 20 + off + len), 20);
  write16(out, 2, 20 + len);
  write16(out, 6, (more ? 0x2000 : 0) | (off >>> 3));
  if (id !== undefined) write16(out, 4, id);
  ipv4FillChecksum(out, 0);
  return out;
}

function order<T>(a: T[], idx: number[]): T[] {
  return idx.map((i) => a[i]);
}

for (const f of FIXTURES) {
  const n = f.fragments.length;
  const orders: [string, number[]][] = [
    ["in order", [...Array(n).keys()]],
    ["reversed", [...Array(n).keys()].reverse()],
    ["last first, then the rest", [n - 1, ...Array(n - 1).keys()]],
  ];
  for (const [how, idx] of orders) {
    Deno.test(`reassembly: scapy's ${f.name} (${n} fragments) ${how} → the datagram, byte for byte`, () => {
      const { datagram, fragments } = fixture(f.name);
      const { r, feed, moved } = setup();
      const out = order(fragments, idx).map((x) => feed(x));
      assert.ok(out.slice(0, -1).every((x) => x === null), "held until the last one");
      assert.deepEqual(out.at(-1), datagram);
      const info = new PacketInfo();
      assert.equal(classifyPacket(out.at(-1)!, 0, datagram.length, info), PACKET_OK, "a whole packet now");
      if (datagram[0] >>> 4 === 4) assert.ok(ipv4ChecksumOk(out.at(-1)!, 0));
      assert.deepEqual(moved(), { frag_received: n, frag_held: n - 1, frag_reassembled: 1 });
      assert.equal(r.bytesHeld, 0);
      assert.equal(r.inProgress, 0);
    });
  }
}

Deno.test("reassembly: two datagrams interleaved, and the same id from another source, stay apart", () => {
  const a = fixture("v4_udp_4000");
  const { feed, moved } = setup();
  // The same fragments from another client (source address changed): a datagram of its own.
  const other = a.fragments.map((x) => {
    const y = x.slice();
    y[15] = 99;
    ipv4FillChecksum(y, 0);
    return y;
  });
  assert.equal(feed(a.fragments[0]), null);
  assert.equal(feed(other[1]), null);
  assert.equal(feed(other[0]), null);
  assert.equal(feed(a.fragments[1]), null);
  assert.deepEqual(feed(a.fragments[2]), a.datagram);
  const o = feed(other[2])!;
  assert.equal(o[15], 99);
  assert.deepEqual(o.subarray(20), a.datagram.subarray(20));
  assert.deepEqual(moved(), { frag_received: 6, frag_held: 4, frag_reassembled: 2 });
});

Deno.test("reassembly: an exact duplicate is dropped alone; the datagram still completes", () => {
  const { datagram, fragments } = fixture("v6_udp_4000");
  const { feed, moved } = setup();
  feed(fragments[0]);
  feed(fragments[1]);
  assert.equal(feed(fragments[1]), null);
  feed(fragments[2]);
  assert.deepEqual(feed(fragments[3]), datagram);
  assert.deepEqual(moved(), { frag_received: 5, frag_held: 3, frag_duplicate: 1, frag_reassembled: 1 });
});

Deno.test("reassembly: a same-range fragment with other bytes is an overlap: the datagram and its later fragments go", () => {
  const { fragments } = fixture("v4_udp_4000");
  const { r, feed, moved } = setup();
  feed(fragments[1]);
  const evil = fragments[1].slice();
  evil[100] ^= 0xff;
  assert.equal(feed(evil), null);
  assert.equal(r.bytesHeld, 0, "the held bytes are freed at once");
  assert.equal(feed(fragments[0]), null);
  assert.equal(feed(fragments[2]), null);
  assert.deepEqual(moved(), { frag_received: 4, frag_held: 1, frag_overlap: 1, frag_discarded: 2 });
});

Deno.test("reassembly: a partial overlap (IPv4 too, RFC 5722's rule) discards the datagram", () => {
  const { datagram } = fixture("v4_udp_4000");
  const { feed, moved } = setup();
  feed(frag4(datagram, 0, 1480, true));
  assert.equal(feed(frag4(datagram, 1472, 1480, true)), null, "8 bytes rewritten twice");
  assert.equal(feed(frag4(datagram, 1480, datagram.length - 20 - 1480, false)), null);
  assert.deepEqual(moved(), { frag_received: 3, frag_held: 1, frag_overlap: 1, frag_discarded: 1 });
});

Deno.test("reassembly: RFC 1858 offset-1 rewrite of a TCP header is an overlap", () => {
  const { datagram } = fixture("v4_tcp_3000");
  const { feed, moved } = setup();
  feed(frag4(datagram, 0, 1000, true));
  assert.equal(feed(frag4(datagram, 8, 992, true)), null);
  assert.deepEqual(moved(), { frag_received: 2, frag_held: 1, frag_overlap: 1 });
});

Deno.test("reassembly: a tiny first fragment (TCP header cut, RFC 1858/3128) discards the datagram", () => {
  const { datagram } = fixture("v4_tcp_3000"); // TCP header with options: 32 bytes
  const { feed, moved } = setup();
  assert.equal(feed(frag4(datagram, 0, 24, true)), null, "24 bytes: past 20 but not the options");
  assert.equal(feed(frag4(datagram, 24, datagram.length - 44, false)), null);
  assert.deepEqual(moved(), { frag_received: 2, frag_tiny: 1, frag_discarded: 1 });
  // UDP needs 8 bytes and no more: a first fragment of exactly 8 is fine.
  const u = fixture("v4_udp_4000").datagram;
  const s2 = setup();
  assert.equal(s2.feed(frag4(u, 0, 8, true)), null);
  assert.deepEqual(s2.feed(frag4(u, 8, u.length - 28, false)), u);
});

Deno.test("reassembly: IPv6 first fragment without the upper-layer header (RFC 7112) discards the datagram", () => {
  // v6_hbh_frag_dest_udp: fixed header, HBH (8), Fragment (8), then Destination Options (8) and UDP.
  const { fragments } = fixture("v6_hbh_frag_dest_udp");
  const first = fragments[0];
  const tiny = first.slice(0, 40 + 8 + 8 + 8); // the Destination Options header only
  write16(tiny, 4, tiny.length - 40);
  const { feed, moved } = setup();
  assert.equal(feed(tiny), null);
  assert.equal(feed(fragments[1]), null);
  assert.deepEqual(moved(), { frag_received: 2, frag_tiny: 1, frag_discarded: 1 });
});

Deno.test("reassembly: more than 65535 bytes is refused", () => {
  const { datagram } = fixture("v4_udp_4000");
  const { feed, moved } = setup();
  const f = frag4(datagram, 0, 104, false);
  write16(f, 6, 8180); // offset 65440 + 104 bytes
  ipv4FillChecksum(f, 0);
  assert.equal(feed(f), null);
  assert.deepEqual(moved(), { frag_received: 1, frag_too_big: 1 });
});

Deno.test("reassembly: too many fragments for one datagram discards it", () => {
  const { fragments } = fixture("v4_udp_small_frags"); // 10 fragments
  const { feed, moved } = setup({ maxFragments: 4 });
  for (const f of fragments) assert.equal(feed(f), null);
  assert.deepEqual(moved(), { frag_received: 10, frag_held: 4, frag_too_many: 1, frag_discarded: 5 });
});

Deno.test("reassembly: malformed fragments — data not a multiple of 8, or two different ends", () => {
  const { datagram } = fixture("v4_udp_4000");
  const { feed, moved } = setup();
  assert.equal(feed(frag4(datagram, 0, 1001, true)), null);
  assert.deepEqual(moved(), { frag_received: 1, frag_malformed: 1 });
  feed(frag4(datagram, 1000, 1000, false));
  assert.equal(feed(frag4(datagram, 2000, 100, false)), null, "a second last fragment, ending elsewhere");
  assert.deepEqual(moved(), { frag_received: 3, frag_malformed: 2, frag_held: 1 });
});

Deno.test("reassembly: timeouts — tick expiry, and expiry found on lookup; then the id is new again", () => {
  const { datagram, fragments } = fixture("v4_udp_4000");
  const { r, feed, moved } = setup({ timeout4: 30 });
  feed(fragments[0], 100);
  assert.equal(r.expire(129.9), 0);
  assert.equal(r.expire(130), 1);
  assert.equal(r.bytesHeld, 0);
  feed(fragments[0], 200);
  feed(fragments[1], 231); // past the deadline: the old one is expired, this starts anew
  assert.equal(feed(fragments[2], 232), null, "fragment 0 went with the expired datagram");
  assert.deepEqual(feed(fragments[0], 233), datagram);
  assert.deepEqual(moved(), { frag_received: 5, frag_held: 4, frag_timeout: 2, frag_reassembled: 1 });
});

Deno.test("reassembly: IPv6 gets its own timeout (60 s by default)", () => {
  const { fragments } = fixture("v6_udp_4000");
  const { r, feed } = setup();
  feed(fragments[0], 0);
  assert.equal(r.expire(59), 0);
  assert.equal(r.expire(60), 1);
});

Deno.test("reassembly: bounded — the oldest datagram is evicted for a slot or for bytes", () => {
  const a = fixture("v4_udp_4000");
  const b = fixture("v6_udp_4000");
  const c = fixture("v4_tcp_3000");
  {
    const { r, feed, moved } = setup({ maxDatagrams: 2 });
    feed(a.fragments[0], 1);
    feed(b.fragments[0], 2);
    feed(c.fragments[0], 3); // a is the oldest: evicted
    assert.equal(r.inProgress, 2);
    let out = null;
    for (const f of b.fragments.slice(1)) out = feed(f, 4);
    assert.deepEqual(out, b.datagram, "b was kept");
    assert.equal(feed(a.fragments[1], 5), null);
    assert.equal(feed(a.fragments[2], 5), null, "a's first fragment went with the eviction");
    assert.deepEqual(moved(), { frag_received: 8, frag_held: 7, frag_evicted: 1, frag_reassembled: 1 });
  }
  {
    // 65535 bytes held at most: two big partial datagrams cannot both stay.
    const { r, feed, moved } = setup({ maxBytes: 65535 });
    const big = (id: number, off: number) => {
      const f = frag4(a.datagram, 0, 1480, true, id);
      write16(f, 6, 0x2000 | (off >>> 3));
      ipv4FillChecksum(f, 0);
      return f;
    };
    for (let i = 0; i < 30; i++) feed(big(1, i * 1480), 1); // 44400 bytes of datagram 1
    for (let i = 0; i < 30; i++) feed(big(2, i * 1480), 2); // datagram 2 pushes 1 out
    assert.ok(r.bytesHeld <= 65535);
    assert.equal(r.inProgress, 1);
    assert.equal(moved().frag_evicted, 1);
  }
});

Deno.test("reassembly: the IPv4 header comes from the first fragment, flags cleared and checksum right", () => {
  const { datagram, fragments } = fixture("v4_udp_4000");
  const { feed } = setup();
  feed(fragments[2]);
  feed(fragments[1]);
  const out = feed(fragments[0])!;
  assert.equal(read16(out, 6), 0, "no MF, offset 0");
  assert.equal(read16(out, 2), datagram.length);
  assert.ok(ipv4ChecksumOk(out, 0));
});

/** xorshift32: a seeded source, so a failing case can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/** IPv6 fragment of `d` (no extension headers): data [off, off+len), M as given, id. */
function frag6(d: Uint8Array, off: number, len: number, more: boolean, id: number): Uint8Array {
  const f = new Uint8Array(48 + len);
  f.set(d.subarray(0, 40));
  f[6] = 44;
  f[40] = d[6];
  write16(f, 42, off | (more ? 1 : 0));
  write16(f, 44, id >>> 16);
  write16(f, 46, id & 0xffff);
  f.set(d.subarray(40 + off, 40 + off + len), 48);
  write16(f, 4, 8 + len);
  return f;
}

Deno.test("reassembly: random cuts, orders, duplicates and forged overlaps — only the true datagram ever comes out", () => {
  const v4 = fixture("v4_udp_4000").datagram;
  const v6 = fixture("v6_udp_4000").datagram;
  let completed = 0;
  let overlaps = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const rand = rng(seed);
    const { r, feed, moved } = setup({ maxDatagrams: 4, maxFragments: 16, maxBytes: 65535 });
    const d = rand() < 0.5 ? v4 : v6;
    const hl = d[0] >>> 4 === 4 ? 20 : 40;
    const data = d.length - hl;
    const cut = (off: number, len: number, more: boolean) =>
      hl === 20 ? frag4(d, off, len, more) : frag6(d, off, len, more, 0x99);
    const frags: Uint8Array[] = [];
    for (let off = 0; off < data;) {
      const n = Math.min(data - off, 8 * (1 + Math.floor(rand() * 200)));
      frags.push(cut(off, n, off + n < data));
      off += n;
    }
    const cuts = frags.length;
    // Duplicates, and now and then a forged fragment overlapping the datagram with other bytes.
    for (let i = Math.floor(rand() * 3); i > 0; i--) frags.push(frags[Math.floor(rand() * frags.length)]);
    const forged = rand() < 0.3;
    if (forged) {
      const f = cut(8 * Math.floor(rand() * (data / 8 - 2)), 16, true);
      f[f.length - 1] ^= 0x5a;
      frags.push(f);
    }
    for (let i = frags.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [frags[i], frags[j]] = [frags[j], frags[i]];
    }
    let outs = 0;
    for (const f of frags) {
      const out = feed(f);
      if (out) {
        outs++;
        assert.deepEqual(out, d, `seed ${seed}: only the true datagram`);
      }
      assert.ok(r.bytesHeld <= r.maxBytes && r.bytesHeld >= 0, `seed ${seed}: bytes held bounded`);
      assert.ok(r.inProgress <= r.maxDatagrams && r.inProgress >= 0, `seed ${seed}: datagrams bounded`);
    }
    const m = moved();
    const dropped = Object.entries(m).filter(([k]) => k.startsWith("frag_") && C.DROP_NAMES.includes(k))
      .reduce((s, [, v]) => s + v, 0);
    assert.equal(
      m.frag_received,
      (m.frag_held ?? 0) + (m.frag_reassembled ?? 0) + dropped,
      `seed ${seed}: every fragment accounted once`,
    );
    assert.ok(outs <= 1, `seed ${seed}: one datagram at most`);
    if (!forged && cuts <= 16) assert.equal(outs, 1, `seed ${seed}: the datagram completes`);
    completed += outs;
    overlaps += m.frag_overlap ?? 0;
  }
  assert.ok(completed > 150 && overlaps > 20, `the cases ran: ${completed} completed, ${overlaps} overlaps`);
});
