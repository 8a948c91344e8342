/**
 * Stats snapshots: the engine's counters as a plain JSON-able object (control path only), summed over
 * workers, and the one-line text form printed on SIGUSR2.
 *
 * Two kinds of connection figures, named apart as ipvsadm does (ActiveConn/InActConn vs Conns):
 * `activeConnections` (top level and per worker) count live entries now; `connectionsTotal` (per service
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
  /** The worker's index. */
  worker: number;
  /** Live connection entries. */
  size: number;
  /** Drops by reason code. */
  drops: Float64Array;
  /** Events by code. */
  events: Float64Array;
  /** Per-service-slot traffic (TRAFFIC_FIELDS per slot). */
  services: Float64Array;
  /** Per-server-slot traffic (flat server slot, see `serverSlots`). */
  servers: Float64Array;
  /** Per service slot: its key ("tcp 198.18.0.100:80"), stable across reloads. */
  serviceKeys: string[];
  /** Per service slot: its scheduler's name. */
  schedulers: string[];
  /** Per service slot: 1 when a reload removed it and its connections drain. */
  serviceDraining: Uint8Array;
  /** Per service slot: its servers' keys ("198.18.3.10:80"), by index in the service. */
  serverKeys: string[][];
  /** Per service slot: each server's flat slot in `servers`. */
  serverSlots: Int32Array[];
  /** Per service slot: configured weights of its servers. */
  configuredWeights: Int32Array[];
  /** Per service slot: 1 for a server a reload removed. */
  serverDraining: Uint8Array[];
  /** Per service slot: effective weights (what the scheduler uses: 0 when down or draining). */
  weights: Int32Array[];
  /** Per service slot: established connections per server. */
  active: Int32Array[];
  /** Per service slot: other connections per server. */
  inactive: Int32Array[];
  /** Per local address: its port pool. */
  pools: PoolStats[];
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
  /** "198.18.3.10:80" / "[fd00:3::10]:80": its key within its service. */
  server: string;
  /** Its address. */
  address: string;
  /** Its port. */
  port: number;
  /** Configured weight. */
  weight: number;
  /** What the scheduler uses: 0 when down or draining. */
  effectiveWeight: number;
  /** Health check verdict; "unchecked" when the service's healthCheck type is "none" or nothing checks. */
  health: "up" | "down" | "unchecked";
  /** The last transition's reason ("refused", "timeout", "status 503", …). */
  healthReason?: string;
  /** Removed by a reload, connections still running. */
  draining: boolean;
  /** Established connections now (ipvsadm ActiveConn). */
  active: number;
  /** Other live connections now (ipvsadm InActConn). */
  inactive: number;
}

/** A service's stats. */
export interface ServiceStats extends TrafficStats {
  /** "tcp 198.18.0.100:80" / "tcp [fd00::100]:80": its key, stable across reloads. */
  service: string;
  /** "tcp" or "udp". */
  protocol: "tcp" | "udp";
  /** The VIP. */
  vip: string;
  /** The virtual port. */
  port: number;
  /** Scheduler name. */
  scheduler: string;
  /** Removed by a reload, connections still running. */
  draining: boolean;
  /** Its real servers. */
  realServers: RealServerStats[];
}

/** One worker's figures. */
export interface WorkerStats {
  /** Worker index. */
  worker: number;
  /** Its live connection entries. */
  activeConnections: number;
  /** Its loop's runtime counters. */
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
  /** Failed acquisitions. */
  misses: number;
}

/** A live connection, as ipvsadm -Lnc shows it with dpvs's local column. */
export interface ConnectionRow {
  /** "tcp" or "udp". */
  proto: "tcp" | "udp";
  /** "ESTABLISHED", "SYN_SENT", …, "UDP". */
  state: string;
  /** Seconds to expiry. */
  expiresIn: number;
  /** Client host:port. */
  source: string;
  /** VIP:vport. */
  virtual: string;
  /** Local address:port. */
  local: string;
  /** Real server host:port. */
  destination: string;
}

/** Reload outcomes. */
export interface ReloadStats {
  /** Reloads applied. */
  ok: number;
  /** Reloads refused. */
  failed: number;
  /** The last one. */
  last?: { at: string; ok: boolean; message: string };
}

/** Everything `lb --stats` prints (stats v2). */
export interface GatewayStats {
  /** Live connection entries now, over all workers (ipvsadm's ActiveConn + InActConn). */
  activeConnections: number;
  /** Drops by reason (only reasons seen). */
  drops: Record<string, number>;
  /** Events by name (only those seen). */
  events: Record<string, number>;
  /** Per-service figures: the configured services in order, then draining ones while they have connections. */
  services: ServiceStats[];
  /**
   * Runtime counters (TUN reads/writes, hand-offs, steering), summed over workers, and the gateway's own
   * (`tun_tx_dropped`, see {@link SnapshotExtras.runtime}).
   */
  runtime: Record<string, number>;
  /** Per worker. */
  workers: WorkerStats[];
  /** Per local address, summed over workers. */
  pools: PoolStats[];
  /** Reload outcomes. */
  reloads: ReloadStats;
  /** Seconds since start (`extras.startedAt`), 0 when unknown. */
  uptimeSeconds: number;
}

/** What the main thread adds to the workers' counters. */
export interface SnapshotExtras {
  /** Health per `service + " " + server`. */
  health?: Map<string, { state: "up" | "down" | "unchecked"; reason?: string }>;
  /** Reload outcomes. */
  reloads?: ReloadStats;
  /** Start time, ms since the epoch (Date.now()). */
  startedAt?: number;
  /**
   * Gateway-level runtime counters, not any worker's: the TUN device's kernel counters (`tun_tx_dropped`:
   * packets dropped at a full queue ring before any worker saw them). Added to `runtime` as they are.
   */
  runtime?: Record<string, number>;
}

function zero(): TrafficStats {
  return { connectionsTotal: 0, packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0 };
}

function addTraffic(t: TrafficStats, a: Float64Array, i: number): void {
  const o = i * C.TRAFFIC_FIELDS;
  if (o + C.TRAFFIC_FIELDS > a.length) return;
  t.connectionsTotal += a[o + C.T_CONNS];
  t.packetsIn += a[o + C.T_PKTS_IN];
  t.packetsOut += a[o + C.T_PKTS_OUT];
  t.bytesIn += a[o + C.T_BYTES_IN];
  t.bytesOut += a[o + C.T_BYTES_OUT];
}

function named(names: readonly string[], values: Float64Array, into: Record<string, number>): void {
  values.forEach((v, i) => {
    if (v > 0 && names[i] !== "ok") into[names[i]] = (into[names[i]] ?? 0) + v;
  });
}

/** Splits "tcp 198.18.0.100:80" / "tcp [fd00::100]:80" into its parts. */
function splitService(key: string): { protocol: "tcp" | "udp"; vip: string; port: number } {
  const [proto, hp] = key.split(" ");
  const { host, port } = splitHostPort(hp);
  return { protocol: proto === "udp" ? "udp" : "tcp", vip: host, port };
}

function splitHostPort(hp: string): { host: string; port: number } {
  const at = hp.lastIndexOf(":");
  const host = hp.slice(0, at);
  return { host: host.startsWith("[") ? host.slice(1, -1) : host, port: Number(hp.slice(at + 1)) };
}

/**
 * Sums the counters of the workers into a snapshot. Services and servers are matched by key in each
 * worker's slots, so a snapshot taken while workers disagree on the slot layout (mid-reload) stays right.
 */
export function snapshot(
  cfg: GatewayConfig,
  parts: readonly EngineCounters[],
  extras: SnapshotExtras = {},
): GatewayStats {
  const out: GatewayStats = {
    activeConnections: 0,
    drops: {},
    events: {},
    services: [],
    runtime: {},
    workers: [],
    pools: [],
    reloads: extras.reloads ?? { ok: 0, failed: 0 },
    uptimeSeconds: extras.startedAt !== undefined ? Math.max(0, (Date.now() - extras.startedAt) / 1000) : 0,
  };
  const pools = new Map<string, PoolStats>();
  for (const c of cfg.localAddresses) pools.set(c.text, { address: c.text, used: 0, free: 0, misses: 0 });
  for (const e of parts) {
    out.activeConnections += e.size;
    out.workers.push({ worker: e.worker, activeConnections: e.size, runtime: { ...e.runtime } });
    named(C.DROP_NAMES, e.drops, out.drops);
    named(C.EVENT_NAMES, e.events, out.events);
    for (const [k, v] of Object.entries(e.runtime)) out.runtime[k] = (out.runtime[k] ?? 0) + v;
    for (const p of e.pools) {
      const q = pools.get(p.address) ?? { address: p.address, used: 0, free: 0, misses: 0 };
      q.used += p.used;
      q.free += p.free;
      q.misses += p.misses;
      pools.set(p.address, q);
    }
  }
  for (const [k, v] of Object.entries(extras.runtime ?? {})) out.runtime[k] = (out.runtime[k] ?? 0) + v;
  out.pools = [...pools.values()];
  // Each worker's slots by key.
  const slotOf = parts.map((e) => new Map(e.serviceKeys.map((k, i) => [k, i])));
  const keys: string[] = cfg.services.map((s) => `${s.protocol} ${hostPort(s.vip, s.port)}`);
  for (const e of parts) for (const k of e.serviceKeys) if (!keys.includes(k)) keys.push(k);
  keys.forEach((key, ki) => {
    const s = ki < cfg.services.length ? cfg.services[ki] : undefined;
    const at = parts.map((_, p) => slotOf[p].get(key));
    const first = parts.findIndex((_, p) => at[p] !== undefined);
    const fs = first >= 0 ? at[first]! : -1;
    const svc: ServiceStats = {
      service: key,
      ...splitService(key),
      scheduler: s?.scheduler ?? (first >= 0 ? parts[first].schedulers[fs] : ""),
      draining: s === undefined,
      ...zero(),
      realServers: [],
    };
    parts.forEach((e, p) => at[p] !== undefined && addTraffic(svc, e.services, at[p]!));
    const rsKeys = s ? s.realServers.map((r) => hostPort(r.address, r.port)) : [];
    parts.forEach((e, p) => {
      if (at[p] === undefined) return;
      for (const k of e.serverKeys[at[p]!]) if (!rsKeys.includes(k)) rsKeys.push(k);
    });
    const hcType = (s as { healthCheck?: { type: string } } | undefined)?.healthCheck?.type;
    rsKeys.forEach((rk, ri) => {
      const r = s && ri < s.realServers.length ? s.realServers[ri] : undefined;
      const hp = splitHostPort(rk);
      const h = extras.health?.get(`${key} ${rk}`);
      const rs: RealServerStats = {
        server: rk,
        address: hp.host,
        port: hp.port,
        weight: r?.weight ?? 0,
        effectiveWeight: 0,
        // Checks running (a health map) but no verdict yet: the engine treats a server as up until told.
        health: h?.state ?? (extras.health && hcType !== "none" ? "up" : "unchecked"),
        draining: r === undefined || svc.draining,
        active: 0,
        inactive: 0,
        ...zero(),
      };
      if (h?.reason !== undefined) rs.healthReason = h.reason;
      let effective: number | undefined;
      parts.forEach((e, p) => {
        const si = at[p];
        if (si === undefined) return;
        const j = e.serverKeys[si].indexOf(rk);
        if (j < 0) return;
        addTraffic(rs, e.servers, e.serverSlots[si][j]);
        rs.active += e.active[si][j];
        rs.inactive += e.inactive[si][j];
        effective ??= e.weights[si][j];
        if (r === undefined) rs.weight = e.configuredWeights[si][j];
      });
      // No worker answered yet: what the configuration and the health verdict say.
      rs.effectiveWeight = effective ?? (rs.draining || rs.health === "down" ? 0 : rs.weight);
      // A removed server is listed while its connections run; drained, it is gone (its slot stays in the engine).
      if (rs.draining && rs.active + rs.inactive === 0) return;
      svc.realServers.push(rs);
    });
    if (svc.draining && svc.realServers.length === 0) return;
    out.services.push(svc);
  });
  return out;
}
