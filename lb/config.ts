/**
 * The gateway's JSON configuration: parsing and validation into a {@link GatewayConfig}. Every error names
 * the field and what would fix it, and stops the start before anything is created.
 *
 * ```json
 * { "tun": "fnat0", "workers": 1, "localAddresses": ["198.18.2.1", "198.18.2.2"],
 *   "services": [ { "vip": "198.18.0.100", "port": 80, "protocol": "tcp", "scheduler": "rr", "toa": true,
 *       "realServers": [ { "address": "198.18.3.10", "port": 80, "weight": 1 } ] } ] }
 * ```
 *
 * Addresses are parsed here, once: the validated configuration carries {@link IpAddress} values (family and
 * words), plain data that survives `postMessage` to the workers.
 *
 * @module
 */
import { hostPort, type IpAddress, ipAddressEquals, parseIpAddress } from "../base/addr.ts";
import { SCHEDULER_NAMES } from "./engine/scheduler/mod.ts";

/** Per-state idle timeouts in seconds (defaults follow IPVS's TCP state timeouts). */
export interface Timeouts {
  /** Client SYN forwarded, no SYN-ACK from the real server yet. */
  synSent: number;
  /** SYN-ACK forwarded, handshake not completed by the client's ACK yet. */
  synRecv: number;
  /** Handshake done, data flowing. */
  established: number;
  /** One side has sent FIN. */
  finWait: number;
  /** Both sides have sent FIN. */
  timeWait: number;
  /** A RST was seen; the entry lingers to map stray segments. */
  close: number;
  /** A UDP flow. */
  udp: number;
}

/** IPVS's defaults, in seconds. */
export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = {
  synSent: 120,
  synRecv: 60,
  established: 900,
  finWait: 120,
  timeWait: 120,
  close: 10,
  udp: 300,
};

/** One real server behind a service. */
export interface RealServerConfig {
  /** Address, same family as the service's VIP. */
  address: IpAddress;
  /** TCP/UDP port. */
  port: number;
  /** Scheduling weight; 0 drains the server. */
  weight: number;
}

/** One virtual service: VIP, port and protocol, and the real servers it balances over. */
export interface ServiceConfig {
  /** Virtual IP address. */
  vip: IpAddress;
  /** Virtual port. */
  port: number;
  /** "tcp" or "udp". */
  protocol: "tcp" | "udp";
  /** Scheduler name. */
  scheduler: string;
  /** Insert TOA toward the real servers (TCP only). */
  toa: boolean;
  /** The real servers. */
  realServers: RealServerConfig[];
}

/** The whole validated configuration. */
export interface GatewayConfig {
  /** TUN device name (at most 15 bytes). */
  tun: string;
  /** Number of workers (one TUN queue each). */
  workers: number;
  /** Local (source) addresses for the real-server side. */
  localAddresses: IpAddress[];
  /** First and last local port handed out, inclusive. */
  portRange: [number, number];
  /** Upper bound of connection entries per gateway. */
  maxConnections: number;
  /** MTU of the paths; the MSS of SYNs is clamped to fit it with TOA. */
  mtu: number;
  /** Idle timeouts per state. */
  timeouts: Timeouts;
  /** Services. */
  services: ServiceConfig[];
  /** Path of the control socket that `lb --stats` reads. */
  control: string;
  /**
   * How packets reach the worker owning their connection: "bpf" (a TUN steering program; fails the start
   * if it cannot load), "handoff" (the kernel's own queue choice, then shared-memory rings between
   * workers), "auto" (bpf, falling back to handoff with a log line).
   */
  steering: "auto" | "bpf" | "handoff";
  /**
   * Use TUN offloads (IFF_VNET_HDR with checksum, TCP and UDP segmentation offload): the kernel hands over up to
   * 64 KiB super-packets, whose headers are rewritten once. Default true.
   */
  offload: boolean;
  /**
   * Most replies the gateway generates per second (RSTs and ICMP port unreachables for VIP ports without a
   * service, echo replies), all workers together; past it they are dropped and counted. 0: never answer.
   */
  replyRate: number;
}

/** A configuration error: `field` says where, the message says what is wrong and what is expected. */
export class ConfigError extends Error {
  /** JSON path of the offending field, such as `services[0].realServers[1].port`. */
  readonly field: string;
  /** Builds the error with its field path. */
  constructor(field: string, message: string) {
    super(`config: ${field}: ${message}`);
    this.name = "ConfigError";
    this.field = field;
  }
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function int(o: Obj, key: string, path: string, min: number, max: number, def?: number): number {
  const v = o[key];
  if (v === undefined && def !== undefined) return def;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(
      `${path}${key}`,
      `expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function address(v: unknown, field: string): IpAddress {
  const a = typeof v === "string" ? parseIpAddress(v) : null;
  if (a === null) throw new ConfigError(field, `expected an IPv4 or IPv6 address, got ${JSON.stringify(v)}`);
  return a;
}

const KNOWN_TOP = new Set([
  "tun",
  "workers",
  "localAddresses",
  "portRange",
  "maxConnections",
  "mtu",
  "timeouts",
  "services",
  "control",
  "steering",
  "offload",
  "replyRate",
]);

/** Validates a parsed JSON value; throws {@link ConfigError} naming the first bad field. */
export function validateConfig(raw: unknown): GatewayConfig {
  if (!isObj(raw)) throw new ConfigError("(top)", "expected a JSON object");
  for (const k of Object.keys(raw)) {
    if (!KNOWN_TOP.has(k)) throw new ConfigError(k, `unknown key; known keys: ${[...KNOWN_TOP].join(", ")}`);
  }
  const tun = raw.tun ?? "fnat0";
  if (typeof tun !== "string" || !/^[A-Za-z0-9_.-]{1,15}$/.test(tun)) {
    throw new ConfigError("tun", `expected an interface name of 1–15 letters, digits, '_', '.', '-'`);
  }
  const workers = int(raw, "workers", "", 1, 64, 1);
  if (!Array.isArray(raw.localAddresses) || raw.localAddresses.length === 0) {
    throw new ConfigError("localAddresses", "expected a non-empty array of addresses");
  }
  const localAddresses = raw.localAddresses.map((a, i) => address(a, `localAddresses[${i}]`));
  // Compared as addresses, not text: "fd00::1" and "FD00:0::1" are the same local address.
  if (localAddresses.some((a, i) => localAddresses.findIndex((b) => ipAddressEquals(a, b)) !== i)) {
    throw new ConfigError("localAddresses", "an address is listed twice");
  }
  let portRange: [number, number] = [1025, 65535];
  if (raw.portRange !== undefined) {
    const r = raw.portRange;
    if (
      !Array.isArray(r) || r.length !== 2 || !r.every((x) => Number.isInteger(x) && x >= 1 && x <= 65535) ||
      r[0] > r[1]
    ) {
      throw new ConfigError("portRange", "expected [first, last] with 1 <= first <= last <= 65535");
    }
    portRange = [r[0], r[1]];
  }
  if (portRange[1] - portRange[0] + 1 < workers) {
    throw new ConfigError("portRange", `needs at least one port per worker (${workers} workers)`);
  }
  const maxConnections = int(raw, "maxConnections", "", 1, 16_000_000, 1_000_000);
  const mtu = int(raw, "mtu", "", 576, 65535, 1500);
  const timeouts: Timeouts = { ...DEFAULT_TIMEOUTS };
  if (raw.timeouts !== undefined) {
    if (!isObj(raw.timeouts)) throw new ConfigError("timeouts", "expected an object of seconds per state");
    for (const k of Object.keys(raw.timeouts)) {
      if (!(k in DEFAULT_TIMEOUTS)) {
        throw new ConfigError(
          `timeouts.${k}`,
          `unknown state; known: ${Object.keys(DEFAULT_TIMEOUTS).join(", ")}`,
        );
      }
      timeouts[k as keyof Timeouts] = int(raw.timeouts, k, "timeouts.", 1, 7 * 86400);
    }
  }
  if (!Array.isArray(raw.services) || raw.services.length === 0) {
    throw new ConfigError("services", "expected a non-empty array of services");
  }
  const seen = new Set<string>();
  const services = raw.services.map((s, i): ServiceConfig => {
    const p = `services[${i}].`;
    if (!isObj(s)) throw new ConfigError(`services[${i}]`, "expected an object");
    const vip = address(s.vip, `${p}vip`);
    const fam = vip.family;
    const port = int(s, "port", p, 1, 65535);
    const protocol = s.protocol ?? "tcp";
    if (protocol !== "tcp" && protocol !== "udp") {
      throw new ConfigError(`${p}protocol`, `expected "tcp" or "udp", got ${JSON.stringify(protocol)}`);
    }
    const key = `${protocol} ${hostPort(vip, port)}`;
    if (seen.has(key)) throw new ConfigError(`${p}vip`, `${key} is defined twice`);
    seen.add(key);
    const scheduler = s.scheduler ?? "wlc";
    if (typeof scheduler !== "string" || !(SCHEDULER_NAMES as readonly string[]).includes(scheduler)) {
      throw new ConfigError(
        `${p}scheduler`,
        `expected one of ${SCHEDULER_NAMES.join(", ")}, got ${JSON.stringify(scheduler)}`,
      );
    }
    const toa = s.toa ?? true;
    if (typeof toa !== "boolean") throw new ConfigError(`${p}toa`, "expected true or false");
    if (!Array.isArray(s.realServers) || s.realServers.length === 0) {
      throw new ConfigError(`${p}realServers`, "expected a non-empty array of real servers");
    }
    const realServers = s.realServers.map((r, j): RealServerConfig => {
      const rp = `${p}realServers[${j}].`;
      if (!isObj(r)) throw new ConfigError(`${p}realServers[${j}]`, "expected an object");
      const a = address(r.address, `${rp}address`);
      if (a.family !== fam) {
        throw new ConfigError(`${rp}address`, `must be IPv${fam} like the service's vip ${vip.text}`);
      }
      return {
        address: a,
        port: int(r, "port", rp, 1, 65535, port),
        weight: int(r, "weight", rp, 0, 65535, 1),
      };
    });
    if (!localAddresses.some((a) => a.family === fam)) {
      throw new ConfigError(`${p}vip`, `no IPv${fam} address in localAddresses to reach its real servers`);
    }
    return { vip, port, protocol, scheduler, toa, realServers };
  });
  const control = raw.control ?? `/run/fnat-lb/${tun}.sock`;
  if (typeof control !== "string" || control === "") {
    throw new ConfigError("control", "expected a socket path");
  }
  const steering = raw.steering ?? "auto";
  if (steering !== "auto" && steering !== "bpf" && steering !== "handoff") {
    throw new ConfigError("steering", `expected "auto", "bpf" or "handoff", got ${JSON.stringify(steering)}`);
  }
  const offload = raw.offload ?? true;
  if (typeof offload !== "boolean") throw new ConfigError("offload", "expected true or false");
  const replyRate = int(raw, "replyRate", "", 0, 1_000_000, 1000);
  return {
    tun,
    workers,
    localAddresses,
    portRange,
    maxConnections,
    mtu,
    timeouts,
    services,
    control,
    steering,
    offload,
    replyRate,
  };
}

/** Reads, parses and validates a configuration file; throws {@link ConfigError} with the reason. */
export async function loadConfig(path: string): Promise<GatewayConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new ConfigError("(file)", `cannot read ${path}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError("(file)", `${path} is not valid JSON: ${(e as Error).message}`);
  }
  return validateConfig(raw);
}
