/**
 * TCP option walking and rewriting edge cases on scapy fixtures: a full option space, a short buffer,
 * malformed lists, SACK wraparound at odd and even offsets, MSS clamping rules, compaction.
 */
import assert from "node:assert/strict";
import { fixture, FIXTURES, fromHex } from "../../tests/fixtures/fixtures.ts";
import { read16, read32 } from "./checksum.ts";
import { ipv4FillChecksum, ipv4TotalLength } from "./ipv4.ts";
import { ipv6PayloadLength } from "./ipv6.ts";
import { PacketInfo } from "./packet_info.ts";
import {
  tcpAdjustSack,
  tcpClampMss,
  tcpCompactOptions,
  tcpFindOption,
  tcpHeaderLength,
  tcpInsertOption,
  tcpMss,
  tcpNextOption,
  tcpNopAllOptions,
  tcpNopOption,
  TCPOPT_END,
  TCPOPT_MALFORMED,
  TCPOPT_MSS,
  TCPOPT_NOP,
  TCPOPT_SACK,
  TCPOPT_TIMESTAMP,
  tcpOptionsWellFormed,
  tcpWriteSynOptions,
} from "./tcp.ts";
import { computeTransportChecksum, fillTransportChecksum } from "./transport_checksum.ts";
import { classifyPacket, PACKET_OK } from "./validate.ts";

function load(name: string, spare = 0) {
  const f = fixture(name);
  const len = f.hex.length / 2;
  const b = fromHex(f.hex, len + spare);
  const info = new PacketInfo();
  assert.equal(classifyPacket(b, 0, len, info), PACKET_OK, name);
  return { f, b, info, len, o: info.l4Off };
}

function checksumRight(b: Uint8Array, info: PacketInfo, what: string) {
  assert.equal(read16(b, info.l4Off + 16), computeTransportChecksum(b, info), what);
}

const OPT8 = Uint8Array.from([253, 8, 1, 2, 3, 4, 5, 6]);

Deno.test("tcp: insertion into a full option space returns -1 and changes nothing", () => {
  for (const name of ["tcp4_full_40_p7", "tcp6_full_40_p0"]) {
    const { b, info, len, o } = load(name, 64);
    assert.equal(tcpHeaderLength(b, o), 56);
    const before = b.slice();
    const infoBefore = { ...info };
    assert.equal(tcpInsertOption(b, info, len, OPT8, 0, 8), -1, name);
    assert.deepEqual(b, before, name);
    assert.deepEqual({ ...info }, infoBefore, name);
    // Exactly the 4 bytes left still fit, and then nothing more.
    const opt4 = Uint8Array.from([TCPOPT_NOP, TCPOPT_NOP, TCPOPT_NOP, TCPOPT_NOP]);
    assert.equal(tcpInsertOption(b, info, len, opt4, 0, 4), len + 4);
    assert.equal(tcpHeaderLength(b, o), 60);
    checksumRight(b, info, name);
    const full = b.slice();
    assert.equal(tcpInsertOption(b, info, len + 4, opt4, 0, 4), -1);
    assert.deepEqual(b, full);
  }
});

Deno.test("tcp: insertion refuses a buffer without room and a length that is not a multiple of 4", () => {
  const { b, info, len } = load("tcp4_mss_p64"); // capacity == packet length
  const before = b.slice();
  assert.equal(tcpInsertOption(b, info, len, OPT8, 0, 8), -1);
  assert.equal(tcpInsertOption(b, info, len, OPT8, 0, 6), -1);
  assert.deepEqual(b, before);
  const r = load("tcp4_mss_p64", 7);
  assert.equal(tcpInsertOption(r.b, r.info, r.len, OPT8, 0, 8), -1, "7 spare bytes are not 8");
  const s = load("tcp4_mss_p64", 8);
  assert.equal(tcpInsertOption(s.b, s.info, s.len, OPT8, 0, 8), s.len + 8, "8 spare bytes are enough");
  assert.equal(s.b.length, s.len + 8);
});

Deno.test("tcp: insertion into IPv6 with extension headers fixes the payload length", () => {
  const { f, b, info, len, o } = load("tcp6_ext_hbh_dest_routing_frag", 40);
  const n = tcpInsertOption(b, info, len, OPT8, 0, 8);
  assert.equal(n, len + 8);
  assert.equal(ipv6PayloadLength(b, 0), f.ip!.payloadLength! + 8);
  assert.equal(tcpFindOption(b, o, 253), o + 20);
  assert.equal(tcpMss(b, o), 1220);
  checksumRight(b, info, "v6 insert");
});

Deno.test("tcp: walker reports malformed lists, finders and rewriters leave them alone", () => {
  for (const f of FIXTURES.filter((x) => x.reason === "option_overflow")) {
    const b = fromHex(f.hex);
    const o = (b[0] >>> 4) === 4 ? (b[0] & 15) * 4 : 40;
    assert(!tcpOptionsWellFormed(b, o), f.name);
    let p = tcpNextOption(b, o, -1);
    let steps = 0;
    while (p >= 0 && steps++ < 60) p = tcpNextOption(b, o, p);
    assert.equal(p, TCPOPT_MALFORMED, f.name);
    assert.equal(tcpFindOption(b, o, 99), TCPOPT_MALFORMED, f.name);
    const before = b.slice();
    const info = new PacketInfo();
    info.family = b[0] >>> 4;
    info.l4Off = o;
    info.l4Proto = 6;
    info.end = b.length;
    info.l4Len = b.length - o;
    info.l4HeaderLen = tcpHeaderLength(b, o);
    assert.equal(tcpCompactOptions(b, info, b.length), b.length, f.name);
    assert.deepEqual(b, before, `${f.name}: compaction of a malformed list`);
  }
  // An absent kind on a sound list is END, not MALFORMED.
  const { b, o } = load("tcp4_mss_p0");
  assert.equal(tcpFindOption(b, o, TCPOPT_TIMESTAMP), TCPOPT_END);
  assert.equal(tcpFindOption(load("tcp4_none_p0").b, 20, TCPOPT_MSS), TCPOPT_END);
});

Deno.test("tcp: options after EOL are not walked; compaction drops them", () => {
  const { f, b, info, len, o } = load("tcp4_eol_early_p7");
  // MSS at 20, EOL at 24, padding at 25..27: put a SACK-permitted in the padding; it must stay invisible.
  assert.deepEqual([b[o + 24], tcpHeaderLength(b, o)], [0, 28]);
  b.set([4, 2], o + 25);
  const kinds: number[] = [];
  for (let p = tcpNextOption(b, o, -1); p >= 0; p = tcpNextOption(b, o, p)) kinds.push(b[p]);
  assert.deepEqual(kinds, [TCPOPT_MSS]);
  assert.equal(tcpFindOption(b, o, 4), TCPOPT_END);
  // Compaction keeps MSS only: a 24-byte header, the payload moved down by 4.
  const n = tcpCompactOptions(b, info, len);
  assert.equal(n, len - 4);
  assert.equal(tcpHeaderLength(b, o), 24);
  assert.equal(tcpMss(b, o), 536);
  let hex = "";
  for (let i = o + 24; i < n; i++) hex += b[i].toString(16).padStart(2, "0");
  assert.equal(hex, f.tcp!.payload);
});

Deno.test("tcp: SACK edges wrap around 2^32 at odd and even offsets", () => {
  for (
    const [name, delta] of [["tcp4_sack_odd_p1", 0x20], ["tcp6_sack2_ts_p7", 0x200], ["tcp4_sack_odd_p0", -6]]
  ) {
    const { f, b, info, o } = load(name as string);
    const d = delta as number;
    const p = tcpFindOption(b, o, TCPOPT_SACK);
    assert(p > 0);
    assert.equal(tcpAdjustSack(b, o, d), f.tcp!.sack.length);
    f.tcp!.sack.forEach(([l, r], i) => {
      assert.equal(read32(b, p + 2 + i * 8), (l + d) >>> 0, `${name} left ${i}`);
      assert.equal(read32(b, p + 6 + i * 8), (r + d) >>> 0, `${name} right ${i}`);
    });
    checksumRight(b, info, name as string);
  }
  // Wraparound really happened in the fixtures used above.
  assert(fixture("tcp4_sack_odd_p1").tcp!.sack[0][0] + 0x20 > 0xffffffff);
  assert.equal(fixture("tcp4_sack_odd_p1").tcp!.options[1][1] & 1, 1, "SACK at an odd offset");
  // No SACK: nothing rewritten, nothing changed.
  const n = load("tcp4_mss_p7");
  const before = n.b.slice();
  assert.equal(tcpAdjustSack(n.b, n.o, 12345), 0);
  assert.deepEqual(n.b, before);
});

Deno.test("tcp: MSS clamp lowers only, at odd offsets too, and never touches a sound smaller value", () => {
  const odd = load("tcp4_mss_odd_p1");
  assert.equal(tcpFindOption(odd.b, odd.o, TCPOPT_MSS) & 1, 1);
  assert.equal(tcpClampMss(odd.b, odd.o, 1460), true);
  assert.equal(tcpMss(odd.b, odd.o), 1460);
  checksumRight(odd.b, odd.info, "odd clamp");
  const before = odd.b.slice();
  assert.equal(tcpClampMss(odd.b, odd.o, 1460), false);
  assert.equal(tcpClampMss(odd.b, odd.o, 9000), false);
  assert.deepEqual(odd.b, before);
  const none = load("tcp4_ts_odd_p0");
  assert.equal(tcpClampMss(none.b, none.o, 100), false);
  assert.equal(tcpMss(none.b, none.o), -1);
});

/** An IPv4 segment 198.18.1.2 → 198.18.0.100 with `opts` (a multiple of 4 bytes) and a right checksum. */
function segmentWith(opts: number[], flags = 0x10) {
  const tcpLen = 20 + opts.length;
  const b = new Uint8Array(20 + tcpLen);
  b.set([0x45, 0, 0, 20 + tcpLen, 0, 1, 0x40, 0, 64, 6, 0, 0, 198, 18, 1, 2, 198, 18, 0, 100]);
  b.set([0x9c, 0x41, 0, 80, 0, 0, 0, 1, 0, 0, 0, 1, (tcpLen / 4) << 4, flags, 0xff, 0xff], 20);
  b.set(opts, 40);
  ipv4FillChecksum(b, 0);
  const info = new PacketInfo();
  assert.equal(classifyPacket(b, 0, b.length, info), PACKET_OK);
  fillTransportChecksum(b, info);
  return { b, info, o: info.l4Off };
}

Deno.test("tcp: every MSS option is clamped (Linux reads the last), at even and odd offsets", () => {
  // The engine fuzzer's reproducer: a SYN with MSS 9000 twice.
  const rep = fromHex(
    "450000301234400040069b09c6120102c61200649c41005000000001000000007002ffff1b6500000204232802042328",
  );
  const ri = new PacketInfo();
  assert.equal(classifyPacket(rep, 0, rep.length, ri), PACKET_OK);
  checksumRight(rep, ri, "reproducer as built");
  assert.equal(tcpClampMss(rep, ri.l4Off, 1460), true);
  assert.deepEqual([read16(rep, 42), read16(rep, 46)], [1460, 1460]);
  checksumRight(rep, ri, "reproducer clamped");
  // A small one first, a large one last (at odd offsets after a NOP): only the large one changes.
  const s = segmentWith([1, 2, 4, 0x02, 0x18, 2, 4, 0x23, 0x28, 0, 0, 0], 0x02);
  assert.equal(tcpClampMss(s.b, s.o, 1460), true);
  assert.deepEqual([read16(s.b, 43), read16(s.b, 47)], [536, 1460]);
  checksumRight(s.b, s.info, "odd clamp of the second");
  const before = s.b.slice();
  assert.equal(tcpClampMss(s.b, s.o, 1460), false);
  assert.deepEqual(s.b, before);
  // An MSS option of the wrong length is no MSS (Linux ignores it) and is left alone.
  const w = segmentWith([2, 6, 0x23, 0x28, 0, 0, 2, 4, 0x23, 0x28, 0, 0], 0x02);
  assert.equal(tcpClampMss(w.b, w.o, 1460), true);
  assert.deepEqual([read16(w.b, 42), read16(w.b, 48)], [9000, 1460]);
  checksumRight(w.b, w.info, "wrong-length MSS kept");
});

Deno.test("tcp: every SACK option's edges move (Linux reads the last), at even and odd offsets", () => {
  const sack = [5, 10, 0x10, 0, 0, 0x10, 0x10, 0, 0x10, 0];
  for (const opts of [[1, 1, ...sack, 1, 1, ...sack], [1, ...sack, ...sack, 1, 0, 0, 0]]) {
    const s = segmentWith(opts);
    const at: number[] = [];
    for (let p = tcpNextOption(s.b, s.o, -1); p >= 0; p = tcpNextOption(s.b, s.o, p)) {
      if (s.b[p] === TCPOPT_SACK) at.push(p);
    }
    assert.equal(at.length, 2);
    assert.equal(tcpAdjustSack(s.b, s.o, -0x100), 2, "blocks rewritten, both options");
    for (const p of at) assert.deepEqual([read32(s.b, p + 2), read32(s.b, p + 6)], [0x0fffff10, 0x10000f00]);
    checksumRight(s.b, s.info, `SACK at ${at.map((p) => p - s.o)}`);
  }
});

Deno.test("tcp: NOP-ing and compacting a SYN frees the timestamp's room for an 8-byte option", () => {
  const { f, b, info, len, o } = load("tcp4_full_40_p1", 16);
  assert.equal(tcpNopAllOptions(b, o, TCPOPT_TIMESTAMP), 1);
  assert.equal(tcpFindOption(b, o, TCPOPT_TIMESTAMP), TCPOPT_END);
  checksumRight(b, info, "nop ts");
  assert.equal(tcpInsertOption(b, info, len, OPT8, 0, 8), -1, "NOPs alone do not free header room");
  const n = tcpCompactOptions(b, info, len);
  // MSS 4 + WS 3 + SACK-permitted 2 + SACK 10 = 19 -> 20 bytes of options.
  assert.equal(tcpHeaderLength(b, o), 40);
  assert.equal(n, len - 16);
  assert.equal(ipv4TotalLength(b, 0), f.ip!.totalLength! - 16);
  checksumRight(b, info, "compact");
  const m = tcpInsertOption(b, info, n, OPT8, 0, 8);
  assert.equal(m, n + 8);
  checksumRight(b, info, "insert after compact");
  const kinds: number[] = [];
  for (let p = tcpNextOption(b, o, -1); p >= 0; p = tcpNextOption(b, o, p)) kinds.push(b[p]);
  assert.deepEqual(kinds, [253, 2, 3, 4, 5]);
  // Payload moved with the header changes.
  assert.equal(b[info.l4Off + tcpHeaderLength(b, o)], parseInt(f.tcp!.payload, 16));
  // Compaction of an already compact header is a no-op.
  const again = b.slice();
  assert.equal(tcpCompactOptions(b, info, m), m);
  assert.deepEqual(b, again);
});

Deno.test("tcp: tcpNopOption on a single NOP and on the last option", () => {
  const { b, info, o } = load("tcp4_syn_linux_p0");
  const opts: number[] = [];
  for (let p = tcpNextOption(b, o, -1); p >= 0; p = tcpNextOption(b, o, p)) opts.push(p);
  const nop = opts.find((p) => b[p] === TCPOPT_NOP)!;
  tcpNopOption(b, o, nop);
  checksumRight(b, info, "nop a nop");
  const last = opts[opts.length - 1];
  const len = b[last + 1];
  tcpNopOption(b, o, last);
  for (let i = 0; i < len; i++) assert.equal(b[last + i], TCPOPT_NOP);
  assert(tcpOptionsWellFormed(b, o));
  checksumRight(b, info, "nop the last");
});

/** A TCP segment whose IP length field holds `ipLen` (IPv4 Total Length or IPv6 Payload Length). */
function bigSegment(family: 4 | 6, ipLen: number, spare: number) {
  const ipHl = family === 4 ? 20 : 40;
  const len = family === 4 ? ipLen : 40 + ipLen;
  const b = new Uint8Array(len + spare);
  if (family === 4) {
    b[0] = 0x45;
    b[2] = ipLen >>> 8;
    b[3] = ipLen & 0xff;
    b[8] = 64;
    b[9] = 6;
  } else {
    b[0] = 0x60;
    b[4] = ipLen >>> 8;
    b[5] = ipLen & 0xff;
    b[6] = 6;
    b[7] = 64;
  }
  b[ipHl + 12] = 5 << 4;
  b[ipHl + 13] = 0x10;
  if (family === 4) ipv4FillChecksum(b, 0);
  const info = new PacketInfo();
  assert.equal(classifyPacket(b, 0, len, info), PACKET_OK);
  fillTransportChecksum(b, info);
  return { b, info, len };
}

Deno.test("tcpInsertOption refuses to grow the IP length past 65535 (near-64 KiB GSO segment)", () => {
  for (const family of [4, 6] as const) {
    // 65532 + 8 would wrap the 16-bit length to 4: refused, packet and info untouched.
    const { b, info, len } = bigSegment(family, 65532, 64);
    const before = b.slice();
    const infoBefore = { ...info };
    assert.equal(tcpInsertOption(b, info, len, OPT8, 0, 8), -1, `IPv${family}`);
    assert.deepEqual(b, before);
    assert.deepEqual({ ...info }, infoBefore);
    // Exactly 65535 still fits.
    const ok = bigSegment(family, 65527, 64);
    assert.equal(tcpInsertOption(ok.b, ok.info, ok.len, OPT8, 0, 8), ok.len + 8);
    assert.equal(family === 4 ? ipv4TotalLength(ok.b, 0) : ipv6PayloadLength(ok.b, 0), 65535);
    assert.equal(read16(ok.b, ok.info.l4Off + 16), computeTransportChecksum(ok.b, ok.info));
  }
});

Deno.test("tcpWriteSynOptions: MSS, window scale, SACK-permitted, each in 4 bytes, any left out", () => {
  const o = new Uint8Array(16);
  assert.equal(tcpWriteSynOptions(o, 0, 1460, 7, true), 12);
  assert.deepEqual([...o.subarray(0, 12)], [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2]);
  assert.equal(tcpWriteSynOptions(o, 4, 0, -1, true), 8, "after 4 bytes: SACK-permitted only");
  assert.deepEqual([...o.subarray(4, 8)], [1, 1, 4, 2]);
  assert.equal(tcpWriteSynOptions(o, 0, 536, 0, false), 8, "window scale 0 is a scale");
  assert.deepEqual([...o.subarray(0, 8)], [2, 4, 0x02, 0x18, 1, 3, 3, 0]);
});
