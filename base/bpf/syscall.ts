/**
 * The bpf(2) commands the project uses, each filling its member of `union bpf_attr` (offsets from
 * include/uapi/linux/bpf.h) and calling {@link bpf} from base/sys/libc.ts, the one libc binding. Control path
 * only: every call allocates its attr. Failures throw {@link BpfError} naming the command and errno; a program
 * the verifier refuses throws with the verifier's log in the message.
 *
 * @module
 */
import {
  bpf,
  BPF_LINK_CREATE,
  BPF_MAP_CREATE,
  BPF_MAP_DELETE_ELEM,
  BPF_MAP_GET_NEXT_KEY,
  BPF_MAP_LOOKUP_ELEM,
  BPF_MAP_UPDATE_ELEM,
  BPF_OBJ_GET,
  BPF_OBJ_PIN,
  BPF_PROG_ATTACH,
  BPF_PROG_DETACH,
  BPF_PROG_LOAD,
  BPF_PROG_QUERY,
  BPF_PROG_TEST_RUN,
  cString,
  errno,
  libc,
  O_RDONLY,
} from "../sys/libc.ts";
import { errnoName } from "../sys/errno.ts";

/** Map types (enum bpf_map_type). */
export const MapType = {
  HASH: 1,
  ARRAY: 2,
  PERCPU_ARRAY: 6,
  LRU_HASH: 9,
  LPM_TRIE: 11,
  SK_STORAGE: 24,
} as const;

/** Program types (enum bpf_prog_type). */
export const ProgType = {
  SOCKET_FILTER: 1,
  SCHED_CLS: 3,
  SOCK_OPS: 13,
  CGROUP_SOCK_ADDR: 18,
} as const;

/** Attach types (enum bpf_attach_type). */
export const AttachType = {
  CGROUP_SOCK_OPS: 3,
  CGROUP_INET4_GETPEERNAME: 29,
  CGROUP_INET6_GETPEERNAME: 30,
} as const;

/** Map flag: allocate elements on update (LPM tries and socket storage require it). */
export const BPF_F_NO_PREALLOC = 1;
/** Attach flag: several programs on one cgroup and attach type, run in order. */
export const BPF_F_ALLOW_MULTI = 2;
/** Map update flag: create or replace. */
export const BPF_ANY = 0;

/** A bpf(2) command failed. */
export class BpfError extends Error {
  /** errno of the call. */
  readonly errno: number;
  /** Builds `bpf(CMD) failed (ERRNO)[: detail]`. */
  constructor(cmd: string, err: number, detail = "") {
    super(`bpf(${cmd}) failed (${errnoName(err)})${detail ? `: ${detail}` : ""}`);
    this.name = "BpfError";
    this.errno = err;
  }
}

const ptr = (b: Uint8Array | null): bigint =>
  b === null ? 0n : BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));

function attr(size = 144): { bytes: Uint8Array; dv: DataView } {
  const bytes = new Uint8Array(size);
  return { bytes, dv: new DataView(bytes.buffer) };
}

function call(cmd: number, name: string, bytes: Uint8Array, detail = ""): number {
  const r = bpf(cmd, bytes);
  if (r < 0) throw new BpfError(name, errno(), detail);
  return r;
}

/** What {@link createMap} builds. */
export interface MapSpec {
  /** A {@link MapType}. */
  type: number;
  /** Key size in bytes. */
  keySize: number;
  /** Value size in bytes. */
  valueSize: number;
  /** Capacity (0 for socket storage). */
  maxEntries: number;
  /** Map flags ({@link BPF_F_NO_PREALLOC}). */
  flags?: number;
  /** Name shown by bpftool (up to 15 bytes). */
  name?: string;
}

/** BPF_MAP_CREATE; returns the map fd. */
export function createMap(spec: MapSpec): number {
  const { bytes, dv } = attr();
  dv.setUint32(0, spec.type, true);
  dv.setUint32(4, spec.keySize, true);
  dv.setUint32(8, spec.valueSize, true);
  dv.setUint32(12, spec.maxEntries, true);
  dv.setUint32(16, spec.flags ?? 0, true);
  if (spec.name) bytes.set(new TextEncoder().encode(spec.name.slice(0, 15)), 28);
  return call(BPF_MAP_CREATE, `BPF_MAP_CREATE ${spec.name ?? ""}`.trim(), bytes);
}

function elem(cmd: number, mapFd: number, key: Uint8Array | null, value: Uint8Array | null, flags = 0) {
  const { bytes, dv } = attr(32);
  dv.setUint32(0, mapFd, true);
  dv.setBigUint64(8, ptr(key), true);
  dv.setBigUint64(16, ptr(value), true);
  dv.setBigUint64(24, BigInt(flags), true);
  return bpf(cmd, bytes);
}

/** BPF_MAP_LOOKUP_ELEM into `value`; false when the key is absent (ENOENT), throws on other errors. */
export function mapLookup(mapFd: number, key: Uint8Array, value: Uint8Array): boolean {
  if (elem(BPF_MAP_LOOKUP_ELEM, mapFd, key, value) === 0) return true;
  const e = errno();
  if (e === 2) return false;
  throw new BpfError("BPF_MAP_LOOKUP_ELEM", e);
}

/** BPF_MAP_UPDATE_ELEM. */
export function mapUpdate(mapFd: number, key: Uint8Array, value: Uint8Array, flags = BPF_ANY): void {
  if (elem(BPF_MAP_UPDATE_ELEM, mapFd, key, value, flags) !== 0) {
    throw new BpfError("BPF_MAP_UPDATE_ELEM", errno());
  }
}

/** BPF_MAP_DELETE_ELEM; false when the key was absent. */
export function mapDelete(mapFd: number, key: Uint8Array): boolean {
  if (elem(BPF_MAP_DELETE_ELEM, mapFd, key, null) === 0) return true;
  const e = errno();
  if (e === 2) return false;
  throw new BpfError("BPF_MAP_DELETE_ELEM", e);
}

/** BPF_MAP_GET_NEXT_KEY: the key after `key` (the first with null) into `next`; false at the end. */
export function mapNextKey(mapFd: number, key: Uint8Array | null, next: Uint8Array): boolean {
  if (elem(BPF_MAP_GET_NEXT_KEY, mapFd, key, next) === 0) return true;
  const e = errno();
  if (e === 2) return false;
  throw new BpfError("BPF_MAP_GET_NEXT_KEY", e);
}

/**
 * The number of possible CPUs (/sys/devices/system/cpu/possible, e.g. `0-255`): a lookup in a per-CPU map
 * writes one value per possible CPU, often more than the online ones on a VM.
 */
export function possibleCpus(): number {
  const text = Deno.readTextFileSync("/sys/devices/system/cpu/possible").trim();
  let max = 0;
  for (const part of text.split(",")) max = Math.max(max, Number(part.split("-").at(-1)));
  return max + 1;
}

/** Number of keys in a hash-like map (walks it: control path only). */
export function mapCount(mapFd: number, keySize: number): number {
  let key: Uint8Array | null = null;
  const next = new Uint8Array(keySize);
  let n = 0;
  while (mapNextKey(mapFd, key, next)) {
    n++;
    key = next.slice();
  }
  return n;
}

/** What {@link loadProgram} loads. */
export interface ProgSpec {
  /** A {@link ProgType}. */
  type: number;
  /** Assembled instructions (base/bpf/asm.ts). */
  insns: Uint8Array;
  /** The attach type the program is verified for (required for cgroup sock_addr programs). */
  expectedAttachType?: number;
  /** Name shown by bpftool (up to 15 bytes). */
  name?: string;
}

/**
 * BPF_PROG_LOAD; returns the program fd. On failure the load is repeated with the verifier log on, and the
 * error message ends with the log's last lines (where the verifier says what it refused).
 */
export function loadProgram(spec: ProgSpec): number {
  const license = cString("GPL");
  const fill = (log: Uint8Array | null) => {
    const { bytes, dv } = attr();
    dv.setUint32(0, spec.type, true);
    dv.setUint32(4, spec.insns.length / 8, true);
    dv.setBigUint64(8, ptr(spec.insns), true);
    dv.setBigUint64(16, ptr(license), true);
    if (log !== null) {
      dv.setUint32(24, 1, true); // log_level
      dv.setUint32(28, log.length, true);
      dv.setBigUint64(32, ptr(log), true);
    }
    if (spec.name) bytes.set(new TextEncoder().encode(spec.name.slice(0, 15)), 48);
    dv.setUint32(68, spec.expectedAttachType ?? 0, true);
    return bytes;
  };
  const fd = bpf(BPF_PROG_LOAD, fill(null));
  if (fd >= 0) return fd;
  const first = errno();
  const log = new Uint8Array(1 << 20);
  const again = bpf(BPF_PROG_LOAD, fill(log));
  if (again >= 0) return again; // not expected; keep what loaded
  const end = log.indexOf(0);
  const text = new TextDecoder().decode(log.subarray(0, end < 0 ? log.length : end)).trim();
  const tail = text.split("\n").slice(-12).join("\n");
  throw new BpfError(`BPF_PROG_LOAD ${spec.name ?? ""}`.trim(), first, tail ? `verifier log:\n${tail}` : "");
}

/**
 * Loads `spec` once with the verifier's statistics on (log level 4), closes it, and returns how many
 * instructions the verifier processed: how close a program is to the kernel's limit of 1,000,000.
 */
export function verifierWork(spec: ProgSpec): number {
  const license = cString("GPL");
  const log = new Uint8Array(4096);
  const { bytes, dv } = attr();
  dv.setUint32(0, spec.type, true);
  dv.setUint32(4, spec.insns.length / 8, true);
  dv.setBigUint64(8, ptr(spec.insns), true);
  dv.setBigUint64(16, ptr(license), true);
  dv.setUint32(24, 4, true); // BPF_LOG_STATS
  dv.setUint32(28, log.length, true);
  dv.setBigUint64(32, ptr(log), true);
  dv.setUint32(68, spec.expectedAttachType ?? 0, true);
  const fd = call(BPF_PROG_LOAD, "BPF_PROG_LOAD (stats)", bytes);
  closeFd(fd);
  const m = new TextDecoder().decode(log.subarray(0, Math.max(0, log.indexOf(0)))).match(
    /processed (\d+) insns/,
  );
  if (m === null) throw new Error("bpf: no verifier statistics in the log");
  return Number(m[1]);
}

/** BPF_PROG_ATTACH of `progFd` to the cgroup (or other target) `targetFd`. */
export function progAttach(targetFd: number, progFd: number, attachType: number, flags = 0): void {
  const { bytes, dv } = attr(20);
  dv.setUint32(0, targetFd, true);
  dv.setUint32(4, progFd, true);
  dv.setUint32(8, attachType, true);
  dv.setUint32(12, flags, true);
  call(BPF_PROG_ATTACH, "BPF_PROG_ATTACH", bytes);
}

/** BPF_PROG_DETACH of `progFd` from `targetFd`; false when it was not attached (ENOENT). */
export function progDetach(targetFd: number, progFd: number, attachType: number): boolean {
  const { bytes, dv } = attr(20);
  dv.setUint32(0, targetFd, true);
  dv.setUint32(4, progFd, true);
  dv.setUint32(8, attachType, true);
  if (bpf(BPF_PROG_DETACH, bytes) === 0) return true;
  const e = errno();
  if (e === 2) return false;
  throw new BpfError("BPF_PROG_DETACH", e);
}

/**
 * BPF_LINK_CREATE: attaches `progFd` to `targetFd` (a cgroup) as a link, returned as an fd. The program stays
 * attached while the link fd (or a pin of it) lives: a process that dies, however, detaches it.
 */
export function linkCreate(targetFd: number, progFd: number, attachType: number): number {
  const { bytes, dv } = attr(64);
  dv.setUint32(0, progFd, true);
  dv.setUint32(4, targetFd, true);
  dv.setUint32(8, attachType, true);
  return call(BPF_LINK_CREATE, "BPF_LINK_CREATE", bytes);
}

/** BPF_PROG_QUERY: the ids of the programs attached to `targetFd` for `attachType`. */
export function progQuery(targetFd: number, attachType: number): number[] {
  const ids = new Uint32Array(64);
  const { bytes, dv } = attr(40);
  dv.setUint32(0, targetFd, true);
  dv.setUint32(4, attachType, true);
  dv.setBigUint64(16, ptr(new Uint8Array(ids.buffer)), true);
  dv.setUint32(24, ids.length, true);
  call(BPF_PROG_QUERY, "BPF_PROG_QUERY", bytes);
  return Array.from(ids.subarray(0, dv.getUint32(24, true)));
}

/** BPF_OBJ_PIN: pins a program or map fd at `path` (in a mounted bpffs). */
export function objPin(fd: number, path: string): void {
  const p = cString(path);
  const { bytes, dv } = attr(16);
  dv.setBigUint64(0, ptr(p), true);
  dv.setUint32(8, fd, true);
  call(BPF_OBJ_PIN, `BPF_OBJ_PIN ${path}`, bytes);
}

/** BPF_OBJ_GET: opens the object pinned at `path`; returns its fd. */
export function objGet(path: string): number {
  const p = cString(path);
  const { bytes, dv } = attr(16);
  dv.setBigUint64(0, ptr(p), true);
  return call(BPF_OBJ_GET, `BPF_OBJ_GET ${path}`, bytes);
}

/** What {@link testRun} reports. */
export interface TestRunResult {
  /** The program's return value. */
  retval: number;
  /** The packet as the program left it (first `data.length` + 256 bytes at most). */
  dataOut: Uint8Array;
}

/** BPF_PROG_TEST_RUN once over `data` (for skb programs: an Ethernet frame). */
export function testRun(progFd: number, data: Uint8Array): TestRunResult {
  const out = new Uint8Array(data.length + 256);
  const { bytes, dv } = attr(80);
  dv.setUint32(0, progFd, true);
  dv.setUint32(8, data.length, true);
  dv.setUint32(12, out.length, true);
  dv.setBigUint64(16, ptr(data), true);
  dv.setBigUint64(24, ptr(out), true);
  dv.setUint32(32, 1, true); // repeat
  call(BPF_PROG_TEST_RUN, "BPF_PROG_TEST_RUN", bytes);
  return { retval: dv.getUint32(4, true), dataOut: out.subarray(0, dv.getUint32(12, true)) };
}

/** Opens a directory (a cgroup) read-only for attach and query; returns the fd. */
export function openDirectory(path: string): number {
  const fd = libc().open(cString(path), O_RDONLY, 0);
  if (fd < 0) throw new Error(`open ${path} failed (${errnoName(errno())})`);
  return fd;
}

/** Closes an fd from this module. */
export function closeFd(fd: number): void {
  libc().close(fd);
}
