/**
 * Stats snapshots: the engine's counters as a plain JSON-able object (control path only), summed over
 * workers, and the one-line text form printed on SIGUSR2.
 *
 * Two kinds of connection figures, named apart as ipvsadm does (ActiveConn/InActConn vs Conns):
 * `activeConnections` (top level) and `workers` count live entries now; `connectionsTotal` (per service
 * and real server) counts connections created since start; a real server's `active`/`inactive` are its
 * live established and other entries now.
 *
 * @module
 */
import { hostPort } from "../base/addr.ts";
import type { GatewayConfig } from "./config.ts";
import * as C from "./engine/counters.ts";

/** One worker's counters, as plain (structured-clonable) arrays: what a worker posts to the main thread. */
export interface EngineCounters {
  /** Live connection entries. */
  size: number;
  /** Drops by reason code. */
  drops: Float64Array;
  /** Events by code. */
  events: Float64Array;
  /** Per-service traffic (TRAFFIC_FIELDS per service). */
  services: Float64Array;
  /** Per-real-server traffic (flat server index). */
  servers: Float64Array;
  /** Per service: weights of its servers. */
  weights: Int32Array[];
  /** Per service: established connections per server. */
  active: Int32Array[];
  /** Per service: other connections per server. */
  inactive: Int32Array[];
  /** Runtime counters of the worker's loop (TUN, hand-off), by name. */
  runtime: Record<string, number>;
}

/** Traffic counters of a service or a real server, since start. */
export interface TrafficStats {
  /** Connections created (ipvsadm's Conns), not live ones. */
  connectionsTotal: number;
  /** Packets client→server. */
  packetsIn: number;
  /** Packets server→client. */
  packetsOut: number;
  /** IP bytes client→server. */
  bytesIn: number;
  /** IP bytes server→client. */
  bytesOut: number;
}

/** A real server's stats. */
export interface RealServerStats extends TrafficStats {
  /** "address:port". */
  server: string;
  /** Current weight. */
  weight: number;
  /** Established connections now. */
  active: number;
  /** Other connections now. */
  inactive: number;
}

/** A service's stats. */
export interface ServiceStats extends TrafficStats {
  /** "protocol vip:port". */
  service: string;
  /** Its real servers. */
  realServers: RealServerStats[];
}

/** Everything `lb --stats` prints. */
export interface GatewayStats {
  /** Live connection entries now, over all workers (ipvsadm's ActiveConn + InActConn). */
  activeConnections: number;
  /** Drops by reason (only reasons seen). */
  drops: Record<string, number>;
  /** Events by name (only those seen). */
  events: Record<string, number>;
  /** Per-service figures. */
  services: ServiceStats[];
  /** Runtime counters (TUN reads/writes, hand-offs, steering), summed over workers. */
  runtime: Record<string, number>;
  /** Live connections per worker. */
  workers: number[];
}

function traffic(a: Float64Array, i: number): TrafficStats {
  const o = i * C.TRAFFIC_FIELDS;
  return {
    connectionsTotal: a[o + C.T_CONNS],
    packetsIn: a[o + C.T_PKTS_IN],
    packetsOut: a[o + C.T_PKTS_OUT],
    bytesIn: a[o + C.T_BYTES_IN],
    bytesOut: a[o + C.T_BYTES_OUT],
  };
}

function named(names: readonly string[], values: Float64Array, into: Record<string, number>): void {
  values.forEach((v, i) => {
    if (v > 0 && names[i] !== "ok") into[names[i]] = (into[names[i]] ?? 0) + v;
  });
}

/** Sums the counters of one or more workers into a snapshot. */
export function snapshot(cfg: GatewayConfig, parts: readonly EngineCounters[]): GatewayStats {
  const out: GatewayStats = {
    activeConnections: 0,
    drops: {},
    events: {},
    services: [],
    runtime: {},
    workers: [],
  };
  for (const e of parts) {
    out.activeConnections += e.size;
    out.workers.push(e.size);
    named(C.DROP_NAMES, e.drops, out.drops);
    named(C.EVENT_NAMES, e.events, out.events);
    for (const [k, v] of Object.entries(e.runtime)) out.runtime[k] = (out.runtime[k] ?? 0) + v;
  }
  const add = (a: TrafficStats, b: TrafficStats) => {
    a.connectionsTotal += b.connectionsTotal;
    a.packetsIn += b.packetsIn;
    a.packetsOut += b.packetsOut;
    a.bytesIn += b.bytesIn;
    a.bytesOut += b.bytesOut;
  };
  let base = 0;
  cfg.services.forEach((s, si) => {
    const svc: ServiceStats = {
      service: `${s.protocol} ${hostPort(s.vip, s.port)}`,
      ...traffic(new Float64Array(C.TRAFFIC_FIELDS), 0),
      realServers: [],
    };
    for (const e of parts) add(svc, traffic(e.services, si));
    s.realServers.forEach((r, ri) => {
      const rs: RealServerStats = {
        server: hostPort(r.address, r.port),
        // No worker answered yet: the configured weight.
        weight: parts[0]?.weights[si][ri] ?? r.weight,
        active: 0,
        inactive: 0,
        ...traffic(new Float64Array(C.TRAFFIC_FIELDS), 0),
      };
      for (const e of parts) {
        add(rs, traffic(e.servers, base + ri));
        rs.active += e.active[si][ri];
        rs.inactive += e.inactive[si][ri];
      }
      svc.realServers.push(rs);
    });
    base += s.realServers.length;
    out.services.push(svc);
  });
  return out;
}
