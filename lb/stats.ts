/**
 * Stats snapshots: the engine's counters as a plain JSON-able object (control path only), summed over
 * workers, and the one-line text form printed on SIGUSR1.
 *
 * @module
 */
import * as C from "./engine/counters.ts";
import type { Engine } from "./engine/engine.ts";

/** Traffic counters of a service or a real server. */
export interface TrafficStats {
  /** Connections created. */
  connections: number;
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
  /** Live connection entries. */
  connections: number;
  /** Drops by reason (only reasons seen). */
  drops: Record<string, number>;
  /** Events by name (only those seen). */
  events: Record<string, number>;
  /** Per-service figures. */
  services: ServiceStats[];
}

function traffic(a: Float64Array, i: number): TrafficStats {
  const o = i * C.TRAFFIC_FIELDS;
  return {
    connections: a[o + C.T_CONNS],
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

/** Sums the counters of one or more engines (one per worker) into a snapshot. */
export function snapshot(engines: readonly Engine[]): GatewayStats {
  const cfg = engines[0].config;
  const out: GatewayStats = { connections: 0, drops: {}, events: {}, services: [] };
  for (const e of engines) {
    out.connections += e.conns.size;
    named(C.DROP_NAMES, e.counters.drops, out.drops);
    named(C.EVENT_NAMES, e.counters.events, out.events);
  }
  const add = (a: TrafficStats, b: TrafficStats) => {
    a.connections += b.connections;
    a.packetsIn += b.packetsIn;
    a.packetsOut += b.packetsOut;
    a.bytesIn += b.bytesIn;
    a.bytesOut += b.bytesOut;
  };
  cfg.services.forEach((s, si) => {
    const svc: ServiceStats = {
      service: `${s.protocol} ${s.vip.includes(":") ? `[${s.vip}]` : s.vip}:${s.port}`,
      ...traffic(new Float64Array(C.TRAFFIC_FIELDS), 0),
      realServers: [],
    };
    for (const e of engines) add(svc, traffic(e.counters.services, si));
    s.realServers.forEach((r, ri) => {
      const rs: RealServerStats = {
        server: `${r.address.includes(":") ? `[${r.address}]` : r.address}:${r.port}`,
        weight: engines[0].sets[si].weights[ri],
        active: 0,
        inactive: 0,
        ...traffic(new Float64Array(C.TRAFFIC_FIELDS), 0),
      };
      for (const e of engines) {
        add(rs, traffic(e.counters.servers, e.serverIndex(si, ri)));
        rs.active += e.sets[si].active[ri];
        rs.inactive += e.sets[si].inactive[ri];
      }
      svc.realServers.push(rs);
    });
    out.services.push(svc);
  });
  return out;
}
