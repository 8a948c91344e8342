// A seeded fuzzer for the TCP option walker (base/packet/tcp.ts tcpNextOption, tcpOptionsWellFormed,
// tcpFindOption) and the TOA decoder (base/packet/toa_option.ts decodeToa, readToaOption), differential
// against an option walk written here from RFC 9293 §3.1: random option soups never throw, every option the
// walker reports lies inside the TCP header (the bytes after it are changed between two runs and must not
// matter; the packet ends its buffer, so a read past it would see undefined), the walk, the decoded TOA and
// the count of malformed ones agree with the independent ones (docs/toa.md: the first option of a TOA kind —
// 253 and 254 by default, or a set given — in the packet's own form; a broken list has none), and a
// well-formed TOA of either default kind inserted anywhere is found with its address; the option edits the
// engine makes (tcpInsertOption, tcpCompactOptions, tcpNopAllOptions, nopToaOptions, tcpClampMss,
// tcpAdjustSack) keep the options, the payload and an RFC 1071 checksum right. A failure prints the seed,
// index and the packet in hex.
import assert from "node:assert/strict";
import { PacketInfo } from "../base/packet/packet_info.ts";
import {
  tcpAdjustSack,
  tcpClampMss,
  tcpCompactOptions,
  tcpFindOption,
  tcpInsertOption,
  tcpNextOption,
  tcpNopAllOptions,
  TCPOPT_END,
  TCPOPT_MALFORMED,
  tcpOptionsWellFormed,
} from "../base/packet/tcp.ts";
import { classifyPacket, PACKET_OK } from "../base/packet/validate.ts";
import {
  decodeToa,
  nopToaOptions,
  readToaOption,
  scanToa,
  type ToaAddress,
  toaKindSet,
} from "../base/packet/toa_option.ts";
import { completeState, fixTransportChecksum, parseLayers } from "./fuzz/engine_fuzz.ts";
import { Rand } from "./helpers/prng.ts";

const SEED = 0x70a;
const SOUPS = 30_000;

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

/**
 * An IPv4 or IPv6 packet holding a TCP header with `options` (padded with EOL to a multiple of 4; at most
 * 40 bytes) and `payload`, in a buffer exactly its size. `cutAfterHeader` drops the payload bytes while the
 * IP length still counts them, as a SYN saved by TCP_SAVE_SYN is. Checksums are left zero: the walker and the
 * decoder do not read them.
 */
function packet(family: 4 | 6, options: Uint8Array, payload: Uint8Array, cutAfterHeader = false) {
  const optLen = (options.length + 3) & ~3;
  const ip = family === 4 ? 20 : 40;
  const tcpLen = 20 + optLen;
  const total = ip + tcpLen + payload.length;
  const b = new Uint8Array(cutAfterHeader ? ip + tcpLen : total);
  if (family === 4) {
    b.set([0x45, 0, total >> 8, total & 255, 0, 1, 0x40, 0, 64, 6, 0, 0, 198, 18, 2, 1, 198, 18, 3, 10]);
  } else {
    const plen = total - 40;
    b.set([0x60, 0, 0, 0, plen >> 8, plen & 255, 6, 64]);
    b.set([0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 8);
    b.set([0xfd, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10], 24);
  }
  b.set([0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, (tcpLen / 4) << 4, 0x02, 0xff, 0xff], ip);
  b.set(options, ip + 20);
  if (!cutAfterHeader) b.set(payload, ip + tcpLen);
  return { b, o: ip };
}

/** The options of the TCP header at `o`, walked per RFC 9293: offsets (NOPs included) and soundness. */
function walk(b: Uint8Array, o: number): { offsets: number[]; wellFormed: boolean } {
  const end = o + (b[o + 12] >> 4) * 4;
  const offsets: number[] = [];
  for (let i = o + 20; i < end;) {
    if (b[i] === 0) break;
    if (b[i] === 1) {
      offsets.push(i++);
      continue;
    }
    if (i + 1 >= end || b[i + 1] < 2 || i + b[i + 1] > end) return { offsets, wellFormed: false };
    offsets.push(i);
    i += b[i + 1];
  }
  return { offsets, wellFormed: true };
}

/** RFC 5952 text of the 16 bytes at `b[off]`. */
function v6Text(b: Uint8Array, off: number): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(b[off + i] * 256 + b[off + i + 1]);
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i >= 2 && j - i > bestLen) [best, bestLen] = [i, j - i];
  }
  const h = (a: number[]) => a.map((x) => x.toString(16)).join(":");
  return best < 0 ? h(g) : `${h(g.slice(0, best))}::${h(g.slice(best + bestLen))}`;
}

/** The TOA option at `p` decoded here: length 8 (IPv4) or 20 (IPv6), else null (the kind is the caller's). */
function toaAt(b: Uint8Array, p: number): ToaAddress | null {
  const port = b[p + 2] * 256 + b[p + 3];
  if (b[p + 1] === 8) return { family: 4, address: `${b[p + 4]}.${b[p + 5]}.${b[p + 6]}.${b[p + 7]}`, port };
  if (b[p + 1] === 20) return { family: 6, address: v6Text(b, p + 4), port };
  return null;
}

/** The kinds a decoder takes by default (docs/toa.md): 254 (toa.ko, dpvs) and 253 (Alibaba, Huawei). */
const DEFAULT_KINDS = [253, 254];

/**
 * What decodeToa must return (docs/toa.md): nothing from a broken list; else the first option of a kind in
 * `kinds` whose length is the packet's own family's form (8 in IPv4, 20 in IPv6), decoded here. Any other
 * option of those kinds (another length, the other family's form) is passed over; port 0 is a TOA like any
 * other.
 */
function expectedToa(b: Uint8Array, o: number, kinds = DEFAULT_KINDS): ToaAddress | null {
  return expectedScan(b, o, kinds).toa;
}

/**
 * What scanToa must return for a well-formed list (null for a broken one, judged elsewhere): the TOA as
 * {@link expectedToa}, and how many options of a kind in `kinds` of the wrong length came before it.
 */
function expectedScan(
  b: Uint8Array,
  o: number,
  kinds: number[],
): { toa: ToaAddress | null; malformed: number } {
  const w = walk(b, o);
  if (!w.wellFormed) return { toa: null, malformed: 1 };
  const form = b[0] >> 4 === 4 ? 8 : 20;
  let malformed = 0;
  for (const q of w.offsets) {
    if (!kinds.includes(b[q])) continue;
    if (b[q + 1] === form) return { toa: toaAt(b, q), malformed };
    malformed++;
  }
  return { toa: null, malformed };
}

/**
 * Option bytes biased towards the kinds and lengths a walker can trip on: raw bytes, or option records
 * (TOA among them) whose lengths are often right and sometimes not.
 */
function soup(r: Rand, n: number): Uint8Array {
  if (r.chance(0.5)) {
    const out: number[] = [];
    while (out.length < n) {
      const kind = r.pick([254, 254, 253, 252, 1, 0, 2, 8, 5, r.int(256)]);
      if (kind <= 1) {
        out.push(kind);
        continue;
      }
      const len = r.chance(0.8) ? (kind >= 252 ? r.pick([8, 20]) : 2 + r.int(10)) : r.int(42);
      out.push(kind, len, ...r.bytes(Math.max(0, len - 2)));
    }
    return Uint8Array.from(out.slice(0, n));
  }
  const b = r.bytes(n);
  for (let i = 0; i < n; i++) {
    if (r.chance(0.35)) b[i] = r.pick([0, 1, 1, 2, 4, 5, 8, 253, 254, 254]);
    else if (r.chance(0.3)) b[i] = r.pick([0, 1, 2, 3, 4, 8, 10, 20, 39, 40, 41, 255]);
  }
  return b;
}

/** Runs the library's walker from the first option; returns the offsets and the terminal code. */
function libraryWalk(b: Uint8Array, o: number, label: () => string) {
  const hl = (b[o + 12] >> 4) * 4;
  const offsets: number[] = [];
  let p = tcpNextOption(b, o, -1);
  for (let steps = 0; p >= 0; steps++) {
    assert.ok(steps <= 40, `${label()}: the walk does not end`);
    assert.ok(p >= o + 20 && p < o + hl, `${label()}: option at ${p - o} outside the header (${hl})`);
    if (b[p] !== 1) {
      assert.ok(
        p + 1 < o + hl && p + b[p + 1] <= o + hl,
        `${label()}: option at ${p - o} runs past the header`,
      );
    }
    offsets.push(p);
    const q = tcpNextOption(b, o, p);
    assert.ok(q < 0 || q > p, `${label()}: the walk went back`);
    p = q;
  }
  assert.ok(p === TCPOPT_END || p === TCPOPT_MALFORMED, `${label()}: terminal ${p}`);
  return { offsets, end: p };
}

/** A kind set given (as `toa-proxy --toa-kinds 252` would): 252 only, so 253 and 254 are no TOA. */
const ONLY_252 = toaKindSet([252]);

Deno.test(`TOA fuzz: ${SOUPS} random option soups walk inside the header and agree with an RFC 9293 walk`, () => {
  const r = new Rand(SEED);
  const seen = { toa: 0, sound: 0, malformed: 0, toa253: 0, toa252: 0, skipped: 0 };
  for (let i = 0; i < SOUPS; i++) {
    const family: 4 | 6 = r.chance(0.5) ? 4 : 6;
    const opts = soup(r, 4 * r.int(11));
    const payload = r.bytes(r.int(24));
    const { b, o } = packet(family, opts, payload);
    const label = () => `seed ${SEED} index ${i}: packet ${hex(b)}`;
    const lib = libraryWalk(b, o, label);
    const mine = walk(b, o);
    assert.deepEqual(lib.offsets, mine.offsets, `${label()}: option offsets`);
    assert.equal(lib.end === TCPOPT_END, mine.wellFormed, `${label()}: well-formed verdict of the walk`);
    assert.equal(tcpOptionsWellFormed(b, o), mine.wellFormed, `${label()}: tcpOptionsWellFormed`);
    const kind = r.pick([2, 3, 4, 5, 8, 254, r.int(256)]);
    const first = mine.offsets.find((q) => b[q] === kind);
    const wantFind = first ?? (mine.wellFormed ? TCPOPT_END : TCPOPT_MALFORMED);
    assert.equal(tcpFindOption(b, o, kind), wantFind, `${label()}: tcpFindOption(${kind})`);
    const toa = decodeToa(b);
    assert.deepEqual(toa, expectedToa(b, o), `${label()}: decodeToa`);
    seen.toa += toa === null ? 0 : 1;
    if (mine.wellFormed) {
      // scanToa: the same TOA and the malformed options of the set before it (default set, and a given one).
      const scan = scanToa(b);
      assert.deepEqual(scan, expectedScan(b, o, DEFAULT_KINDS), `${label()}: scanToa`);
      const scan252 = scanToa(b, ONLY_252);
      assert.deepEqual(scan252, expectedScan(b, o, [252]), `${label()}: scanToa, kinds 252`);
      const at = mine.offsets.find((q) =>
        DEFAULT_KINDS.includes(b[q]) && b[q + 1] === (family === 4 ? 8 : 20)
      );
      if (at !== undefined && b[at] === 253) seen.toa253++;
      seen.toa252 += scan252.toa === null ? 0 : 1;
      seen.skipped += scan.malformed > 0 ? 1 : 0;
    }
    seen[mine.wellFormed ? "sound" : "malformed"]++;
    // The bytes after the header must not matter: change them and everything stays the same.
    const hl = (b[o + 12] >> 4) * 4;
    const b2 = b.slice();
    for (let k = o + hl; k < b2.length; k++) b2[k] = r.pick([0, 1, 2, 254, 255]);
    assert.deepEqual(libraryWalk(b2, o, label), lib, `${label()}: the payload changed the walk`);
    assert.deepEqual(decodeToa(b2), toa, `${label()}: the payload changed decodeToa`);
    // A saved SYN: the bytes stop after the TCP header, the IP length still counts the payload.
    const cut = packet(family, opts, payload, true);
    assert.deepEqual(decodeToa(cut.b), toa, `${label()}: saved-SYN form`);
  }
  // The soups reach every verdict, or agreement proves little.
  assert.ok(
    seen.toa > 500 && seen.sound > 3000 && seen.malformed > 3000 && seen.toa253 > 100 && seen.toa252 > 100 &&
      seen.skipped > 500,
    JSON.stringify(seen),
  );
});

/**
 * A sound option list without a TOA (a kind 253 of length 4 is an option of a TOA kind, malformed, passed
 * over), as a list of options (so a TOA can go between any two).
 */
function soundOptions(r: Rand): number[][] {
  const out: number[][] = [];
  for (let n = r.int(6); n > 0; n--) {
    out.push(r.pick([
      [2, 4, r.int(256), r.int(256)],
      [3, 3, r.int(15)],
      [4, 2],
      [1],
      [8, 10, ...r.bytes(8)],
      [5, 10, ...r.bytes(8)],
      [r.pick([6, 7, 30, 253]), 4, r.int(256), r.int(256)],
    ]));
  }
  return out;
}

Deno.test("TOA fuzz: a well-formed TOA inserted anywhere in a sound list is found with its address", () => {
  const r = new Rand(SEED + 1);
  const seen = { found: 0, otherForm: 0, later: 0, strays: 0 };
  for (let i = 0; i < 20_000; i++) {
    const family: 4 | 6 = r.chance(0.5) ? 4 : 6;
    const v6 = r.chance(0.5);
    const addr = r.bytes(v6 ? 16 : 4);
    if (v6) { for (let k = 0; k < 16; k += 2) if (r.chance(0.4)) addr[k] = addr[k + 1] = 0; }
    const port = r.chance(0.05) ? 0 : r.int(65536); // port 0 is a TOA too
    const toa = [r.pick([253, 254]), v6 ? 20 : 8, port >> 8, port & 255, ...addr];
    const list = soundOptions(r);
    const at = r.int(list.length + 1);
    list.splice(at, 0, toa);
    // Kind 254 of neither form before it: passed over, as toa.ko does.
    const strays = r.chance(0.2) ? 1 + r.int(2) : 0;
    for (let k = 0; k < strays; k++) {
      list.splice(r.int(at + k + 1), 0, r.pick([[254, 6, 1, 2, 3, 4], [254, 2]]));
    }
    const later = r.chance(0.2);
    if (later) {
      list.push([254, family === 4 ? 8 : 20, 0, 1, 10, 0, 0, 1, ...new Array(family === 4 ? 0 : 12).fill(7)]);
    }
    const flat = list.flat();
    if (flat.length > 40) continue;
    const { b } = packet(family, Uint8Array.from(flat), r.bytes(r.int(20)));
    const label = () => `seed ${SEED + 1} index ${i}: packet ${hex(b)}`;
    const mine: ToaAddress = v6
      ? { family: 6, address: v6Text(Uint8Array.from(addr), 0), port }
      : { family: 4, address: addr.join("."), port };
    // The packet's own family's form is taken, the first one; the other family's form is passed over, and a
    // later option of the right form taken instead.
    const laterToa: ToaAddress = family === 4
      ? { family: 4, address: "10.0.0.1", port: 1 }
      : { family: 6, address: "a00:1:707:707:707:707:707:707", port: 1 };
    const own = (family === 6) === v6;
    const want = own ? mine : later ? laterToa : null;
    assert.deepEqual(decodeToa(b), want, `${label()}: decodeToa`);
    // readToaOption decodes the option it is pointed at, whatever the packet's family.
    const off = 40 + (family === 4 ? 0 : 20) + list.slice(0, list.indexOf(toa)).flat().length;
    assert.deepEqual(readToaOption(b, off), mine, `${label()}: readToaOption`);
    seen.found += own ? 1 : 0;
    seen.otherForm += own ? 0 : 1;
    seen.later += !own && later ? 1 : 0;
    seen.strays += strays > 0 ? 1 : 0;
  }
  assert.ok(
    seen.found > 5_000 && seen.otherForm > 5_000 && seen.later > 500 && seen.strays > 1_000,
    JSON.stringify(seen),
  );
});

Deno.test("TOA fuzz: mutated TCP headers around a TOA never throw and decode as the independent walk says", () => {
  const r = new Rand(SEED + 2);
  for (let i = 0; i < 30_000; i++) {
    const family: 4 | 6 = r.chance(0.5) ? 4 : 6;
    const list = soundOptions(r);
    list.splice(r.int(list.length + 1), 0, [254, 8, 0x9c, 0x40, 198, 18, 1, 2]);
    const flat = list.flat().slice(0, 40);
    const { b, o } = packet(family, Uint8Array.from(flat), r.bytes(r.int(20)));
    // Damage only the TCP header (data offset, options): the IP header stays sound.
    for (let n = 1 + r.int(3); n > 0; n--) {
      const k = r.int(3);
      if (k === 0) b[o + 12] = (r.int(16) << 4) | (b[o + 12] & 15);
      else if (flat.length > 0) {
        const at = o + 20 + r.int(flat.length);
        b[at] = k === 1 ? b[at] ^ (1 << r.int(8)) : r.pick([0, 1, 2, 8, 10, 20, 254, 255]);
      }
    }
    const label = () => `seed ${SEED + 2} index ${i}: packet ${hex(b)}`;
    let got: ToaAddress | null;
    try {
      got = decodeToa(b);
    } catch (e) {
      throw new Error(`${label()}: decodeToa threw ${(e as Error).message}`);
    }
    const doff = (b[o + 12] >> 4) * 4;
    const sound = doff >= 20 && o + doff <= b.length;
    assert.deepEqual(got, sound ? expectedToa(b, o) : null, label());
    if (sound) libraryWalk(b, o, label);
  }
});

/** The option records of a sound list, NOPs left out, up to EOL: what packing must keep, in order. */
function records(b: Uint8Array, o: number): string[] {
  return walk(b, o).offsets.filter((p) => b[p] !== 1).map((p) => hex(b.subarray(p, p + b[p + 1])));
}

Deno.test("TOA fuzz: inserting TOA, packing, NOPing, clamping MSS and moving SACK keep the segment sound", () => {
  const r = new Rand(SEED + 3);
  const counts = { inserted: 0, noRoom: 0, packed: 0 };
  for (let i = 0; i < 8_000; i++) {
    const family: 4 | 6 = r.chance(0.5) ? 4 : 6;
    const opts = soundOptions(r).flat();
    if (r.chance(0.3)) opts.push(...new Array(r.int(8)).fill(1)); // NOP runs: room packing can free
    if (opts.length > 40) continue;
    const payload = r.bytes(r.int(r.chance(0.5) ? 2 : 40));
    const built = packet(family, Uint8Array.from(opts), payload);
    const b = new Uint8Array(built.b.length + 64);
    b.set(built.b);
    let len = built.b.length;
    const o = built.o;
    fixTransportChecksum(b, len, false);
    const label = () => `seed ${SEED + 3} index ${i}: packet ${hex(b.subarray(0, len))}`;
    const sound = (what: string) => {
      const l = parseLayers(b, len);
      assert.ok(l !== null && l.end === len, `${label()}: ${what}: IP length`);
      assert.equal(completeState(b, l), "good", `${label()}: ${what}: checksum (RFC 1071 here)`);
      const info = new PacketInfo();
      assert.equal(classifyPacket(b, 0, len, info), PACKET_OK, `${label()}: ${what}: classifies`);
      assert.deepEqual(b.subarray(len - payload.length, len), payload, `${label()}: ${what}: payload kept`);
      return info;
    };
    let info = sound("built");
    const kept = records(b, o);
    // Pack: the same options in the same order, NOPs gone, the header no longer than it must be.
    len = tcpCompactOptions(b, info, len);
    info = sound("packed");
    assert.deepEqual(records(b, o), kept, `${label()}: packing keeps the options`);
    const need = kept.reduce((n, t) => n + t.length / 2, 0);
    assert.equal((b[o + 12] >> 4) * 4, 20 + ((need + 3) & ~3), `${label()}: packed header length`);
    counts.packed++;
    // Insert TOA: first in the list, the rest unchanged behind it; or no room, and nothing changed.
    const v6 = r.chance(0.5);
    const addr = r.bytes(v6 ? 16 : 4);
    const port = r.int(65536);
    const toa = Uint8Array.from([254, v6 ? 20 : 8, port >> 8, port & 255, ...addr]);
    const beforeInsert = b.slice(0, len);
    const n = tcpInsertOption(b, info, len, toa, 0, toa.length);
    if (n < 0) {
      assert.ok(20 + ((need + 3) & ~3) + toa.length > 60, `${label()}: refused though it fits`);
      assert.deepEqual(b.subarray(0, len), beforeInsert, `${label()}: a refused insert changes nothing`);
      counts.noRoom++;
    } else {
      len = n;
      info = sound("TOA inserted");
      assert.deepEqual(records(b, o), [hex(toa), ...kept], `${label()}: TOA first, the rest behind it`);
      // The engine inserts its own family's form; the other family's is passed over by the decoder.
      const want: ToaAddress | null = (family === 6) !== v6
        ? null
        : v6
        ? { family: 6, address: v6Text(addr, 0), port }
        : { family: 4, address: addr.join("."), port };
      assert.deepEqual(decodeToa(b.subarray(0, len)), want, `${label()}: decodeToa after the insert`);
      counts.inserted++;
    }
    // Clamp MSS, move SACK edges, NOP out TOA: each keeps the checksum right.
    tcpClampMss(b, o, 536);
    sound("MSS clamped");
    const mss = walk(b, o).offsets.find((p) => b[p] === 2);
    if (mss !== undefined && b[mss + 1] === 4) {
      assert.ok(b[mss + 2] * 256 + b[mss + 3] <= 536, `${label()}: MSS`);
    }
    tcpAdjustSack(b, o, r.next());
    sound("SACK moved");
    // The gateway's strip: every option of kind 253 or 254 (the sound list's 253s of length 4 too).
    const strays = kept.filter((t) => t.startsWith("fd") || t.startsWith("fe")).length;
    const removed = nopToaOptions(b, o);
    sound("TOA NOPed");
    assert.equal(removed, (n < 0 ? 0 : 1) + strays, `${label()}: TOA options NOPed`);
    assert.equal(tcpNopAllOptions(b, o, 253) + tcpNopAllOptions(b, o, 254), 0, `${label()}: none left`);
    assert.equal(decodeToa(b.subarray(0, len)), null, `${label()}: no TOA after NOPing`);
  }
  assert.ok(counts.inserted > 4_000 && counts.noRoom > 40, JSON.stringify(counts));
});
