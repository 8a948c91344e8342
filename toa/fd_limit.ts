/**
 * The proxy's open-file limit (RLIMIT_NOFILE). Each relayed connection holds two fds, the client's and the
 * backend's, so the usual soft limit of 1024 caps a relay near 500 connections. The hard limit (`ulimit -Hn`,
 * systemd's `LimitNOFILE=`) is the ceiling an unprivileged process may raise its soft limit to, and a relay
 * should use all of it: {@link raiseFdLimit} does that once, at start.
 *
 * `struct rlimit` is two u64, `rlim_cur` (soft) then `rlim_max` (hard); `RLIM_INFINITY` is all ones. NOFILE
 * can never really be infinite (the kernel refuses more than `fs.nr_open`), so an infinite hard limit is
 * raised to `fs.nr_open`.
 *
 * @module
 */
import { errno, libc, RLIMIT_NOFILE, RLIMIT_SIZE } from "../base/sys/libc.ts";

/** RLIM_INFINITY as a u64. */
const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

/** The NOFILE limits of the process; `Infinity` stands for RLIM_INFINITY. */
export interface FdLimit {
  /** Soft limit: what open/accept/socket are held to now. */
  soft: number;
  /** Hard limit: the ceiling for the soft limit. */
  hard: number;
}

/** The result of {@link raiseFdLimit}: the limits after, the soft limit before, and errno if it failed. */
export interface FdLimitRaise extends FdLimit {
  /** Soft limit before the call. */
  before: number;
  /** errno of a failed getrlimit/setrlimit (the limits are then unchanged), else 0. */
  errno: number;
}

function toNumber(v: bigint): number {
  return v === RLIM_INFINITY ? Infinity : Number(v);
}

/** The current RLIMIT_NOFILE; throws only if getrlimit fails, which Linux does not do for NOFILE. */
export function fdLimit(): FdLimit {
  const b = new Uint8Array(RLIMIT_SIZE);
  if (libc().getrlimit(RLIMIT_NOFILE, b) !== 0) {
    throw new Error(`getrlimit(RLIMIT_NOFILE): errno ${errno()}`);
  }
  const v = new DataView(b.buffer);
  return { soft: toNumber(v.getBigUint64(0, true)), hard: toNumber(v.getBigUint64(8, true)) };
}

/** `fs.nr_open`, the kernel's ceiling for NOFILE (1048576 when it cannot be read). */
function nrOpen(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/sys/fs/nr_open").trim()) || 1048576;
  } catch {
    return 1048576;
  }
}

/** Raises the soft RLIMIT_NOFILE to the hard limit (to `fs.nr_open` when the hard one is infinite). */
export function raiseFdLimit(): FdLimitRaise {
  const lib = libc();
  const b = new Uint8Array(RLIMIT_SIZE);
  const v = new DataView(b.buffer);
  if (lib.getrlimit(RLIMIT_NOFILE, b) !== 0) {
    return { soft: NaN, hard: NaN, before: NaN, errno: errno() };
  }
  const soft = v.getBigUint64(0, true);
  const hard = v.getBigUint64(8, true);
  const want = hard === RLIM_INFINITY ? BigInt(nrOpen()) : hard;
  const done = { soft: toNumber(soft), hard: toNumber(hard), before: toNumber(soft), errno: 0 };
  if (soft === RLIM_INFINITY || soft >= want) return done;
  v.setBigUint64(0, want, true);
  if (lib.setrlimit(RLIMIT_NOFILE, b) !== 0) return { ...done, errno: errno() };
  return { ...done, soft: toNumber(want) };
}
