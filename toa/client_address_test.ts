// The decision "which address to announce", checked on SYNs built by scapy (toa/testdata/gen_saved_syns.py).
import assert from "node:assert/strict";
import { recordedClientAddress, toaClientAddress } from "./client_address.ts";
import { decodeToa, scanToa } from "../base/packet/toa_option.ts";
import { proxyHeaderFor } from "./relay.ts";
import { encodeProxyV1 } from "./proxy_protocol.ts";
import { parseTrustList } from "./trust.ts";
import type { SocketAddress } from "./sockaddr.ts";

interface Fixture {
  hex: string;
  toa: { family: 4 | 6; address: string; port: number } | null;
  malformed: number;
}
const fixtures: Record<string, Fixture> = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/saved_syns.json", import.meta.url)),
);
const bytes = (name: string) => new Uint8Array(fixtures[name].hex.match(/../g)!.map((x) => parseInt(x, 16)));
const trust = parseTrustList("198.18.2.0/24,fd00:2::/64");
const gw4: SocketAddress = { family: 4, address: "198.18.2.1", port: 5000 };
const gw6: SocketAddress = { family: 6, address: "fd00:2::1", port: 5001 };
const rs2: SocketAddress = { family: 4, address: "198.18.3.11", port: 5003 };

Deno.test("decodeToa reads every scapy saved SYN as scapy built it", () => {
  for (const [name, f] of Object.entries(fixtures)) {
    assert.deepEqual(decodeToa(bytes(name)), f.toa, name);
    assert.deepEqual(scanToa(bytes(name)), { toa: f.toa, malformed: f.malformed }, name);
  }
});

Deno.test("trusted peer with IPv4 TOA: the client from TOA", () => {
  assert.deepEqual(toaClientAddress(bytes("v4_toa"), gw4, trust), {
    client: { family: 4, address: "198.18.1.2", port: 40000 },
    peer: gw4,
    reason: "toa_trusted",
    malformedToa: 0,
  });
  assert.deepEqual(toaClientAddress(bytes("v4_ip_options_toa"), gw4, trust).client, {
    family: 4,
    address: "203.0.113.7",
    port: 1,
  });
});

Deno.test("trusted peer with IPv6 TOA: the client from TOA", () => {
  const r = toaClientAddress(bytes("v6_toa"), gw6, trust);
  assert.equal(r.reason, "toa_trusted");
  assert.deepEqual(r.client, { family: 6, address: "fd00:1::2", port: 40001 });
});

Deno.test("forged TOA from an untrusted peer changes nothing", () => {
  // The same bytes the gateway would send, but arriving from rs2: announced as rs2.
  const r = toaClientAddress(bytes("v4_toa"), rs2, trust);
  assert.deepEqual(r, { client: rs2, peer: rs2, reason: "toa_untrusted_ignored", malformedToa: 0 });
  // A malformed option from an untrusted peer is ignored like any other, and not counted as a gateway bug.
  assert.deepEqual(toaClientAddress(bytes("v4_kind254_len6"), rs2, trust), {
    client: rs2,
    peer: rs2,
    reason: "toa_untrusted_ignored",
    malformedToa: 0,
  });
  assert.equal(toaClientAddress(bytes("v4_toa"), gw4, []).reason, "toa_untrusted_ignored");
});

Deno.test("no TOA, or no saved SYN: the peer", () => {
  assert.deepEqual(toaClientAddress(bytes("v4_no_toa"), rs2, trust), {
    client: rs2,
    peer: rs2,
    reason: "no_toa",
    malformedToa: 0,
  });
  assert.deepEqual(toaClientAddress(null, gw4, trust), {
    client: gw4,
    peer: gw4,
    reason: "no_saved_syn",
    malformedToa: 0,
  });
  assert.equal(toaClientAddress(new Uint8Array(3), gw4, trust).reason, "no_toa");
});

Deno.test("trusted peer, malformed TOA: skipped and counted; a later valid one is taken", () => {
  assert.deepEqual(toaClientAddress(bytes("v4_kind254_len6"), gw4, trust), {
    client: gw4,
    peer: gw4,
    reason: "toa_malformed",
    malformedToa: 1,
  });
  assert.deepEqual(toaClientAddress(bytes("v4_bad_len_then_toa"), gw4, trust), {
    client: { family: 4, address: "198.18.1.5", port: 40005 },
    peer: gw4,
    reason: "toa_trusted",
    malformedToa: 1,
  });
  assert.equal(toaClientAddress(bytes("v4_v6form"), gw4, trust).reason, "toa_malformed");
  assert.equal(toaClientAddress(bytes("v6_v4form"), gw6, trust).reason, "toa_malformed");
  assert.deepEqual(toaClientAddress(bytes("v4_v6form_then_toa"), gw4, trust).client, {
    family: 4,
    address: "198.18.1.7",
    port: 40007,
  });
});

Deno.test("trusted peer, TOA with port 0: announced with port 0, not as absent", () => {
  const r = toaClientAddress(bytes("v4_toa_port0"), gw4, trust);
  assert.equal(r.reason, "toa_trusted");
  assert.deepEqual(r.client, { family: 4, address: "198.18.1.9", port: 0 });
  const h = proxyHeaderFor(r.client, { family: 4, address: "198.18.3.10", port: 80 });
  assert.equal(new TextDecoder().decode(encodeProxyV1(h)), "PROXY TCP4 198.18.1.9 198.18.3.10 0 80\r\n");
});

Deno.test("PROXY header family follows the client; the destination is mapped when families differ", () => {
  const l4: SocketAddress = { family: 4, address: "198.18.3.10", port: 80 };
  const l6: SocketAddress = { family: 6, address: "fd00:3::10", port: 80 };
  const c4: SocketAddress = { family: 4, address: "198.18.1.2", port: 40000 };
  const c6: SocketAddress = { family: 6, address: "fd00:1::2", port: 40001 };
  const pick = (c: SocketAddress, l: SocketAddress) => {
    const h = proxyHeaderFor(c, l);
    return h.command === "proxy" ? [h.family, h.source.address, h.destination.address] : [];
  };
  assert.deepEqual(pick(c4, l4), [4, "198.18.1.2", "198.18.3.10"]);
  assert.deepEqual(pick(c6, l6), [6, "fd00:1::2", "fd00:3::10"]);
  assert.deepEqual(pick(c6, l4), [6, "fd00:1::2", "::ffff:198.18.3.10"]);
  assert.deepEqual(pick(c4, l6), [4, "198.18.1.2", "0.0.0.0"]);
});

Deno.test("recordedClientAddress: a kernel record counts only from a trusted peer, in the peer's family", () => {
  const rec = {
    family: 4 as const,
    address: new Uint8Array([203, 0, 113, 7]),
    port: 40000,
    source: "ack" as const,
  };
  assert.deepEqual(recordedClientAddress(rec, gw4, trust), {
    client: { family: 4, address: "203.0.113.7", port: 40000 },
    peer: gw4,
    reason: "toa_trusted",
    malformedToa: 0,
  });
  assert.equal(recordedClientAddress(rec, rs2, trust), null);
  assert.equal(recordedClientAddress(null, gw4, trust), null);
  const gw6: SocketAddress = { family: 6, address: "fd00:2::1", port: 5000 };
  assert.equal(recordedClientAddress(rec, gw6, trust), null);
  const v6 = new Uint8Array(16);
  v6.set([0xfd, 0, 0, 1], 0);
  v6[15] = 2;
  const r6 = recordedClientAddress({ family: 6, address: v6, port: 1, source: "syn" }, gw6, trust);
  assert.deepEqual(r6?.client, { family: 6, address: "fd00:1::2", port: 1 });
});
