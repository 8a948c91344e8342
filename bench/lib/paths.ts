/**
 * The forwarding paths the comparison measures, each set up inside the benchmark's own gateway namespace
 * and removed again after its measurements, so one path never shapes the next:
 *
 *   direct    client → rs1 by the gw namespace's kernel forwarding, no NAT (the limit)
 *   nft       nftables in the gw namespace: DNAT VIP → real server (round robin for HTTP), SNAT to 198.18.3.1
 *   haproxy   Debian's HAProxy, `mode tcp`, on a VIP on the gw namespace's loopback
 *   gwN       the FULLNAT gateway (`mod.ts lb`) with N workers, optionally with `"offload"` and
 *             `"busyPollUs"` set
 *
 * Addresses (all in 198.18.0.0/15):
 *
 *   198.18.0.10   gateway VIP          198.18.2.(8k+1..8k+4)  gateway local addresses, k = the path's index
 *   198.18.0.20   HAProxy VIP          198.18.3.1             gw address on the real-server bridge (SNAT)
 *   198.18.0.30   nftables VIP         198.18.3.10, .11       rs1, rs2 (nginx :80; iperf3 -s on rs1 :5201)
 *
 * Each gateway run gets local addresses of its own: the real servers keep the previous run's connections
 * in TIME_WAIT for 60 s, and the gateway strips the SYN's timestamps, so reusing a (local address, port)
 * pair of the previous run would make some SYNs bounce off a TIME_WAIT entry. With `--shared-local` they do
 * meet them on purpose: nftables SNATs to the gateways' addresses (198.18.2.1–4) and every gateway uses the
 * same four, so the gateway's figures show what its takeover of those tuples costs (its notes count them).
 *
 * @module
 */
import type { Topology } from "../../netns-scripts/topology.ts";
import { startGateway } from "../../tests/helpers/gateway.ts";
import { type Background, spawnBackground, waitListening } from "../../tests/helpers/process.ts";
import { nsRun, nsRunOk, workerPid } from "./proc.ts";

/** Port of the HTTP service (nginx on the real servers). */
export const HTTP_PORT = 80;
/** Port of the bulk service (iperf3 server on rs1). */
export const BULK_PORT = 5201;
/** The gateway's VIP. */
export const GW_VIP = "198.18.0.10";
/** HAProxy's VIP (on the gw namespace's loopback). */
export const HAPROXY_VIP = "198.18.0.20";
/** The nftables VIP (DNAT in prerouting; no address anywhere). */
export const NFT_VIP = "198.18.0.30";
/** With `--shared-local`: every gateway's local addresses, and nftables' SNAT range. */
export const SHARED_LOCAL = ["198.18.2.1", "198.18.2.2", "198.18.2.3", "198.18.2.4"];

/** Which path, parsed from `--paths`. */
export interface PathSpec {
  /** Short name shown in the tables: direct, nft, haproxy, gw1, gw2+offload, … */
  name: string;
  /** Kind of path. */
  kind: "direct" | "nft" | "haproxy" | "gw";
  /** Gateway workers (kind gw). */
  workers?: number;
  /** Gateway `"offload"` value; undefined leaves the key out (the gateway's default). */
  offload?: boolean;
  /** Gateway `"busyPollUs"` value; undefined leaves the key out (off). */
  busyPollUs?: number;
}

/** A path that is up: where to send load, whose CPU to count, how to take it down. */
export interface PathHandle {
  /** Host the iperf3 client connects to. */
  bulkHost: string;
  /** URL of the small file for ab and wrk. */
  url: string;
  /** The userspace process forwarding the traffic (HAProxy, the gateway); undefined for kernel paths. */
  pid?: number;
  /** One-line facts about the path gathered after the load (counters, drops). */
  notes(): Promise<string[]>;
  /** Takes the path down; never throws. */
  stop(): Promise<void>;
}

/** What setting up a path needs. */
export interface PathEnv {
  /** The topology. */
  t: Topology;
  /** Directory for configuration files. */
  dir: string;
  /** File name of the small file on the real servers. */
  file: string;
  /** Steering mode for gateways with several workers. */
  steering: string;
  /** Index of this path in the run (picks the gateway's local addresses). */
  index: number;
  /**
   * Every gateway uses 198.18.2.1–4, and nftables SNATs to them too: each path meets the TIME_WAIT tuples the
   * previous ones left on the real servers (the gateway takes them over), instead of addresses of its own.
   */
  sharedLocal: boolean;
  /** Every background process started, for the final teardown and leftover check. */
  track(p: Background): void;
  /** Every TUN created, for the leftover check. */
  trackTun(name: string): void;
}

/** Parses one `--paths` item: direct, nft, haproxy, or gwN (N workers, 1..64). */
export function parsePathName(name: string): Omit<PathSpec, "offload"> {
  if (name === "direct" || name === "nft" || name === "haproxy") return { name, kind: name };
  const m = /^gw([0-9]+)$/.exec(name);
  if (m && Number(m[1]) >= 1 && Number(m[1]) <= 64) return { name, kind: "gw", workers: Number(m[1]) };
  throw new Error(
    `--paths: unknown path ${JSON.stringify(name)}; known: direct, nft, haproxy, gw1, gw2, … gw64`,
  );
}

/** iperf3 server on rs1, for the whole run. */
export async function startIperf3Server(env: PathEnv): Promise<Background> {
  const { t } = env;
  const p = spawnBackground([
    "ip",
    "netns",
    "exec",
    t.nsRs[0],
    "iperf3",
    "-s",
    "-B",
    t.rsIp4[0],
    "-p",
    `${BULK_PORT}`,
  ]);
  env.track(p);
  await waitListening(t.nsRs[0], [`${t.rsIp4[0]}:${BULK_PORT}`], p, "iperf3 -s");
  return p;
}

function direct(env: PathEnv): PathHandle {
  const rs1 = env.t.rsIp4[0];
  return {
    bulkHost: rs1,
    url: `http://${rs1}/${env.file}`,
    notes: () => Promise.resolve(["HTTP to rs1 only (no balancing)"]),
    stop: () => Promise.resolve(),
  };
}

/** The nftables ruleset of the `nft` path. */
export function nftRuleset(t: Topology, sharedLocal = false): string {
  const snat = sharedLocal ? `${SHARED_LOCAL[0]}-${SHARED_LOCAL[SHARED_LOCAL.length - 1]}` : t.gwRsIp4;
  const rs = t.rsIp4.map((a, i) => `${i} : ${a}`).join(", ");
  return `table ip fnatbench {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${NFT_VIP} tcp dport ${BULK_PORT} dnat to ${t.rsIp4[0]}
    ip daddr ${NFT_VIP} tcp dport ${HTTP_PORT} dnat to numgen inc mod ${t.rsIp4.length} map { ${rs} }
  }
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    ct status dnat ip daddr ${t.gwRsIp4}/24 snat to ${snat}
  }
}
`;
}

async function nft(env: PathEnv): Promise<PathHandle> {
  const { t } = env;
  const file = `${env.dir}/nft.conf`;
  await Deno.writeTextFile(file, nftRuleset(t, env.sharedLocal));
  await nsRunOk(t.nsGw, ["nft", "-f", file], 10_000);
  return {
    bulkHost: NFT_VIP,
    url: `http://${NFT_VIP}/${env.file}`,
    async notes() {
      const r = await nsRun(t.nsGw, ["sh", "-c", "cat /proc/sys/net/netfilter/nf_conntrack_count"], 5_000);
      return [`conntrack entries after the run: ${r.stdout.trim() || "?"}`];
    },
    async stop() {
      await nsRun(t.nsGw, ["nft", "delete", "table", "ip", "fnatbench"], 10_000).catch(() => {});
    },
  };
}

/** HAProxy's configuration for the `haproxy` path: two TCP frontends on its VIP. */
export function haproxyConfig(t: Topology): string {
  const servers = t.rsIp4.map((a, i) => `  server rs${i + 1} ${a}:${HTTP_PORT}`).join("\n");
  return `# generated by bench/lib/paths.ts
global
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend bulk
  bind ${HAPROXY_VIP}:${BULK_PORT}
  default_backend bulk
backend bulk
  server rs1 ${t.rsIp4[0]}:${BULK_PORT}
frontend http
  bind ${HAPROXY_VIP}:${HTTP_PORT}
  default_backend http
backend http
  balance roundrobin
${servers}
`;
}

async function haproxy(env: PathEnv): Promise<PathHandle> {
  const { t } = env;
  const cfg = `${env.dir}/haproxy.cfg`;
  await Deno.writeTextFile(cfg, haproxyConfig(t));
  await nsRunOk(t.nsGw, ["haproxy", "-c", "-q", "-f", cfg], 10_000);
  await nsRunOk(t.nsGw, ["ip", "addr", "add", `${HAPROXY_VIP}/32`, "dev", "lo"], 5_000);
  const p = spawnBackground(["ip", "netns", "exec", t.nsGw, "haproxy", "-db", "-f", cfg]);
  env.track(p);
  const stop = async () => {
    await p.stop("SIGTERM", 3_000).catch(() => {});
    await nsRun(t.nsGw, ["ip", "addr", "del", `${HAPROXY_VIP}/32`, "dev", "lo"], 5_000).catch(() => {});
  };
  try {
    await waitListening(t.nsGw, [`${HAPROXY_VIP}:${HTTP_PORT}`, `${HAPROXY_VIP}:${BULK_PORT}`], p, "haproxy");
    const pid = await workerPid(p.pid);
    const threads = [...Deno.readDirSync(`/proc/${pid}/task`)].length;
    return {
      bulkHost: HAPROXY_VIP,
      url: `http://${HAPROXY_VIP}/${env.file}`,
      pid,
      notes: () => Promise.resolve([`haproxy threads: ${threads}`]),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The gateway configuration of a `gwN` path. */
export function gatewayConfig(
  t: Topology,
  spec: PathSpec,
  steering: string,
  index: number,
  sharedLocal = false,
) {
  const base = 8 * (index % 31);
  const config: Record<string, unknown> = {
    workers: spec.workers ?? 1,
    localAddresses: sharedLocal ? SHARED_LOCAL : [1, 2, 3, 4].map((i) => `198.18.2.${base + i}`),
    services: [
      {
        vip: GW_VIP,
        port: HTTP_PORT,
        scheduler: "rr",
        realServers: t.rsIp4.map((a) => ({ address: a, port: HTTP_PORT })),
      },
      {
        vip: GW_VIP,
        port: BULK_PORT,
        scheduler: "rr",
        realServers: [{ address: t.rsIp4[0], port: BULK_PORT }],
      },
    ],
  };
  if ((spec.workers ?? 1) > 1) config.steering = steering;
  if (spec.offload !== undefined) config.offload = spec.offload;
  if (spec.busyPollUs !== undefined) config.busyPollUs = spec.busyPollUs;
  return config;
}

async function gateway(env: PathEnv, spec: PathSpec): Promise<PathHandle> {
  const { t } = env;
  const gw = await startGateway({
    ns: t.nsGw,
    dir: `${env.dir}/${spec.name.replace(/[^A-Za-z0-9]/g, "_")}`,
    config: gatewayConfig(t, spec, env.steering, env.index, env.sharedLocal),
  });
  env.track(gw.process);
  env.trackTun(gw.tun);
  const ready = gw.readyLine.replace(/^fnat-lb ready /, "").replace(/ control=\S+/, "");
  return {
    bulkHost: GW_VIP,
    url: `http://${GW_VIP}/${env.file}`,
    pid: await workerPid(gw.process.pid),
    async notes() {
      const out = [`ready: ${ready}`];
      // One-line log events the gateway printed (a steering fallback and its reason, for one).
      out.push(...gw.process.stderr().split("\n").filter((l) => l.startsWith("fnat-lb ")).slice(0, 5));
      try {
        const s = await gw.stats();
        const drops = Object.entries(s.drops).filter(([, n]) => n > 0).map(([k, n]) => `${k}=${n}`);
        out.push(`drops: ${drops.length ? drops.join(", ") : "none"}`);
        // Tuples a real server still held (TIME_WAIT of an earlier path): taken over with a RST, then the SYN.
        if (s.events.takeover_rst) out.push(`takeovers: ${s.events.takeover_rst}`);
        const conns = s.services.map((v) => `${v.service} ${v.connectionsTotal}`).join(", ");
        out.push(`connections created: ${conns}`);
        // The loop's shape: packets per turn (turns that polled) and packets per connection created.
        const r = s.runtime;
        const created = s.services.reduce((a, v) => a + v.connectionsTotal, 0);
        out.push(
          `loop: turns=${r.loop_turns} rx_packets=${r.rx_packets} tx_packets=${r.tx_packets} ` +
            `packets/turn=${(r.rx_packets / Math.max(1, r.loop_turns)).toFixed(1)} ` +
            `rx_packets/connection=${(r.rx_packets / Math.max(1, created)).toFixed(1)}`,
        );
      } catch (e) {
        out.push(`stats unavailable: ${(e as Error).message}`);
      }
      return out;
    },
    async stop() {
      const r = await gw.stop().catch(() => undefined);
      if (r && r.code !== 0 && r.signal !== "SIGTERM") {
        console.error(`bench: gateway ${spec.name} exited ${r.code}: ${r.stderr.trim().split("\n").pop()}`);
      }
    },
  };
}

/** Sets up `spec` in the gw namespace; throws (having cleaned up) when it cannot. */
export function setUpPath(env: PathEnv, spec: PathSpec): Promise<PathHandle> {
  switch (spec.kind) {
    case "direct":
      return Promise.resolve(direct(env));
    case "nft":
      return nft(env);
    case "haproxy":
      return haproxy(env);
    case "gw":
      return gateway(env, spec);
  }
}
