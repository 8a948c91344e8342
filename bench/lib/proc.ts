/**
 * Process plumbing for the comparison benchmark: bounded, abortable commands (every load run has a hard
 * deadline and dies with the run on Ctrl-C/SIGTERM), abortable sleeps, and CPU accounting from /proc —
 * a process's utime+stime (all its threads: the gateway's Deno Workers, HAProxy's threads) and the host's
 * softirq time, where the kernel paths (forwarding, nftables NAT) spend theirs.
 *
 * @example
 * ```ts
 * const before = await cpuSample(pid);
 * const r = await runBounded(["ip", "netns", "exec", ns, "ab", "-n", "100", url], 10_000, signal);
 * const cpu = cpuPercent(before, await cpuSample(pid));
 * ```
 *
 * @module
 */
import { run } from "../../netns-scripts/topology.ts";

/** Result of {@link runBounded}. */
export interface CmdResult {
  /** Exit code. */
  code: number;
  /** Captured stdout. */
  stdout: string;
  /** Captured stderr. */
  stderr: string;
  /** Wall time, milliseconds. */
  ms: number;
}

/** Thrown when the run is interrupted (SIGINT/SIGTERM) — the caller tears down and exits. */
export class Interrupted extends Error {
  /** Builds the error. */
  constructor() {
    super("interrupted");
    this.name = "Interrupted";
  }
}

/** Throws {@link Interrupted} once `signal` has fired. */
export function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new Interrupted();
}

/**
 * Runs `cmd` to completion with its output captured. SIGKILLs it and throws when `timeoutMs` passes; SIGKILLs
 * it and throws {@link Interrupted} when `signal` fires. A non-zero exit status is returned, not thrown.
 */
export async function runBounded(cmd: string[], timeoutMs: number, signal?: AbortSignal): Promise<CmdResult> {
  checkAbort(signal);
  const start = performance.now();
  try {
    const r = await run(cmd, timeoutMs, signal);
    return { code: r.code, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - start };
  } catch (e) {
    // run() throws the signal's reason when the abort, not the deadline, killed the command.
    if (signal?.aborted && e === signal.reason) throw new Interrupted();
    throw e;
  }
}

/** Runs `cmd` inside namespace `ns` with {@link runBounded}. */
export function nsRun(
  ns: string,
  cmd: string[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<CmdResult> {
  return runBounded(["ip", "netns", "exec", ns, ...cmd], timeoutMs, signal);
}

/** Like {@link nsRun}, but throws with the command's stderr when it exits non-zero. */
export async function nsRunOk(
  ns: string,
  cmd: string[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<CmdResult> {
  const r = await nsRun(ns, cmd, timeoutMs, signal);
  if (r.code !== 0) {
    throw new Error(`${cmd.join(" ")} (in ${ns}) exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  }
  return r;
}

/** Sleeps `ms`; throws {@link Interrupted} early when `signal` fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Interrupted());
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Interrupted());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Clock ticks per second of /proc's time fields (USER_HZ; 100 on every Linux architecture we run on). */
export const CLK_TCK = 100;

/**
 * One CPU reading: the process's utime+stime (if a pid was given), the host's softirq and busy time, and the
 * wall clock.
 */
export interface CpuSample {
  /** utime+stime of the process, ticks; NaN without a process. */
  procTicks: number;
  /** softirq time summed over all CPUs (/proc/stat), ticks. */
  softirqTicks: number;
  /**
   * Busy time summed over all CPUs (/proc/stat: everything but idle and iowait), ticks: client, servers,
   * forwarding process and kernel together — what a path costs the whole box.
   */
  busyTicks: number;
  /** performance.now() at the reading. */
  at: number;
}

/** utime+stime (ticks) of `pid` from /proc/PID/stat, all threads included. */
export function parseProcStatTicks(stat: string): number {
  // The command name (field 2) may contain spaces and parentheses: fields count from the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  return Number(rest[11]) + Number(rest[12]);
}

/** Softirq ticks over all CPUs from /proc/stat's aggregate `cpu` line. */
export function parseSoftirqTicks(procStat: string): number {
  const line = procStat.split("\n").find((l) => l.startsWith("cpu "));
  if (!line) throw new Error("/proc/stat: no aggregate cpu line");
  // cpu user nice system idle iowait irq softirq steal …
  return Number(line.trim().split(/\s+/)[7]);
}

/** Busy ticks over all CPUs from /proc/stat's aggregate `cpu` line: every column but idle and iowait. */
export function parseBusyTicks(procStat: string): number {
  const line = procStat.split("\n").find((l) => l.startsWith("cpu "));
  if (!line) throw new Error("/proc/stat: no aggregate cpu line");
  // cpu user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  return f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
}

/** Reads the CPU counters now; `pid` undefined measures the host only. */
export async function cpuSample(pid?: number): Promise<CpuSample> {
  const procTicks = pid === undefined
    ? NaN
    : parseProcStatTicks(await Deno.readTextFile(`/proc/${pid}/stat`));
  const stat = await Deno.readTextFile("/proc/stat");
  return {
    procTicks,
    softirqTicks: parseSoftirqTicks(stat),
    busyTicks: parseBusyTicks(stat),
    at: performance.now(),
  };
}

/** CPU use between two samples, in percent of one core: the process's, the host's softirq and busy time. */
export function cpuPercent(a: CpuSample, b: CpuSample): { proc: number; softirq: number; host: number } {
  const secs = (b.at - a.at) / 1000;
  const pct = (ticks: number) => (ticks / CLK_TCK / secs) * 100;
  return {
    proc: pct(b.procTicks - a.procTicks),
    softirq: pct(b.softirqTicks - a.softirqTicks),
    host: pct(b.busyTicks - a.busyTicks),
  };
}

/**
 * The pid that does the work behind `pid`: `ip netns exec` execs its command in place, so normally `pid`
 * itself; should it ever fork instead, its only child.
 */
export async function workerPid(pid: number): Promise<number> {
  const comm = (await Deno.readTextFile(`/proc/${pid}/comm`)).trim();
  if (comm !== "ip") return pid;
  const children = (await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`)).trim().split(/\s+/);
  return children[0] ? Number(children[0]) : pid;
}
