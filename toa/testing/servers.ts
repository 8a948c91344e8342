/**
 * The processes the toa-proxy end-to-end test and benchmark run inside namespaces: `toa-proxy` itself, nginx
 * behind it with `listen … proxy_protocol`, and HAProxy with `accept-proxy` (as a PROXY receiver) or in
 * `mode tcp` with `send-proxy` (as the relay we compare against). Every path is in the caller's temp dir;
 * every start waits, bounded, until the process listens or says it is ready.
 *
 * @example
 * ```ts
 * const nginx = await startPpNginx(ns, `${dir}/nginx`, ["127.0.0.1:8080"]);
 * const proxy = await startToaProxy(ns, ["--listen", "198.18.3.10:80", "--backend", "127.0.0.1:8080",
 *   "--proxy-protocol", "v1", "--trust", "198.18.2.0/24"]);
 * const { counters } = await proxy.stop();
 * ```
 *
 * @module
 */
import { startNginx } from "../../tests/helpers/nginx.ts";
import { type Background, spawnBackground, waitListening } from "../../tests/helpers/process.ts";

const REPO = new URL("../..", import.meta.url).pathname;

/** A running process and how to stop it (bounded, idempotent). */
export interface Server {
  /** The background process. */
  readonly process: Background;
  /** Stops it; returns its stderr. */
  stop(): Promise<string>;
}

/** A running toa-proxy. */
export interface ToaProxyProcess {
  /** The background process (its pid is the proxy's own: `ip netns exec` and `prlimit` exec). */
  readonly process: Background;
  /** Sends SIGUSR2 and waits (bounded) for the `event=stats` line it prints; returns its counters. */
  stats(timeoutMs?: number): Promise<Record<string, number>>;
  /** SIGTERM, bounded; returns the counters of its `event=stopped` line (empty if it printed none). */
  stop(): Promise<{ counters: Record<string, number>; stderr: string }>;
}

/** Parses `key=value` pairs of a `toa-proxy event=…` line. */
export function parseCounters(line: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of line.matchAll(/(\w+)=(\d+)/g)) out[m[1]] = Number(m[2]);
  return out;
}

/**
 * Starts `mod.ts toa-proxy ARGS` in `ns` and waits (bounded) for its ready line; `wrapper` goes before the
 * deno command and must exec it (e.g. `["prlimit", "--nofile=64:64"]`). `nsenter`: enter the namespace with
 * `nsenter --net` instead of `ip netns exec`, whose own /sys has no cgroups — the sockops decoder needs them.
 */
export async function startToaProxy(
  ns: string,
  args: string[],
  timeoutMs = 20_000,
  wrapper: string[] = [],
  nsenter = false,
): Promise<ToaProxyProcess> {
  const process = spawnBackground([
    ...(nsenter ? ["nsenter", `--net=/run/netns/${ns}`] : ["ip", "netns", "exec", ns]),
    ...wrapper,
    Deno.execPath(),
    "run",
    "-A",
    `${REPO}mod.ts`,
    "toa-proxy",
    ...args,
  ]);
  try {
    await process.waitFor(() => process.stdout().includes("toa-proxy ready"), "toa-proxy ready", timeoutMs);
  } catch (e) {
    await process.stop("SIGKILL", 1_000);
    throw e;
  }
  const statsLines = () => process.stderr().split("\n").filter((l) => l.includes("event=stats"));
  return {
    process,
    async stats(ms = 5_000) {
      const before = statsLines().length;
      Deno.kill(process.pid, "SIGUSR2");
      await process.waitFor(() => statsLines().length > before, "toa-proxy stats line", ms);
      return parseCounters(statsLines()[before]);
    },
    async stop() {
      const s = await process.stop("SIGTERM", 5_000);
      const line = s.stderr.split("\n").find((l) => l.includes("event=stopped")) ?? "";
      return { counters: parseCounters(line), stderr: s.stderr };
    },
  };
}

/**
 * Starts `toa-transparent --cgroup cgroup --trust trust` (in the root namespace, where the cgroup tree is) and
 * waits, bounded, for its ready line; the caller tracks and stops the process.
 */
export async function startToaTransparent(
  cgroup: string,
  trust: string,
  timeoutMs = 20_000,
): Promise<Background> {
  const process = spawnBackground([
    Deno.execPath(),
    "run",
    "-A",
    `${REPO}mod.ts`,
    "toa-transparent",
    "--cgroup",
    cgroup,
    "--trust",
    trust,
  ]);
  try {
    await process.waitFor(
      () => process.stdout().includes("toa-transparent ready"),
      "toa-transparent ready",
      timeoutMs,
    );
  } catch (e) {
    await process.stop("SIGKILL", 1_000);
    throw e;
  }
  return process;
}

/**
 * Starts nginx as a PROXY-protocol receiver in `ns` (tests/helpers/nginx.ts with `proxyProtocol`: `GET /ip`
 * answers the announced client); `files` go into its document root.
 */
export async function startPpNginx(
  ns: string,
  dir: string,
  listen: string[],
  files: Record<string, Uint8Array | string> = {},
): Promise<Server> {
  const nginx = await startNginx({ ns, dir, listen, files, proxyProtocol: true });
  return { process: nginx.process, stop: async () => (await nginx.stop()).stderr };
}

/**
 * HAProxy configuration: `receiver` — an HTTP frontend with `accept-proxy` answering `%[src]:%[src_port]`
 * (the address HAProxy took from the PROXY header); `relay` — `mode tcp` relaying to `backend` with
 * `send-proxy` (v1), with `threads` threads (default 1, like one toa-proxy process), for the benchmark.
 */
export function haproxyConfig(kind: "receiver" | "relay", listen: string, backend = "", threads = 1): string {
  const common = `# generated by toa/testing/servers.ts
global
  nbthread ${threads}
  maxconn 4000
defaults
  timeout connect 5s
  timeout client 60s
  timeout server 60s
`;
  if (kind === "receiver") {
    return `${common}frontend fe
  mode http
  bind ${listen} accept-proxy
  http-request return status 200 content-type text/plain lf-string "%[src]:%[src_port]\\n"
`;
  }
  return `${common}frontend fe
  mode tcp
  bind ${listen}
  default_backend be
backend be
  mode tcp
  server s1 ${backend} send-proxy
`;
}

/** Starts HAProxy (foreground, `-db`) with `config` in `ns`, waiting until it listens on `listen`. */
export async function startHaproxy(ns: string, dir: string, config: string, listen: string): Promise<Server> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/haproxy.cfg`, config);
  const p = spawnBackground(["ip", "netns", "exec", ns, "haproxy", "-db", "-f", `${dir}/haproxy.cfg`]);
  return await started(ns, [listen], p, "haproxy");
}

async function started(ns: string, listen: string[], p: Background, what: string): Promise<Server> {
  try {
    await waitListening(ns, listen, p, what);
  } catch (e) {
    await p.stop("SIGKILL", 1_000);
    throw e;
  }
  return { process: p, stop: async () => (await p.stop("SIGTERM", 5_000)).stderr };
}
