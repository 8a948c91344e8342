/**
 * Packet captures inside a namespace for end-to-end tests: tcpdump writes the pcap to its stdout (so no
 * file permission or AppArmor rule of tcpdump's is involved), the helper keeps it and hands it to scapy
 * (`pcap_tcp.py`), which dissects the TCP segments independently of our packet code.
 *
 * @example
 * ```ts
 * const cap = await startCapture({ ns: t.nsRs[0], filter: "tcp port 80" });
 * // … traffic …
 * const segments = await cap.stop(`${tmp}/rs1.pcap`);
 * const syns = segments.filter((s) => s.flags === "S");
 * ```
 *
 * @module
 */
import { run } from "../../netns-scripts/topology.ts";
import { spawnBackground } from "./process.ts";

const HERE = new URL(".", import.meta.url).pathname;
/** The Python with scapy (Debian's python3-scapy), not a pyenv build. */
export const PYTHON = "/usr/bin/python3";

/** One raw TCP option: kind, total length, data (hex, without kind and length). */
export interface TcpOption {
  kind: number;
  len: number;
  data: string;
  /** For a well-formed TOA (kind 254, len 8 or 20): the port and address it claims. */
  toa?: { port: number; address: string };
}

/** One captured TCP segment, as `pcap_tcp.py` prints it. */
export interface TcpSegment {
  /** Capture time, seconds since the epoch. */
  time: number;
  family: 4 | 6;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** scapy's flag letters: `S`, `SA`, `A`, `PA`, `FA`, `R`, … */
  flags: string;
  seq: number;
  ack: number;
  window: number;
  /** Options in wire order. */
  options: TcpOption[];
  payloadLen: number;
  /**
   * `ok`: the TCP checksum verifies; `partial`: the field holds exactly the uncomplemented pseudo-header
   * sum, a checksum left for offload to complete (veth delivers such packets unverified, so this is the
   * only check they get); `bad`: neither.
   */
  checksum: "ok" | "partial" | "bad";
  /** IPv4 TTL or IPv6 hop limit as it arrived. */
  ttl: number;
}

/** Options of {@link startCapture}. */
export interface CaptureOptions {
  /** Namespace to capture in. */
  ns: string;
  /** Interface (default `eth0`). */
  iface?: string;
  /** pcap filter expression (default: all TCP). */
  filter?: string;
  /** Milliseconds to wait for tcpdump to listen (default 10 s). */
  timeoutMs?: number;
  /** Most packets to keep (tcpdump -c; default 100000), so a capture stays bounded. */
  maxPackets?: number;
  /** Kernel capture buffer in KiB (tcpdump -B), for bursts a busy tcpdump must not lose; libpcap's default else. */
  bufferKiB?: number;
}

/** A running capture. */
export interface Capture {
  /** Stops tcpdump, writes the pcap to `pcapPath` and returns the TCP segments scapy found in it. */
  stop(pcapPath: string): Promise<TcpSegment[]>;
  /**
   * Stops tcpdump and writes the pcap to `pcapPath` only, for a dissector of the caller's choice; returns
   * tcpdump's closing statistics (`N packets captured`, `N packets dropped by kernel`, …).
   */
  save(pcapPath: string): Promise<string>;
  /** Stops tcpdump and discards the capture (for cleanup paths). Idempotent. */
  abort(): Promise<void>;
}

/** Starts tcpdump in `opts.ns` and waits (bounded) until it listens. */
export async function startCapture(opts: CaptureOptions): Promise<Capture> {
  const p = spawnBackground([
    "ip",
    "netns",
    "exec",
    opts.ns,
    "tcpdump",
    "-i",
    opts.iface ?? "eth0",
    "-n",
    // Without immediate mode libpcap hands packets over per TPACKET_V3 block (up to 1 s late), and the
    // packets of a block not yet handed over when tcpdump is stopped are lost.
    "--immediate-mode",
    "-U",
    "-s",
    "0",
    "-Z",
    "root",
    "-c",
    String(opts.maxPackets ?? 100_000),
    ...(opts.bufferKiB ? ["-B", String(opts.bufferKiB)] : []),
    "-w",
    "-",
    ...(opts.filter ?? "tcp").split(" "),
  ]);
  try {
    await p.waitFor(
      () => p.stderr().includes("listening on"),
      `tcpdump in ${opts.ns}`,
      opts.timeoutMs ?? 10_000,
    );
  } catch (e) {
    await p.stop("SIGKILL", 1_000);
    throw e;
  }
  const save = async (pcapPath: string) => {
    // Immediate mode and -U write every packet at once; a short pause lets the last ones reach tcpdump.
    await new Promise((r) => setTimeout(r, 200));
    const s = await p.stop("SIGINT", 5_000);
    if (s.stdout.length < 24) throw new Error(`tcpdump wrote no pcap: ${s.stderr.trim()}`);
    await Deno.writeFile(pcapPath, s.stdout);
    return s.stderr.split("\n").filter((l) => /^\d+ packets? /.test(l)).join(", ");
  };
  return {
    async stop(pcapPath) {
      await save(pcapPath);
      return await readTcpPcap(pcapPath);
    },
    save,
    async abort() {
      await p.stop("SIGKILL", 1_000);
    },
  };
}

/** Dissects a pcap's TCP segments with scapy (`pcap_tcp.py`). */
export async function readTcpPcap(pcapPath: string): Promise<TcpSegment[]> {
  const r = await run([PYTHON, `${HERE}pcap_tcp.py`, pcapPath], 60_000);
  if (!r.success) throw new Error(`pcap_tcp.py ${pcapPath}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as TcpSegment[];
}

/** The TOA options (kind 254) of a segment, as scapy's side decoded them. */
export function toaOptions(seg: TcpSegment): { port: number; address: string; len: number }[] {
  return seg.options.filter((o) => o.kind === 254).map((o) => ({
    port: o.toa?.port ?? -1,
    address: o.toa?.address ?? `malformed:${o.data}`,
    len: o.len,
  }));
}

/** Sends crafted TCP segments from namespace `ns` with scapy (`send_tcp.py`; see its usage). */
export async function sendTcp(ns: string, args: string[]): Promise<string> {
  const r = await run(["ip", "netns", "exec", ns, PYTHON, `${HERE}send_tcp.py`, ...args], 30_000);
  if (!r.success) throw new Error(`send_tcp.py ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout;
}
