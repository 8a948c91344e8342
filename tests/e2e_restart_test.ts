/**
 * End-to-end: restarting the gateway does not stall new connections. Real servers hold the tuples the
 * previous gateway used in TIME_WAIT (nginx closes first under HTTP/1.0); a new SYN on such a tuple is
 * accepted only if its sequence number is past the old connection's. The gateway's ISNs are clock plus a
 * keyed hash whose secret it keeps across restarts (lb/isn_secret.ts), so a restarted gateway's SYNs are
 * accepted: the client sees no reset, no SYN retransmission, no timeout. With a fresh secret per start,
 * about half of the reused tuples would be answered with a stale ACK and stall for a second.
 *
 * @module
 */
import assert from "node:assert/strict";
import { nsExec, type Topology } from "../netns-scripts/topology.ts";
import { kernelCounters, startGateway, withLab } from "./helpers/mod.ts";

const VIP = "198.18.0.30";

Deno.test("a restarted gateway's connections are accepted by real servers holding TIME_WAIT", async () => {
  let cfg: Record<string, unknown> = {};
  await withLab({
    rs: 1,
    gateway: (t: Topology) =>
      cfg = {
        localAddresses: ["198.18.2.1"],
        // A narrow port range: the second gateway is bound to reuse the first one's tuples.
        portRange: [2000, 2399],
        services: [{ vip: VIP, port: 80, scheduler: "rr", realServers: [{ address: t.rsIp4[0], port: 80 }] }],
      },
  }, async (lab) => {
    const ab = async () => {
      const r = await nsExec(
        lab.t.nsCli,
        ["ab", "-q", "-s", "5", "-n", "400", "-c", "1", `http://${VIP}/`],
        60_000,
      );
      assert.ok(r.success, r.stderr);
      assert.match(r.stdout, /Failed requests:\s+0/);
    };
    await ab();
    const tw = await nsExec(lab.t.nsRs[0], ["ss", "-Htan", "state", "time-wait"], 10_000);
    assert.ok(
      tw.stdout.trim().split("\n").length >= 300,
      "the real server holds the old tuples in TIME_WAIT",
    );
    const first = lab.gw!;
    const stopped = await first.stop();
    assert.equal(stopped.code, 0);
    const before = await kernelCounters(lab.t.nsCli);
    const second = await startGateway({
      ns: lab.t.nsGw,
      dir: `${lab.dir}/gw`,
      config: { ...cfg, tun: first.tun, control: first.control },
    });
    lab.defer(() => second.stop());
    await ab();
    const after = await kernelCounters(lab.t.nsCli);
    const delta = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    assert.equal(delta("TcpOutRsts"), 0, "no client reset a stale ACK");
    assert.equal(delta("TcpExtTCPTimeouts"), 0, "no SYN waited for a retransmission");
    const s = await second.stats();
    assert.equal(s.services[0].connectionsTotal, 400);
  });
});
