// Stats v2: snapshots sum workers by service and server keys, so they stay right while workers disagree on
// the slot layout (mid-reload), list draining services and servers, and carry health, pools and reloads.
import assert from "node:assert/strict";
import { validateConfig } from "./config.ts";
import { Engine } from "./engine/engine.ts";
import { snapshot } from "./stats.ts";
import { tcp } from "./engine/testing/packets.ts";
import { TCP_SYN } from "../base/packet/tcp.ts";

function cfg(servers: string[], extra: Record<string, unknown> = {}) {
  return validateConfig({
    workers: 2,
    localAddresses: ["198.18.2.1"],
    services: [{
      vip: "198.18.0.100",
      port: 80,
      realServers: servers.map((address) => ({ address, weight: 2 })),
    }],
    ...extra,
  });
}

/** Sends SYNs from client ports until `n` connections were made on this worker (the others are handed off). */
function connect(e: Engine, n: number, from = 1000): void {
  for (let p = from; e.conns.size < n; p++) {
    const s = tcp({ src: "198.51.100.7", dst: "198.18.0.100", sport: p, dport: 80, seq: 1, flags: TCP_SYN });
    e.process(s.b, s.len, 0, true);
  }
}

Deno.test("stats: workers summed by key while their slots disagree; a draining server listed", () => {
  const old = cfg(["198.18.3.10", "198.18.3.11"]);
  const next = cfg(["198.18.3.11", "198.18.3.12"]);
  const w0 = new Engine(old, { worker: 0 });
  const w1 = new Engine(old, { worker: 1 });
  connect(w0, 2);
  connect(w1, 2);
  w0.reconfigure(next); // worker 1 has not applied it yet
  const s = snapshot(next, [w0.exportCounters({ rx_packets: 5 }), w1.exportCounters({ rx_packets: 7 })], {
    health: new Map([["tcp 198.18.0.100:80 198.18.3.12:80", { state: "down", reason: "refused" }]]),
    reloads: { ok: 1, failed: 0 },
    startedAt: Date.now() - 10_000,
  });
  assert.equal(s.activeConnections, 4);
  assert.deepEqual(s.workers.map((w) => [w.worker, w.activeConnections, w.runtime.rx_packets]), [
    [0, 2, 5],
    [1, 2, 7],
  ]);
  assert.equal(s.runtime.rx_packets, 12);
  assert.equal(s.services.length, 1);
  const svc = s.services[0];
  assert.deepEqual([svc.service, svc.protocol, svc.vip, svc.port, svc.scheduler, svc.draining], [
    "tcp 198.18.0.100:80",
    "tcp",
    "198.18.0.100",
    80,
    "wlc",
    false,
  ]);
  assert.equal(svc.connectionsTotal, 4);
  const rs = Object.fromEntries(svc.realServers.map((r) => [r.server, r]));
  assert.deepEqual(svc.realServers.map((r) => r.server), [
    "198.18.3.11:80",
    "198.18.3.12:80",
    "198.18.3.10:80",
  ]);
  assert.equal(rs["198.18.3.10:80"].draining, true);
  assert.equal(rs["198.18.3.10:80"].effectiveWeight, 0);
  assert.equal(rs["198.18.3.10:80"].weight, 2);
  assert.equal(rs["198.18.3.12:80"].health, "down");
  assert.equal(rs["198.18.3.12:80"].healthReason, "refused");
  assert.equal(rs["198.18.3.11:80"].health, "up", "checks running, no verdict yet: up");
  // Every connection is counted once, in its server's slot, whatever the worker's layout.
  const total = svc.realServers.reduce((n, r) => n + r.connectionsTotal, 0);
  assert.equal(total, 4);
  assert.equal(svc.realServers.reduce((n, r) => n + r.active + r.inactive, 0), 4);
  assert.deepEqual(s.pools, [{ address: "198.18.2.1", used: 4, free: s.pools[0].free, misses: 0 }]);
  assert.equal(s.pools[0].used + s.pools[0].free, 64511);
  assert.deepEqual(s.reloads, { ok: 1, failed: 0 });
  assert.ok(s.uptimeSeconds >= 10 && s.uptimeSeconds < 20);
});

Deno.test("stats: a service removed by a reload is listed as draining until its slot is gone", () => {
  const a = cfg(["198.18.3.10"]);
  const b = validateConfig({
    workers: 2,
    localAddresses: ["198.18.2.1"],
    services: [{ vip: "198.18.0.101", port: 443, realServers: [{ address: "198.18.3.10" }] }],
  });
  const e = new Engine(a, { worker: 0 });
  connect(e, 1);
  e.reconfigure(b);
  const s = snapshot(b, [e.exportCounters()]);
  assert.deepEqual(s.services.map((x) => [x.service, x.draining]), [
    ["tcp 198.18.0.101:443", false],
    ["tcp 198.18.0.100:80", true],
  ]);
  assert.equal(s.services[1].realServers[0].draining, true);
  assert.equal(s.services[1].realServers[0].inactive, 1);
  assert.equal(s.services[0].realServers[0].health, "unchecked", "no health map: unchecked");
  assert.deepEqual(s.reloads, { ok: 0, failed: 0 });
  assert.equal(s.uptimeSeconds, 0);
});

Deno.test("stats: no worker answered yet: configured weights, nothing draining", () => {
  const s = snapshot(cfg(["198.18.3.10"]), []);
  assert.equal(s.services[0].realServers[0].weight, 2);
  assert.equal(s.services[0].realServers[0].effectiveWeight, 2);
  assert.deepEqual(s.pools, [{ address: "198.18.2.1", used: 0, free: 0, misses: 0 }]);
});

Deno.test("stats: a removed server or service without connections is not listed (README: listed while they run)", () => {
  const a = cfg(["198.18.3.10", "198.18.3.11"]);
  const b = cfg(["198.18.3.10"]);
  const e = new Engine(a, { worker: 0 });
  e.reconfigure(b); // nothing connected: .11 has nothing to drain
  const s = snapshot(b, [e.exportCounters()]);
  assert.deepEqual(s.services[0].realServers.map((r) => r.server), ["198.18.3.10:80"]);
  const c = validateConfig({
    workers: 2,
    localAddresses: ["198.18.2.1"],
    services: [{ vip: "198.18.0.101", port: 443, realServers: [{ address: "198.18.3.10" }] }],
  });
  e.reconfigure(c);
  assert.deepEqual(snapshot(c, [e.exportCounters()]).services.map((x) => x.service), [
    "tcp 198.18.0.101:443",
  ]);
  // Added back, it is listed again with its slot's counters.
  e.reconfigure(a);
  assert.deepEqual(snapshot(a, [e.exportCounters()]).services[0].realServers.map((r) => r.server), [
    "198.18.3.10:80",
    "198.18.3.11:80",
  ]);
});

Deno.test("stats: gateway-level runtime counters (the device's tun_tx_dropped) join the summed runtime only", () => {
  const c = cfg(["198.18.3.10"]);
  const w0 = new Engine(c, { worker: 0 });
  const w1 = new Engine(c, { worker: 1 });
  const s = snapshot(c, [w0.exportCounters({ rx_packets: 5 }), w1.exportCounters({ rx_packets: 7 })], {
    runtime: { tun_tx_dropped: 42 },
  });
  assert.equal(s.runtime.tun_tx_dropped, 42);
  assert.equal(s.runtime.rx_packets, 12);
  assert.ok(s.workers.every((w) => w.runtime.tun_tx_dropped === undefined), "no worker's own counter");
});
