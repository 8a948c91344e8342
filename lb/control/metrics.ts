/**
 * The gateway's stats in the Prometheus text exposition format (version 0.0.4), what `GET /metrics` serves.
 *
 * ```
 * # HELP fnat_lb_backend_connections_active Established connections to a real server now.
 * # TYPE fnat_lb_backend_connections_active gauge
 * fnat_lb_backend_connections_active{local_address="198.18.0.100",local_port="80",proto="TCP",remote_address="198.18.3.10",remote_port="80"} 3
 * ```
 *
 * Names and labels follow node_exporter's IPVS collector (`collector/ipvs_linux.go`) so that dashboards and
 * alerts written for kernel IPVS carry over with the prefix changed:
 *
 * | here                                   | node_exporter                            |
 * | -------------------------------------- | ---------------------------------------- |
 * | `fnat_lb_backend_connections_active`   | `node_ipvs_backend_connections_active`   |
 * | `fnat_lb_backend_connections_inactive` | `node_ipvs_backend_connections_inactive` |
 * | `fnat_lb_backend_weight`               | `node_ipvs_backend_weight`               |
 * | `fnat_lb_service_connections_total` …  | `node_ipvs_connections_total` …          |
 *
 * node_exporter's `connections_total`, `incoming_packets_total` etc. are whole-host sums; here they are per
 * service (labels `local_address`, `local_port`, `proto`) and per real server (plus `remote_address`,
 * `remote_port`), and `sum()` gives the host figure. As there, addresses are bare (`fd00::100`, no
 * brackets) and `proto` is upper case (`TCP`, `UDP`). node_exporter's `local_mark` (fwmark services) has no
 * counterpart: every service here is an address and a port.
 *
 * Everything else (health, effective weight, drops, events, worker loops, local address pools, reloads,
 * uptime) is ours, named after what it counts; counters end in `_total`, gauges do not.
 *
 * @module
 */
import type { GatewayStats, TrafficStats } from "../stats.ts";

/** The Content-Type of {@link renderMetrics}'s output. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Record<string, string>;
interface Family {
  help: string;
  type: "counter" | "gauge";
  samples: string[];
}

/** A label value escaped for the exposition format: backslash, double quote and line feed. */
function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** HELP text escaped: backslash and line feed. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A sample value: Go's float formatting for the specials, integers without exponent. */
function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** A metric-name fragment from a free-form key: anything outside `[a-zA-Z0-9_]` becomes `_`. */
function nameFragment(key: string): string {
  return key.replace(/[^a-zA-Z0-9_]/g, "_");
}

/** An address without the brackets of a `[v6]` form, as node_exporter prints it. */
function bare(address: string): string {
  return address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address;
}

/** Collects samples by family, in first-seen order, so each family's HELP/TYPE comes once, its samples together. */
class Exposition {
  #families = new Map<string, Family>();

  add(name: string, type: Family["type"], help: string, labels: Labels, value: number): void {
    let f = this.#families.get(name);
    if (f === undefined) {
      f = { help, type, samples: [] };
      this.#families.set(name, f);
    }
    const keys = Object.keys(labels);
    const ls = keys.length === 0 ? "" : `{${keys.map((k) => `${k}="${escapeLabel(labels[k])}"`).join(",")}}`;
    f.samples.push(`${name}${ls} ${formatValue(value)}`);
  }

  text(): string {
    const out: string[] = [];
    for (const [name, f] of this.#families) {
      out.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.type}`, ...f.samples);
    }
    return out.length === 0 ? "" : out.join("\n") + "\n";
  }
}

/** Known worker-loop counters: metric name (after `fnat_lb_worker_`), extra labels, help. */
const WORKER_COUNTERS: Record<string, [string, Labels, string]> = {
  rx_packets: ["rx_packets_total", {}, "Packets a worker read from its TUN queue."],
  tx_packets: ["tx_packets_total", {}, "Packets a worker wrote to its TUN queue."],
  tx_dropped: [
    "tx_dropped_total",
    {},
    "Packets the TUN queue refused to take (see fnat_lb_worker_tx_errors_total).",
  ],
  handoff_out: [
    "handoff_packets_total",
    { direction: "out" },
    "Packets handed to (out) or taken from (in) another worker that owns the connection.",
  ],
  handoff_in: [
    "handoff_packets_total",
    { direction: "in" },
    "Packets handed to (out) or taken from (in) another worker that owns the connection.",
  ],
  handoff_ring_full: ["handoff_ring_full_total", {}, "Packets dropped because a hand-off ring was full."],
  loop_errors: ["loop_errors_total", {}, "Errors caught in a worker's loop."],
  loop_turns: ["loop_turns_total", {}, "Turns of a worker's loop."],
  gso_packets: ["gso_packets_total", {}, "GSO super-packets a worker read."],
  csum_partial: ["csum_partial_packets_total", {}, "Packets read with a partial checksum (offload)."],
  rx_syn_packets: [
    "rx_syn_packets_total",
    {},
    "Connection attempts (TCP SYN without ACK) a worker read from its SYN queue; also in rx_packets.",
  ],
  syn_budget_exhausted: [
    "syn_budget_exhausted_total",
    {},
    "Loop turns that read a whole SYN budget: SYNs arrived faster than a worker admits them.",
  ],
  busy_polls: [
    "busy_polls_total",
    {},
    "Busy polls (busyPollUs) a worker ran after a loop turn with packets.",
  ],
  busy_poll_hits: [
    "busy_poll_hits_total",
    {},
    "Busy polls that found packets or a request before their time ran out.",
  ],
};

/** The five traffic counters of a service and of a real server: metric suffix, field, HELP of each. */
const TRAFFIC: readonly (readonly [string, keyof TrafficStats, string, string])[] = [
  [
    "connections_total",
    "connectionsTotal",
    "Connections created to a service (node_ipvs_connections_total, per service).",
    "Connections created to a real server.",
  ],
  [
    "incoming_packets_total",
    "packetsIn",
    "Packets client to server of a service (node_ipvs_incoming_packets_total, per service).",
    "Packets client to server through a real server.",
  ],
  [
    "outgoing_packets_total",
    "packetsOut",
    "Packets server to client of a service (node_ipvs_outgoing_packets_total, per service).",
    "Packets server to client from a real server.",
  ],
  [
    "incoming_bytes_total",
    "bytesIn",
    "IP bytes client to server of a service (node_ipvs_incoming_bytes_total, per service).",
    "IP bytes client to server through a real server.",
  ],
  [
    "outgoing_bytes_total",
    "bytesOut",
    "IP bytes server to client of a service (node_ipvs_outgoing_bytes_total, per service).",
    "IP bytes server to client from a real server.",
  ],
];

/** Adds a service's or a real server's traffic counters under `prefix` (`fnat_lb_service_`, `…backend_`). */
function addTraffic(
  e: Exposition,
  prefix: string,
  labels: Labels,
  t: TrafficStats,
  of: "service" | "backend",
) {
  for (const [name, field, serviceHelp, backendHelp] of TRAFFIC) {
    e.add(`${prefix}${name}`, "counter", of === "service" ? serviceHelp : backendHelp, labels, t[field]);
  }
}

/**
 * The stats as Prometheus text exposition (format 0.0.4): per service and real server (node_exporter IPVS
 * labels), drops by reason, events, per-worker loop counters, local address pools, reloads, uptime.
 *
 * @example
 * ```ts
 * const text = renderMetrics(await stats());
 * // text.includes('fnat_lb_backend_up{local_address="198.18.0.100",…} 1')
 * ```
 */
export function renderMetrics(stats: GatewayStats): string {
  const e = new Exposition();
  const p = "fnat_lb_";

  e.add(`${p}uptime_seconds`, "gauge", "Seconds since the gateway started.", {}, stats.uptimeSeconds);
  e.add(
    `${p}connection_table_entries`,
    "gauge",
    "Live connection entries over all workers (ipvsadm ActiveConn + InActConn).",
    {},
    stats.activeConnections,
  );

  for (const s of stats.services) {
    const svc: Labels = {
      local_address: bare(s.vip),
      local_port: String(s.port),
      proto: s.protocol.toUpperCase(),
    };
    e.add(`${p}service_info`, "gauge", "A service, with its scheduler; always 1.", {
      ...svc,
      scheduler: s.scheduler,
    }, 1);
    e.add(
      `${p}service_draining`,
      "gauge",
      "1 when a reload removed the service and its connections still run, else 0.",
      svc,
      s.draining ? 1 : 0,
    );
    addTraffic(e, `${p}service_`, svc, s, "service");
  }

  for (const s of stats.services) {
    const svc: Labels = {
      local_address: bare(s.vip),
      local_port: String(s.port),
      proto: s.protocol.toUpperCase(),
    };
    for (const r of s.realServers) {
      const be: Labels = { ...svc, remote_address: bare(r.address), remote_port: String(r.port) };
      e.add(
        `${p}backend_connections_active`,
        "gauge",
        "Established connections to a real server now (node_ipvs_backend_connections_active).",
        be,
        r.active,
      );
      e.add(
        `${p}backend_connections_inactive`,
        "gauge",
        "Other live connections to a real server now (node_ipvs_backend_connections_inactive).",
        be,
        r.inactive,
      );
      e.add(
        `${p}backend_weight`,
        "gauge",
        "A real server's configured weight (node_ipvs_backend_weight).",
        be,
        r.weight,
      );
      e.add(
        `${p}backend_effective_weight`,
        "gauge",
        "The weight the scheduler uses: 0 while the server is down or draining.",
        be,
        r.effectiveWeight,
      );
      e.add(
        `${p}backend_up`,
        "gauge",
        "0 when the health check holds a real server down, else 1 (unchecked servers count as up).",
        be,
        r.health === "down" ? 0 : 1,
      );
      for (const state of ["up", "down", "unchecked"] as const) {
        e.add(
          `${p}backend_health_state`,
          "gauge",
          "A real server's health check state, one series per state: 1 for the current one.",
          { ...be, state },
          r.health === state ? 1 : 0,
        );
      }
      e.add(
        `${p}backend_draining`,
        "gauge",
        "1 when a reload removed the real server and its connections still run, else 0.",
        be,
        r.draining ? 1 : 0,
      );
      addTraffic(e, `${p}backend_`, be, r, "backend");
    }
  }

  for (const reason of Object.keys(stats.drops).sort()) {
    e.add(`${p}drops_total`, "counter", "Packets dropped, by reason.", { reason }, stats.drops[reason]);
  }
  for (const event of Object.keys(stats.events).sort()) {
    e.add(`${p}events_total`, "counter", "Engine events, by name.", { event }, stats.events[event]);
  }

  for (const w of stats.workers) {
    const wl: Labels = { worker: String(w.worker) };
    e.add(
      `${p}worker_connection_table_entries`,
      "gauge",
      "Live connection entries in a worker's table.",
      wl,
      w.activeConnections,
    );
  }
  for (const w of stats.workers) {
    const wl: Labels = { worker: String(w.worker) };
    for (const key of Object.keys(w.runtime).sort()) {
      const v = w.runtime[key];
      const known = WORKER_COUNTERS[key];
      if (known !== undefined) {
        e.add(`${p}worker_${known[0]}`, "counter", known[2], { ...wl, ...known[1] }, v);
      } else if (key.startsWith("tx_error_")) {
        e.add(
          `${p}worker_tx_errors_total`,
          "counter",
          "TUN writes refused, by errno name.",
          { ...wl, errno: key.slice("tx_error_".length) },
          v,
        );
      } else {
        const n = nameFragment(key);
        e.add(
          `${p}worker_${n}${n.endsWith("_total") ? "" : "_total"}`,
          "counter",
          `Worker loop counter ${key}.`,
          wl,
          v,
        );
      }
    }
  }

  const tunTxDropped = stats.runtime.tun_tx_dropped;
  if (tunTxDropped !== undefined) {
    e.add(
      `${p}tun_tx_dropped_total`,
      "counter",
      "Packets the kernel dropped at a full TUN queue ring (txqueuelen packets) before any worker read them.",
      {},
      tunTxDropped,
    );
  }

  for (const pool of stats.pools) {
    const al: Labels = { address: bare(pool.address) };
    e.add(
      `${p}local_pool_ports_used`,
      "gauge",
      "Ports of a local address in use (dpvs sa_used).",
      al,
      pool.used,
    );
    e.add(
      `${p}local_pool_ports_free`,
      "gauge",
      "Ports of a local address free (dpvs sa_free).",
      al,
      pool.free,
    );
    e.add(
      `${p}local_pool_misses_total`,
      "counter",
      "Connections refused for want of a free port on a local address (dpvs sa_miss).",
      al,
      pool.misses,
    );
  }

  const reloadHelp = "Config reloads, by result.";
  e.add(`${p}reloads_total`, "counter", reloadHelp, { result: "ok" }, stats.reloads.ok);
  e.add(`${p}reloads_total`, "counter", reloadHelp, { result: "failed" }, stats.reloads.failed);
  const last = stats.reloads.last;
  if (last !== undefined) {
    e.add(
      `${p}last_reload_success`,
      "gauge",
      "1 when the last config reload succeeded, 0 when it failed.",
      {},
      last.ok ? 1 : 0,
    );
    const at = Date.parse(last.at);
    if (!Number.isNaN(at)) {
      e.add(
        `${p}last_reload_timestamp_seconds`,
        "gauge",
        "When the last config reload was tried, in seconds since the epoch.",
        {},
        at / 1000,
      );
    }
  }
  return e.text();
}
