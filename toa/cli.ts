/**
 * The `toa-proxy` subcommand: parses the flags, raises the open-file limit to the hard limit (two fds per
 * connection), opens the proxy (toa/relay.ts), prints one `ready` line on stdout, and runs until
 * SIGINT/SIGTERM; SIGUSR2 prints the counters (not SIGUSR1: Deno 2.9 opens the V8 inspector on it). Errors
 * at this edge are one line that names the bad flag, and a non-zero exit status.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { formatHostPort, parseHostPort, type SocketAddress } from "./sockaddr.ts";
import { parseTrustList } from "./trust.ts";
import { type ProxyProtocolMode, ToaProxy, type ToaProxyCounters } from "./relay.ts";
import { SocketError } from "./listener.ts";
import type { Cidr } from "./trust.ts";
import { raiseFdLimit } from "./fd_limit.ts";
import { errnoName } from "../base/sys/errno.ts";
import { DEFAULT_TOA_KINDS, type ToaKindSet, toaKindSet } from "../base/packet/toa_option.ts";
import { SelfCgroup } from "./bpf/self_cgroup.ts";
import { toaFormsOf } from "./bpf/toa_walker.ts";

const USAGE = `usage: mod.ts toa-proxy --listen ADDR:PORT --backend ADDR:PORT --proxy-protocol v1|v2|none
                         --trust CIDR[,CIDR...] [--connect-timeout MS] [--idle-timeout SECONDS]
                         [--reuse-port] [--max-connections N] [--max-per-source N] [--toa-kinds K[,K...]]
                         [--decoder auto|saved_syn]
  Relays each connection to the backend, announcing the client from TOA when the peer is in --trust
  (the gateway's local addresses), else the peer itself. IPv6 as [ADDR]:PORT.
  --connect-timeout: backend connect timeout (default 3000 ms). --idle-timeout: close connections that
  moved no byte for this long (default 300 s; 0 = never). --reuse-port: listen with SO_REUSEPORT, so
  that several toa-proxy processes started with it on the same --listen share the connections (one
  process is one thread: one per core). --max-connections: at N open connections stop accepting
  until one closes; new clients wait in the listen backlog (default 0 = no limit of its own: the fd
  limit, two per connection, is the ceiling and behaves the same). --max-per-source: a client address
  (TOA from a trusted peer, else the peer; IPv6 by /64) holding N connections has its next ones
  reset at once (default 0 = off; a trusted peer without TOA is never limited). --toa-kinds: the TCP
  option kinds taken as TOA, 8 bytes in an IPv4 SYN, 20 in an IPv6 one (default 253,254: 254 of toa.ko
  and dpvs, 253 of Alibaba's and Huawei's IPv6 TOA); e.g. 254 to narrow, 254,253,252 to add 252.
  --decoder: auto (default) reads TOA in the kernel with an eBPF sockops program — from the ACK that
  completes the handshake (dpvs >= 1.9.6, and under SYN cookies), else the SYN — with the saved SYN
  read by the proxy as the fallback; it falls back to saved_syn alone, saying why, when the program
  cannot be loaded (needs root, cgroup v2). saved_syn: the saved SYN only.`;

/** Parsed and checked flags of `toa-proxy`. */
export interface ToaProxyArgs {
  /** --listen. */
  listen: SocketAddress;
  /** --backend. */
  backend: SocketAddress;
  /** --proxy-protocol. */
  proxyProtocol: ProxyProtocolMode;
  /** --trust. */
  trust: Cidr[];
  /** --connect-timeout, ms. */
  connectTimeoutMs: number;
  /** --idle-timeout, converted to ms; 0 = none. */
  idleTimeoutMs: number;
  /** --reuse-port. */
  reusePort: boolean;
  /** --max-connections; 0 = no limit. */
  maxConnections: number;
  /** --max-per-source; 0 = no limit. */
  maxPerSource: number;
  /** --toa-kinds. */
  toaKinds: ToaKindSet;
  /** --decoder. */
  decoder: "auto" | "saved_syn";
}

/** A bad flag: the message is the one line the user sees. */
export class UsageError extends Error {
  /** Builds the error; `message` names the flag. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Parses the `toa-proxy` flags; throws {@link UsageError} naming the first bad flag, or returns null for --help. */
export function parseToaProxyArgs(args: string[]): ToaProxyArgs | null {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        listen: { type: "string" },
        backend: { type: "string" },
        "proxy-protocol": { type: "string" },
        trust: { type: "string" },
        "connect-timeout": { type: "string", default: "3000" },
        "idle-timeout": { type: "string", default: "300" },
        "reuse-port": { type: "boolean", default: false },
        "max-connections": { type: "string", default: "0" },
        "max-per-source": { type: "string", default: "0" },
        "toa-kinds": { type: "string" },
        decoder: { type: "string", default: "auto" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) return null;
  const need = (flag: string, v: string | undefined): string => {
    if (v === undefined || v === "") throw new UsageError(`--${flag} is required`);
    return v;
  };
  const addr = (flag: string, v: string | undefined): SocketAddress => {
    try {
      return parseHostPort(need(flag, v));
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`--${flag}: ${(e as Error).message}`);
    }
  };
  const listen = addr("listen", values.listen);
  const backend = addr("backend", values.backend);
  if (backend.port === 0) throw new UsageError("--backend: port 0 cannot be connected to");
  const pp = need("proxy-protocol", values["proxy-protocol"]);
  if (pp !== "v1" && pp !== "v2" && pp !== "none") {
    throw new UsageError(`--proxy-protocol: expected v1, v2 or none, got ${JSON.stringify(pp)}`);
  }
  let trust: Cidr[];
  try {
    trust = parseTrustList(need("trust", values.trust));
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`--trust: ${(e as Error).message}`);
  }
  const ct = values["connect-timeout"];
  if (!/^\d{1,7}$/.test(ct) || Number(ct) < 1) {
    throw new UsageError(`--connect-timeout: expected milliseconds (1..9999999), got ${JSON.stringify(ct)}`);
  }
  const it = values["idle-timeout"];
  if (!/^\d{1,7}$/.test(it)) {
    throw new UsageError(
      `--idle-timeout: expected seconds (0 = none, up to 9999999), got ${JSON.stringify(it)}`,
    );
  }
  const count = (flag: string, v: string): number => {
    if (!/^\d{1,7}$/.test(v)) {
      throw new UsageError(
        `--${flag}: expected a number of connections (0 = no limit, up to 9999999), got ${JSON.stringify(v)}`,
      );
    }
    return Number(v);
  };
  const maxConnections = count("max-connections", values["max-connections"]);
  const maxPerSource = count("max-per-source", values["max-per-source"]);
  const toaKinds = parseToaKinds(values["toa-kinds"]);
  const decoder = values.decoder;
  if (decoder !== "auto" && decoder !== "saved_syn") {
    throw new UsageError(`--decoder: expected auto or saved_syn, got ${JSON.stringify(decoder)}`);
  }
  return {
    listen,
    backend,
    proxyProtocol: pp,
    trust,
    connectTimeoutMs: Number(ct),
    idleTimeoutMs: Number(it) * 1000,
    reusePort: values["reuse-port"],
    maxConnections,
    maxPerSource,
    toaKinds,
    decoder,
  };
}

/** `--toa-kinds K[,K...]` (absent: 253 and 254); throws {@link UsageError} naming the flag. */
export function parseToaKinds(v: string | undefined): ToaKindSet {
  if (v === undefined) return DEFAULT_TOA_KINDS;
  if (!/^\d{1,3}(,\d{1,3})*$/.test(v)) {
    throw new UsageError(
      `--toa-kinds: expected option kinds separated by commas (e.g. 254,253), got ${JSON.stringify(v)}`,
    );
  }
  try {
    return toaKindSet(v.split(",").map(Number));
  } catch (e) {
    throw new UsageError(`--toa-kinds: ${(e as Error).message}`);
  }
}

/** The counters as one log line with stable keys. */
export function countersLine(event: string, c: ToaProxyCounters): string {
  return `toa-proxy event=${event} ` + Object.entries(c).map(([k, v]) => `${k}=${v}`).join(" ");
}

/** Runs the `toa-proxy` subcommand; returns the exit status. */
export async function toaProxyMain(args: string[]): Promise<number> {
  let a: ToaProxyArgs | null;
  try {
    a = parseToaProxyArgs(args);
  } catch (e) {
    console.error(`toa-proxy: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (a === null) {
    console.log(USAGE);
    return 0;
  }
  // Two fds per connection: the usual soft limit of 1024 would cap the relay near 500 connections.
  const fds = raiseFdLimit();
  if (fds.errno !== 0) {
    console.error(
      `toa-proxy event=fd_limit_error soft=${fds.soft} hard=${fds.hard} errno=${errnoName(fds.errno)}`,
    );
  }
  // The sockops decoder: the listener must be opened inside the proxy's own cgroup (toa/bpf/self_cgroup.ts).
  let sockops: SelfCgroup | null = null;
  let why = "--decoder saved_syn";
  if (a.decoder === "auto") {
    try {
      sockops = SelfCgroup.enter(a.trust, toaFormsOf(a.toaKinds.kinds));
    } catch (e) {
      // One line: the error's first line and, for a refused program, the verifier's last words.
      const lines = String((e as Error).message).split("\n");
      why = (lines.length > 1 ? [lines[0], ...lines.slice(-2)] : lines).join(" | ");
    }
  }
  const decoder = sockops ? "sockops+saved_syn" : "saved_syn";
  console.error(
    `toa-proxy decoder=${decoder} ` + (sockops ? `cgroup=${sockops.dir}` : `reason=${JSON.stringify(why)}`),
  );
  let proxy: ToaProxy;
  try {
    proxy = ToaProxy.open({ ...a, sockops });
  } catch (e) {
    sockops?.close();
    console.error(`toa-proxy: ${e instanceof SocketError ? e.message : String(e)}`);
    return 1;
  }
  try {
    sockops?.leave();
  } catch (e) {
    console.error(`toa-proxy event=cgroup_leave_error error=${JSON.stringify(String(e))}`);
  }
  const stop = () => proxy.stop();
  const stats = () => console.error(countersLine("stats", proxy.counters()));
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGUSR2", stats);
  console.log(
    `toa-proxy ready listen=${formatHostPort(proxy.address)} backend=${formatHostPort(a.backend)} ` +
      `proxy_protocol=${a.proxyProtocol} trust=${a.trust.map((c) => c.text).join(",")} ` +
      `idle_timeout=${a.idleTimeoutMs / 1000} reuse_port=${a.reusePort ? 1 : 0} ` +
      `max_connections=${a.maxConnections} max_per_source=${a.maxPerSource} nofile=${fds.soft} ` +
      `nofile_before=${fds.before} toa_kinds=${a.toaKinds.kinds.join(",")} decoder=${decoder}`,
  );
  try {
    await proxy.run();
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    Deno.removeSignalListener("SIGUSR2", stats);
    sockops?.close();
  }
  console.error(countersLine("stopped", proxy.counters()));
  return 0;
}
