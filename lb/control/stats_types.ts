/**
 * Stats v2 (issue 10 contract), verbatim: a placeholder until `lb/stats.ts` exports these shapes; the
 * metrics page, the status page and the HTTP listener import them from here only.
 *
 * @module
 */

/** Everything a running gateway reports: the JSON of the control socket, `/stats.json` and `/metrics`. */
export interface GatewayStats {
  /** Live entries, all workers. */
  activeConnections: number;
  /** Drops by reason (only seen ones). */
  drops: Record<string, number>;
  /** Events by name (only seen ones). */
  events: Record<string, number>;
  /** Per-service figures. */
  services: ServiceStats[];
  /** Summed worker loop counters (rx_packets, tx_packets, handoff_*, tx_error_<ERRNO> …). */
  runtime: Record<string, number>;
  /** Per worker. */
  workers: WorkerStats[];
  /** Per local address, summed over workers. */
  pools: PoolStats[];
  /** Config reloads: how many succeeded, failed, and the last one. */
  reloads: { ok: number; failed: number; last?: { at: string /* ISO time */; ok: boolean; message: string } };
  /** Seconds since the gateway started. */
  uptimeSeconds: number;
}

/** One worker's live entries and loop counters. */
export interface WorkerStats {
  /** Worker index. */
  worker: number;
  /** Live entries in this worker's table. */
  activeConnections: number;
  /** This worker's loop counters by name. */
  runtime: Record<string, number>;
}

/** A local address's port pool, summed over workers (dpvs sa_used/sa_free/sa_miss). */
export interface PoolStats {
  /** The local address. */
  address: string;
  /** Ports in use. */
  used: number;
  /** Ports free. */
  free: number;
  /** Allocations that found no free port. */
  misses: number;
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

/** A service's stats. */
export interface ServiceStats extends TrafficStats {
  /** "tcp 198.18.0.100:80" / "tcp [fd00::100]:80" (key: stable across reloads). */
  service: string;
  /** Transport protocol. */
  protocol: "tcp" | "udp";
  /** Virtual address. */
  vip: string;
  /** Virtual port. */
  port: number;
  /** Scheduler name. */
  scheduler: string;
  /** Removed by a reload, connections still running. */
  draining: boolean;
  /** Its real servers. */
  realServers: RealServerStats[];
}

/** A real server's stats. */
export interface RealServerStats extends TrafficStats {
  /** "198.18.3.10:80" / "[fd00:3::10]:80" (key within its service). */
  server: string;
  /** Server address. */
  address: string;
  /** Server port. */
  port: number;
  /** Configured weight. */
  weight: number;
  /** What the scheduler uses: 0 when down or draining. */
  effectiveWeight: number;
  /** "unchecked" when healthCheck.type is "none". */
  health: "up" | "down" | "unchecked";
  /** Last transition's reason: "refused", "timeout", "status 503", …. */
  healthReason?: string;
  /** Removed by a reload. */
  draining: boolean;
  /** Established connections now (ipvsadm ActiveConn). */
  active: number;
  /** Other live connections now (ipvsadm InActConn). */
  inactive: number;
}

/** One live connection, as ipvsadm -Lnc with dpvs's local column. */
export interface ConnectionRow {
  /** Transport protocol. */
  proto: "tcp" | "udp";
  /** "ESTABLISHED", "SYN_SENT", …. */
  state: string;
  /** Seconds until the entry expires. */
  expiresIn: number;
  /** Client host:port. */
  source: string;
  /** VIP host:port. */
  virtual: string;
  /** Local address host:port. */
  local: string;
  /** Real server host:port. */
  destination: string;
}
