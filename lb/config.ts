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
 * Unknown keys are refused at every level, naming the closest known key when one is near (a misspelt key
 * silently ignored would leave a default in force that the operator thinks they changed).
 *
 * Addresses are parsed here, once: the validated configuration carries {@link IpAddress} values (family and
 * words), plain data that survives `postMessage` to the workers.
 *
 * @module
 */
import { hostPort, type IpAddress, ipAddressEquals, parseIpAddress } from "../base/addr.ts";
import { SCHEDULER_NAMES } from "./engine/scheduler/mod.ts";

/** Per-state idle timeouts in seconds (defaults follow dpvs's FULLNAT timeouts). */
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

/**
 * dpvs's defaults (src/ipvs/ip_vs_proto_tcp.c, ip_vs_proto_udp.c), in seconds: a FULLNAT gateway holds far
 * more entries than a host, so a half-open or closing one is kept only as long as a retransmission needs
 * (IPVS's host-like 120/60/900/120/120/10 keep a SYN flood's entries for minutes).
 */
export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = {
  synSent: 3,
  synRecv: 30,
  established: 90,
  finWait: 7,
  timeWait: 7,
  close: 3,
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

/** How a service's real servers are probed (seconds for the times). */
export interface HealthCheckConfig {
  /** "tcp" (a connect), "http" (a GET of `path`, expecting `expectStatus`), "none" (never probed: "unchecked"). */
  type: "tcp" | "http" | "none";
  /** Seconds between probes of one server. */
  interval: number;
  /** Seconds a probe may take before it counts as failed. */
  timeout: number;
  /** Consecutive successes that bring a down server up. */
  rise: number;
  /** Consecutive failures that take an up server down. */
  fall: number;
  /** HTTP request path. */
  path: string;
  /** HTTP status that counts as up. */
  expectStatus: number;
  /** Port probed; absent: each server's own port. */
  port?: number;
}

/** The defaults of {@link HealthCheckConfig} (an absent `healthCheck` of a TCP service is a TCP check with these). */
export const DEFAULT_HEALTH_CHECK: Readonly<HealthCheckConfig> = {
  type: "tcp",
  interval: 2,
  timeout: 1,
  rise: 2,
  fall: 2,
  path: "/",
  expectStatus: 200,
};

/** Where the metrics page listens. */
export interface MetricsConfig {
  /** Listening address. */
  address: IpAddress;
  /** Listening port. */
  port: number;
}

/** Where the gateway puts TOA in the handshake toward a real server (`services[].toaPlacement`). */
export type ToaPlacement = "syn+ack" | "ack" | "syn";
/** The values of {@link ToaPlacement}. */
export const TOA_PLACEMENTS: readonly ToaPlacement[] = ["syn+ack", "ack", "syn"];

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
  /**
   * Which handshake segments toward the real server carry TOA: "syn+ack" (default) the SYN and the ACK
   * completing the handshake; "ack" only the ACK (as dpvs ≥ 1.9.6, for toa.ko-style decoders); "syn" only
   * the SYN (for decoders reading the saved SYN). Applies to the SYN proxy's own SYN and ACK too.
   */
  toaPlacement: ToaPlacement;
  /** The real servers. */
  realServers: RealServerConfig[];
  /** How the real servers are probed. */
  healthCheck: HealthCheckConfig;
  /** What happens to a server's connections when it goes down: "keep" them running, or "reset" them. */
  onServerDown: "keep" | "reset";
  /**
   * SYN proxy (TCP only): "on" answers every SYN with a SYN cookie and opens the server side only when the
   * client's ACK proves it; "auto" (default) does so while a worker's half-open entries are past
   * `synproxyThreshold`; "off" never.
   */
  synproxy: "off" | "on" | "auto";
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
  /**
   * Half-open connection entries (SYN_SENT, SYN_RECV) of the whole gateway past which services with
   * `synproxy: "auto"` answer SYNs with cookies; each worker compares its share. Default 1000.
   */
  synproxyThreshold: number;
  /**
   * Microseconds a worker keeps polling its queues without sleeping after a turn that moved packets (0: never;
   * default). A sleeping thread's wake-up costs each packet tens of µs of latency; spinning a little keeps
   * the next packet of a busy flow from paying it, for CPU time that only a dedicated gateway can spare.
   */
  busyPollUs: number;
  /**
   * File of the 16-byte ISN secret (ISNs toward the servers, SYN cookies). Default: beside the control
   * socket, made at the first start. An active and a standby gateway that take over each other's local
   * addresses point this at the same secret (docs/defence.md), so ISNs keep growing per tuple across a
   * takeover and the standby accepts the cookies the active one sent.
   */
  isnSecretFile?: string;
  /** Where the metrics page listens (absent: no metrics page). */
  metrics?: MetricsConfig;
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

/** Edit distance (Levenshtein) of two short strings: how close a misspelt key is to a known one. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** The known key closest to `key`, if close enough to be a misspelling (a third of its length, at least 1). */
function closestKey(key: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return bestD <= Math.max(1, Math.floor(Math.max(key.length, best?.length ?? 0) / 3)) ? best : undefined;
}

/** Rejects any key of `o` not in `known`, naming it at `path` with the closest known key as the fix. */
function onlyKnown(o: Obj, known: readonly string[], path: string): void {
  for (const k of Object.keys(o)) {
    if (known.includes(k)) continue;
    const near = closestKey(k, known);
    throw new ConfigError(
      `${path}${k}`,
      near !== undefined
        ? `unknown key (did you mean "${near}"?)`
        : `unknown key; known keys: ${known.join(", ")}`,
    );
  }
}

const KNOWN_SERVICE = [
  "vip",
  "port",
  "protocol",
  "scheduler",
  "toa",
  "toaPlacement",
  "realServers",
  "healthCheck",
  "onServerDown",
  "synproxy",
] as const;
const KNOWN_SERVER = ["address", "port", "weight"] as const;
const KNOWN_HEALTH = ["type", "interval", "timeout", "rise", "fall", "path", "expectStatus", "port"] as const;

/**
 * Validates `services[i].healthCheck`. Absent: the TCP defaults for a TCP service, no check for a UDP one —
 * a TCP connect to a UDP server's port says nothing about it (keepalived too checks UDP only when told how).
 */
function healthCheck(v: unknown, p: string, protocol: "tcp" | "udp"): HealthCheckConfig {
  if (v === undefined) return { ...DEFAULT_HEALTH_CHECK, type: protocol === "udp" ? "none" : "tcp" };
  const f = `${p}healthCheck`;
  if (!isObj(v)) throw new ConfigError(f, `expected an object such as {"type": "tcp", "interval": 2}`);
  onlyKnown(v, KNOWN_HEALTH, `${f}.`);
  const d = DEFAULT_HEALTH_CHECK;
  const type = v.type ?? d.type;
  if (type !== "tcp" && type !== "http" && type !== "none") {
    throw new ConfigError(`${f}.type`, `expected "tcp", "http" or "none", got ${JSON.stringify(type)}`);
  }
  const interval = seconds(v, "interval", `${f}.`, d.interval);
  const timeout = seconds(v, "timeout", `${f}.`, d.timeout);
  if (timeout > interval) {
    throw new ConfigError(`${f}.timeout`, `must not exceed interval (${interval} s), got ${timeout}`);
  }
  const path = v.path ?? d.path;
  if (typeof path !== "string" || !/^\/[\x21-\x7e]*$/.test(path)) {
    throw new ConfigError(
      `${f}.path`,
      `expected a request path starting with "/", got ${JSON.stringify(path)}`,
    );
  }
  const out: HealthCheckConfig = {
    type,
    interval,
    timeout,
    rise: int(v, "rise", `${f}.`, 1, 100, d.rise),
    fall: int(v, "fall", `${f}.`, 1, 100, d.fall),
    path,
    expectStatus: int(v, "expectStatus", `${f}.`, 100, 599, d.expectStatus),
  };
  if (v.port !== undefined) out.port = int(v, "port", `${f}.`, 1, 65535);
  return out;
}

/** A duration in seconds: a number from 0.01 to 3600 (fractions allowed). */
function seconds(o: Obj, key: string, path: string, def: number): number {
  const v = o[key] ?? def;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0.01 || v > 3600) {
    throw new ConfigError(
      `${path}${key}`,
      `expected seconds from 0.01 to 3600, got ${JSON.stringify(o[key])}`,
    );
  }
  return v;
}

/** Parses `metrics`, "ADDR:PORT" ("[v6]:PORT" for IPv6). */
function metrics(v: unknown): MetricsConfig {
  const m = typeof v === "string" ? /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(v) : null;
  const addr = m ? parseIpAddress(m[1] ?? m[2]) : null;
  const port = m ? Number(m[3]) : 0;
  if (m === null || addr === null || port < 1 || port > 65535) {
    throw new ConfigError(
      "metrics",
      `expected "ADDR:PORT" such as "127.0.0.1:9100" or "[::1]:9100", got ${JSON.stringify(v)}`,
    );
  }
  return { address: addr, port };
}

const KNOWN_TOP = [
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
  "synproxyThreshold",
  "busyPollUs",
  "isnSecretFile",
  "metrics",
] as const;

/** Validates a parsed JSON value; throws {@link ConfigError} naming the first bad field. */
export function validateConfig(raw: unknown): GatewayConfig {
  if (!isObj(raw)) throw new ConfigError("(top)", "expected a JSON object");
  onlyKnown(raw, KNOWN_TOP, "");
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
    onlyKnown(raw.timeouts, Object.keys(DEFAULT_TIMEOUTS), "timeouts.");
    for (const k of Object.keys(raw.timeouts)) {
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
    onlyKnown(s, KNOWN_SERVICE, p);
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
    const toaPlacement = s.toaPlacement ?? "syn+ack";
    if (!(TOA_PLACEMENTS as readonly unknown[]).includes(toaPlacement)) {
      throw new ConfigError(
        `${p}toaPlacement`,
        `expected "syn+ack", "ack" or "syn", got ${JSON.stringify(toaPlacement)}`,
      );
    }
    if (!Array.isArray(s.realServers) || s.realServers.length === 0) {
      throw new ConfigError(`${p}realServers`, "expected a non-empty array of real servers");
    }
    const realServers = s.realServers.map((r, j): RealServerConfig => {
      const rp = `${p}realServers[${j}].`;
      if (!isObj(r)) throw new ConfigError(`${p}realServers[${j}]`, "expected an object");
      onlyKnown(r, KNOWN_SERVER, rp);
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
    const onServerDown = s.onServerDown ?? "keep";
    if (onServerDown !== "keep" && onServerDown !== "reset") {
      throw new ConfigError(
        `${p}onServerDown`,
        `expected "keep" or "reset", got ${JSON.stringify(onServerDown)}`,
      );
    }
    const synproxy = s.synproxy ?? "auto";
    if (synproxy !== "off" && synproxy !== "on" && synproxy !== "auto") {
      throw new ConfigError(
        `${p}synproxy`,
        `expected "off", "on" or "auto", got ${JSON.stringify(synproxy)}`,
      );
    }
    if (synproxy === "on" && protocol !== "tcp") {
      throw new ConfigError(`${p}synproxy`, `"on" needs a TCP service (UDP has no handshake to proxy)`);
    }
    return {
      vip,
      port,
      protocol,
      scheduler,
      toa,
      toaPlacement: toaPlacement as ToaPlacement,
      realServers,
      healthCheck: healthCheck(s.healthCheck, p, protocol),
      onServerDown,
      synproxy,
    };
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
  const synproxyThreshold = int(raw, "synproxyThreshold", "", 1, 100_000_000, 1000);
  const busyPollUs = int(raw, "busyPollUs", "", 0, 10_000, 0);
  const out: GatewayConfig = {
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
    synproxyThreshold,
    busyPollUs,
  };
  if (raw.metrics !== undefined) out.metrics = metrics(raw.metrics);
  if (raw.isnSecretFile !== undefined) {
    if (typeof raw.isnSecretFile !== "string" || !raw.isnSecretFile.startsWith("/")) {
      throw new ConfigError("isnSecretFile", "expected an absolute file path");
    }
    out.isnSecretFile = raw.isnSecretFile;
  }
  return out;
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
