/**
 * The FULLNAT gateway (`mod.ts lb`) as a child process inside a namespace, for end-to-end tests: its
 * configuration written to a temp file with a unique TUN name and a control socket in the test's temp
 * dir, started and awaited (bounded) until it prints `fnat-lb ready`, its stats read from the control
 * socket, and stopped with SIGTERM (which removes its TUN).
 *
 * @example
 * ```ts
 * const gw = await startGateway({ ns: t.nsGw, dir: tmp, config: { localAddresses: ["198.18.2.1"],
 *   services: [{ vip: "198.18.0.10", port: 80, scheduler: "rr",
 *     realServers: [{ address: "198.18.3.10", port: 80 }] }] } });
 * console.log((await gw.stats()).events.toa_inserted);
 * const { code } = await gw.stop();
 * ```
 *
 * @module
 */
import { request } from "../../lb/control/client.ts";
import type { GatewayStats } from "../../lb/stats.ts";
import type { Topology } from "../../netns-scripts/topology.ts";
import { type Background, spawnBackground, type Stopped } from "./process.ts";

const REPO = new URL("../..", import.meta.url).pathname;

/** Options of {@link startGateway}. */
export interface GatewayOptions {
  /** Namespace to run in (the topology's gateway namespace). */
  ns: string;
  /** Directory for the configuration file and the control socket. */
  dir: string;
  /** Raw configuration (as in the JSON file); `tun` and `control` are filled in unless given. */
  config: Record<string, unknown>;
  /** Milliseconds to wait for the ready line (default 20 s). */
  timeoutMs?: number;
}

/** A running gateway. */
export interface Gateway {
  /** The configuration as written (with `tun` and `control`). */
  readonly config: Record<string, unknown>;
  /** Path of the configuration file. */
  readonly configPath: string;
  /** Its TUN device name. */
  readonly tun: string;
  /** Its control socket path. */
  readonly control: string;
  /** The `fnat-lb ready …` line it printed. */
  readonly readyLine: string;
  /** The background process. */
  readonly process: Background;
  /** Reads the stats from the control socket. */
  stats(): Promise<GatewayStats>;
  /** SIGTERM, bounded (SIGKILL after 5 s); returns its status and output. Idempotent. */
  stop(): Promise<Stopped>;
}

/** A TUN name unique to this run: `fl` and 8 hex digits (at most 15 bytes, as the kernel requires). */
export function uniqueTunName(): string {
  const b = crypto.getRandomValues(new Uint8Array(4));
  return `fl${Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")}`;
}

/** Starts the gateway in `opts.ns` and waits for its ready line; throws with its stderr if it fails. */
export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const tun = typeof opts.config.tun === "string" ? opts.config.tun : uniqueTunName();
  const control = typeof opts.config.control === "string" ? opts.config.control : `${opts.dir}/${tun}.sock`;
  const config = { ...opts.config, tun, control };
  const configPath = `${opts.dir}/${tun}.json`;
  await Deno.mkdir(opts.dir, { recursive: true });
  await Deno.writeTextFile(configPath, JSON.stringify(config, null, 2));
  const process = spawnBackground([
    "ip",
    "netns",
    "exec",
    opts.ns,
    Deno.execPath(),
    "run",
    "-A",
    `${REPO}mod.ts`,
    "lb",
    "--config",
    configPath,
  ]);
  const ready = () => process.stdout().split("\n").find((l) => l.startsWith("fnat-lb ready"));
  try {
    await process.waitFor(() => ready() !== undefined, "fnat-lb ready", opts.timeoutMs ?? 20_000);
  } catch (e) {
    await process.stop("SIGTERM", 3_000);
    throw e;
  }
  return {
    config,
    configPath,
    tun,
    control,
    readyLine: ready()!,
    process,
    async stats() {
      return JSON.parse(await readControl(control)) as GatewayStats;
    },
    stop: () => process.stop("SIGTERM", 5_000),
  };
}

/** Asks the gateway's control socket for its stats (lb/control/client.ts); the JSON text, bounded by `timeoutMs`. */
export async function readControl(path: string, timeoutMs = 5_000): Promise<string> {
  return JSON.stringify(await request(path, { cmd: "stats" }, { timeoutMs }));
}

/**
 * A TCP service on `vip`:80 (TOA on, the default) to one real server at `address`:`port`, round robin, never
 * health-checked: tests judge counters and logs connection by connection, and want no probe among them (a
 * test that wants probes says so). For a configuration's `services`.
 */
export function oneServerService(vip: string, address: string, port = 80): Record<string, unknown> {
  return {
    vip,
    port: 80,
    scheduler: "rr",
    realServers: [{ address, port }],
    healthCheck: { type: "none" },
  };
}

/** The service most end-to-end tests need: HTTP on `vip`:80 to rs1's nginx ({@link oneServerService}). */
export function rs1HttpService(t: Topology, vip: string): Record<string, unknown> {
  return oneServerService(vip, t.rsIp4[0]);
}
