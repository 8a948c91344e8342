/**
 * The `toa-transparent` subcommand: unmodified servers see the client's address. It attaches the sockops
 * program and the getpeername pair (toa/bpf/sockops_toa.ts) to a cgroup the operator names, so that for
 * every process in it `accept()` and `getpeername()` return the client from TOA (from the handshake's ACK,
 * else the saved SYN) when the peer is in `--trust`, and the peer otherwise. Servers must start listening
 * after it is attached (their listeners then keep SYNs; a TOA in the ACK is read either way).
 *
 * Runs until SIGINT/SIGTERM and detaches at exit (links: a crash detaches too); SIGUSR2 prints the
 * counters. `--pin DIR` pins the links (and maps) in bpffs instead and exits at once, leaving them
 * attached; `--detach DIR` removes such a pin, which detaches them.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseToaKinds, UsageError } from "./cli.ts";
import { toaFormsOf } from "./bpf/toa_walker.ts";
import type { ToaKindSet } from "../base/packet/toa_option.ts";
import { parseTrustList } from "./trust.ts";
import type { Cidr } from "./trust.ts";
import { CgroupAttachment, checkCgroupDir } from "./bpf/cgroup.ts";
import { readStats, ToaBpf, TRUST_MAX } from "./bpf/sockops_toa.ts";
import { mapCount, objGet, objPin } from "../base/bpf/syscall.ts";
import { closeFd } from "../base/bpf/syscall.ts";

const USAGE =
  `usage: mod.ts toa-transparent --cgroup DIR --trust CIDR[,CIDR...] [--toa-kinds K[,K...]] [--pin PINDIR]
       mod.ts toa-transparent --detach PINDIR
  Every process in cgroup v2 directory DIR (not the root cgroup; under /sys/fs/cgroup) gets the client's
  address and port from TOA in accept() and getpeername(), when the peer is in --trust (the gateway's
  local addresses, up to ${TRUST_MAX} CIDRs). Start the servers after this is ready. Runs until SIGINT/SIGTERM,
  then detaches; SIGUSR2 prints the counters. --pin PINDIR (under /sys/fs/bpf, mounted if absent): leave
  the programs attached after exit, pinned there. --detach PINDIR: remove that pin (and so detach).
  --toa-kinds: option kinds taken as TOA (default 253,254), as toa-proxy's.`;

/** The parsed flags. */
export type TransparentArgs =
  | { mode: "run"; cgroup: string; trust: Cidr[]; toaKinds: ToaKindSet; pin: string | null }
  | { mode: "detach"; pin: string };

/** What a pin directory holds. */
const PINNED_LINKS = ["sockops", "getpeername4", "getpeername6"] as const;
const PINNED_MAPS = ["conns", "stats", "trust"] as const;

/** Parses the flags; throws {@link UsageError}; null for --help. */
export function parseTransparentArgs(args: string[]): TransparentArgs | null {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        cgroup: { type: "string" },
        trust: { type: "string" },
        "toa-kinds": { type: "string" },
        pin: { type: "string" },
        detach: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) return null;
  const bpffs = (flag: string, v: string) => {
    if (!v.startsWith("/sys/fs/bpf/") || v.includes("..")) {
      throw new UsageError(`--${flag}: expected a directory under /sys/fs/bpf/, got ${JSON.stringify(v)}`);
    }
    return v.replace(/\/+$/, "");
  };
  if (values.detach !== undefined) {
    if (values.cgroup !== undefined || values.pin !== undefined) {
      throw new UsageError("--detach takes no --cgroup or --pin");
    }
    return { mode: "detach", pin: bpffs("detach", values.detach) };
  }
  if (!values.cgroup) throw new UsageError("--cgroup is required");
  if (!values.trust) throw new UsageError("--trust is required");
  let cgroup: string;
  try {
    cgroup = checkCgroupDir(values.cgroup);
  } catch (e) {
    throw new UsageError(`--cgroup: ${(e as Error).message}`);
  }
  let trust: Cidr[];
  try {
    trust = parseTrustList(values.trust);
  } catch (e) {
    throw new UsageError(`--trust: ${(e as Error).message}`);
  }
  if (trust.length > TRUST_MAX) {
    throw new UsageError(`--trust: at most ${TRUST_MAX} CIDRs, got ${trust.length}`);
  }
  const toaKinds = parseToaKinds(values["toa-kinds"]);
  return {
    mode: "run",
    cgroup,
    trust,
    toaKinds,
    pin: values.pin === undefined ? null : bpffs("pin", values.pin),
  };
}

/** Mounts bpffs at /sys/fs/bpf unless one is there. */
async function ensureBpffs(): Promise<void> {
  const mounts = await Deno.readTextFile("/proc/self/mounts");
  if (mounts.split("\n").some((l) => l.split(" ")[1] === "/sys/fs/bpf" && l.split(" ")[2] === "bpf")) return;
  const r = await new Deno.Command("mount", { args: ["-t", "bpf", "bpf", "/sys/fs/bpf"] }).output();
  if (!r.success) {
    throw new Error(`mount -t bpf bpf /sys/fs/bpf: ${new TextDecoder().decode(r.stderr).trim()}`);
  }
}

/** The counters line: the kernel program's counters and the per-socket table's size. */
function statsLine(event: string, stats: Record<string, number>, entries: number): string {
  return `toa-transparent event=${event} ` + Object.entries(stats).map(([k, v]) => `${k}=${v}`).join(" ") +
    ` entries=${entries}`;
}

/** Runs `toa-transparent`; returns the exit status. */
export async function toaTransparentMain(args: string[]): Promise<number> {
  let a: TransparentArgs | null;
  try {
    a = parseTransparentArgs(args);
  } catch (e) {
    console.error(`toa-transparent: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (a === null) {
    console.log(USAGE);
    return 0;
  }
  if (a.mode === "detach") {
    let removed = 0;
    for (const name of [...PINNED_LINKS, ...PINNED_MAPS]) {
      try {
        await Deno.remove(`${a.pin}/${name}`);
        removed++;
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    try {
      await Deno.remove(a.pin);
    } catch { /* not empty or gone: say so below */ }
    console.log(`toa-transparent detached pin=${a.pin} removed=${removed}`);
    return removed > 0 ? 0 : 1;
  }
  let bpf: ToaBpf;
  let att: CgroupAttachment;
  try {
    bpf = ToaBpf.load(a.trust, { getpeername: true, forms: toaFormsOf(a.toaKinds.kinds) });
  } catch (e) {
    console.error(`toa-transparent: ${(e as Error).message}`);
    return 1;
  }
  try {
    att = CgroupAttachment.attach(a.cgroup, bpf);
  } catch (e) {
    bpf.close();
    console.error(`toa-transparent: attach to ${a.cgroup}: ${(e as Error).message}`);
    return 1;
  }
  const trustText = a.trust.map((c) => c.text).join(",");
  if (a.pin !== null) {
    try {
      await ensureBpffs();
      await Deno.mkdir(a.pin, { recursive: true });
      att.pin(a.pin);
      objPin(bpf.maps.conns, `${a.pin}/conns`);
      objPin(bpf.maps.stats, `${a.pin}/stats`);
      objPin(bpf.maps.trust, `${a.pin}/trust`);
    } catch (e) {
      for (const name of [...PINNED_LINKS, ...PINNED_MAPS]) {
        await Deno.remove(`${a.pin}/${name}`).catch(() => {});
      }
      att.detach();
      bpf.close();
      console.error(`toa-transparent: pin ${a.pin}: ${(e as Error).message}`);
      return 1;
    }
    att.detach(); // closes our fds; the pins keep the links, so the programs stay attached
    bpf.close();
    console.log(`toa-transparent pinned cgroup=${a.cgroup} trust=${trustText} pin=${a.pin}`);
    return 0;
  }
  let wake: () => void = () => {};
  const stopped = new Promise<void>((r) => (wake = r));
  const stats = () => console.error(statsLine("stats", bpf.stats(), bpf.entries()));
  Deno.addSignalListener("SIGINT", wake);
  Deno.addSignalListener("SIGTERM", wake);
  Deno.addSignalListener("SIGUSR2", stats);
  console.log(
    `toa-transparent ready cgroup=${a.cgroup} trust=${trustText} programs=${
      att.attached.map((x) => x.name).join(",")
    }`,
  );
  try {
    await stopped;
  } finally {
    Deno.removeSignalListener("SIGINT", wake);
    Deno.removeSignalListener("SIGTERM", wake);
    Deno.removeSignalListener("SIGUSR2", stats);
    att.detach();
    console.error(statsLine("stopped", bpf.stats(), bpf.entries()));
    bpf.close();
  }
  return 0;
}

/** The counters and table size of a pinned attachment (for checks and scripts). */
export function pinnedStats(pin: string): { stats: Record<string, number>; entries: number } {
  const s = objGet(`${pin}/stats`), c = objGet(`${pin}/conns`);
  try {
    return { stats: readStats(s), entries: mapCount(c, 8) };
  } finally {
    closeFd(s);
    closeFd(c);
  }
}
