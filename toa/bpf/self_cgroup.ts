/**
 * The sockops decoder for `toa-proxy`: TOA from the handshake's ACK (or SYN) read by the kernel program of
 * toa/bpf/sockops_toa.ts, for the proxy's own listener.
 *
 * A cgroup program sees the sockets of its cgroup, and a socket belongs to the cgroup of the process that
 * created it, for its whole life (accepted sockets take their listener's). So the proxy makes a cgroup of
 * its own (`toa-proxy-PID` under the cgroup v2 root), moves itself in, attaches the sockops program there
 * (as a link: it goes with the process, even on SIGKILL), opens its listener — and moves itself back at
 * once ({@link SelfCgroup.leave}). Only the listener and its connections stay in the cgroup: nothing else the
 * proxy or its children open is touched, and the proxy stays in the cgroup its supervisor put it in.
 * {@link SelfCgroup.close} detaches and removes the cgroup; a cgroup left by a killed proxy is removed by
 * the next one that starts.
 *
 * @module
 */
import type { Cidr } from "../trust.ts";
import { CgroupAttachment, cgroupOf, createCgroup, movePid, removeCgroup, unifiedRoot } from "./cgroup.ts";
import { ToaBpf, type ToaRecord } from "./sockops_toa.ts";
import type { ToaForm } from "./toa_walker.ts";

const PREFIX = "toa-proxy-";

/** The proxy's own cgroup with the sockops program on it. */
export class SelfCgroup {
  private constructor(
    /** The cgroup directory. */
    readonly dir: string,
    private readonly home: string,
    private readonly bpf: ToaBpf,
    private readonly att: CgroupAttachment,
  ) {}

  /**
   * Loads the program, makes the cgroup, attaches, and moves this process in; throws an Error saying why
   * when any step fails (then nothing is left behind).
   */
  static enter(trust: readonly Cidr[], forms?: readonly ToaForm[]): SelfCgroup {
    const root = unifiedRoot();
    try {
      Deno.statSync(`${root}/cgroup.controllers`);
    } catch {
      throw new Error(
        `no cgroup v2 hierarchy at ${root} (under \`ip netns exec\`, /sys is a sysfs of the namespace ` +
          `without cgroups: enter the namespace with \`nsenter --net=…\` instead)`,
      );
    }
    removeStale();
    const home = cgroupOf("self");
    const bpf = ToaBpf.load(trust, { forms });
    let dir = "";
    try {
      dir = createCgroup(`${PREFIX}${Deno.pid}`);
      const att = CgroupAttachment.attach(dir, bpf);
      try {
        movePid(dir, Deno.pid);
      } catch (e) {
        att.detach();
        throw e;
      }
      return new SelfCgroup(dir, home, bpf, att);
    } catch (e) {
      bpf.close();
      if (dir) removeCgroup(dir);
      throw e;
    }
  }

  /** Moves this process back to where it was (call once the listener is open). */
  leave(): void {
    movePid(this.home, Deno.pid);
  }

  /** The TOA the kernel program recorded for accepted socket `fd`, or null. */
  lookup(fd: number): ToaRecord | null {
    return this.bpf.lookupSocket(fd);
  }

  /** The kernel program's counters. */
  stats(): ReturnType<ToaBpf["stats"]> {
    return this.bpf.stats();
  }

  /** Detaches, closes the maps and programs, removes the cgroup. */
  close(): void {
    try {
      this.leave();
    } catch { /* already out */ }
    this.att.detach();
    this.bpf.close();
    removeCgroup(this.dir);
  }
}

/** Removes `toa-proxy-PID` cgroups whose process is gone and that hold no process (left by a SIGKILL). */
function removeStale(): void {
  const root = unifiedRoot();
  try {
    for (const e of Deno.readDirSync(root)) {
      if (!e.isDirectory || !e.name.startsWith(PREFIX)) continue;
      const pid = Number(e.name.slice(PREFIX.length));
      let alive = false;
      try {
        Deno.statSync(`/proc/${pid}`);
        alive = true;
      } catch { /* gone */ }
      if (alive) continue;
      try {
        if (Deno.readTextFileSync(`${root}/${e.name}/cgroup.procs`).trim() === "") {
          Deno.removeSync(`${root}/${e.name}`);
        }
      } catch { /* someone else's, or racing */ }
    }
  } catch { /* no cgroup v2 root: enter() says so */ }
}
