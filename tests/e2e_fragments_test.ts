/**
 * End-to-end: UDP datagrams larger than the MTU through the FULLNAT gateway (issue 9). The client's kernel
 * fragments each datagram; the gateway reassembles it, rewrites it toward a real server and writes it to its
 * TUN whole (IPv4: the gateway's kernel fragments it again on output) or as fragments it built (IPv6:
 * routers do not fragment). The real server's echo is fragmented by its own kernel and reassembled by the
 * gateway the same way on the way back. Every echo must come back byte-identical (and a 3000-byte ping to
 * each VIP is answered by the gateway from the reassembled request); the gateway's counters
 * must show the reassembly on both directions, and no kernel may see a bad checksum (rx checksum offload is
 * off on every veth end, so each kernel verifies).
 *
 * @module
 */
import assert from "node:assert/strict";
import { nsExec, type Topology } from "../netns-scripts/topology.ts";
import {
  type Background,
  checksumErrors,
  kernelCounters,
  type Lab,
  spawnIn,
  withLab,
} from "./helpers/mod.ts";

const ECHO = new URL("./helpers/udp_gso.py", import.meta.url).pathname;
const CLIENT = new URL("./helpers/udp_big.py", import.meta.url).pathname;
const VIP4 = "198.18.0.31";
const VIP6 = "fd00::31";
const PORT = 9998;
const LOCAL4 = "198.18.2.1";
const LOCAL6 = "fd00:2::1";
/** Sizes of the datagrams: two, three and many fragments; the largest near the 65507-byte UDP limit. */
const SIZES = [4000, 9000, 60000];
const ROUNDS = 3;

function config(workers: number, steering: string) {
  return (t: Topology) => ({
    workers,
    steering,
    localAddresses: [LOCAL4, LOCAL6],
    services: [
      {
        vip: VIP4,
        port: PORT,
        protocol: "udp",
        scheduler: "rr",
        realServers: t.rsIp4.map((address) => ({ address, port: PORT })),
      },
      {
        vip: VIP6,
        port: PORT,
        protocol: "udp",
        scheduler: "rr",
        realServers: t.rsIp6.map((address) => ({ address, port: PORT })),
      },
    ],
  });
}

async function echoServers(lab: Lab): Promise<Background[]> {
  const servers = lab.t.nsRs.map((ns) => spawnIn(lab, ns, ["python3", ECHO, "server", String(PORT)]));
  for (const s of servers) await s.waitFor(() => s.stdout().includes("listening"), "UDP echo server", 10_000);
  return servers;
}

async function client(lab: Lab, vip: string): Promise<Record<string, number>> {
  const r = await nsExec(lab.t.nsCli, [
    "python3",
    CLIENT,
    vip,
    String(PORT),
    "--sizes",
    SIZES.join(","),
    "--rounds",
    String(ROUNDS),
  ], 60_000);
  const counts: Record<string, number> = {};
  for (const m of r.stdout.matchAll(/(\w+)=(\d+)/g)) counts[m[1]] = Number(m[2]);
  assert.ok("sent" in counts, `client printed no counts: ${r.stdout} ${r.stderr}`);
  return counts;
}

/** Sum of kernel counters `names` in namespace `ns`. */
async function kernel(ns: string, ...names: string[]): Promise<number> {
  const k = await kernelCounters(ns);
  return names.reduce((s, n) => s + (k.get(n) ?? 0), 0);
}

const CASES = [
  { name: "one worker", workers: 1, steering: "auto" },
  // Fragments land on any queue (the kernel's choice): they meet on the worker hash(src, dst, id) names.
  { name: "two workers, hand-off steering", workers: 2, steering: "handoff" },
  // The BPF program cannot read fragments' ports either; the engine hands them on the same way.
  { name: "two workers, BPF steering", workers: 2, steering: "bpf" },
];

for (const c of CASES) {
  Deno.test(`e2e fragments: ${c.name}: datagrams past the MTU echoed intact, IPv4 and IPv6`, async () => {
    await withLab({ nginx: false, gateway: config(c.workers, c.steering) }, async (lab) => {
      const gw = lab.gw!;
      await echoServers(lab);
      const total = SIZES.length * ROUNDS;
      for (const vip of [VIP4, VIP6]) {
        const got = await client(lab, vip);
        assert.deepEqual(got, { sent: total, ok: total, bad: 0, missing: 0 }, `through ${vip}`);
      }
      // A large echo request to a VIP is answered by the gateway itself, from the reassembled request.
      for (const vip of [VIP4, VIP6]) {
        const fam = vip === VIP4 ? "-4" : "-6";
        const r = await nsExec(lab.t.nsCli, [
          "ping",
          fam,
          "-c",
          "2",
          "-i",
          "0.2",
          "-W",
          "2",
          "-s",
          "3000",
          vip,
        ], 20_000);
        assert.match(r.stdout, / 2 received/, `ping -s 3000 ${vip}: ${r.stdout} ${r.stderr}`);
      }
      const s = await gw.stats();
      const { not_for_us: _, ...drops } = s.drops;
      assert.deepEqual(drops, {}, "no drops");
      const ev = s.events;
      // Both directions, both families: at least one reassembly per datagram each way.
      assert.ok(ev.frag_reassembled >= 4 * total + 4, `frag_reassembled=${ev.frag_reassembled}`);
      assert.equal(ev.echo_replied, 4, "the two pings per family");
      assert.equal(
        ev.frag_received,
        ev.frag_held + ev.frag_reassembled,
        "every fragment held or completing one",
      );
      assert.ok(ev.frag_sent > 0, "IPv6 went on as the gateway's own fragments");
      assert.equal(ev.frag_timeout ?? 0, 0);
      assert.equal(ev.frag_evicted ?? 0, 0);
      assert.equal(s.runtime.handoff_in, s.runtime.handoff_out, "every handed-off packet arrived");
      assert.equal(s.runtime.handoff_ring_full, 0);
      if (c.workers > 1) assert.ok(s.runtime.handoff_out > 0, "fragments crossed workers");
      console.log(
        `${c.name}: ${2 * total} datagrams each way; gateway frag_received=${ev.frag_received} ` +
          `frag_reassembled=${ev.frag_reassembled} frag_sent=${ev.frag_sent} handoff_out=${s.runtime.handoff_out}`,
      );
      // The real servers and the client reassembled what the gateway (or its kernel) fragmented.
      let rsReasm = 0;
      for (const ns of lab.t.nsRs) rsReasm += await kernel(ns, "IpReasmOKs", "Ip6ReasmOKs");
      assert.ok(rsReasm >= 2 * total, `real servers reassembled ${rsReasm}`);
      assert.ok(
        await kernel(lab.t.nsCli, "IpReasmOKs", "Ip6ReasmOKs") >= 2 * total,
        "the client reassembled",
      );
      for (const ns of [lab.t.nsCli, ...lab.t.nsRs]) {
        assert.deepEqual(await checksumErrors(ns), [], `${ns}: the kernel saw bad checksums`);
      }
    });
  });
}
