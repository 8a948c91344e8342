/**
 * The engine's checksum policy end to end: a partial checksum (CHECKSUM_PARTIAL from the kernel, offload to
 * finish it) must stay the pseudo-header sum through every header edit the engine makes — client-sent TOA
 * turned into NOPs, timestamps removed, MSS clamped, our TOA inserted, ports and sequence numbers changed —
 * and verify once completed the way the device completes it.
 */
import assert from "node:assert/strict";
import { validateConfig } from "../config.ts";
import {
  finishChecksum,
  foldSum,
  ipv4PseudoHeaderSum,
  ipv6PseudoHeaderSum,
  onesComplementSum,
  read16,
  write16,
} from "../../base/packet/checksum.ts";
import { PacketInfo } from "../../base/packet/packet_info.ts";
import { TCP_SYN, tcpFindOption } from "../../base/packet/tcp.ts";
import { decodeToa, TCPOPT_TOA } from "../../base/packet/toa_option.ts";
import { transportChecksumFieldOffset, transportChecksumOk } from "../../base/packet/transport_checksum.ts";
import { classifyPacket, PACKET_OK } from "../../base/packet/validate.ts";
import * as C from "./counters.ts";
import { Engine } from "./engine.ts";
import { optMss, optTimestamp, optToa4, tcp, udp } from "./testing/packets.ts";

function engine(): Engine {
  const config = validateConfig({
    tun: "t0",
    localAddresses: ["198.18.2.1", "fd00:2::1"],
    portRange: [2000, 2003],
    services: [
      { vip: "198.18.0.100", port: 80, toa: true, realServers: [{ address: "198.18.3.10", port: 80 }] },
      { vip: "fd00::100", port: 80, toa: true, realServers: [{ address: "fd00:3::10", port: 80 }] },
      {
        vip: "198.18.0.100",
        port: 53,
        protocol: "udp",
        realServers: [{ address: "198.18.3.10", port: 5353 }],
      },
      { vip: "fd00::100", port: 53, protocol: "udp", realServers: [{ address: "fd00:3::10", port: 5353 }] },
    ],
  });
  return new Engine(config, { now: 1000, random32: () => 0x10000000 });
}

function classify(b: Uint8Array, len: number): PacketInfo {
  const info = new PacketInfo();
  assert.equal(classifyPacket(b, 0, len, info), PACKET_OK);
  return info;
}

/** Replaces the complete checksum with the pseudo-header sum a CHECKSUM_PARTIAL packet carries. */
function makePartial(b: Uint8Array, len: number): void {
  const info = classify(b, len);
  const pseudo = info.family === 4
    ? ipv4PseudoHeaderSum(b, 0, info.l4Proto, info.l4Len)
    : ipv6PseudoHeaderSum(b, 0, info.l4Proto, info.l4Len);
  write16(b, info.l4Off + transportChecksumFieldOffset(info.l4Proto), foldSum(pseudo));
}

/** Completes the partial checksum as the device does, then verifies it from scratch. */
function completeAndVerify(b: Uint8Array, len: number, what: string): PacketInfo {
  const info = classify(b, len);
  const at = info.l4Off + transportChecksumFieldOffset(info.l4Proto);
  write16(b, at, finishChecksum(onesComplementSum(b, info.l4Off, info.l4Len)));
  assert.ok(transportChecksumOk(b, info), `${what}: checksum after completion`);
  return info;
}

Deno.test("partial checksum survives a client-sent TOA being stripped, then ours inserted (v4, v6)", () => {
  for (const v6 of [false, true]) {
    const e = engine();
    const s = tcp({
      src: v6 ? "fd00:1::2" : "198.18.1.2",
      dst: v6 ? "fd00::100" : "198.18.0.100",
      sport: 9000,
      dport: 80,
      seq: 77,
      flags: TCP_SYN,
      // A forged TOA (made NOPs), a timestamp (made NOPs) and an MSS above the clamp.
      options: [...optMss(1460), ...optToa4(1, "203.0.113.9"), 1, 1, ...optTimestamp(5, 0)],
    });
    makePartial(s.b, s.len);
    const n = e.process(s.b, s.len, 1000, true);
    assert.ok(n > 0, "forwarded");
    assert.equal(e.counters.events[C.EV_TOA_STRIPPED], 1);
    assert.equal(e.counters.events[C.EV_TOA_INSERTED], 1);
    const info = completeAndVerify(s.b, n, `v${v6 ? 6 : 4} SYN`);
    assert.ok(tcpFindOption(s.b, info.l4Off, TCPOPT_TOA) >= 0);
    assert.deepEqual(decodeToa(s.b.subarray(0, n)), {
      family: v6 ? 6 : 4,
      address: v6 ? "fd00:1::2" : "198.18.1.2",
      port: 9000,
    });
  }
});

Deno.test("partial UDP checksum: pseudo-header changes only, both directions (v4, v6)", () => {
  for (const v6 of [false, true]) {
    const e = engine();
    const client = v6 ? "fd00:1::2" : "198.18.1.2";
    const q = udp(client, v6 ? "fd00::100" : "198.18.0.100", 4444, 53, new Uint8Array(101).fill(3));
    makePartial(q.b, q.len);
    const n = e.process(q.b, q.len, 1000, true);
    assert.ok(n > 0);
    const qi = completeAndVerify(q.b, n, "to server");
    const lport = read16(q.b, qi.l4Off);
    const r = udp(
      v6 ? "fd00:3::10" : "198.18.3.10",
      v6 ? "fd00:2::1" : "198.18.2.1",
      5353,
      lport,
      new Uint8Array(7),
    );
    makePartial(r.b, r.len);
    const rn = e.process(r.b, r.len, 1000, true);
    assert.ok(rn > 0);
    const ri = completeAndVerify(r.b, rn, "to client");
    assert.equal(read16(r.b, ri.l4Off + 2), 4444);
  }
});
