/**
 * The Internet checksum: full sums against a straightforward reference and RFC vectors, RFC 1624 incremental
 * updates against full recomputation (edge results 0x0000 and the 0xffff encoding included), and thousands
 * of seeded random rewrites of the scapy fixtures whose incremental checksums must equal a full recompute.
 */
import assert from "node:assert/strict";
import { type Fixture, FIXTURES, fromHex } from "../../tests/fixtures/fixtures.ts";
import { prng } from "../../tests/helpers/prng.ts";
import {
  checksumAdjust16,
  checksumAdjust32,
  checksumReplaceSum,
  checksumSettleZero,
  finishChecksum,
  foldSum,
  onesComplementSum,
  read16,
  read32,
  write16,
  write32,
} from "./checksum.ts";
import { applySumDelta } from "./checksum.ts";
import { natApplyDelta } from "./nat.ts";
import { icmpSetTypeCode } from "./icmp.ts";
import {
  ipv4ChecksumOk,
  ipv4ComputeChecksum,
  ipv4Dst,
  ipv4SetDst,
  ipv4SetSrc,
  ipv4SetTotalLength,
  ipv4SetTtl,
  ipv4Src,
} from "./ipv4.ts";
import { ipv6AddressSumDelta, ipv6CopyAddress, ipv6DstOffset, ipv6SrcOffset } from "./ipv6.ts";
import { PacketInfo } from "./packet_info.ts";
import {
  tcpAdjustChecksum32,
  tcpAdjustSack,
  tcpClampMss,
  tcpCompactOptions,
  tcpInsertOption,
  tcpNextOption,
  tcpNopOption,
  tcpSetAck,
  tcpSetDstPort,
  tcpSetSeq,
  tcpSetSrcPort,
} from "./tcp.ts";
import {
  computeTransportChecksum,
  transportChecksumFieldOffset,
  transportChecksumOk,
} from "./transport_checksum.ts";
import { udpAdjustChecksum32, udpSetDstPort, udpSetSrcPort } from "./udp.ts";
import { classifyPacket, PACKET_OK } from "./validate.ts";

/** Reference RFC 1071 checksum, written independently: 32-bit accumulate, fold with a loop, complement. */
function refChecksum(b: Uint8Array, off: number, len: number): number {
  let sum = 0;
  for (let i = 0; i < len; i++) sum += (i & 1) === 0 ? b[off + i] * 256 : b[off + i];
  while (sum >>> 16) sum = (sum & 0xffff) + (sum >>> 16);
  return (0xffff - sum) & 0xffff;
}

Deno.test("checksum: RFC 1071 example and reference agreement at odd offsets and odd lengths", () => {
  // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to 2ddf0, folds to ddf2.
  const v = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.equal(onesComplementSum(v, 0, 8), 0x2ddf0);
  assert.equal(foldSum(0x2ddf0), 0xddf2);
  assert.equal(finishChecksum(0x2ddf0), 0x220d);
  const rnd = prng(1);
  for (let n = 0; n < 3000; n++) {
    const len = rnd() % 200, off = rnd() % 7;
    const b = new Uint8Array(off + len + 3);
    for (let i = 0; i < b.length; i++) b[i] = rnd() & 0xff;
    assert.equal(
      finishChecksum(onesComplementSum(b, off, len)),
      refChecksum(b, off, len),
      `len ${len} off ${off}`,
    );
  }
  // Odd tail is padded with zero, not with the following byte.
  const odd = Uint8Array.from([0x12, 0x34, 0x56, 0xff]);
  assert.equal(onesComplementSum(odd, 0, 3), 0x1234 + 0x5600);
  // All-ones data: the sum folds to 0xffff, the checksum is 0x0000.
  assert.equal(finishChecksum(onesComplementSum(new Uint8Array(64).fill(0xff), 0, 64)), 0);
  // Large sums (a 64 KiB segment) fold correctly.
  const big = new Uint8Array(65535).fill(0xff);
  assert.equal(
    finishChecksum(onesComplementSum(big, 0, 65535, 0xfffff)),
    refChecksumWithInitial(big, 0xfffff),
  );
});

function refChecksumWithInitial(b: Uint8Array, initial: number): number {
  let sum = initial;
  for (let i = 0; i < b.length; i++) sum += (i & 1) === 0 ? b[i] * 256 : b[i];
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return (0xffff - sum) & 0xffff;
}

Deno.test("checksum: RFC 1624 §3 example — the result 0x0000 is right, not -0 (0xffff)", () => {
  // Other header words sum to 0xCD7A; m changes from 0x5555 to 0x3285; the new checksum is 0x0000.
  const b = new Uint8Array(8);
  write16(b, 0, 0xcd7a);
  write16(b, 4, 0x5555);
  const hc = finishChecksum(onesComplementSum(b, 0, 8));
  assert.equal(hc, 0xdd2f);
  const hc2 = checksumAdjust16(hc, 0x5555, 0x3285);
  write16(b, 4, 0x3285);
  assert.equal(hc2, 0x0000);
  assert.equal(hc2, finishChecksum(onesComplementSum(b, 0, 8)));
  // The same update as one 32-bit change.
  assert.equal(checksumAdjust32(hc, 0x00005555, 0x00003285), 0x0000);
  // And as a replaced-sum update.
  assert.equal(checksumReplaceSum(hc, 0x5555, 0x3285), 0x0000);
});

Deno.test("checksum: an update to all-zero data settles on 0xffff (~+0), never the 0x0000 eqn. 3 gives", () => {
  // ICMP echo request, id 0, seq 0 (checksum 0xf7ff) turned into its reply: eight zero bytes.
  const b = Uint8Array.from([0x08, 0, 0xf7, 0xff, 0, 0, 0, 0]);
  const eqn3 = checksumAdjust16(0xf7ff, 0x0800, 0x0000);
  assert.equal(eqn3, 0x0000, "RFC 1624 eqn. 3 answers −0 here");
  b[0] = 0;
  write16(b, 2, eqn3);
  assert.equal(checksumSettleZero(eqn3, b, 0, 8), 0xffff);
  assert.equal(refChecksum(b, 0, 8), 0xffff, "what a full sum gives");
  // Data summing to −0 keeps 0x0000 (the RFC 1624 §3 example's case); any other result is left alone.
  write16(b, 4, 0xffff);
  assert.equal(checksumSettleZero(0, b, 0, 8), 0);
  assert.equal(checksumSettleZero(0x1234, b, 0, 8), 0x1234);
  // A pseudo-header sum in the data keeps it from being all zero.
  write16(b, 4, 0);
  assert.equal(checksumSettleZero(0, b, 0, 8, 0x11), 0);
});

Deno.test("checksum: adjust16/32, replaceSum and applySumDelta equal full recomputation", () => {
  const rnd = prng(2);
  let zeros = 0, fromFfff = 0;
  for (let n = 0; n < 20000; n++) {
    const words = 2 + (rnd() % 30);
    const b = new Uint8Array(words * 2);
    for (let i = 0; i < b.length; i++) b[i] = rnd() & 0xff;
    b[0] |= 0x40; // a real header is never all zeros (IPv4 version, or the protocol in a pseudo-header)
    // Checksum field at word 1; sometimes force the data to sum to 0xffff so the stored checksum is 0x0000.
    write16(b, 2, 0);
    if (n % 5 === 0) {
      const rest = foldSum(onesComplementSum(b, 0, b.length) - read16(b, 4));
      write16(b, 4, (0xffff - rest) & 0xffff || 0xffff);
    }
    let csum = finishChecksum(onesComplementSum(b, 0, b.length));
    if (csum === 0) zeros++;
    // UDP keeps a computed zero as 0xffff: the adjusters must accept that encoding as input too.
    if (csum === 0 && n % 2 === 0) {
      csum = 0xffff;
      fromFfff++;
    }
    write16(b, 2, csum);
    const at = 2 * (2 + (rnd() % (words - 2 || 1)));
    if (at + 2 > b.length) continue;
    const full = () => {
      const c = read16(b, 2);
      write16(b, 2, 0);
      const r = finishChecksum(onesComplementSum(b, 0, b.length));
      write16(b, 2, c);
      return r;
    };
    const kind = n % 4;
    if (kind === 0) {
      const nv = n % 7 === 0 ? read16(b, at) ^ 0xffff : rnd() & 0xffff;
      const c = checksumAdjust16(read16(b, 2), read16(b, at), nv);
      write16(b, at, nv);
      write16(b, 2, c);
    } else if (kind === 1 && at + 4 <= b.length) {
      const nv = rnd();
      const c = checksumAdjust32(read16(b, 2), read32(b, at), nv);
      write32(b, at, nv);
      write16(b, 2, c);
    } else if (kind === 2) {
      const len = Math.min(b.length - at, 2 + 2 * (rnd() % 8));
      const before = onesComplementSum(b, at, len);
      for (let i = 0; i < len; i++) b[at + i] = rnd() & 0xff;
      write16(b, 2, checksumReplaceSum(read16(b, 2), before, onesComplementSum(b, at, len)));
    } else {
      const nv = rnd() & 0xffff;
      const delta = (~read16(b, at) & 0xffff) + nv;
      write16(b, at, nv);
      write16(b, 2, applySumDelta(read16(b, 2), delta));
    }
    assert.equal(read16(b, 2), full(), `case ${n} kind ${kind}`);
    assert.equal(finishChecksum(onesComplementSum(b, 0, b.length)), 0, `case ${n} verifies`);
  }
  assert(zeros > 1000 && fromFfff > 500, `${zeros} ${fromFfff}`);
});

Deno.test("checksum: adjust with negative (signed int32) values behaves as unsigned", () => {
  const b = new Uint8Array(8);
  write32(b, 0, 0x80000001);
  write16(b, 4, 0x1234);
  const c = finishChecksum(onesComplementSum(b, 0, 8));
  const adj = checksumAdjust32(c, 0x80000001 | 0, 0xfffffffe | 0);
  write32(b, 0, 0xfffffffe);
  assert.equal(adj, finishChecksum(onesComplementSum(b, 0, 8)));
});

// --- Thousands of seeded random rewrites of the fixtures: incremental == full recomputation -----------------

const base = FIXTURES.filter((f) =>
  f.reason === "ok" && !f.quoted &&
  (f.tcp ? f.tcp.checksum === f.tcp.checksumComputed : true) &&
  (f.udp ? f.udp.checksum === f.udp.checksumComputed || f.udp.checksum === 0 : true) &&
  (f.icmp ? f.icmp.checksum === f.icmp.checksumComputed : true)
);

type Op = (b: Uint8Array, info: PacketInfo, rnd: () => number, st: { len: number }) => void;

function addr6(rnd: () => number): Uint8Array {
  const a = new Uint8Array(16);
  for (let i = 0; i < 16; i += 4) write32(a, i, rnd());
  return a;
}

/** Changes an address and carries it into whatever transport checksum covers it. */
const natOp: Op = (b, info, rnd) => {
  const o = info.l4Off, p = info.l4Proto;
  const isSrc = (rnd() & 1) === 0;
  if (info.family === 4) {
    const old = isSrc ? ipv4Src(b, info.ipOff) : ipv4Dst(b, info.ipOff);
    const nv = rnd();
    if (isSrc) ipv4SetSrc(b, info.ipOff, nv);
    else ipv4SetDst(b, info.ipOff, nv);
    if (p === 6) tcpAdjustChecksum32(b, o, old, nv);
    if (p === 17) udpAdjustChecksum32(b, o, old, nv);
    return;
  }
  const a = addr6(rnd);
  const at = isSrc ? ipv6SrcOffset(info.ipOff) : ipv6DstOffset(info.ipOff);
  const d = ipv6AddressSumDelta(b, at, a, 0);
  if (p === 6 || p === 17 || p === 58) {
    natApplyDelta(b, p, o + transportChecksumFieldOffset(p), b.length, d);
  }
  ipv6CopyAddress(b, at, a, 0);
};

const ops: Op[] = [
  natOp,
  (b, info, rnd) => {
    if (info.l4Proto === 6) tcpSetSrcPort(b, info.l4Off, rnd() & 0xffff);
    if (info.l4Proto === 17) udpSetSrcPort(b, info.l4Off, rnd() & 0xffff);
  },
  (b, info, rnd) => {
    if (info.l4Proto === 6) tcpSetDstPort(b, info.l4Off, rnd() & 0xffff);
    if (info.l4Proto === 17) udpSetDstPort(b, info.l4Off, rnd() & 0xffff);
  },
  (b, info, rnd) => {
    if (info.l4Proto === 6) tcpSetSeq(b, info.l4Off, rnd());
  },
  (b, info, rnd) => {
    if (info.l4Proto === 6) tcpSetAck(b, info.l4Off, read32(b, info.l4Off + 8) - (rnd() & 0xffff));
  },
  (b, info, rnd) => {
    if (info.l4Proto === 6) tcpAdjustSack(b, info.l4Off, (rnd() | 0) >> (rnd() % 31));
  },
  (b, info, rnd) => {
    if (info.l4Proto === 6) tcpClampMss(b, info.l4Off, rnd() & 0xffff);
  },
  (b, info, rnd) => {
    if (info.family === 4) ipv4SetTtl(b, info.ipOff, rnd() & 0xff);
  },
  (b, info, rnd) => {
    if (info.l4Proto === 1 || info.l4Proto === 58) icmpSetTypeCode(b, info.l4Off, rnd() & 0xff, rnd() & 0xff);
  },
  (b, info, rnd) => {
    if (info.l4Proto !== 6) return;
    const opts: number[] = [];
    for (let p = tcpNextOption(b, info.l4Off, -1); p >= 0; p = tcpNextOption(b, info.l4Off, p)) opts.push(p);
    if (opts.length) tcpNopOption(b, info.l4Off, opts[rnd() % opts.length]);
  },
  (b, info, rnd, st) => {
    if (info.l4Proto !== 6) return;
    const opt = new Uint8Array(4 * (1 + (rnd() % 5)));
    opt[0] = 250;
    opt[1] = opt.length;
    for (let i = 2; i < opt.length; i++) opt[i] = rnd() & 0xff;
    const n = tcpInsertOption(b, info, st.len, opt, 0, opt.length);
    if (n >= 0) st.len = n;
  },
  (b, info, _rnd, st) => {
    if (info.l4Proto === 6) st.len = tcpCompactOptions(b, info, st.len);
  },
];

function checkSums(f: Fixture, b: Uint8Array, info: PacketInfo, step: string) {
  if (info.family === 4) {
    assert.equal(
      read16(b, info.ipOff + 10),
      ipv4ComputeChecksum(b, info.ipOff),
      `${f.name} ${step}: IPv4 hdr`,
    );
    assert(ipv4ChecksumOk(b, info.ipOff));
  }
  const f0 = info.l4Off + (info.l4Proto === 6 ? 16 : info.l4Proto === 17 ? 6 : 2);
  if (info.l4Proto === 17 && info.family === 4 && f.udp!.checksum === 0) {
    assert.equal(read16(b, f0), 0, `${f.name} ${step}: missing UDP checksum stays missing`);
    return;
  }
  assert.equal(read16(b, f0), computeTransportChecksum(b, info), `${f.name} ${step}: transport`);
  assert(transportChecksumOk(b, info), `${f.name} ${step}`);
}

Deno.test("checksum: 5,000 random rewrite chains keep incremental == full recomputation", () => {
  const rnd = prng(0xc0ffee);
  let steps = 0;
  for (let n = 0; n < 5000; n++) {
    const f = base[rnd() % base.length];
    const raw = fromHex(f.hex);
    const b = fromHex(f.hex, raw.length + 64);
    const info = new PacketInfo();
    assert.equal(classifyPacket(b, 0, raw.length, info), PACKET_OK, f.name);
    const st = { len: raw.length };
    const chain = 1 + (rnd() % 6);
    for (let k = 0; k < chain; k++) {
      const i = rnd() % ops.length;
      ops[i](b, info, rnd, st);
      checkSums(f, b, info, `op ${i} (#${k})`);
      steps++;
    }
    // The packet is still sound and its lengths agree with PacketInfo.
    const again = new PacketInfo();
    assert.equal(classifyPacket(b, 0, st.len, again), PACKET_OK, f.name);
    assert.deepEqual(again, info, f.name);
  }
  assert(steps > 15000);
});

Deno.test("checksum: ipv4SetTotalLength and ipv4SetTtl keep the header checksum (full recompute)", () => {
  const rnd = prng(3);
  for (const f of base.filter((x) => x.family === 4)) {
    const b = fromHex(f.hex);
    for (let i = 0; i < 20; i++) {
      ipv4SetTotalLength(b, 0, rnd() & 0xffff);
      ipv4SetTtl(b, 0, rnd() & 0xff);
      assert.equal(read16(b, 10), ipv4ComputeChecksum(b, 0), f.name);
    }
  }
});
