/**
 * A small rig for the TOA eBPF tests: two network namespaces made for the test — `c`, the gateway's side,
 * with a trusted (198.18.2.1, fd00:2::1) and an untrusted (198.18.2.99, fd00:2::99) address, and `s`, the
 * real server (198.18.2.10, fd00:2::10) — over one veth, the `c` side's kernel resets dropped (its scapy
 * handshakes are no connections of its own), and a scapy client (toa/testdata/toa_handshake.py). Every
 * namespace, cgroup and process made is removed by {@link BpfLab.close}, on every exit path of the caller.
 *
 * @module
 */
import assert from "node:assert/strict";
import { nsExec, run } from "../../netns-scripts/topology.ts";
import { createCgroup, removeCgroup } from "../bpf/cgroup.ts";

const PY = "/usr/bin/python3";
const TESTDATA = new URL("../testdata/", import.meta.url).pathname;

/** A TOA option as `KIND:HEX` for toa_handshake.py: IPv4 (kind 254). */
export function toa4(port: number, addr: string): string {
  const hex = addr.split(".").map((o) => Number(o).toString(16).padStart(2, "0")).join("");
  return `254:${port.toString(16).padStart(4, "0")}${hex}`;
}

/** A 20-byte TOA option as `KIND:HEX`; `hex16` is the address's 16 bytes in hex. */
export function toa6(kind: number, port: number, hex16: string): string {
  return `${kind}:${port.toString(16).padStart(4, "0")}${hex16}`;
}

async function sh(cmd: string[]): Promise<void> {
  const r = await run(cmd, 10_000);
  if (!r.success) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
}

/** The rig. */
export class BpfLab {
  private readonly undo: (() => Promise<unknown> | unknown)[] = [];
  private sport = 41000;
  private constructor(readonly c: string, readonly s: string) {}

  /** Makes the namespaces. */
  static async open(tag = `tb${Deno.pid}`): Promise<BpfLab> {
    const lab = new BpfLab(`${tag}c`, `${tag}s`);
    try {
      for (const ns of [lab.c, lab.s]) {
        await sh(["ip", "netns", "add", ns]);
        lab.defer(() => sh(["ip", "netns", "del", ns]));
      }
      await sh(["ip", "link", "add", "c0", "netns", lab.c, "type", "veth", "peer", "s0", "netns", lab.s]);
      const plan = [
        [lab.c, "c0", ["198.18.2.1/24", "198.18.2.99/24", "fd00:2::1/64", "fd00:2::99/64"]],
        [lab.s, "s0", ["198.18.2.10/24", "fd00:2::10/64"]],
      ] as const;
      for (const [ns, dev, addrs] of plan) {
        for (const a of addrs) {
          await sh(["ip", "-n", ns, "addr", "add", a, "dev", dev, ...(a.includes(":") ? ["nodad"] : [])]);
        }
        await sh(["ip", "-n", ns, "link", "set", dev, "up"]);
        await sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
      }
      await sh([
        "ip",
        "netns",
        "exec",
        lab.c,
        "nft",
        "add table inet t; add chain inet t o { type filter hook output priority 0; }; " +
        "add rule inet t o tcp flags rst drop",
      ]);
      return lab;
    } catch (e) {
      await lab.close();
      throw e;
    }
  }

  /** Runs `f` at {@link close}, in reverse order of deferral. */
  defer(f: () => Promise<unknown> | unknown): void {
    this.undo.push(f);
  }

  /** A cgroup made for the test (removed at close). */
  cgroup(name: string): string {
    const dir = createCgroup(`${this.s}-${name}`);
    this.defer(() => removeCgroup(dir));
    return dir;
  }

  /**
   * One scapy handshake from `src` to `dst`:`dport` with options for the SYN and the ACK; asserts the server
   * answered "ok\n"; returns the source port used.
   */
  async connect(src: string, dst: string, dport: number, syn: string[], ack: string[]): Promise<number> {
    const sport = ++this.sport;
    const args = ["--src", src, "--dst", dst, "--dport", String(dport), "--sport", String(sport)];
    for (const o of syn) args.push("--syn-option", o);
    for (const o of ack) args.push("--ack-option", o);
    const r = await nsExec(this.c, [PY, `${TESTDATA}toa_handshake.py`, ...args], 20_000);
    assert.ok(r.success, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { synack: true, reply: "ok\n" }, r.stderr);
    return sport;
  }

  /** Sets a sysctl in the server's namespace (`net.ipv4.tcp_syncookies=2`). */
  async sysctl(setting: string): Promise<void> {
    await sh(["ip", "netns", "exec", this.s, "sysctl", "-qw", setting]);
  }

  /** Undoes everything, reporting (not throwing) failures. */
  async close(): Promise<void> {
    for (const f of this.undo.splice(0).reverse()) {
      try {
        await f();
      } catch (e) {
        console.error(`cleanup: ${e}`);
      }
    }
  }
}
