/**
 * The `lb --list` text: a running gateway's stats laid out as `ipvsadm -Ln` prints IPVS's, so that an
 * operator's eyes and scripts read it the same way. Pure: stats in, text out.
 *
 * The reference lines (ipvsadm 1.31, `ipvsadm.c`: `print_title`, `print_service_entry`, `print_largenum`,
 * `list_conn`), with dpvs's forward name `FullNat`:
 *
 * ```
 * IP Virtual Server version 1.2.1 (size=4096)
 * Prot LocalAddress:Port Scheduler Flags
 *   -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
 * TCP  10.0.0.1:80 rr
 *   -> 192.168.1.2:80               FullNat 1      0          0
 *
 * Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes      (-Ln --stats)
 *   -> RemoteAddress:Port
 * TCP  10.0.0.1:80                         3       15       12     1012     2170
 *
 * Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS      (-Ln --rate)
 *
 * pro expire state       source             virtual            destination           (-Lnc)
 * TCP 14:58  ESTABLISHED 10.0.0.5:51234     10.0.0.1:80        192.168.1.2:80
 * ```
 *
 * Adapted: the title line names fnat-lb and its live connections instead of the IPVS hash size; each real
 * server line ends with a Health column (`up`, `down(reason)`, `unchecked`, then `draining` when a reload
 * removed it); a draining service has `draining` in its Flags; `-Lnc` has dpvs's `local` column between
 * virtual and destination, and its address columns widen to their longest entry (IPv6) instead of
 * overflowing.
 *
 * The types below are the parts of GatewayStats (lb/stats.ts) that the listing reads; a full GatewayStats is
 * assignable to them.
 *
 * @module
 */

import type {
  ConnectionRow,
  GatewayStats,
  PoolStats,
  RealServerStats,
  ServiceStats,
  TrafficStats,
} from "../stats.ts";

/** Traffic counters since start (a service's or a real server's). */
export type ListedTraffic = TrafficStats;
/** A real server as listed. */
export type ListedServer = Omit<RealServerStats, "address" | "port">;
/** A service as listed. */
export type ListedService = Omit<ServiceStats, "realServers"> & { realServers: ListedServer[] };
/** One local address's pool (dpvs's sa_used/sa_free/sa_miss). */
export type ListedPool = PoolStats;
/** The stats the listings read: the parts of GatewayStats that the listings use. */
export type ListedStats = Pick<GatewayStats, "activeConnections" | "pools"> & { services: ListedService[] };
/** One live connection (ipvsadm -Lnc with dpvs's local column). */
export type ListedConnection = ConnectionRow;

/** Per-second rates of one service or real server (ipvsadm --rate: bytes, not bits, per second). */
export interface Rate {
  /** Connections per second. */
  cps: number;
  /** Packets per second client→server. */
  inPps: number;
  /** Packets per second server→client. */
  outPps: number;
  /** Bytes per second client→server. */
  inBps: number;
  /** Bytes per second server→client. */
  outBps: number;
}

/** Rates of every service and its servers between two snapshots. */
export interface GatewayRates {
  /** Per service, keyed and ordered as in the later snapshot. */
  services: (Rate & {
    service: string;
    protocol: "tcp" | "udp";
    vip: string;
    port: number;
    realServers: (Rate & { server: string })[];
  })[];
}

/** ipvsadm's `print_largenum`: 9 columns, K/M/G/T (powers of 1000) past 100 million. */
export function largeNum(n: number): string {
  const i = Math.max(0, Math.floor(n));
  if (i < 1e8) return String(i).padStart(9);
  if (i < 1e9) return `${String(Math.floor(i / 1e3)).padStart(8)}K`;
  if (i < 1e11) return `${String(Math.floor(i / 1e6)).padStart(8)}M`;
  if (i < 1e14) return `${String(Math.floor(i / 1e9)).padStart(8)}G`;
  return `${String(Math.floor(i / 1e12)).padStart(8)}T`;
}

/** "TCP  198.18.0.100:80" / "UDP  [fd00::100]:53": ipvsadm's service name column. */
function serviceName(s: { protocol: "tcp" | "udp"; service: string }): string {
  return `${s.protocol.toUpperCase()}  ${s.service.slice(s.service.indexOf(" ") + 1)}`;
}

function health(r: ListedServer): string {
  const h = r.health === "down" && r.healthReason ? `down(${r.healthReason})` : r.health;
  return r.draining ? `${h} draining` : h;
}

/** The title line, adapted from `IP Virtual Server version … (size=…)`. */
function title(stats: ListedStats): string {
  return `fnat-lb FULLNAT (connections=${stats.activeConnections})`;
}

/** `ipvsadm -Ln`: services, their real servers with Forward `FullNat`, weights, connections and health. */
export function formatList(stats: ListedStats): string {
  const out = [
    title(stats),
    "Prot LocalAddress:Port Scheduler Flags",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn Health",
  ];
  for (const s of stats.services) {
    out.push(`${serviceName(s)} ${s.scheduler}${s.draining ? " draining" : ""}`);
    for (const r of s.realServers) {
      out.push(
        `  -> ${r.server.padEnd(28)} ${"FullNat".padEnd(7)} ${String(r.effectiveWeight).padEnd(6)} ` +
          `${String(r.active).padEnd(10)} ${String(r.inactive).padEnd(10)} ${health(r)}`,
      );
    }
  }
  return out.join("\n") + "\n";
}

function trafficColumns(t: ListedTraffic): string {
  return [t.connectionsTotal, t.packetsIn, t.packetsOut, t.bytesIn, t.bytesOut].map(largeNum).join("");
}

/** `ipvsadm -Ln --stats`: Conns InPkts OutPkts InBytes OutBytes since start, per service and real server. */
export function formatStats(stats: ListedStats): string {
  const out = [
    title(stats),
    "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
    "  -> RemoteAddress:Port",
  ];
  for (const s of stats.services) {
    out.push(`${serviceName(s).padEnd(33)}${trafficColumns(s)}`);
    for (const r of s.realServers) out.push(`  -> ${r.server.padEnd(28)}${trafficColumns(r)}`);
  }
  return out.join("\n") + "\n";
}

function rate(prev: ListedTraffic | undefined, cur: ListedTraffic, seconds: number): Rate {
  // A counter that went backwards (the gateway restarted between the samples) counts from zero.
  const d = (k: keyof ListedTraffic) => {
    const was = prev?.[k] ?? 0;
    return Math.round((cur[k] >= was ? cur[k] - was : cur[k]) / seconds);
  };
  return {
    cps: d("connectionsTotal"),
    inPps: d("packetsIn"),
    outPps: d("packetsOut"),
    inBps: d("bytesIn"),
    outBps: d("bytesOut"),
  };
}

/**
 * Rates between two snapshots `seconds` apart, matched by service and server key (a service or server new
 * in `cur` counts from zero), rounded to whole units as ipvsadm prints them.
 */
export function rates(prev: ListedStats, cur: ListedStats, seconds: number): GatewayRates {
  if (!(seconds > 0)) throw new RangeError(`rates: seconds must be positive, got ${seconds}`);
  const before = new Map(prev.services.map((s) => [s.service, s]));
  return {
    services: cur.services.map((s) => {
      const p = before.get(s.service);
      const servers = new Map(p?.realServers.map((r) => [r.server, r]));
      return {
        service: s.service,
        protocol: s.protocol,
        vip: s.vip,
        port: s.port,
        ...rate(p, s, seconds),
        realServers: s.realServers.map((r) => ({
          server: r.server,
          ...rate(servers.get(r.server), r, seconds),
        })),
      };
    }),
  };
}

function rateColumns(r: Rate): string {
  return ` ${String(r.cps).padStart(8)} ${String(r.inPps).padStart(8)} ${String(r.outPps).padStart(8)}` +
    largeNum(r.inBps) + largeNum(r.outBps);
}

/** `ipvsadm -Ln --rate`: CPS InPPS OutPPS InBPS OutBPS per service and real server. */
export function formatRate(r: GatewayRates): string {
  const out = [
    "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS",
    "  -> RemoteAddress:Port",
  ];
  for (const s of r.services) {
    out.push(`${serviceName(s).padEnd(33)}${rateColumns(s)}`);
    for (const d of s.realServers) out.push(`  -> ${d.server.padEnd(28)}${rateColumns(d)}`);
  }
  return out.join("\n") + "\n";
}

/** `ipvsadm -Lnc` with dpvs's local column: `pro expire state source virtual local destination`. */
export function formatConnections(rows: readonly ListedConnection[]): string {
  // ipvsadm's address columns are 18 wide; here they widen to the longest entry so IPv6 rows stay aligned.
  const w = (k: "source" | "virtual" | "local") => Math.max(18, ...rows.map((r) => r[k].length));
  const [ws, wv, wl] = [w("source"), w("virtual"), w("local")];
  const line = (head: string, src: string, vip: string, local: string, dst: string) =>
    `${head} ${src.padEnd(ws)} ${vip.padEnd(wv)} ${local.padEnd(wl)} ${dst}`;
  const out = [
    "fnat-lb connection entries",
    line(`pro expire ${"state".padEnd(11)}`, "source", "virtual", "local", "destination"),
  ];
  for (const r of rows) {
    const s = Math.max(0, Math.ceil(r.expiresIn));
    const expire = `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
    const head = `${r.proto.toUpperCase().padEnd(3)} ${expire}  ${r.state.padEnd(11)}`;
    out.push(line(head, r.source, r.virtual, r.local, r.destination));
  }
  return out.join("\n") + "\n";
}

/** Local address pools: ports used and free, and misses (no port free), per address, as dpvs counts them. */
export function formatPools(stats: ListedStats): string {
  const wa = Math.max(12, ...stats.pools.map((p) => p.address.length));
  const out = [`${"LocalAddress".padEnd(wa)}      Used      Free    Misses`];
  for (const p of stats.pools) {
    out.push(
      `${p.address.padEnd(wa)}${String(p.used).padStart(10)}${String(p.free).padStart(10)}${
        String(p.misses).padStart(10)
      }`,
    );
  }
  return out.join("\n") + "\n";
}
