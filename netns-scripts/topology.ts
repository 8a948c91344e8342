/**
 * Deno-test side of `up.sh`/`down.sh`: build the client -- gateway -- real-server namespaces, run commands
 * inside them with a time bound, and always tear them down (also when the test body throws).
 *
 * @example
 * ```ts
 * await withTopology(async (t) => {
 *   const r = await nsExec(t.nsCli, ["ping", "-c", "1", t.gwCliIp4]);
 *   if (!r.success) throw new Error(r.stderr);
 * });
 * ```
 *
 * @module
 */

const HERE = new URL(".", import.meta.url).pathname;

/** Names and addresses of one topology, as printed by `up.sh`. */
export interface Topology {
  /** Prefix shared by every namespace of this run. */
  prefix: string;
  /** Client namespace. */
  nsCli: string;
  /** Gateway namespace (where the load balancer and its TUN live). */
  nsGw: string;
  /** Real-server namespaces, rs1 first. */
  nsRs: string[];
  /** Client address, IPv4. */
  cliIp4: string;
  /** Client address, IPv6. */
  cliIp6: string;
  /** Gateway address on the client network, IPv4. */
  gwCliIp4: string;
  /** Gateway address on the client network, IPv6. */
  gwCliIp6: string;
  /** Gateway address on the real-server network, IPv4. */
  gwRsIp4: string;
  /** Gateway address on the real-server network, IPv6. */
  gwRsIp6: string;
  /** Real-server addresses, IPv4, rs1 first. */
  rsIp4: string[];
  /** Real-server addresses, IPv6, rs1 first. */
  rsIp6: string[];
  /** Every variable `up.sh` exported, for anything not mapped above. */
  env: Record<string, string>;
}

/** Options for {@link upTopology}. */
export interface TopologyOptions {
  /** Number of real-server namespaces (default 2). */
  rs?: number;
  /** Fixed prefix instead of a generated unique one. */
  prefix?: string;
}

/** Result of {@link nsExec} / {@link run}. */
export interface RunResult {
  /** Exit code. */
  code: number;
  /** True when the exit code is 0. */
  success: boolean;
  /** Captured stdout, decoded. */
  stdout: string;
  /** Captured stderr, decoded. */
  stderr: string;
}

/**
 * Runs `cmd` to completion; SIGKILLs it and throws after `timeoutMs`, so no test waits forever. When `signal`
 * fires first, SIGKILLs it and throws `signal.reason`. A non-zero exit status is returned, not thrown.
 */
export async function run(cmd: string[], timeoutMs = 30_000, signal?: AbortSignal): Promise<RunResult> {
  signal?.throwIfAborted();
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let why: "timeout" | "abort" | undefined;
  const kill = (w: "timeout" | "abort") => {
    why ??= w;
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
  };
  const timer = setTimeout(() => kill("timeout"), timeoutMs);
  const onAbort = () => kill("abort");
  signal?.addEventListener("abort", onAbort);
  try {
    const out = await child.output();
    if (why === "abort") throw signal!.reason;
    if (why === "timeout") throw new Error(`${cmd.join(" ")}: timed out, killed after ${timeoutMs} ms`);
    const dec = new TextDecoder();
    return {
      code: out.code,
      success: out.success,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

/** Runs `cmd` inside network namespace `ns` (via `ip netns exec`), bounded by `timeoutMs`. */
export function nsExec(ns: string, cmd: string[], timeoutMs = 30_000): Promise<RunResult> {
  return run(["ip", "netns", "exec", ns, ...cmd], timeoutMs);
}

/** Creates a fresh topology with `up.sh`; throws with up.sh's message if it fails (it cleans up itself). */
export async function upTopology(opts: TopologyOptions = {}): Promise<Topology> {
  const args = ["bash", `${HERE}up.sh`, "--rs", String(opts.rs ?? 2)];
  if (opts.prefix !== undefined) args.push("--prefix", opts.prefix);
  const r = await run(args, 30_000);
  if (!r.success) throw new Error(`up.sh failed: ${r.stderr.trim()}`);
  const env: Record<string, string> = {};
  for (const line of r.stdout.split("\n")) {
    const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2].replace(/^'(.*)'$/, "$1");
  }
  const count = Number(env.RS_COUNT);
  const idx = Array.from({ length: count }, (_, i) => i + 1);
  return {
    prefix: env.LB_PREFIX,
    nsCli: env.NS_CLI,
    nsGw: env.NS_GW,
    nsRs: idx.map((i) => env[`NS_RS${i}`]),
    cliIp4: env.CLI_IP4,
    cliIp6: env.CLI_IP6,
    gwCliIp4: env.GW_CLI_IP4,
    gwCliIp6: env.GW_CLI_IP6,
    gwRsIp4: env.GW_RS_IP4,
    gwRsIp6: env.GW_RS_IP6,
    rsIp4: idx.map((i) => env[`RS${i}_IP4`]),
    rsIp6: idx.map((i) => env[`RS${i}_IP6`]),
    env,
  };
}

/** Removes every namespace (and the processes in it) with `prefix`; idempotent. */
export async function downTopology(prefix: string): Promise<void> {
  const r = await run(["bash", `${HERE}down.sh`, prefix], 30_000);
  if (!r.success) throw new Error(`down.sh ${prefix} failed: ${r.stderr.trim()}`);
}

/** Namespaces whose name starts with `${prefix}-`; empty after a clean teardown. */
export async function namespacesWithPrefix(prefix: string): Promise<string[]> {
  const r = await run(["ip", "netns", "list"], 10_000);
  return r.stdout.split("\n").map((l) => l.split(" ")[0]).filter((n) => n.startsWith(`${prefix}-`));
}

/** Builds a topology, runs `fn` with it, and tears it down in `finally` — on success and on failure. */
export async function withTopology<T>(
  fn: (t: Topology) => Promise<T>,
  opts: TopologyOptions = {},
): Promise<T> {
  const t = await upTopology(opts);
  try {
    return await fn(t);
  } finally {
    await downTopology(t.prefix);
  }
}
