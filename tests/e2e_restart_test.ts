/**
 * End-to-end: a new gateway does not stall connections on tuples a real server still holds in TIME_WAIT.
 * The first gateway makes 400 connections over 400 local ports (nginx closes first under HTTP/1.0, so the
 * real server holds each tuple in TIME_WAIT); a new SYN on such a tuple is accepted only if its sequence
 * number is past the old connection's. Then a second gateway runs the same 400 requests:
 *
 * - restarted (the same ISN secret, kept beside the control socket: lb/isn_secret.ts): its ISNs, clock plus a
 *   keyed hash, are past the old ones, so every SYN is accepted;
 * - with a fresh secret (another box taking over, or a lost file): about half its SYNs are not past the old
 *   connections' numbers and the real server answers them with an ACK (Linux tcp_timewait_state_process).
 *   Forwarded, such an ACK would make the client reset it and retransmit its SYN a second later; the gateway
 *   drops it, sends the server a RST with seq = the ACK's acknowledgement (which ends the TIME_WAIT) and the
 *   SYN again at once (lb/engine/engine.ts `takeover`).
 *
 * Either way the client sees no reset, no SYN retransmission, no timeout. Needs root, nginx, ab.
 *
 * @module
 */
import assert from "node:assert/strict";
import { nsExec, type Topology } from "../netns-scripts/topology.ts";
import { type Gateway, kernelCounters, startGateway, withLab } from "./helpers/mod.ts";

/**
 * Runs 400 requests through a first gateway, then through a second one on the same tuples (`freshSecret`:
 * the first one's ISN secret removed before it starts); asserts the client saw no reset and no timeout, and
 * hands the second gateway to `check`.
 */
async function secondGateway(vip: string, freshSecret: boolean, check: (second: Gateway) => Promise<void>) {
  let cfg: Record<string, unknown> = {};
  await withLab({
    rs: 1,
    gateway: (t: Topology) =>
      cfg = {
        localAddresses: ["198.18.2.1"],
        // A narrow port range: the second gateway is bound to reuse the first one's tuples.
        portRange: [2000, 2399],
        services: [{ vip, port: 80, scheduler: "rr", realServers: [{ address: t.rsIp4[0], port: 80 }] }],
      },
  }, async (lab) => {
    const ab = async () => {
      const r = await nsExec(
        lab.t.nsCli,
        ["ab", "-q", "-s", "5", "-n", "400", "-c", "1", `http://${vip}/`],
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
    assert.equal((await first.stop()).code, 0);
    if (freshSecret) {
      const dir = first.control.slice(0, first.control.lastIndexOf("/"));
      await Deno.remove(`${dir}/${first.tun}.isn-secret`);
    }
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
    assert.equal((await second.stats()).services[0].connectionsTotal, 400);
    await check(second);
  });
}

Deno.test("a restarted gateway's connections are accepted by real servers holding TIME_WAIT", async () => {
  await secondGateway("198.18.0.30", false, async (second) => {
    assert.equal((await second.stats()).events.takeover_rst ?? 0, 0, "the same secret needs no takeover");
  });
});

Deno.test("takeover: a fresh gateway's SYNs on tuples a real server holds in TIME_WAIT do not stall", async () => {
  await secondGateway("198.18.0.31", true, async (second) => {
    const s = await second.stats();
    const taken = s.events.takeover_rst ?? 0;
    console.log(`takeovers ${taken}, drops ${JSON.stringify(s.drops)}`);
    assert.ok(taken >= 50, `real servers answered SYNs with an ACK and the gateway took over: ${taken}`);
    assert.equal(s.drops.takeover ?? 0, taken, "each stale ACK dropped, each answered");
  });
});
