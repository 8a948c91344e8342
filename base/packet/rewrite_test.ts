/**
 * scapy checks our rewrites: every scapy fixture is rewritten the way the load balancer does it (FULLNAT
 * addresses and ports, sequence/ack shifts with SACK, MSS clamping, option removal, insertion and compaction,
 * TTL, type/code, lengths), then tests/fixtures/check_rewrites.py dissects each result with scapy, recomputes
 * every checksum independently and compares the fields we meant to set. The expected values are derived from
 * scapy's view of the original packet, never read back through our own views.
 */
import assert from "node:assert/strict";
import { type Fixture, fixture, FIXTURES, fromHex, toHex } from "../../tests/fixtures/fixtures.ts";
import { prng } from "../../tests/helpers/prng.ts";
import { checksumAdjust16, read16, read32, write16 } from "./checksum.ts";
import { ICMP_CHECKSUM, icmpSetTypeCode } from "./icmp.ts";
import {
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  ipv4Dst,
  ipv4SetDst,
  ipv4SetSrc,
  ipv4SetTotalLength,
  ipv4SetTtl,
  ipv4Src,
} from "./ipv4.ts";
import { ipv6AddressSumDelta, ipv6CopyAddress, ipv6DstOffset, ipv6SrcOffset } from "./ipv6.ts";
import { natApplyDelta, NatRewrite } from "./nat.ts";
import { PacketInfo } from "./packet_info.ts";
import {
  TCP_CHECKSUM,
  tcpAdjustChecksum32,
  tcpAdjustSack,
  tcpClampMss,
  tcpCompactOptions,
  tcpFindOption,
  tcpInsertOption,
  tcpNopAllOptions,
  tcpNopOption,
  TCPOPT_SACK_PERMITTED,
  TCPOPT_TIMESTAMP,
  tcpSetAck,
  tcpSetDstPort,
  tcpSetSeq,
  tcpSetSrcPort,
} from "./tcp.ts";
import { UDP_CHECKSUM, udpAdjustChecksum32, udpSetDstPort, udpSetSrcPort } from "./udp.ts";
import { classifyPacket, PACKET_OK } from "./validate.ts";

const CHECKER = new URL("../../tests/fixtures/check_rewrites.py", import.meta.url).pathname;

type Expect = Record<string, unknown>;
interface Case {
  name: string;
  hex: string;
  expect: Expect;
  /** A deliberately wrong case: the checker must reject it (guards against a checker that accepts anything). */
  mustFail?: boolean;
}

interface Loaded {
  b: Uint8Array;
  info: PacketInfo;
  len: number;
  /** Bytes after the IP datagram (Ethernet padding), as scapy saw them in the fixture. */
  trailing: number;
}

function load(f: Fixture, spare = 0): Loaded {
  const raw = fromHex(f.hex);
  const b = fromHex(f.hex, raw.length + spare);
  const info = new PacketInfo();
  assert.equal(classifyPacket(b, 0, raw.length, info), PACKET_OK, f.name);
  return { b, info, len: raw.length, trailing: raw.length - f.end! };
}

const rnd = prng(0xfeed);
const u32 = (x: number) => x >>> 0;
const cases: Case[] = [];
const emit = (name: string, l: Loaded, expect: Expect, mustFail = false) =>
  cases.push({ name, hex: toHex(l.b, 0, l.len), expect: { trailing: l.trailing, ...expect }, mustFail });

const valid = FIXTURES.filter((f) => f.reason === "ok" && !f.quoted);
const tcpGood = valid.filter((f) => f.tcp && f.tcp.checksum === f.tcp.checksumComputed);

/** A random IPv6 address as 16 bytes. */
function addr6(): Uint8Array {
  const a = new Uint8Array(16);
  for (let i = 0; i < 16; i += 4) write16(a, i, rnd() & 0xffff), write16(a, i + 2, rnd() & 0xffff);
  return a;
}

/** FULLNAT: new source and destination addresses (carried into `adjust`'s checksum), returns expectations. */
function natAddresses(
  l: Loaded,
  adjust32: (o: number, oldV: number, newV: number) => void,
  applyDelta: (o: number, delta: number) => void,
): Expect {
  const { b, info } = l;
  if (info.family === 4) {
    const s = rnd(), d = u32(rnd() | 0x01000000);
    const os = ipv4Src(b, 0), od = ipv4Dst(b, 0);
    ipv4SetSrc(b, 0, s);
    adjust32(info.l4Off, os, s);
    ipv4SetDst(b, 0, d);
    adjust32(info.l4Off, od, d);
    return { src: s, dst: d };
  }
  const s = addr6(), d = addr6();
  applyDelta(info.l4Off, ipv6AddressSumDelta(b, ipv6SrcOffset(0), s, 0));
  ipv6CopyAddress(b, ipv6SrcOffset(0), s, 0);
  applyDelta(info.l4Off, ipv6AddressSumDelta(b, ipv6DstOffset(0), d, 0));
  ipv6CopyAddress(b, ipv6DstOffset(0), d, 0);
  return { src: toHex(s), dst: toHex(d) };
}

// --- TCP FULLNAT: addresses, ports, seq/ack, SACK (with wraparound), TTL, MSS clamp ----------------------
const SEQ_DELTAS = [0x200, -0x20, 0x7fffffff, -0x80000000, 1];
tcpGood.forEach((f, i) => {
  const t = f.tcp!;
  const l = load(f);
  const o = l.info.l4Off;
  const expect = natAddresses(
    l,
    (oo, a, c) => tcpAdjustChecksum32(l.b, oo, a, c),
    (oo, d) => natApplyDelta(l.b, IPPROTO_TCP, oo + TCP_CHECKSUM, l.b.length, d),
  );
  const sport = 1024 + (rnd() % 64000), dport = rnd() & 0xffff;
  tcpSetSrcPort(l.b, o, sport);
  tcpSetDstPort(l.b, o, dport);
  const sd = i < SEQ_DELTAS.length * 8 ? SEQ_DELTAS[i % SEQ_DELTAS.length] : rnd() | 0;
  const ad = -sd + (rnd() & 0xff);
  tcpSetSeq(l.b, o, t.seq + sd);
  tcpSetAck(l.b, o, t.ack + ad);
  assert.equal(tcpAdjustSack(l.b, o, ad), t.sack.length, f.name);
  if (f.family === 4) {
    ipv4SetTtl(l.b, 0, f.ip!.ttl! - 1);
    expect.ttl = f.ip!.ttl! - 1;
  }
  const clamp = 1200;
  assert.equal(tcpClampMss(l.b, o, clamp), t.mss > clamp, f.name);
  emit(`fullnat ${f.name}`, l, {
    ...expect,
    sport,
    dport,
    seq: u32(t.seq + sd),
    ack: u32(t.ack + ad),
    flags: t.flags,
    sack: t.sack.map(([a, c]) => [u32(a + ad), u32(c + ad)]),
    mss: t.mss > clamp ? clamp : t.mss,
    optionKinds: t.options.map(([k]) => k),
    dataofs: t.dataofs,
    payload: t.payload,
  });
});

// --- TCP: a port chosen so the rewritten checksum is exactly 0x0000 ------------------------------------------
for (const f of tcpGood.slice(0, 20)) {
  const l = load(f);
  const o = l.info.l4Off;
  // checksumAdjust16 gives ~(~c + ~old + new); pick `new` so the parenthesis is 0xffff.
  const c = read16(l.b, o + 16), old = read16(l.b, o);
  let s = (~c & 0xffff) + (~old & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  const port = ~s & 0xffff;
  tcpSetSrcPort(l.b, o, port);
  assert.equal(read16(l.b, o + 16), 0, f.name);
  emit(`tcp checksum 0x0000 ${f.name}`, l, { sport: port, payload: f.tcp!.payload });
}

// --- UDP: v4 with checksum, v4 without (must stay zero), v6, and results that must be sent as 0xffff -------
for (
  const f of valid.filter((x) => x.udp && (x.udp.checksum === x.udp.checksumComputed || !x.udp.checksum))
) {
  const u = f.udp!;
  const l = load(f);
  const o = l.info.l4Off;
  const expect = natAddresses(
    l,
    (oo, a, c) => udpAdjustChecksum32(l.b, oo, a, c),
    (oo, d) => natApplyDelta(l.b, IPPROTO_UDP, oo + UDP_CHECKSUM, l.b.length, d),
  );
  const sport = rnd() & 0xffff, dport = rnd() & 0xffff;
  udpSetSrcPort(l.b, o, sport);
  udpSetDstPort(l.b, o, dport);
  const none = f.family === 4 && u.checksum === 0;
  if (none) assert.equal(read16(l.b, o + 6), 0, `${f.name}: a missing checksum stays missing`);
  emit(`udp nat ${f.name}`, l, { ...expect, sport, dport, payload: u.payload, udpChecksumZero: none });

  if (none) continue;
  // A destination port that makes the sum come out zero: UDP must store 0xffff, never 0 (RFC 768).
  const z = load(f);
  const c = read16(z.b, o + 6), old = read16(z.b, o + 2);
  let s = (~c & 0xffff) + (~old & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  const port = ~s & 0xffff;
  udpSetDstPort(z.b, o, port);
  assert.equal(read16(z.b, o + 6), 0xffff, `${f.name}: computed zero is sent as 0xffff`);
  emit(`udp checksum 0xffff ${f.name}`, z, { dport: port, payload: u.payload });
}

// --- ICMP echo: swap to a reply with new addresses; ICMPv6 needs the pseudo-header delta -------------------
for (const f of valid.filter((x) => x.icmp && x.icmp.id !== undefined)) {
  const c = f.icmp!;
  const l = load(f);
  const o = l.info.l4Off;
  const expect = natAddresses(
    l,
    () => {},
    (oo, d) => natApplyDelta(l.b, IPPROTO_ICMPV6, oo + ICMP_CHECKSUM, l.b.length, d),
  );
  const reply = f.family === 4 ? (c.type === 8 ? 0 : 8) : (c.type === 128 ? 129 : 128);
  icmpSetTypeCode(l.b, o, reply, 0);
  if (f.family === 4) {
    ipv4SetTtl(l.b, 0, 1);
    expect.ttl = 1;
  }
  emit(`icmp echo ${f.name}`, l, { ...expect, type: reply, code: 0 });
}

// --- ICMP errors: type/code change over a quoted packet (the checksum covers the quote) ---------------------
for (const f of valid.filter((x) => x.icmp?.quoted)) {
  const l = load(f);
  const expect = natAddresses(
    l,
    () => {},
    (oo, d) => natApplyDelta(l.b, IPPROTO_ICMPV6, oo + ICMP_CHECKSUM, l.b.length, d),
  );
  const type = f.icmp!.type, code = (f.icmp!.code + 1) & 0xff;
  icmpSetTypeCode(l.b, l.info.l4Off, type, code);
  emit(`icmp error ${f.name}`, l, { ...expect, type, code });
}

// --- SYN option edits: NOP out timestamps, clamp MSS, insert an 8-byte option, compact ----------------------
const TOA = Uint8Array.from([254, 8, 0x9c, 0x40, 198, 51, 100, 9]);
const BIG = new Uint8Array(20);
BIG[0] = 253;
BIG[1] = 20;
for (let i = 2; i < 20; i++) BIG[i] = (i * 37) & 0xff;
let inserted8 = 0, inserted20 = 0, refused = 0;
for (const f of tcpGood) {
  const t = f.tcp!;
  const kinds = t.options.map(([k]) => k);
  const lens = t.options.map(([, , n]) => n);
  const tsCount = kinds.filter((k) => k === TCPOPT_TIMESTAMP).length;
  const nopped = t.options.flatMap(([k, , n]) => k === TCPOPT_TIMESTAMP ? Array(n).fill(1) : [k]);

  // 1. NOP every timestamp option, clamp the MSS, insert TOA.
  const l = load(f, 64);
  const o = l.info.l4Off;
  assert.equal(tcpNopAllOptions(l.b, o, TCPOPT_TIMESTAMP), tsCount, f.name);
  tcpClampMss(l.b, o, 1000);
  const before = l.b.slice(0, l.len);
  const n = tcpInsertOption(l.b, l.info, l.len, TOA, 0, 8);
  if (n < 0) {
    assert(t.dataofs + 8 > 60, `${f.name}: refused with room`);
    assert.deepEqual(l.b.slice(0, l.len), before, `${f.name}: a refused insertion changes nothing`);
    refused++;
    emit(`syn nop-ts clamp ${f.name}`, l, {
      optionKinds: nopped,
      mss: t.mss > 1000 ? 1000 : t.mss,
      dataofs: t.dataofs,
      payload: t.payload,
    });
  } else {
    assert.equal(n, l.len + 8, f.name);
    l.len = n;
    inserted8++;
    assert.deepEqual(
      [l.info.end, l.info.l4HeaderLen, l.info.l4Len],
      [f.end! + 8, t.dataofs + 8, f.l4Len! + 8],
      `${f.name}: PacketInfo follows the insertion`,
    );
    const again = new PacketInfo();
    assert.equal(classifyPacket(l.b, 0, l.len, again), PACKET_OK, f.name);
    assert.deepEqual(again, l.info, f.name);
    emit(`syn nop-ts clamp insert8 ${f.name}`, l, {
      optionKinds: [254, ...nopped],
      optionValues: { "254": toHex(TOA, 2, 6) },
      mss: t.mss > 1000 ? 1000 : t.mss,
      dataofs: t.dataofs + 8,
      seq: t.seq,
      payload: t.payload,
    });
  }

  // 2. Insert a 20-byte option where it fits.
  const m = load(f, 64);
  const r = tcpInsertOption(m.b, m.info, m.len, BIG, 0, 20);
  if (t.dataofs + 20 <= 60) {
    assert.equal(r, m.len + 20, f.name);
    m.len = r;
    inserted20++;
    emit(`insert20 ${f.name}`, m, {
      optionKinds: [253, ...kinds],
      optionValues: { "253": toHex(BIG, 2, 18) },
      dataofs: t.dataofs + 20,
      payload: t.payload,
    });
  } else {
    assert.equal(r, -1, f.name);
  }

  // 3. NOP out timestamps and SACK-permitted, then compact: the header shrinks, the payload moves down.
  const c = load(f);
  tcpNopAllOptions(c.b, c.info.l4Off, TCPOPT_TIMESTAMP);
  const sp = tcpFindOption(c.b, c.info.l4Off, TCPOPT_SACK_PERMITTED);
  if (sp >= 0) tcpNopOption(c.b, c.info.l4Off, sp);
  const keep = kinds.map((k, i) => [k, lens[i]]).filter(([k], i) =>
    k !== 1 && k !== TCPOPT_TIMESTAMP && !(k === TCPOPT_SACK_PERMITTED && i === kinds.indexOf(k))
  );
  const newHl = 20 + ((keep.reduce((a, [, len]) => a + len, 0) + 3) & ~3);
  c.len = tcpCompactOptions(c.b, c.info, c.len);
  assert.equal(c.len, f.hex.length / 2 - (t.dataofs - newHl), f.name);
  emit(`compact ${f.name}`, c, {
    optionKinds: keep.map(([k]) => k),
    dataofs: newHl,
    seq: t.seq,
    payload: t.payload,
  });
}

// --- ipv4SetTotalLength: take the Ethernet padding into the segment (zeros add nothing to the sum, the ----
// pseudo-header length grows by 6).
{
  const f = fixture("tcp4_trailing_padding");
  const l = load(f);
  const total = f.hex.length / 2;
  const o = l.info.l4Off;
  ipv4SetTotalLength(l.b, 0, total);
  write16(l.b, o + 16, checksumAdjust16(read16(l.b, o + 16), f.l4Len!, total - 20));
  l.len = total;
  l.trailing = 0;
  emit("ipv4 total length", l, { payload: "000000000000", seq: f.tcp!.seq });
}

// --- nat.ts NatRewrite (full checksum), the engine's own path: addresses as words, ports, one delta --------
{
  const rw = new NatRewrite();
  const w = new Uint32Array(8);
  const natFixtures = [
    ...tcpGood.slice(0, 40),
    ...valid.filter((x) => x.udp && (x.udp.checksum === x.udp.checksumComputed || !x.udp.checksum)),
  ];
  for (const f of natFixtures) {
    const l = load(f);
    const expect: Expect = {};
    if (f.family === 4) {
      w[0] = rnd();
      w[4] = u32(rnd() | 0x01000000);
      expect.src = w[0];
      expect.dst = w[4];
    } else {
      const s = addr6(), d = addr6();
      for (let k = 0; k < 4; k++) w[k] = read32(s, k * 4), w[4 + k] = read32(d, k * 4);
      expect.src = toHex(s);
      expect.dst = toHex(d);
    }
    const sport = rnd() & 0xffff, dport = rnd() & 0xffff;
    rw.begin(l.b, l.info, true);
    rw.addresses(l.b, l.info, w, 0, w, 4);
    rw.ports(l.b, l.info, sport, dport);
    rw.finish(l.b, l.info);
    const none = !!f.udp && f.family === 4 && f.udp.checksum === 0;
    const payload = f.tcp ? f.tcp.payload : f.udp!.payload;
    emit(`NatRewrite ${f.name}`, l, {
      ...expect,
      sport,
      dport,
      payload,
      ...(f.udp ? { udpChecksumZero: none } : {}),
    });
  }
}

// --- Negative controls: the checker must notice a missing pseudo-header update and a wrong field. ----------
{
  const f = tcpGood.find((x) => x.family === 4)!;
  const l = load(f);
  ipv4SetSrc(l.b, 0, 0x0a000001); // the TCP checksum is deliberately not adjusted
  emit("control: no pseudo-header update", l, { src: 0x0a000001 }, true);
  const m = load(f);
  tcpSetSeq(m.b, m.info.l4Off, f.tcp!.seq + 1);
  emit("control: wrong seq expected", m, { seq: f.tcp!.seq }, true);
  const u = load(fixture("udp4_nocsum_p9"));
  udpSetSrcPort(u.b, u.info.l4Off, 1);
  u.b[u.info.l4Off + 7] = 1; // a checksum appeared where there was none
  emit("control: zero UDP checksum not kept", u, { udpChecksumZero: true }, true);
}

Deno.test("rewrite: scapy verifies every rewritten packet (checksums recomputed, fields compared)", async () => {
  assert(inserted8 > 50 && inserted20 > 20 && refused > 0, `${inserted8} ${inserted20} ${refused}`);
  const file = await Deno.makeTempFile({ prefix: "rewrites-", suffix: ".json" });
  try {
    await Deno.writeTextFile(file, JSON.stringify(cases));
    const out = await new Deno.Command("/usr/bin/python3", { args: [CHECKER, file], stderr: "piped" })
      .output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert(out.success, `check_rewrites.py failed: ${stderr}`);
    const results: { name: string; errors: string[]; checks: number }[] = JSON.parse(
      new TextDecoder().decode(out.stdout),
    );
    assert.equal(results.length, cases.length);
    const failures: string[] = [];
    results.forEach((r, i) => {
      const c = cases[i];
      assert.equal(r.name, c.name);
      assert(r.checks >= 2, `${c.name}: only ${r.checks} checks ran`);
      if (c.mustFail) {
        if (r.errors.length === 0) failures.push(`${c.name}: the checker accepted a wrong packet`);
      } else if (r.errors.length) {
        failures.push(`${c.name}: ${r.errors.join("; ")}`);
      }
    });
    assert.deepEqual(failures, [], `${failures.length} of ${cases.length} rewrites rejected by scapy`);
  } finally {
    await Deno.remove(file);
  }
});
