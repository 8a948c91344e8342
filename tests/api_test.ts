/**
 * The public API (`mod.ts`) is a chosen surface, not a dump of every module: this lists what it exports, so
 * adding or removing a name is a deliberate change made here too, and keeps hot-path helpers out of it.
 */
import assert from "node:assert/strict";
import * as api from "../mod.ts";
import * as packet from "../base/packet/mod.ts";

const PUBLIC = [
  // the gateway
  "ConfigError",
  "DEFAULT_TIMEOUTS",
  "loadConfig",
  "readStats",
  "runGateway",
  "snapshot",
  "validateConfig",
  // the engine
  "DROP_NAMES",
  "EVENT_NAMES",
  "Engine",
  "SCHEDULER_NAMES",
  "ServerSet",
  "createScheduler",
  // addresses and packets
  "PACKET_OK",
  "PACKET_REASON_NAMES",
  "PacketInfo",
  "DEFAULT_TOA_KINDS",
  "TCPOPT_TOA",
  "TCPOPT_TOA_ALT",
  "TOA_V4_LEN",
  "TOA_V6_LEN",
  "classifyPacket",
  "decodeToa",
  "hostPort",
  "ipAddressBytes",
  "ipAddressFromBytes",
  "parseIpAddress",
  "readToaOption",
  "toaKindSet",
  "writeToaV4",
  "writeToaV6",
  "writeToaWords",
  // the real-server side
  "SocketError",
  "ToaProxy",
  "cidrContains",
  "clientAddressOf",
  "decodeProxyHeader",
  "decodeProxyV1",
  "decodeProxyV2",
  "encodeProxyV1",
  "encodeProxyV2",
  "formatHostPort",
  "isTrusted",
  "localAddressOf",
  "openListener",
  "parseCidr",
  "parseHostPort",
  "parseTrustList",
  "peerAddressOf",
  "proxyHeaderFor",
  "readSavedSyn",
  "toaClientAddress",
  // the TUN device
  "TunDevice",
  "TunError",
  "TunNameInUseError",
  "TunPermissionError",
  "TunUnavailableError",
];

Deno.test("api: mod.ts exports exactly the chosen public surface", () => {
  assert.deepEqual(Object.keys(api).sort(), [...PUBLIC].sort());
});

Deno.test("api: no per-field accessor or checksum helper of base/packet is public", () => {
  const leaked = Object.keys(packet).filter((k) => k in api && !PUBLIC.includes(k));
  assert.deepEqual(leaked, []);
  for (const k of ["read16", "write32", "checksumAdjust16", "tcpSetSeq", "natSetAddress", "NatRewrite"]) {
    assert.ok(k in packet, `${k} should still exist in base/packet`);
    assert.ok(!(k in api), `${k} must not be in mod.ts`);
  }
});

Deno.test("api: the exports work as a library user calls them", () => {
  const a = api.parseIpAddress("198.18.0.100")!;
  assert.equal(api.hostPort(a, 80), "198.18.0.100:80");
  const cfg = api.validateConfig({
    tun: "fnatapi0",
    localAddresses: ["198.18.2.1"],
    services: [{ vip: "198.18.0.100", port: 80, realServers: [{ address: "198.18.3.10", port: 80 }] }],
  });
  const e = new api.Engine(cfg, { now: 0 });
  assert.equal(e.conns.size, 0);
  assert.throws(() => api.validateConfig({ services: [] }), api.ConfigError);
});
