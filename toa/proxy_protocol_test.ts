// Byte-exact against HAProxy's proxy-protocol.txt: its v1 example line and worst-case lengths (section 2.1),
// the v2 signature and the struct layout of section 2.2; then every decoder path and encoder round trips.
import assert from "node:assert/strict";
import {
  decodeProxyHeader,
  decodeProxyV1,
  decodeProxyV2,
  encodeProxyV1,
  encodeProxyV2,
  PROXY_V1_MAX_LEN,
  PROXY_V2_SIGNATURE,
  type ProxyHeader,
  writeProxyV1Tcp,
} from "./proxy_protocol.ts";
import { formatAddress } from "./sockaddr.ts";
import { formatIpv6 } from "../base/packet/ipv6.ts";

const text = (s: string) => new TextEncoder().encode(s);
const hex = (s: string) => new Uint8Array(s.replace(/\s+/g, "").match(/../g)!.map((x) => parseInt(x, 16)));
const tcp = (family: 4 | 6, src: string, dst: string, sp: number, dp: number): ProxyHeader => ({
  command: "proxy",
  family,
  transport: "stream",
  source: { address: src, port: sp },
  destination: { address: dst, port: dp },
});

Deno.test("v1 encodes the specification's example line byte for byte", () => {
  const line = encodeProxyV1(tcp(4, "192.168.0.1", "192.168.0.11", 56324, 443));
  assert.deepEqual(line, text("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"));
});

Deno.test("v1 worst-case lines have the specification's lengths (56, 104, 15)", () => {
  const v4 = encodeProxyV1(tcp(4, "255.255.255.255", "255.255.255.255", 65535, 65535));
  assert.equal(v4.length, 56);
  const ff = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  const v6 = encodeProxyV1(tcp(6, ff, ff, 65535, 65535));
  assert.equal(v6.length, 104);
  assert.deepEqual(v6, text(`PROXY TCP6 ${ff} ${ff} 65535 65535\r\n`));
  assert.deepEqual(encodeProxyV1({ command: "unknown" }), text("PROXY UNKNOWN\r\n"));
  assert.deepEqual(encodeProxyV1({ command: "local" }), text("PROXY UNKNOWN\r\n"));
});

Deno.test("v1 writes canonical addresses: compressed lowercase IPv6", () => {
  const line = new TextDecoder().decode(
    encodeProxyV1(tcp(6, "FD00:0001:0:0:0:0:0:0002", "fd00:3::10", 1, 80)),
  );
  assert.equal(line, "PROXY TCP6 fd00:1::2 fd00:3::10 1 80\r\n");
  assert.throws(() => encodeProxyV1(tcp(4, "fd00::1", "1.2.3.4", 1, 2)), /not an IPv4 address/);
  assert.throws(() => encodeProxyV1(tcp(4, "1.2.3.4", "1.2.3.4", 70000, 2)), /bad port/);
});

Deno.test("writeProxyV1Tcp writes encodeProxyV1's bytes for addresses as the relay formats them", () => {
  // Addresses from bytes as the relay gets them (formatAddress for sockaddrs; formatIpv6 for a TOA, which
  // may be v4-mapped), zero runs and edge values included; ports at every digit count.
  const v4 = [[0, 0, 0, 0], [127, 0, 0, 1], [255, 255, 255, 255], [10, 0, 100, 9]];
  const v6 = [
    [0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0],
    Array(16).fill(0xff),
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4],
  ];
  for (let i = 0; i < 200; i++) {
    const b = crypto.getRandomValues(new Uint8Array(16));
    for (let j = 0; j < 16; j++) if (b[j] < 96) b[j] = 0; // runs of zero groups, for "::"
    (i % 2 === 0 ? v4 : v6).push([...b.subarray(0, i % 2 === 0 ? 4 : 16)]);
  }
  const ports = [0, 9, 10, 99, 100, 999, 1000, 9999, 10000, 65535, 443, 56324];
  const out = new Uint8Array(PROXY_V1_MAX_LEN);
  for (const [family, list] of [[4, v4], [6, v6]] as const) {
    for (let i = 0; i < list.length; i++) {
      const text = (b: number[]) =>
        family === 4 ? formatAddress(new Uint8Array(b), 0, 4) : { address: formatIpv6(new Uint8Array(b), 0) };
      const src = text(list[i]);
      const dst = text(list[(i + 1) % list.length]);
      const sp = ports[i % ports.length];
      const dp = ports[(i + 5) % ports.length];
      const n = writeProxyV1Tcp(out, family, src.address, dst.address, sp, dp);
      assert.deepEqual(out.subarray(0, n), encodeProxyV1(tcp(family, src.address, dst.address, sp, dp)));
    }
  }
});

Deno.test("v2 signature is the 12 bytes of section 2.2", () => {
  assert.deepEqual(PROXY_V2_SIGNATURE, hex("0D0A0D0A000D0A515549540A"));
});

Deno.test("v2 TCP4 header: 0x21, 0x11, length 12, src, dst, sport, dport", () => {
  const h = encodeProxyV2(tcp(4, "192.168.0.1", "192.168.0.11", 56324, 443));
  assert.deepEqual(h, hex("0D0A0D0A000D0A515549540A 21 11 000C C0A80001 C0A8000B DC04 01BB"));
});

Deno.test("v2 TCP6 header: 0x21, 0x21, length 36", () => {
  const h = encodeProxyV2(tcp(6, "fd00:1::2", "fd00:3::10", 40000, 80));
  assert.deepEqual(
    h,
    hex(
      "0D0A0D0A000D0A515549540A 21 21 0024 FD000001000000000000000000000002 FD000003000000000000000000000010" +
        "9C40 0050",
    ),
  );
});

Deno.test("v2 LOCAL has command 0, family UNSPEC, length 0; TLVs are counted in the length", () => {
  assert.deepEqual(encodeProxyV2({ command: "local" }), hex("0D0A0D0A000D0A515549540A 20 00 0000"));
  const h = encodeProxyV2({ command: "local", tlvs: [{ type: 0x04, value: new Uint8Array(2) }] });
  assert.deepEqual(h, hex("0D0A0D0A000D0A515549540A 20 00 0005 04 0002 0000"));
});

Deno.test("decoders round-trip every encodable header, and report what they consumed", () => {
  const headers: ProxyHeader[] = [
    tcp(4, "198.18.1.2", "198.18.3.10", 40000, 80),
    tcp(4, "0.0.0.0", "255.255.255.255", 0, 65535),
    tcp(6, "fd00:1::2", "fd00:3::10", 1, 443),
    tcp(6, "::", "::ffff:c612:30a", 65535, 80), // v4-mapped: hex groups only in v1
  ];
  const tail = text("GET / HTTP/1.1\r\n");
  for (const h of headers) {
    for (const [version, bytes] of [[1, encodeProxyV1(h)], [2, encodeProxyV2(h)]] as const) {
      const buf = new Uint8Array([...bytes, ...tail]);
      const r = decodeProxyHeader(buf);
      assert.equal(r.status, "ok", `v${version} ${JSON.stringify(h)}`);
      if (r.status !== "ok") continue;
      assert.equal(r.version, version);
      assert.equal(r.length, bytes.length);
      const want = version === 2 ? { ...h, tlvs: [] } : h;
      assert.deepEqual(r.header, want);
    }
  }
  const withTlv = { ...tcp(4, "1.2.3.4", "5.6.7.8", 1, 2), tlvs: [{ type: 2, value: text("example.com") }] };
  const r = decodeProxyV2(encodeProxyV2(withTlv));
  assert.equal(r.status, "ok");
  if (r.status === "ok") assert.deepEqual(r.header, withTlv);
  const local = decodeProxyV2(encodeProxyV2({ command: "local" }));
  assert.deepEqual(local, { status: "ok", header: { command: "local", tlvs: [] }, length: 16, version: 2 });
});

Deno.test("v1 decoder: UNKNOWN ignores the rest of its line", () => {
  const r = decodeProxyV1(text("PROXY UNKNOWN ffff::1 ffff::2 65535 65535\r\nrest"));
  assert.deepEqual(r, { status: "ok", header: { command: "unknown" }, length: 43, version: 1 });
  assert.deepEqual(decodeProxyV1(text("PROXY UNKNOWN\r\n")).status, "ok");
});

Deno.test("v1 decoder: every prefix of a valid line is incomplete, never invalid", () => {
  const line = encodeProxyV1(tcp(6, "fd00:1::2", "fd00:3::10", 40000, 80));
  for (let n = 0; n < line.length; n++) {
    assert.deepEqual(decodeProxyHeader(line.subarray(0, n)), { status: "incomplete" }, `prefix ${n}`);
  }
  const v2 = encodeProxyV2(tcp(6, "fd00:1::2", "fd00:3::10", 40000, 80));
  for (let n = 0; n < v2.length; n++) {
    assert.deepEqual(decodeProxyHeader(v2.subarray(0, n)), { status: "incomplete" }, `v2 prefix ${n}`);
  }
});

Deno.test("v1 decoder rejects what the specification forbids", () => {
  const bad = [
    "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n", // LF alone
    "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\rX", // CR alone
    "PROXY TCP4 192.168.000.1 192.168.0.11 56324 443\r\n", // heading zeroes in an address
    "PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n", // heading zeroes in a port
    "PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n", // port out of range
    "PROXY TCP4 192.168.0.1  192.168.0.11 56324 443\r\n", // two spaces
    "PROXY TCP4 fd00::1 fd00::2 1 2\r\n", // family mismatch
    "PROXY TCP6 192.168.0.1 192.168.0.11 1 2\r\n",
    "PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n", // dotted tail: hex groups only
    "PROXY UDP4 192.168.0.1 192.168.0.11 1 2\r\n",
    "PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n",
    "proxy TCP4 192.168.0.1 192.168.0.11 1 2\r\n",
    "GET / HTTP/1.1\r\n",
  ];
  for (const s of bad) assert.equal(decodeProxyHeader(text(s)).status, "invalid", JSON.stringify(s));
  const long = text("PROXY UNKNOWN " + "x".repeat(PROXY_V1_MAX_LEN) + "\r\n");
  assert.equal(decodeProxyV1(long).status, "invalid", "no CRLF within 107 bytes");
  // 108 bytes whose LF is the 108th: too long, as its 107-byte prefix already was; 107 bytes are the most.
  const l108 = text(`PROXY UNKNOWN ${"x".repeat(92)}\r\n`);
  assert.equal(l108.length, 108);
  assert.equal(decodeProxyV1(l108).status, "invalid", "a 108-byte line");
  assert.equal(decodeProxyV1(l108.subarray(0, 107)).status, "invalid", "its 107-byte prefix");
  assert.equal(decodeProxyV1(l108.subarray(0, 106)).status, "incomplete", "its 106-byte prefix");
  assert.equal(decodeProxyV1(text(`PROXY UNKNOWN ${"x".repeat(91)}\r\n`)).status, "ok", "a 107-byte line");
});

Deno.test("v2 decoder rejects bad version, command, family, short blocks and overrunning TLVs", () => {
  const good = encodeProxyV2(tcp(4, "1.2.3.4", "5.6.7.8", 1, 2));
  const mutate = (i: number, v: number) => {
    const b = good.slice();
    b[i] = v;
    return decodeProxyV2(b);
  };
  assert.equal(mutate(12, 0x11).status, "invalid"); // version 1
  assert.equal(mutate(12, 0x22).status, "invalid"); // command 2
  assert.equal(mutate(13, 0x41).status, "invalid"); // family 4
  assert.equal(mutate(13, 0x13).status, "invalid"); // transport 3
  assert.equal(mutate(13, 0x21).status, "invalid"); // TCP6 needs 36 bytes, block has 12
  assert.equal(mutate(3, 0x0b).status, "invalid"); // signature
  const tlv = new Uint8Array([...good.subarray(0, 14), 0, 15, ...good.subarray(16), 4, 0, 9]);
  assert.equal(decodeProxyV2(tlv).status, "invalid");
  // LOCAL with addresses: the receiver skips `length` bytes and ignores them.
  const local = good.slice();
  local[12] = 0x20;
  assert.deepEqual(decodeProxyV2(local), {
    status: "ok",
    header: { command: "local", tlvs: [] },
    length: 28,
    version: 2,
  });
  // PROXY over UNSPEC or UNIX: relayed, but nothing the receiver should use.
  const unix = new Uint8Array([...good.subarray(0, 13), 0x31, 0, 216, ...new Uint8Array(216)]);
  assert.equal(decodeProxyV2(unix).status, "ok");
  const r = decodeProxyV2(unix);
  if (r.status === "ok") assert.equal(r.header.command, "unknown");
});
