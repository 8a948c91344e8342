/**
 * A whole end-to-end lab in one call: the client -- gateway -- real-server namespaces (netns-scripts), a
 * temp dir, nginx on every real server (optional) and the FULLNAT gateway (optional), torn down in
 * `finally` on every exit path — then checked: the gateway exited 0 on SIGTERM and removed its TUN, and
 * no namespace with the run's prefix, no process the lab saw, no TUN of the gateway's name is left.
 *
 * @example
 * ```ts
 * await withLab({ gateway: { localAddresses: ["198.18.2.1"], services: [...] } }, async (lab) => {
 *   const r = await nsExec(lab.t.nsCli, ["curl", "-sS", "http://198.18.0.10/"]);
 *   assert.equal((await lab.nginx[0].accessLog())[0].peerAddr, "198.18.2.1");
 * });
 * ```
 *
 * @module
 */
import {
  downTopology,
  namespacesWithPrefix,
  nsExec,
  run,
  type Topology,
  upTopology,
} from "../../netns-scripts/topology.ts";
import { type Gateway, startGateway } from "./gateway.ts";
import { type Nginx, startNginx } from "./nginx.ts";
import { type Background, processAlive, spawnBackground } from "./process.ts";

/** Options of {@link withLab}. */
export interface LabOptions {
  /** Real servers (default 2). */
  rs?: number;
  /** Run nginx on every real server, on its IPv4 and IPv6 address port 80 (default true). */
  nginx?: boolean;
  /** Document root files of real server `i` (0-based); default `index.html` = `rs${i + 1}\n`. */
  files?: (i: number) => Record<string, string | Uint8Array>;
  /** Gateway configuration (raw JSON form; `tun`/`control` filled in), or none to start no gateway. */
  gateway?: Record<string, unknown> | ((t: Topology) => Record<string, unknown>);
}

/** What the test body gets. */
export interface Lab {
  /** The namespaces and their addresses. */
  readonly t: Topology;
  /** A temp dir, removed at teardown. */
  readonly dir: string;
  /** nginx per real server (empty with `nginx: false`). */
  readonly nginx: Nginx[];
  /** The gateway, when configured. */
  readonly gw: Gateway | undefined;
  /** Runs `fn` at teardown (last registered first), before the namespaces go. */
  defer(fn: () => unknown): void;
  /** Registers a background process whose death the teardown checks. */
  track(p: Background): void;
}

/** Starts `cmd` in the background in namespace `ns`, owned by the lab: tracked, and killed at teardown. */
export function spawnIn(lab: Lab, ns: string, cmd: string[]): Background {
  const p = spawnBackground(["ip", "netns", "exec", ns, ...cmd]);
  lab.track(p);
  lab.defer(() => p.stop("SIGKILL", 1_000));
  return p;
}

/** Names of TUN devices in the root namespace and in every namespace still present. */
export async function tunDevices(): Promise<string[]> {
  const names: string[] = [];
  const parse = (out: string) => {
    for (const line of out.split("\n")) {
      const m = /^\d+: ([^:@]+)[:@]/.exec(line);
      if (m) names.push(m[1]);
    }
  };
  parse((await run(["ip", "-o", "link", "show", "type", "tun"], 10_000)).stdout);
  const ns = await run(["ip", "netns", "list"], 10_000);
  for (const n of ns.stdout.split("\n").map((l) => l.split(" ")[0]).filter(Boolean)) {
    parse((await nsExec(n, ["ip", "-o", "link", "show", "type", "tun"], 10_000)).stdout);
  }
  return names;
}

/** What outlived a lab: namespaces with `prefix`, live processes of `pids`, TUN devices named in `tuns`. */
export async function leftovers(prefix: string, pids: number[], tuns: string[]): Promise<string[]> {
  const left: string[] = [];
  for (const n of await namespacesWithPrefix(prefix)) left.push(`namespace ${n}`);
  for (const pid of new Set(pids)) if (await processAlive(pid)) left.push(`process ${pid}`);
  if (tuns.length > 0) {
    const present = new Set(await tunDevices());
    for (const t of tuns) if (present.has(t)) left.push(`TUN ${t}`);
  }
  return left;
}

/**
 * A namespace kernel's SNMP and TCP extension counters (/proc/net/snmp, snmp6, netstat), keyed as
 * `nstat` names them: `TcpActiveOpens`, `Udp6InCsumErrors`, `TcpExtTCPSackRecovery`, …
 */
export async function kernelCounters(ns: string): Promise<Map<string, number>> {
  const r = await nsExec(ns, ["cat", "/proc/net/snmp", "/proc/net/snmp6", "/proc/net/netstat"], 10_000);
  const out = new Map<string, number>();
  const lines = r.stdout.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const v6 = /^(\w+)\s+(\d+)$/.exec(lines[i]);
    if (v6) {
      out.set(v6[1], Number(v6[2]));
      continue;
    }
    // snmp and netstat: a header line "Proto: Name …" and then its value line "Proto: 1 2 …".
    const [proto, ...names] = lines[i].split(" ");
    const values = lines[i + 1]?.split(" ") ?? [];
    if (!proto.endsWith(":") || values[0] !== proto) continue;
    names.forEach((n, j) => out.set(`${proto.slice(0, -1)}${n}`, Number(values[j + 1])));
    i++;
  }
  return out;
}

/** Non-zero checksum-error counters of a namespace's kernel (IP, ICMP, UDP, TCP; v4 and v6), as `name=value`. */
export async function checksumErrors(ns: string): Promise<string[]> {
  const bad: string[] = [];
  for (const [k, v] of await kernelCounters(ns)) {
    if (k.endsWith("InCsumErrors") && v !== 0) bad.push(`${k}=${v}`);
  }
  return bad;
}

/** The PIDs of every process in namespace `ns`. */
async function namespacePids(ns: string): Promise<number[]> {
  const r = await run(["ip", "netns", "pids", ns], 10_000);
  return r.stdout.split("\n").filter((l) => /^\d+$/.test(l.trim())).map(Number);
}

/** Builds a lab, runs `fn`, tears everything down and checks nothing is left; rethrows `fn`'s error. */
export async function withLab<T>(opts: LabOptions, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const t = await upTopology({ rs: opts.rs ?? 2 });
  const deferred: (() => unknown)[] = [];
  const tracked: Background[] = [];
  const tuns: string[] = [];
  const nginx: Nginx[] = [];
  let dir = "";
  let gw: Gateway | undefined;
  let result: T;
  let failure: unknown;
  try {
    dir = await Deno.makeTempDir({ prefix: `fnat-${t.prefix}-` });
    if (opts.nginx ?? true) {
      for (let i = 0; i < t.nsRs.length; i++) {
        const n = await startNginx({
          ns: t.nsRs[i],
          dir: `${dir}/rs${i + 1}`,
          listen: [`${t.rsIp4[i]}:80`, `[${t.rsIp6[i]}]:80`],
          files: opts.files?.(i) ?? { "index.html": `rs${i + 1}\n` },
        });
        nginx.push(n);
        tracked.push(n.process);
      }
    }
    if (opts.gateway) {
      const config = typeof opts.gateway === "function" ? opts.gateway(t) : opts.gateway;
      gw = await startGateway({ ns: t.nsGw, dir: `${dir}/gw`, config });
      tracked.push(gw.process);
      tuns.push(gw.tun);
    }
    const lab: Lab = {
      t,
      dir,
      nginx,
      gw,
      defer: (f) => deferred.push(f),
      track: (p) => tracked.push(p),
    };
    result = await fn(lab);
  } catch (e) {
    failure = e;
  }
  // Teardown: every step runs, whatever the one before did.
  const problems: string[] = [];
  const step = async (what: string, f: () => unknown) => {
    try {
      await f();
    } catch (e) {
      problems.push(`${what}: ${(e as Error).message}`);
    }
  };
  for (const f of deferred.reverse()) await step("deferred cleanup", f);
  if (gw) {
    await step("gateway stop", async () => {
      const s = await gw!.stop();
      // SIGTERM is the documented way to stop it: a clean exit, and its TUN gone before the namespace is.
      if (s.code !== 0) {
        throw new Error(`exited with ${s.code} (${s.signal ?? "no signal"}): ${s.stderr.trim()}`);
      }
      const tuns = await nsExec(t.nsGw, ["ip", "-o", "link", "show", "type", "tun"], 10_000);
      if (tuns.stdout.includes(`: ${gw!.tun}:`)) throw new Error(`left its TUN ${gw!.tun} behind`);
    });
  }
  for (const n of nginx) await step("nginx stop", () => n.stop());
  const pids = tracked.map((p) => p.pid);
  for (const ns of [t.nsCli, t.nsGw, ...t.nsRs]) {
    await step("pids", async () => pids.push(...await namespacePids(ns)));
  }
  for (const p of tracked) await step("process stop", () => p.stop("SIGKILL", 1_000));
  await step("down.sh", () => downTopology(t.prefix));
  if (dir) await step("temp dir", () => Deno.remove(dir, { recursive: true }));
  await step("leftovers", async () => {
    const left = await leftovers(t.prefix, pids, tuns);
    if (left.length > 0) throw new Error(left.join(", "));
  });
  if (failure !== undefined) {
    if (problems.length > 0) console.error(`lab ${t.prefix} teardown after failure: ${problems.join("; ")}`);
    throw failure;
  }
  if (problems.length > 0) throw new Error(`lab ${t.prefix} teardown: ${problems.join("; ")}`);
  return result!;
}
