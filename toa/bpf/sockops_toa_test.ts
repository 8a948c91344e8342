/**
 * The TOA programs in a real kernel: two network namespaces made here (a "gateway" side holding a trusted
 * and an untrusted address, and a server side), a cgroup made here with the sockops and getpeername
 * programs attached, a Python server in it that reports what accept() and getpeername() return, and
 * handshakes made by hand with scapy (toa/testdata/toa_handshake.py) carrying TOA in the SYN, the ACK, both
 * or neither. Everything made is removed on every exit path. Needs root, iproute2, nftables, python3-scapy.
 */
import assert from "node:assert/strict";
import { nsExec, run } from "../../netns-scripts/topology.ts";
import { spawnBackground } from "../../tests/helpers/process.ts";
import { parseTrustList } from "../trust.ts";
import { CgroupAttachment, createCgroup, removeCgroup } from "./cgroup.ts";
import { ToaBpf } from "./sockops_toa.ts";

const PY = "/usr/bin/python3";
const TESTDATA = new URL("../testdata/", import.meta.url).pathname;
const root = Deno.uid() === 0;

const toa4 = (port: number, addr: string) =>
  "254:" + port.toString(16).padStart(4, "0") +
  addr.split(".").map((o) => Number(o).toString(16).padStart(2, "0")).join("");
const toa6 = (kind: number, port: number, hex16: string) =>
  `${kind}:${port.toString(16).padStart(4, "0")}${hex16}`;
const FD00_1__2 = "fd000001000000000000000000000002";

async function sh(cmd: string[]): Promise<void> {
  const r = await run(cmd, 10_000);
  if (!r.success) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
}

Deno.test({
  name: "toa bpf: sockops + getpeername give the client from TOA in the ACK or the SYN, trusted peers only",
  ignore: !root,
}, async (t) => {
  const tag = `tb${Deno.pid}`;
  const C = `${tag}c`, S = `${tag}s`;
  const cleanup: (() => Promise<void> | void)[] = [];
  try {
    await sh(["ip", "netns", "add", C]);
    cleanup.push(() => sh(["ip", "netns", "del", C]));
    await sh(["ip", "netns", "add", S]);
    cleanup.push(() => sh(["ip", "netns", "del", S]));
    await sh(["ip", "link", "add", "c0", "netns", C, "type", "veth", "peer", "s0", "netns", S]);
    for (
      const [ns, dev, addrs] of [
        [C, "c0", ["198.18.2.1/24", "198.18.2.99/24", "fd00:2::1/64", "fd00:2::99/64"]],
        [S, "s0", ["198.18.2.10/24", "fd00:2::10/64"]],
      ] as const
    ) {
      for (const a of addrs) {
        await sh(["ip", "-n", ns, "addr", "add", a, "dev", dev, ...(a.includes(":") ? ["nodad"] : [])]);
      }
      await sh(["ip", "-n", ns, "link", "set", dev, "up"]);
      await sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    // The "gateway" side's kernel owns none of scapy's connections: its resets must not reach the server.
    await sh([
      "ip",
      "netns",
      "exec",
      C,
      "nft",
      "add table inet t; add chain inet t o { type filter hook output priority 0; }; add rule inet t o tcp flags rst drop",
    ]);

    const cg = createCgroup(`${tag}-cg`);
    cleanup.push(() => removeCgroup(cg));
    const bpf = ToaBpf.load(parseTrustList("198.18.2.1/32,fd00:2::1/128"), { getpeername: true });
    cleanup.push(() => bpf.close());
    const att = CgroupAttachment.attach(cg, bpf);
    cleanup.push(() => att.detach());

    const server = spawnBackground([
      // Into the cgroup first: `ip netns exec` mounts a sysfs of the namespace, without /sys/fs/cgroup.
      "sh",
      "-c",
      `echo $$ > ${cg}/cgroup.procs && exec ip netns exec ${S} ${PY} ${TESTDATA}peer_server.py 198.18.2.10 80 fd00:2::10 80`,
    ]);
    cleanup.push(async () => void (await server.stop("SIGKILL", 500)));
    await server.waitFor(() => server.stdout().includes("listening"), "peer_server", 10_000);

    let sport = 41000;
    const connect = async (src: string, dst: string, syn: string[], ack: string[]) => {
      const before = server.stdout().split("\n").filter((l) => l.includes('"conn"')).length;
      const args = ["--src", src, "--dst", dst, "--dport", "80", "--sport", String(++sport)];
      for (const o of syn) args.push("--syn-option", o);
      for (const o of ack) args.push("--ack-option", o);
      const r = await nsExec(C, [PY, `${TESTDATA}toa_handshake.py`, ...args], 20_000);
      assert.ok(r.success, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { synack: true, reply: "ok\n" }, r.stderr);
      await server.waitFor(
        () => server.stdout().split("\n").filter((l) => l.includes('"conn"')).length > before,
        "the server's line",
        5_000,
      );
      const line = server.stdout().split("\n").filter((l) => l.includes('"conn"'))[before];
      const j = JSON.parse(line);
      assert.deepEqual(j.accept, j.getpeername, "accept() and getpeername() agree");
      return { peer: `${j.accept[0]}:${j.accept[1]}`, sport };
    };
    const T = toa4(40000, "203.0.113.7");

    await t.step("v4: TOA in the ACK only (dpvs ≥ 1.9.6) → the client", async () => {
      assert.equal((await connect("198.18.2.1", "198.18.2.10", [], [T])).peer, "203.0.113.7:40000");
    });
    await t.step(
      "v4: TOA in the SYN only → the client (the saved SYN, kept by the listener hook)",
      async () => {
        assert.equal((await connect("198.18.2.1", "198.18.2.10", [T], [])).peer, "203.0.113.7:40000");
      },
    );
    await t.step("v4: no TOA → the peer", async () => {
      const c = await connect("198.18.2.1", "198.18.2.10", [], []);
      assert.equal(c.peer, `198.18.2.1:${c.sport}`);
    });
    await t.step("v4: an untrusted peer's TOA (SYN and ACK) → the peer", async () => {
      const c = await connect("198.18.2.99", "198.18.2.10", [T], [T]);
      assert.equal(c.peer, `198.18.2.99:${c.sport}`);
    });
    await t.step("v6: kind 254 in the ACK, kind 253 in the SYN → the client", async () => {
      assert.equal(
        (await connect("fd00:2::1", "fd00:2::10", [], [toa6(254, 40001, FD00_1__2)])).peer,
        "fd00:1::2:40001",
      );
      assert.equal(
        (await connect("fd00:2::1", "fd00:2::10", [toa6(253, 40002, FD00_1__2)], [])).peer,
        "fd00:1::2:40002",
      );
    });
    await t.step(
      "SYN cookies (tcp_syncookies=2): TOA in the ACK still read; in the SYN only, lost",
      async () => {
        await sh(["ip", "netns", "exec", S, "sysctl", "-qw", "net.ipv4.tcp_syncookies=2"]);
        assert.equal((await connect("198.18.2.1", "198.18.2.10", [], [T])).peer, "203.0.113.7:40000");
        const c = await connect("198.18.2.1", "198.18.2.10", [T], []);
        assert.equal(c.peer, `198.18.2.1:${c.sport}`);
      },
    );
    await t.step("counters, and the table empty once the connections are reset", async () => {
      const s = bpf.stats();
      assert.deepEqual({ ack: s.ack, syn: s.syn, untrusted: s.untrusted }, { ack: 3, syn: 2, untrusted: 1 });
      assert.equal(s.none, 2);
      for (let i = 0; i < 50 && bpf.entries() > 0; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(bpf.entries(), 0);
    });
  } finally {
    for (const f of cleanup.reverse()) {
      try {
        await f();
      } catch (e) {
        console.error(`cleanup: ${e}`);
      }
    }
  }
});
