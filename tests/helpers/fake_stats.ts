/**
 * Synthetic Stats v2 for the metrics, status page and HTTP listener tests: an IPv4 service with an up, a
 * down and an IPv6 server, a draining IPv6 UDP service with a draining server and an unchecked one, two
 * workers, two local address pools, a failed last reload.
 */
import type { GatewayStats, RealServerStats } from "../../lb/stats.ts";

/** A real server's stats with zero traffic, overridden by `over`. */
export function server(
  over: Partial<RealServerStats> & Pick<RealServerStats, "address" | "port">,
): RealServerStats {
  const host = over.address.includes(":") ? `[${over.address}]` : over.address;
  return {
    server: `${host}:${over.port}`,
    weight: 1,
    effectiveWeight: 1,
    health: "up",
    draining: false,
    active: 0,
    inactive: 0,
    connectionsTotal: 0,
    packetsIn: 0,
    packetsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    ...over,
  };
}

/** A gateway with nothing configured and nothing counted, up for `uptimeSeconds`. */
export function idleStats(uptimeSeconds: number): GatewayStats {
  return {
    activeConnections: 0,
    drops: {},
    events: {},
    services: [],
    runtime: {},
    workers: [],
    pools: [],
    reloads: { ok: 0, failed: 0 },
    uptimeSeconds,
  };
}

/** The fixture: fresh on each call, so a test may edit its copy. */
export function fakeStats(): GatewayStats {
  return {
    activeConnections: 7,
    drops: { no_service: 12, "pool_exhausted": 3, 'odd "reason"\\x\n': 1 },
    events: { conn_created: 40, conn_expired: 33 },
    services: [
      {
        service: "tcp 198.18.0.100:80",
        protocol: "tcp",
        vip: "198.18.0.100",
        port: 80,
        scheduler: "wrr",
        draining: false,
        connectionsTotal: 40,
        packetsIn: 400,
        packetsOut: 380,
        bytesIn: 24000,
        bytesOut: 910000,
        realServers: [
          server({
            address: "198.18.3.10",
            port: 80,
            weight: 3,
            effectiveWeight: 3,
            active: 4,
            inactive: 1,
            connectionsTotal: 30,
            packetsIn: 300,
            packetsOut: 290,
            bytesIn: 18000,
            bytesOut: 700000,
          }),
          server({
            address: "198.18.3.11",
            port: 80,
            weight: 2,
            effectiveWeight: 0,
            health: "down",
            healthReason: "refused",
            connectionsTotal: 6,
            packetsIn: 60,
            packetsOut: 50,
            bytesIn: 3600,
            bytesOut: 120000,
          }),
          server({
            address: "fd00:3::10",
            port: 8080,
            active: 2,
            connectionsTotal: 4,
            packetsIn: 40,
            packetsOut: 40,
            bytesIn: 2400,
            bytesOut: 90000,
          }),
        ],
      },
      {
        service: "udp [fd00::100]:53",
        protocol: "udp",
        vip: "fd00::100",
        port: 53,
        scheduler: "rr",
        draining: true,
        connectionsTotal: 9,
        packetsIn: 18,
        packetsOut: 18,
        bytesIn: 1500,
        bytesOut: 4200,
        realServers: [
          server({
            address: "fd00:3::20",
            port: 53,
            effectiveWeight: 0,
            draining: true,
            inactive: 1,
            connectionsTotal: 9,
            packetsIn: 18,
            packetsOut: 18,
            bytesIn: 1500,
            bytesOut: 4200,
          }),
          server({ address: "fd00:3::21", port: 53, health: "unchecked", weight: 5, effectiveWeight: 5 }),
        ],
      },
    ],
    runtime: {
      rx_packets: 460,
      tx_packets: 455,
      tx_dropped: 2,
      handoff_out: 10,
      handoff_in: 10,
      tx_error_EAGAIN: 2,
      rx_syn_packets: 30,
      syn_budget_exhausted: 1,
      tun_tx_dropped: 17,
    },
    workers: [
      {
        worker: 0,
        activeConnections: 4,
        runtime: {
          rx_packets: 250,
          tx_packets: 247,
          tx_dropped: 2,
          handoff_out: 4,
          handoff_in: 6,
          tx_error_EAGAIN: 2,
          rx_syn_packets: 20,
          syn_budget_exhausted: 1,
        },
      },
      {
        worker: 1,
        activeConnections: 3,
        runtime: {
          rx_packets: 210,
          tx_packets: 208,
          tx_dropped: 0,
          handoff_out: 6,
          handoff_in: 4,
          "odd-key": 1,
        },
      },
    ],
    pools: [
      { address: "198.18.2.1", used: 5, free: 64506, misses: 0 },
      { address: "fd00:2::1", used: 2, free: 64509, misses: 3 },
    ],
    reloads: {
      ok: 2,
      failed: 1,
      last: { at: "2026-11-29T18:00:00.000Z", ok: false, message: "services[0]: bad" },
    },
    uptimeSeconds: 3600.5,
  };
}
