/**
 * End-to-end: UDP services through the FULLNAT gateway, with UDP segmentation offload (USO). The client
 * sends with UDP_SEGMENT, so each round leaves it as one GSO super-packet; with offloads on, the gateway
 * reads it whole from its TUN (`TUN_F_USO4/6`), rewrites its headers once and writes it back whole, and
 * the kernel splits it on the far side. Every datagram carries its flow, round and index and must come
 * back byte-identical; the real servers must see only the gateway's local addresses.
 *
 * With the gateway's own ports' tx checksum offload off, the gateway's kernel segments in software and
 * completes each segment's checksum from the partial sum the engine left: the receivers (rx checksum
 * offload off) verify every one, so a wrong pseudo-header sum shows as UdpInCsumErrors and lost echoes.
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

const HELPER = new URL("./helpers/udp_gso.py", import.meta.url).pathname;
const VIP4 = "198.18.0.30";
const VIP6 = "fd00::30";
const PORT = 9999;
const LOCAL4 = "198.18.2.1";
const LOCAL6 = "fd00:2::1";
const FLOWS = 4;
const ROUNDS = 10;
const SEGMENTS = 16;

function config(offload: boolean, workers: number, steering: string) {
  return (t: Topology) => ({
    workers,
    steering,
    offload,
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

/** Starts the UDP echo server on every real server; returns them. */
async function echoServers(lab: Lab, gro: boolean): Promise<Background[]> {
  const servers = lab.t.nsRs.map((ns) =>
    spawnIn(lab, ns, ["python3", HELPER, "server", String(PORT), ...(gro ? ["--gro"] : [])])
  );
  for (const s of servers) await s.waitFor(() => s.stdout().includes("listening"), "UDP echo server", 10_000);
  return servers;
}

/** Runs the client against `vip`; returns its counts. */
async function client(lab: Lab, vip: string): Promise<Record<string, number>> {
  const r = await nsExec(lab.t.nsCli, [
    "python3",
    HELPER,
    "client",
    vip,
    String(PORT),
    "--gso",
    "--flows",
    String(FLOWS),
    "--rounds",
    String(ROUNDS),
    "--segments",
    String(SEGMENTS),
  ], 60_000);
  const counts: Record<string, number> = {};
  for (const m of r.stdout.matchAll(/(\w+)=(\d+)/g)) counts[m[1]] = Number(m[2]);
  assert.ok("sent" in counts, `client printed no counts: ${r.stdout} ${r.stderr}`);
  return counts;
}

/** The senders each echo server saw, as `address` strings. */
function peers(servers: Background[]): string[] {
  return servers.flatMap((s) => [...s.stdout().matchAll(/^peer (\S+) \d+$/gm)].map((m) => m[1]));
}

const CASES = [
  { name: "USO on, super-packets both ways", offload: true, gro: true, txOff: false, workers: 1 },
  {
    name: "USO on, the gateway's kernel completes every segment's checksum",
    offload: true,
    gro: false,
    txOff: true,
    workers: 1,
  },
  {
    name: "offloads off, the kernel splits before the TUN",
    offload: false,
    gro: false,
    txOff: false,
    workers: 1,
  },
  // The kernel's own queue choice: super-packets of a flow reach a worker that does not own it, and cross.
  { name: "USO on, two workers, hand-off steering", offload: true, gro: true, txOff: false, workers: 2 },
];

for (const c of CASES) {
  Deno.test(`e2e udp: ${c.name}: every datagram echoed intact, real servers see local addresses`, async () => {
    const steering = c.workers > 1 ? "handoff" : "auto";
    await withLab({ nginx: false, gateway: config(c.offload, c.workers, steering) }, async (lab) => {
      const gw = lab.gw!;
      // USO came with Linux 6.2; an older kernel refuses it and the gateway goes on without (0xf).
      const [major, minor] = Deno.osRelease().split(".").map(Number);
      const uso = major > 6 || (major === 6 && minor >= 2);
      const want = !c.offload ? /offloads=0x0 / : uso ? /offloads=0x6f / : /offloads=0xf /;
      assert.match(gw.readyLine, want, `offloads on Linux ${Deno.osRelease()}`);
      if (c.txOff) {
        for (const dev of ["c0", "br0", ...lab.t.nsRs.map((_, i) => `r${i + 1}`)]) {
          const r = await nsExec(lab.t.nsGw, ["ethtool", "-K", dev, "tx", "off"], 10_000);
          assert.ok(r.success, `ethtool -K ${dev} tx off: ${r.stderr}`);
        }
      }
      const servers = await echoServers(lab, c.gro);
      const total = FLOWS * ROUNDS * SEGMENTS;
      for (const vip of [VIP4, VIP6]) {
        const got = await client(lab, vip);
        assert.deepEqual(got, { sent: total, ok: total, bad: 0, missing: 0, dup: 0 }, `through ${vip}`);
      }
      const seen = peers(servers);
      assert.equal(seen.length, 2 * FLOWS, `one sender per flow: ${seen}`);
      assert.deepEqual([...new Set(seen)].sort(), [LOCAL4, LOCAL6], "only the gateway's local addresses");
      assert.ok(servers.every((s) => s.stdout().includes("peer ")), "rr used every real server");

      const s = await gw.stats();
      // not_for_us: the kernel's own IPv6 router and multicast listener packets on the TUN, nothing of ours.
      const { not_for_us: _, ...drops } = s.drops;
      assert.deepEqual(drops, {}, "no drops");
      const supers = FLOWS * ROUNDS * 2; // the client's sends, IPv4 and IPv6
      console.log(`${c.name}: ${2 * total} datagrams each way, gateway gso_packets=${s.runtime.gso_packets}`);
      if (!c.offload || !uso) assert.equal(s.runtime.gso_packets, 0);
      else if (c.gro) {
        // More super-packets than the client sent: the echo servers' batched replies came whole too.
        assert.ok(
          s.runtime.gso_packets > supers,
          `gso_packets=${s.runtime.gso_packets}, client sent ${supers}`,
        );
      } else assert.ok(s.runtime.gso_packets > 0, "the kernel handed over UDP super-packets");
      assert.equal(s.runtime.handoff_in, s.runtime.handoff_out, "every handed-off packet arrived");
      assert.equal(s.runtime.handoff_ring_full, 0);
      if (c.workers > 1) {
        assert.ok(s.runtime.handoff_out > 0, "the kernel's queue choice needed hand-offs");
      }
      for (const ns of [lab.t.nsCli, ...lab.t.nsRs]) {
        assert.deepEqual(await checksumErrors(ns), [], `${ns}: the kernel saw bad checksums`);
      }
      if (c.txOff) {
        // Every datagram passed the real servers' UDP checksum check (a failed one is counted, not delivered).
        let datagrams = 0;
        for (const ns of lab.t.nsRs) {
          const k = await kernelCounters(ns);
          datagrams += (k.get("UdpInDatagrams") ?? 0) + (k.get("Udp6InDatagrams") ?? 0);
        }
        assert.ok(datagrams >= 2 * total, `the real servers received ${datagrams} datagrams`);
      }
    });
  });
}
