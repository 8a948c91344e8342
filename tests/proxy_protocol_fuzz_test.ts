// A seeded fuzzer for the PROXY v1/v2 codec (toa/proxy_protocol.ts), after Envoy's PROXY protocol fuzzer:
// random valid headers round-trip encode → decode (addresses compared as this file formats them, RFC 5952,
// sharing no code with base/packet); random and mutated input never throws, never claims more bytes than it
// was given, and answers the same way for every extension of an input it already decided ("incomplete" must
// mean more bytes could make it valid; "invalid" and "ok" must not change with more bytes), and whatever
// decodes re-encodes to itself through either version. A failure prints the seed, index and input in hex.
import assert from "node:assert/strict";
import {
  decodeProxyHeader,
  decodeProxyV1,
  decodeProxyV2,
  encodeProxyV1,
  encodeProxyV2,
  PROXY_V1_MAX_LEN,
  PROXY_V2_HEADER_LEN,
  PROXY_V2_SIGNATURE,
  type ProxyDecodeResult,
  type ProxyHeader,
} from "../toa/proxy_protocol.ts";
import { Rand } from "./helpers/prng.ts";

const SEED = 0x9e01;
const ROUND_TRIPS = 10_000;
const MUTANTS = 60_000;

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

/** Dotted-quad text of 4 bytes. */
function v4Text(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** RFC 5952 text of 16 bytes: lowercase, no leading zeros, the first longest run (≥ 2) of zero groups as ::. */
function v6Text(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(b[i] * 256 + b[i + 1]);
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

/** The same address written as an operator might: uppercase, leading zeros, no compression. */
function v6Loose(b: Uint8Array): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i] * 256 + b[i + 1]).toString(16).toUpperCase().padStart(4, "0"));
  return g.join(":");
}

/** Address bytes with zero groups likely, so compression has runs to pick from. */
function addrBytes(r: Rand, family: 4 | 6): Uint8Array {
  const b = r.bytes(family === 4 ? 4 : 16);
  if (family === 6) { for (let i = 0; i < 16; i += 2) if (r.chance(0.4)) b[i] = b[i + 1] = 0; }
  return b;
}

/** A random valid header and what decoding its v1 and v2 encodings must give. */
function randomHeader(r: Rand): { h: ProxyHeader; v1: ProxyHeader; v2: ProxyHeader } {
  const tlvs = r.chance(0.5) ? undefined : Array.from(
    { length: r.int(5) },
    () => ({ type: r.int(256), value: r.bytes(r.int(r.chance(0.05) ? 3000 : 24)) }),
  );
  const k = r.int(10);
  if (k < 2) {
    const command = k === 0 ? "local" : "unknown";
    return { h: { command, tlvs }, v1: { command: "unknown" }, v2: { command, tlvs: tlvs ?? [] } };
  }
  const family: 4 | 6 = r.chance(0.5) ? 4 : 6;
  const sb = addrBytes(r, family);
  const db = addrBytes(r, family);
  const text = (b: Uint8Array) => family === 4 ? v4Text(b) : v6Text(b);
  const input = (b: Uint8Array) => family === 4 ? v4Text(b) : r.chance(0.3) ? v6Loose(b) : v6Text(b);
  const sp = r.chance(0.1) ? r.pick([0, 65535]) : r.int(65536);
  const dp = r.chance(0.1) ? r.pick([0, 65535]) : r.int(65536);
  const transport: "stream" | "dgram" = r.chance(0.8) ? "stream" : "dgram";
  const h: ProxyHeader = {
    command: "proxy",
    family,
    transport,
    source: { address: input(sb), port: sp },
    destination: { address: input(db), port: dp },
    tlvs,
  };
  const want = {
    command: "proxy" as const,
    family,
    transport,
    source: { address: text(sb), port: sp },
    destination: { address: text(db), port: dp },
  };
  return { h, v1: want, v2: { ...want, tlvs: tlvs ?? [] } };
}

/**
 * Known, unfixed defects by invariant class → where they are tracked. A class listed here may appear, and
 * its regression row must still reproduce it (so a fix says to remove it). Empty: the strict test.
 */
const EXPECTED_KNOWN = new Map<string, string>();

/** Broken invariants by class: how many, and the first one's text. */
const findings = new Map<string, { count: number; first: string }>();

/** Records a broken invariant when `ok` is false. */
function expect(ok: boolean, cls: string, detail: () => string): void {
  if (ok) return;
  const f = findings.get(cls);
  if (f) f.count++;
  else findings.set(cls, { count: 1, first: detail() });
}

/** Fails on any class not in EXPECTED_KNOWN, printing each class's first reproducer. */
function assertNoUnexpected(): void {
  const unexpected = [...findings].filter(([cls]) => !EXPECTED_KNOWN.has(cls));
  const text = [...findings].map(([cls, f]) => `${cls}: ${f.count}, first: ${f.first}`).join("\n");
  assert.deepEqual(unexpected.map(([cls]) => cls), [], text);
}

/** Decodes with the entry points that apply; checks the invariants every answer must keep. */
function decodeChecked(b: Uint8Array, label: () => string): ProxyDecodeResult {
  let res: ProxyDecodeResult;
  try {
    res = decodeProxyHeader(b);
    const direct = b.length > 0 && b[0] === 0x0d ? decodeProxyV2(b) : decodeProxyV1(b);
    expect(
      JSON.stringify(res) === JSON.stringify(direct),
      "dispatch",
      () => `${label()}: ${JSON.stringify(res)}`,
    );
  } catch (e) {
    expect(false, "throws", () => `${label()}: ${(e as Error).stack}`);
    return { status: "invalid", reason: "threw" };
  }
  if (res.status === "ok") {
    const n = res.length;
    expect(n > 0 && n <= b.length, "over-read", () => `${label()}: consumed ${n} of ${b.length}`);
    if (res.version === 1) {
      expect(n <= PROXY_V1_MAX_LEN, "v1-too-long", () => `${label()}: v1 line of ${n} bytes (limit 107)`);
      expect(b[n - 2] === 13 && b[n - 1] === 10, "v1-no-crlf", () => `${label()}: v1 ends without CR LF`);
    } else {
      expect(n === PROXY_V2_HEADER_LEN + b[14] * 256 + b[15], "v2-length", () => `${label()}: length ${n}`);
    }
    const h = res.header;
    // What was decoded encodes again, and that decodes to the same header (v1: TCP only; no TLVs).
    const again2 = decodeProxyV2(encodeProxyV2(h));
    const want2 = { ...h, tlvs: h.tlvs ?? [] };
    expect(
      again2.status === "ok" && JSON.stringify(again2.header) === JSON.stringify(want2),
      "reencode-v2",
      () => `${label()}: ${JSON.stringify(h)} → ${JSON.stringify(again2)}`,
    );
    if (h.command !== "proxy" || h.transport === "stream") {
      const again1 = decodeProxyV1(encodeProxyV1(h));
      const { tlvs: _, ...bare } = h;
      const want1 = h.command === "proxy" ? bare : { command: "unknown" };
      expect(
        again1.status === "ok" && JSON.stringify(again1.header) === JSON.stringify(want1),
        "reencode-v1",
        () => `${label()}: ${JSON.stringify(h)} → ${JSON.stringify(again1)}`,
      );
    }
    if (h.command === "proxy") {
      for (const ep of [h.source, h.destination]) {
        const portOk = Number.isInteger(ep.port) && ep.port >= 0 && ep.port <= 65535;
        const addrOk = h.family === 4 ? /^\d+(\.\d+){3}$/.test(ep.address) : /^[0-9a-f:]+$/.test(ep.address);
        expect(portOk && addrOk, "endpoint", () => `${label()}: ${JSON.stringify(ep)}`);
      }
    }
  } else if (res.status === "invalid") {
    expect(typeof res.reason === "string" && res.reason.length > 0, "no-reason", label);
  }
  return res;
}

/** The verdict on `b` must agree with the verdict on each of its prefixes that was already decided. */
function checkPrefixes(b: Uint8Array, label: () => string): void {
  const full = decodeChecked(b, label);
  for (let n = 0; n < b.length; n++) {
    const p = decodeChecked(b.subarray(0, n), () => `${label()} prefix ${n}`);
    if (p.status === "ok") {
      expect(
        JSON.stringify(full) === JSON.stringify(p),
        "ok-then-other",
        () => `${label()}: ok on ${n} bytes`,
      );
      return;
    }
    if (p.status === "invalid") {
      expect(
        full.status === "invalid",
        "invalid-then-ok",
        () => `${label()}: invalid on ${n} bytes (${p.reason})`,
      );
      return;
    }
  }
}

Deno.test(`PROXY fuzz: ${ROUND_TRIPS} random valid headers round-trip through v1 and v2`, () => {
  const r = new Rand(SEED);
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const { h, v1, v2 } = randomHeader(r);
    const label = () =>
      `seed ${SEED} index ${i}: ${JSON.stringify(h, (_, v) => v instanceof Uint8Array ? hex(v) : v)}`;
    const e2 = encodeProxyV2(h);
    const tail = r.chance(0.5) ? r.bytes(r.int(40)) : new Uint8Array(0);
    const withTail = new Uint8Array(e2.length + tail.length);
    withTail.set(e2);
    withTail.set(tail, e2.length);
    const d2 = decodeChecked(withTail, label);
    assert.deepEqual(d2, { status: "ok", header: v2, length: e2.length, version: 2 }, label());
    // Every cut short of the end is incomplete: the decoder never guesses.
    const cut = r.int(e2.length);
    assert.deepEqual(
      decodeChecked(e2.subarray(0, cut), label),
      { status: "incomplete" },
      `${label()} cut ${cut}`,
    );
    if (h.command === "proxy" && h.transport === "dgram") continue; // v1 carries TCP only
    const e1 = encodeProxyV1(h);
    const t1 = new Uint8Array(e1.length + tail.length);
    t1.set(e1);
    t1.set(tail, e1.length);
    assert.deepEqual(
      decodeChecked(t1, label),
      { status: "ok", header: v1, length: e1.length, version: 1 },
      label(),
    );
    const cut1 = r.int(e1.length);
    assert.deepEqual(
      decodeChecked(e1.subarray(0, cut1), label),
      { status: "incomplete" },
      `${label()} cut ${cut1}`,
    );
  }
  assertNoUnexpected();
});

const V1_CHARS = [...new TextEncoder().encode("PROXY TCP46UNKOWN .:0123456789abcdefABCDEF\r\n\r\n  ")];

/** Damages a copy of `src`: bit flips, byte sets, cuts, insertions, deletions, v1-alphabet noise, length lies. */
function mutate(r: Rand, src: Uint8Array): Uint8Array {
  let b = Uint8Array.from(src);
  for (let n = 1 + r.int(3); n > 0; n--) {
    const at = r.int(b.length + 1);
    switch (r.int(7)) {
      case 0:
        if (b.length > 0) b[r.int(b.length)] ^= 1 << r.int(8);
        break;
      case 1:
        if (b.length > 0) b[r.int(b.length)] = r.pick([0, 10, 13, 32, 0xff, r.int(256)]);
        break;
      case 2:
        b = b.slice(0, at);
        break;
      case 3: {
        const ins = r.chance(0.5) ? Uint8Array.of(r.pick(V1_CHARS)) : r.bytes(1 + r.int(8));
        const c = new Uint8Array(b.length + ins.length);
        c.set(b.subarray(0, at));
        c.set(ins, at);
        c.set(b.subarray(at), at + ins.length);
        b = c;
        break;
      }
      case 4:
        if (at < b.length) b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + 1 + r.int(4))]);
        break;
      case 5:
        if (b.length > 0) b[r.int(b.length)] = r.pick(V1_CHARS);
        break;
      default:
        if (b.length >= 16 && b[0] === 0x0d) {
          const len = r.pick([0, 1, 11, 12, 35, 36, 215, 216, 0xffff, r.int(0x10000)]);
          b[14] = len >> 8;
          b[15] = len & 255;
        }
    }
  }
  return b;
}

Deno.test(`PROXY fuzz: ${MUTANTS} random and mutated inputs never throw, never over-read, never change their mind`, () => {
  const r = new Rand(SEED + 1);
  const line = (s: string) => new TextEncoder().encode(s);
  for (let i = 0; i < MUTANTS; i++) {
    let b: Uint8Array;
    const k = r.int(10);
    if (k < 6) {
      const { h } = randomHeader(r);
      b = mutate(
        r,
        r.chance(0.5) || (h.command === "proxy" && h.transport === "dgram")
          ? encodeProxyV2(h)
          : encodeProxyV1(h),
      );
    } else if (k < 7) {
      b = mutate(r, Uint8Array.from([...PROXY_V2_SIGNATURE, ...r.bytes(r.int(60))]));
    } else if (k < 9) {
      // v1 lines around the 107-byte limit, with the CR LF where the limit bites.
      const n = 100 + r.int(12);
      const fill = "PROXY UNKNOWN " + "x".repeat(Math.max(0, n - 16));
      b = line(fill.slice(0, n - 2) + "\r\n");
      if (r.chance(0.5)) b = mutate(r, b);
    } else {
      b = r.bytes(r.int(120));
      if (r.chance(0.5) && b.length > 0) b[0] = r.pick([0x0d, 0x50]);
    }
    const label = () => `seed ${SEED + 1} index ${i}: input ${hex(b)}`;
    if (i % 10 === 0) checkPrefixes(b, label);
    else decodeChecked(b, label);
  }
  assertNoUnexpected();
});

Deno.test("PROXY regression: a v1 line is at most 107 bytes, CR LF included (found by the fuzzer)", () => {
  findings.clear();
  const b = new TextEncoder().encode(`PROXY UNKNOWN ${"x".repeat(92)}\r\n`);
  assert.equal(b.length, 108);
  checkPrefixes(b, () => `108-byte UNKNOWN line ${hex(b)}`);
  assertNoUnexpected();
  // Its LF is the 108th byte: invalid, as its 107-byte prefix is.
  assert.equal(decodeProxyV1(b).status, "invalid");
  assert.equal(decodeProxyV1(b.subarray(0, 107)).status, "invalid");
  // 107 bytes with the CR LF is the longest line the specification allows, and it decodes.
  const ok = new TextEncoder().encode(`PROXY UNKNOWN ${"x".repeat(91)}\r\n`);
  assert.deepEqual(decodeProxyV1(ok), {
    status: "ok",
    header: { command: "unknown" },
    length: 107,
    version: 1,
  });
});
