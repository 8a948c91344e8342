/**
 * The TOA programs in a real kernel (toa/testing/bpf_lab.ts: two namespaces made here, scapy handshakes with
 * TOA in the SYN, the ACK, both or neither), in the two ways they are used:
 *
 * - transparent: sockops + getpeername on a cgroup made here, a Python server in it that reports what
 *   accept() and getpeername() return (toa/testdata/peer_server.py);
 * - toa-proxy's decoder: the proxy in its own cgroup, a PROXY v1 header to a backend that shows it.
 *
 * Needs root, iproute2, nftables, python3-scapy.
 */
import assert from "node:assert/strict";
import { spawnBackground } from "../../tests/helpers/process.ts";
import { BpfLab, toa4, toa6 } from "../testing/bpf_lab.ts";
import { parseCounters } from "../testing/servers.ts";
import { parseTrustList } from "../trust.ts";
import { attachedPrograms, CgroupAttachment, unifiedRoot } from "./cgroup.ts";
import { buildGetpeername, buildSockops, ToaBpf } from "./sockops_toa.ts";
import { AttachType, ProgType, verifierWork } from "../../base/bpf/syscall.ts";

const PY = "/usr/bin/python3";
const TESTDATA = new URL("../testdata/", import.meta.url).pathname;
const REPO = new URL("../..", import.meta.url).pathname;
const root = Deno.uid() === 0;
const FD00_1__2 = "fd000001000000000000000000000002";
const T = toa4(40000, "203.0.113.7");

type Conn = { accept: [string, number]; getpeername: [string, number]; data: string };

/** peer_server.py in `ns`, started inside cgroup `cg` (or outside any of ours when null). */
async function peerServer(lab: BpfLab, cg: string | null, args: string[]) {
  // Into the cgroup first: `ip netns exec` mounts a sysfs of its own, without /sys/fs/cgroup.
  const exec = `exec ip netns exec ${lab.s} ${PY} ${TESTDATA}peer_server.py ${args.join(" ")}`;
  const server = spawnBackground(["sh", "-c", cg ? `echo $$ > ${cg}/cgroup.procs && ${exec}` : exec]);
  lab.defer(() => server.stop("SIGKILL", 500));
  await server.waitFor(() => server.stdout().includes("listening"), "peer_server", 10_000);
  const conns = () =>
    server.stdout().split("\n").filter((l) => l.includes('"conn"')).map((l) => JSON.parse(l) as Conn);
  return {
    /** The next connection's line, after `run`. */
    async next(run: () => Promise<number>): Promise<Conn & { sport: number }> {
      const before = conns().length;
      const sport = await run();
      await server.waitFor(() => conns().length > before, "the server's line", 5_000);
      return { ...conns()[before], sport };
    },
  };
}

Deno.test({
  name: "toa bpf: sockops + getpeername give the client from TOA in the ACK or the SYN, trusted peers only",
  ignore: !root,
}, async (t) => {
  const lab = await BpfLab.open();
  try {
    const cg = lab.cgroup("cg");
    const bpf = ToaBpf.load(parseTrustList("198.18.2.1/32,fd00:2::1/128"), { getpeername: true });
    lab.defer(() => bpf.close());
    const att = CgroupAttachment.attach(cg, bpf);
    lab.defer(() => att.detach());
    assert.equal(attachedPrograms(cg).length, 3);
    const server = await peerServer(lab, cg, ["198.18.2.10", "80", "fd00:2::10", "80", "::", "90"]);
    const peer = async (src: string, dst: string, syn: string[], ack: string[], port = 80) => {
      const c = await server.next(() => lab.connect(src, dst, port, syn, ack));
      assert.deepEqual(c.accept, c.getpeername, "accept() and getpeername() agree");
      return { peer: `${c.accept[0]}:${c.accept[1]}`, sport: c.sport };
    };

    await t.step("v4: TOA in the ACK only (dpvs ≥ 1.9.6) → the client", async () => {
      assert.equal((await peer("198.18.2.1", "198.18.2.10", [], [T])).peer, "203.0.113.7:40000");
    });
    await t.step(
      "v4: TOA in the SYN only → the client (the saved SYN, kept by the listener hook)",
      async () => {
        assert.equal((await peer("198.18.2.1", "198.18.2.10", [T], [])).peer, "203.0.113.7:40000");
      },
    );
    await t.step("v4: no TOA → the peer", async () => {
      const c = await peer("198.18.2.1", "198.18.2.10", [], []);
      assert.equal(c.peer, `198.18.2.1:${c.sport}`);
    });
    await t.step("v4: a malformed TOA (length 7) in the ACK → the peer, counted", async () => {
      const c = await peer("198.18.2.1", "198.18.2.10", [], ["254:9c40cb0071"]);
      assert.equal(c.peer, `198.18.2.1:${c.sport}`);
      assert.equal(bpf.stats().malformed, 1);
    });
    await t.step("v4: an untrusted peer's TOA (SYN and ACK) → the peer", async () => {
      const c = await peer("198.18.2.99", "198.18.2.10", [T], [T]);
      assert.equal(c.peer, `198.18.2.99:${c.sport}`);
    });
    await t.step("v6: kind 254 in the ACK, kind 253 in the SYN → the client", async () => {
      const ack = await peer("fd00:2::1", "fd00:2::10", [], [toa6(254, 40001, FD00_1__2)]);
      assert.equal(ack.peer, "fd00:1::2:40001");
      const syn = await peer("fd00:2::1", "fd00:2::10", [toa6(253, 40002, FD00_1__2)], []);
      assert.equal(syn.peer, "fd00:1::2:40002");
    });
    await t.step("an IPv4 client of a dual-stack [::] listener: ::ffff:client", async () => {
      assert.equal((await peer("198.18.2.1", "198.18.2.10", [], [T], 90)).peer, "::ffff:203.0.113.7:40000");
    });
    await t.step(
      "SYN cookies (tcp_syncookies=2): TOA in the ACK still read; in the SYN only, lost",
      async () => {
        await lab.sysctl("net.ipv4.tcp_syncookies=2");
        assert.equal((await peer("198.18.2.1", "198.18.2.10", [], [T])).peer, "203.0.113.7:40000");
        const c = await peer("198.18.2.1", "198.18.2.10", [T], []);
        assert.equal(c.peer, `198.18.2.1:${c.sport}`);
      },
    );
    await t.step("counters, and the table empty once the connections are reset", async () => {
      const s = bpf.stats();
      assert.deepEqual({ ack: s.ack, syn: s.syn, untrusted: s.untrusted, none: s.none }, {
        ack: 4,
        syn: 2,
        untrusted: 1,
        none: 3,
      });
      for (let i = 0; i < 50 && bpf.entries() > 0; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(bpf.entries(), 0);
    });
    await t.step("detached: nothing left on the cgroup", () => {
      att.detach();
      assert.deepEqual(attachedPrograms(cg), []);
    });
  } finally {
    await lab.close();
  }
});

Deno.test({
  name: "toa bpf: toa-proxy's sockops decoder announces the client from an ACK-only TOA, and cleans up",
  ignore: !root,
}, async (t) => {
  const lab = await BpfLab.open();
  try {
    const backend = await peerServer(lab, null, ["127.0.0.1", "8081"]);
    const start = async (decoder: string, port: number) => {
      // nsenter, not `ip netns exec`: the proxy must see /sys/fs/cgroup to make its cgroup.
      const p = spawnBackground([
        "nsenter",
        `--net=/run/netns/${lab.s}`,
        Deno.execPath(),
        "run",
        "-A",
        `${REPO}mod.ts`,
        "toa-proxy",
        "--listen",
        `198.18.2.10:${port}`,
        "--backend",
        "127.0.0.1:8081",
        "--proxy-protocol",
        "v1",
        "--trust",
        "198.18.2.1/32",
        "--decoder",
        decoder,
      ]);
      lab.defer(() => p.stop("SIGKILL", 500));
      await p.waitFor(() => p.stdout().includes("toa-proxy ready"), "toa-proxy ready", 20_000);
      return p;
    };
    const proxy = await start("auto", 81);
    const dir = `${unifiedRoot()}/toa-proxy-${proxy.pid}`;
    await t.step("the decoder line names sockops and the proxy's own cgroup; the proxy left it again", () => {
      assert.match(proxy.stderr(), new RegExp(`toa-proxy decoder=sockops\\+saved_syn cgroup=${dir}\\n`));
      assert.match(proxy.stdout(), / decoder=sockops\+saved_syn/);
      assert.equal(Deno.readTextFileSync(`${dir}/cgroup.procs`).trim(), "");
      assert.equal(attachedPrograms(dir).length, 1);
    });
    const via = async (port: number, syn: string[], ack: string[]) =>
      (await backend.next(() => lab.connect("198.18.2.1", "198.18.2.10", port, syn, ack))).data.split(
        "\r\n",
      )[0];
    await t.step("ACK-only TOA, SYN-only TOA, none: the PROXY header's source", async () => {
      assert.match(await via(81, [], [T]), /^PROXY TCP4 203\.0\.113\.7 198\.18\.2\.10 40000 81$/);
      assert.match(await via(81, [T], []), /^PROXY TCP4 203\.0\.113\.7 198\.18\.2\.10 40000 81$/);
      assert.match(await via(81, [], []), /^PROXY TCP4 198\.18\.2\.1 198\.18\.2\.10 \d+ 81$/);
    });
    await t.step("counted per source; at exit the cgroup and its program are gone", async () => {
      const s = await proxy.stop("SIGTERM", 5_000);
      const c = parseCounters(s.stderr.split("\n").find((l) => l.includes("event=stopped")) ?? "");
      assert.deepEqual(
        { ack: c.toa_from_ack, syn: c.toa_from_syn, saved: c.toa_from_saved_syn, trusted: c.toa_trusted },
        { ack: 1, syn: 1, saved: 0, trusted: 2 },
      );
      assert.throws(() => Deno.statSync(dir), Deno.errors.NotFound);
    });
    await t.step(
      "--decoder saved_syn: says so, and an ACK-only TOA is lost (the peer is announced)",
      async () => {
        const p = await start("saved_syn", 82);
        assert.match(p.stderr(), /toa-proxy decoder=saved_syn reason="--decoder saved_syn"/);
        assert.match(await via(82, [], [T]), /^PROXY TCP4 198\.18\.2\.1 /);
        assert.match(await via(82, [T], []), /^PROXY TCP4 203\.0\.113\.7 /);
        const s = await p.stop("SIGTERM", 5_000);
        const c = parseCounters(s.stderr.split("\n").find((l) => l.includes("event=stopped")) ?? "");
        assert.equal(c.toa_from_saved_syn, 1);
      },
    );
  } finally {
    await lab.close();
  }
});

Deno.test({
  name: "toa bpf: the verifier accepts the programs far below its limit of 1,000,000 instructions",
  ignore: !root,
}, () => {
  const bpf = ToaBpf.load(parseTrustList("198.18.2.1"));
  try {
    // About 95,000 on Linux 6.18: the option walk (a bounded loop) is most of it. A change that doubles it
    // is a change to look at.
    const sockops = verifierWork({ type: ProgType.SOCK_OPS, insns: buildSockops(bpf.maps) });
    assert.ok(sockops < 200_000, `sockops: ${sockops} instructions processed`);
    const g6 = verifierWork({
      type: ProgType.CGROUP_SOCK_ADDR,
      insns: buildGetpeername(bpf.maps, 6),
      expectedAttachType: AttachType.CGROUP_INET6_GETPEERNAME,
    });
    assert.ok(g6 < 100, `getpeername6: ${g6}`);
  } finally {
    bpf.close();
  }
});
