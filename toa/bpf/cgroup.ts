/**
 * Attaching the TOA programs (toa/bpf/sockops_toa.ts) to a cgroup v2 directory, and the cgroup chores around
 * it: a cgroup the caller makes, moving a process in, removing it again. Attachment is by links
 * (`BPF_LINK_CREATE`), which sit beside other programs on the same cgroup and go when their fd (or pin) goes.
 *
 * Only directories under /sys/fs/cgroup that are not the root of a hierarchy are accepted: a program on
 * the root cgroup would touch every socket of the host.
 *
 * @module
 */
import { AttachType, closeFd, linkCreate, objPin, openDirectory, progQuery } from "../../base/bpf/syscall.ts";

/** Where cgroup v2 is mounted on hosts that also mount v1 (the hybrid layout); else /sys/fs/cgroup. */
export function unifiedRoot(): string {
  try {
    if (Deno.statSync("/sys/fs/cgroup/unified/cgroup.procs").isFile) return "/sys/fs/cgroup/unified";
  } catch { /* pure v2 */ }
  return "/sys/fs/cgroup";
}

/** Throws unless `dir` is a cgroup v2 directory below (not at) the root of the hierarchy. */
export function checkCgroupDir(dir: string): string {
  const real = Deno.realPathSync(dir);
  if (!real.startsWith("/sys/fs/cgroup/")) throw new Error(`${dir}: not under /sys/fs/cgroup`);
  try {
    Deno.statSync(`${real}/cgroup.procs`);
  } catch {
    throw new Error(`${dir}: not a cgroup directory (no cgroup.procs)`);
  }
  const root = unifiedRoot();
  if (real === root || real === "/sys/fs/cgroup" || real === "/sys/fs/cgroup/unified") {
    throw new Error(`${dir}: the root cgroup: refusing to change every socket of the host`);
  }
  try {
    Deno.statSync(`${real}/cgroup.controllers`); // only cgroup v2 has it
  } catch {
    throw new Error(`${dir}: not a cgroup v2 directory (sockops programs attach to cgroup v2 only)`);
  }
  return real;
}

/** Makes cgroup `name` under the v2 root; returns its path. */
export function createCgroup(name: string): string {
  const path = `${unifiedRoot()}/${name}`;
  Deno.mkdirSync(path);
  return path;
}

/** Moves process `pid` (all its threads) into cgroup `dir`. */
export function movePid(dir: string, pid: number): void {
  Deno.writeTextFileSync(`${dir}/cgroup.procs`, `${pid}\n`);
}

/** The cgroup v2 path (under the v2 root) of process `pid`, from /proc/PID/cgroup's `0::` line. */
export function cgroupOf(pid: number | "self" = "self"): string {
  const line = Deno.readTextFileSync(`/proc/${pid}/cgroup`).split("\n").find((l) => l.startsWith("0::"));
  if (line === undefined) throw new Error(`/proc/${pid}/cgroup: no cgroup v2 line`);
  return unifiedRoot() + (line.slice(3) === "/" ? "" : line.slice(3));
}

/** Moves every process of cgroup `dir` to its parent, then removes it; quiet when it is already gone. */
export function removeCgroup(dir: string): void {
  const parent = dir.slice(0, dir.lastIndexOf("/"));
  try {
    for (const pid of Deno.readTextFileSync(`${dir}/cgroup.procs`).split("\n").filter((l) => l !== "")) {
      try {
        movePid(parent, Number(pid));
      } catch { /* exited meanwhile */ }
    }
    Deno.removeSync(dir);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** One program attached to one cgroup, as a link. */
export interface Attached {
  /** Name of the program (and of its pin). */
  name: "sockops" | "getpeername4" | "getpeername6";
  /** The link fd (-1 once closed). */
  link: number;
}

/**
 * The TOA programs attached to a cgroup as links (BPF_LINK_CREATE): they stay attached while this process
 * holds the link fds — a crash or SIGKILL detaches them — or while a pin of them lives in bpffs
 * ({@link CgroupAttachment.pin}). Links attach beside other programs on the cgroup (multi mode).
 */
export class CgroupAttachment {
  private constructor(readonly dir: string, readonly attached: Attached[]) {}

  /**
   * Attaches the sockops program and, when given (non-zero), the getpeername pair to cgroup `dir` (checked
   * with {@link checkCgroupDir}). On a failure the ones already attached are taken off again.
   */
  static attach(
    dir: string,
    progs: { sockops: number; getpeername4?: number; getpeername6?: number },
  ): CgroupAttachment {
    const real = checkCgroupDir(dir);
    const cgFd = openDirectory(real);
    const attached: Attached[] = [];
    const want: [Attached["name"], number, number][] = [[
      "sockops",
      progs.sockops,
      AttachType.CGROUP_SOCK_OPS,
    ]];
    if (progs.getpeername4) {
      want.push(["getpeername4", progs.getpeername4, AttachType.CGROUP_INET4_GETPEERNAME]);
    }
    if (progs.getpeername6) {
      want.push(["getpeername6", progs.getpeername6, AttachType.CGROUP_INET6_GETPEERNAME]);
    }
    try {
      for (const [name, prog, type] of want) attached.push({ name, link: linkCreate(cgFd, prog, type) });
    } catch (e) {
      for (const a of attached) closeFd(a.link);
      throw e;
    } finally {
      closeFd(cgFd);
    }
    return new CgroupAttachment(real, attached);
  }

  /** Pins every link as `PINDIR/NAME` (bpffs), so the programs stay attached after this process exits. */
  pin(pinDir: string): void {
    for (const a of this.attached) objPin(a.link, `${pinDir}/${a.name}`);
  }

  /** Closes the link fds: the programs are detached unless pinned. */
  detach(): void {
    for (const a of this.attached) {
      if (a.link >= 0) closeFd(a.link);
      a.link = -1;
    }
  }
}

/** The attach types of the TOA programs, for queries (BPF_PROG_QUERY). */
export const TOA_ATTACH_TYPES = [
  AttachType.CGROUP_SOCK_OPS,
  AttachType.CGROUP_INET4_GETPEERNAME,
  AttachType.CGROUP_INET6_GETPEERNAME,
] as const;

/** Program ids attached to cgroup `dir`, per TOA attach type (what `bpftool cgroup show` lists). */
export function attachedPrograms(dir: string): number[] {
  const fd = openDirectory(dir);
  try {
    return TOA_ATTACH_TYPES.flatMap((t) => progQuery(fd, t));
  } finally {
    closeFd(fd);
  }
}
