/**
 * Live reconfiguration of a running gateway (issue 10), end to end in network namespaces: the gateway runs
 * from the CLI (`mod.ts lb --config FILE`), the test rewrites FILE and makes it re-read it — with
 * `mod.ts lb --config FILE --reload` from the gateway namespace and with SIGHUP — while ab and iperf3 push
 * traffic through the VIPs:
 *
 *   client ── ab -n 20000 -c 20 ──▶ VIP 198.18.0.10:80 ══ gateway ══▶ rs1, rs2 (+ rs3, − rs2, weights)
 *          ── iperf3 -t 8 ───────▶ VIP 198.18.0.20:5201 ═════════════▶ rs1:5201
 *
 * Proven: ab completes every request (0 failed) across four reloads; the added server takes connections,
 * the removed one drains (its connections end, it gets no new ones); an added service answers; the iperf3
 * stream never stalls for a whole second. A file with an error, or one that changes what cannot change
 * live, is refused by name and changes nothing. Needs root, nginx, curl, apache2-utils (ab), iperf3.
 *
 * @module
 */

import assert from "node:assert/strict";
import { nsExec, type RunResult, type Topology } from "../netns-scripts/topology.ts";
import type { GatewayStats, RealServerStats } from "../lb/stats.ts";
import { httpUrl, type Lab, spawnIn, waitListening, waitUntil, withLab } from "./helpers/mod.ts";

const MOD = new URL("../mod.ts", import.meta.url).pathname;
const VIP = "198.18.0.10";
const VIP_IPERF = "198.18.0.20";
const VIP_ADDED = "198.18.0.30";
const LOCAL4 = ["198.18.2.1", "198.18.2.2"];

type Raw = Record<string, unknown>;

/** A TCP service over `servers` (address, weight) on `port`, unchecked (these tests judge the traffic). */
function service(vip: string, port: number, servers: [string, number][], scheduler = "rr"): Raw {
  return {
    vip,
    port,
    protocol: "tcp",
    scheduler,
    realServers: servers.map(([address, weight]) => ({ address, port, weight })),
    healthCheck: { type: "none" },
  };
}

/** Runs `mod.ts lb --config FILE ARGS` in the gateway namespace. */
function lb(lab: Lab, ...args: string[]): Promise<RunResult> {
  return nsExec(
    lab.t.nsGw,
    [Deno.execPath(), "run", "-A", MOD, "lb", "--config", lab.gw!.configPath, ...args],
    60_000,
  );
}

/** Rewrites the running gateway's config file with `raw` (its `tun` and `control` kept). */
async function rewrite(lab: Lab, raw: Raw): Promise<void> {
  const config = { ...raw, tun: lab.gw!.tun, control: lab.gw!.control };
  await Deno.writeTextFile(lab.gw!.configPath, JSON.stringify(config, null, 2));
}

/** The gateway's reload lines so far (`fnat-lb reloaded …` and `fnat-lb reload failed: …`). */
function reloadLines(lab: Lab): string[] {
  return lab.gw!.process.stderr().split("\n").filter((l) => l.startsWith("fnat-lb reload"));
}

/** SIGHUP to the gateway; waits for its next reload line and returns it. */
async function sighup(lab: Lab): Promise<string> {
  const before = reloadLines(lab).length;
  Deno.kill(lab.gw!.process.pid, "SIGHUP");
  await lab.gw!.process.waitFor(() => reloadLines(lab).length > before, "a reload line", 20_000);
  return reloadLines(lab)[before];
}

/** `--reload` from the gateway namespace; asserts it was applied and returns its line. */
async function cliReload(lab: Lab): Promise<string> {
  const r = await lb(lab, "--reload");
  assert.equal(r.code, 0, `--reload: ${r.stderr}${r.stdout}`);
  assert.match(r.stdout, /^fnat-lb: reload ok: reloaded services=/);
  return r.stdout.trim();
}

/** A real server of a service in a stats snapshot, or undefined. */
function server(s: GatewayStats, svc: string, rs: string): RealServerStats | undefined {
  return s.services.find((x) => x.service === svc)?.realServers.find((r) => r.server === rs);
}

/** The reload test's configurations, step by step. */
function steps(t: Topology, workers: number): Raw[] {
  const [rs1, rs2, rs3] = t.rsIp4;
  const base = (http: Raw, ...more: Raw[]) => ({
    workers,
    localAddresses: LOCAL4,
    // Closed connections linger 5 s, not IPVS's 2 min: the drained server's entries end within the test.
    timeouts: { finWait: 5, timeWait: 5 },
    services: [http, service(VIP_IPERF, 5201, [[rs1, 1]]), ...more],
  });
  return [
    base(service(VIP, 80, [[rs1, 1], [rs2, 1]])),
    // 1: a third server.
    base(service(VIP, 80, [[rs1, 1], [rs2, 1], [rs3, 1]])),
    // 2: rs2 removed, weights changed.
    base(service(VIP, 80, [[rs1, 1], [rs3, 2]], "wrr")),
    // 3: a service added.
    base(service(VIP, 80, [[rs1, 1], [rs3, 2]], "wrr"), service(VIP_ADDED, 80, [[rs1, 1]])),
    // 4: weights back to even.
    base(service(VIP, 80, [[rs1, 3], [rs3, 3]], "wrr"), service(VIP_ADDED, 80, [[rs1, 1]])),
  ];
}

/** Per-interval rates (bits/s) of an iperf3 `--json` report. */
function iperfIntervals(json: string): number[] {
  const report = JSON.parse(json) as { intervals: { sum: { bits_per_second: number; seconds: number } }[] };
  return report.intervals.map((i) => i.sum.bits_per_second);
}

for (const workers of [1, 2]) {
  Deno.test(`e2e reload (workers=${workers}): four reloads under ab and iperf3 — 0 failed, rs3 added, rs2 drained, stream kept`, async () => {
    await withLab({ rs: 3, gateway: (t) => steps(t, workers)[0] }, async (lab) => {
      const cfg = steps(lab.t, workers);
      console.log(lab.gw!.readyLine);
      const [rs1, rs2, rs3] = lab.t.rsIp4;
      const http = `tcp ${VIP}:80`;
      const iperfd = spawnIn(lab, lab.t.nsRs[0], ["iperf3", "-s", "-B", rs1, "-p", "5201"]);
      await waitListening(lab.t.nsRs[0], [`${rs1}:5201`], iperfd, "iperf3 -s");

      const iperfStart = performance.now();
      const at: string[] = [];
      const mark = (what: string) =>
        at.push(`${what}@${((performance.now() - iperfStart) / 1000).toFixed(1)}s`);
      const iperf = spawnIn(lab, lab.t.nsCli, [
        "iperf3",
        "-c",
        VIP_IPERF,
        "-p",
        "5201",
        "-t",
        "12",
        "-i",
        "1",
        "-J",
      ]);
      await waitUntil(
        async () => {
          const s = await lab.gw!.stats();
          return (s.services.find((x) => x.service === `tcp ${VIP_IPERF}:5201`)?.bytesIn ?? 0) > 1_000_000;
        },
        "iperf3 bytes through the VIP",
        20_000,
      );

      const ab = spawnIn(lab, lab.t.nsCli, ["ab", "-n", "20000", "-c", "20", "-s", "20", httpUrl(VIP)]);
      await ab.waitFor(() => ab.stderr().includes("Completed 2000 requests"), "ab's first 2000", 120_000);
      // The reloads, spread over the stream's seconds.
      const pause = () => new Promise((r) => setTimeout(r, 400));

      // 1: rs3 added, by --reload; it takes connections while ab runs.
      await rewrite(lab, cfg[1]);
      const line1 = await cliReload(lab);
      mark("1:--reload");
      assert.ok(line1.includes(`added="${http} ${rs3}:80"`), line1);
      await waitUntil(
        async () => (server(await lab.gw!.stats(), http, `${rs3}:80`)?.connectionsTotal ?? 0) > 20,
        "rs3 taking connections",
        30_000,
      );

      await pause();
      // 2: rs2 removed and weights changed, by SIGHUP; rs2 drains.
      await rewrite(lab, cfg[2]);
      const line2 = await sighup(lab);
      mark("2:SIGHUP");
      assert.match(line2, /^fnat-lb reloaded /, line2);
      assert.ok(line2.includes(`removed="${http} ${rs2}:80"`), line2);
      const rs2AtRemoval = server(await lab.gw!.stats(), http, `${rs2}:80`);
      const listing = await lb(lab, "--list");
      assert.equal(listing.code, 0, listing.stderr);
      assert.match(listing.stdout, new RegExp(`^TCP  ${VIP}:80 wrr$`, "m"), listing.stdout);
      assert.match(
        listing.stdout,
        new RegExp(`^  -> ${rs2}:80 +FullNat 0 +\\d+ +\\d+ +unchecked draining$`, "m"),
      );
      assert.match(listing.stdout, new RegExp(`^  -> ${rs3}:80 +FullNat 2 +\\d+ +\\d+ +unchecked$`, "m"));

      await pause();
      // 3: a service added, by --reload; it answers.
      await rewrite(lab, cfg[3]);
      const line3 = await cliReload(lab);
      mark("3:--reload");
      assert.ok(line3.includes(`added="tcp ${VIP_ADDED}:80"`), line3);
      const added = await nsExec(
        lab.t.nsCli,
        ["curl", "-sS", "--fail", "--max-time", "10", httpUrl(VIP_ADDED)],
        15_000,
      );
      assert.ok(added.success, `curl ${VIP_ADDED}: ${added.stderr}`);
      assert.equal(added.stdout, "rs1\n");

      await pause();
      // 4: weights, by SIGHUP.
      await rewrite(lab, cfg[4]);
      const line4 = await sighup(lab);
      mark("4:SIGHUP");
      const rs2AtStep4 = server(await lab.gw!.stats(), http, `${rs2}:80`);
      assert.match(line4, /^fnat-lb reloaded .*changed=".*tcp 198\.18\.0\.10:80 198\.18\.3\.10:80/, line4);

      const abRunningAtLastReload = ab.running();
      const abAtLastReload = ab.stderr().trim().split("\n").at(-1);
      const iperfRunningAtLastReload = iperf.running();
      await waitUntil(() => Promise.resolve(!iperf.running()), "iperf3 to finish", 60_000);
      const rates = iperfIntervals(iperf.stdout());
      console.log(`reloads after iperf3 start: ${at.join(" ")}`);
      console.log(`iperf3 Mbit/s per interval: ${rates.map((r) => (r / 1e6).toFixed(1)).join(" ")}`);
      assert.ok(iperfRunningAtLastReload, "iperf3 ended before the last reload");
      assert.ok(rates.length >= 10, `iperf3 intervals: ${rates.length}`);
      assert.ok(rates.every((r) => r > 0), "an iperf3 interval at 0 bits/s");
      assert.ok(abRunningAtLastReload, "ab ended before the last reload");
      console.log(`ab progress at the last reload: ${abAtLastReload}`);
      await waitUntil(() => Promise.resolve(!ab.running()), "ab to finish", 240_000);
      const abOut = ab.stdout();
      const failed = /Failed requests:\s+(\d+)/.exec(abOut)?.[1];
      const complete = /Complete requests:\s+(\d+)/.exec(abOut)?.[1];
      console.log(
        `workers=${workers} ab: complete=${complete} failed=${failed} ${
          /Requests per second:.*/.exec(abOut)?.[0]
        }`,
      );
      assert.equal(complete, "20000", abOut + ab.stderr());
      assert.equal(failed, "0", abOut);
      assert.doesNotMatch(abOut, /Non-2xx responses/);

      // rs2's connections end and it gets no new ones; rs3's count grew after it was added.
      // Its entries end (TIME_WAIT 5 s here), and then it is no longer listed.
      await waitUntil(
        async () => server(await lab.gw!.stats(), http, `${rs2}:80`) === undefined,
        "rs2 drained and gone from the stats",
        60_000,
        200,
      );
      console.log(`rs2 at removal: ${JSON.stringify(rs2AtRemoval)}`);
      console.log(`rs2 after step 4: ${JSON.stringify(rs2AtStep4)}`);
      assert.ok(rs2AtRemoval?.draining, "rs2 listed as draining right after removal");
      if (rs2AtStep4) {
        assert.equal(rs2AtStep4.connectionsTotal, rs2AtRemoval.connectionsTotal, "rs2 got new connections");
        assert.equal(rs2AtStep4.effectiveWeight, 0);
      }
      const end = await lab.gw!.stats();
      const drained = await lb(lab, "--list");
      assert.doesNotMatch(drained.stdout, new RegExp(`${rs2}:80`), drained.stdout);
      const rs3End = server(end, http, `${rs3}:80`)!;
      const rs1End = server(end, http, `${rs1}:80`)!;
      assert.deepEqual([rs1End.weight, rs3End.weight, rs1End.effectiveWeight, rs3End.effectiveWeight], [
        3,
        3,
        3,
        3,
      ]);
      assert.equal(end.services.find((x) => x.service === http)!.scheduler, "wrr");
      console.log(
        `connections: rs1=${rs1End.connectionsTotal} rs2=${rs2AtRemoval.connectionsTotal} rs3=${rs3End.connectionsTotal}`,
      );
      assert.ok(rs3End.connectionsTotal > 1000, `rs3 took ${rs3End.connectionsTotal} connections`);
      const logs = await Promise.all(lab.nginx.map((n) => n.accessLog()));
      console.log(`nginx requests: rs1=${logs[0].length} rs2=${logs[1].length} rs3=${logs[2].length}`);
      assert.equal(
        logs[1].length,
        rs2AtRemoval.connectionsTotal,
        "rs2 served exactly the connections it had",
      );
      assert.ok(logs[2].length > 1000);
      assert.equal(reloadLines(lab).filter((l) => l.startsWith("fnat-lb reloaded")).length, 4);
      assert.equal(end.reloads.ok, 4);
      assert.equal(end.reloads.failed, 0);
    });
  });
}

/** What a configuration decides in a stats snapshot: services, schedulers, servers, weights, pools. */
function shape(s: GatewayStats): unknown {
  return {
    services: s.services.map((x) => ({
      service: x.service,
      scheduler: x.scheduler,
      draining: x.draining,
      servers: x.realServers.map((r) => [r.server, r.weight, r.effectiveWeight, r.draining]),
    })),
    pools: s.pools.map((p) => p.address),
  };
}

/** `n` requests to the VIP, one connection each; the bodies in order. */
async function requests(lab: Lab, n: number): Promise<string[]> {
  const bodies: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await nsExec(lab.t.nsCli, ["curl", "-sS", "--fail", "--max-time", "10", httpUrl(VIP)], 15_000);
    assert.ok(r.success, `curl ${VIP}: ${r.stderr}`);
    bodies.push(r.stdout);
  }
  return bodies;
}

Deno.test("e2e reload: a bad file, or one changing what cannot change live, is refused by name and changes nothing", async () => {
  const good = (t: Topology): Raw => ({
    localAddresses: LOCAL4,
    services: [service(VIP, 80, [[t.rsIp4[0], 1], [t.rsIp4[1], 1]])],
  });
  await withLab({ gateway: good }, async (lab) => {
    const path = lab.gw!.configPath;
    const ok = await lb(lab, "--check");
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), `fnat-lb: config ${path} ok (1 service, 2 servers)`);
    assert.deepEqual((await requests(lab, 4)).sort(), ["rs1\n", "rs1\n", "rs2\n", "rs2\n"]);
    const before = await lab.gw!.stats();
    const cfg = good(lab.t);
    const svc = (cfg.services as Raw[])[0];
    const rsList = svc.realServers as Raw[];

    // A misspelled key: --check and --reload exit 1 naming it; SIGHUP logs the failure and the gateway runs on.
    const misspelled = {
      ...cfg,
      services: [{ ...svc, realServers: [{ ...rsList[0], wieght: 2 }, rsList[1]] }],
    };
    await rewrite(lab, misspelled);
    const check = await lb(lab, "--check");
    assert.equal(check.code, 1, check.stdout);
    assert.match(
      check.stderr,
      /services\[0\]\.realServers\[0\]\.wieght: unknown key \(did you mean "weight"\?\)/,
    );
    const cli = await lb(lab, "--reload");
    assert.equal(cli.code, 1, cli.stdout);
    assert.match(cli.stderr, /wieght/);
    const hup = await sighup(lab);
    console.log(`SIGHUP, misspelled key: ${hup}`);
    assert.match(hup, /^fnat-lb reload failed: .*services\[0\]\.realServers\[0\]\.wieght: unknown key/);

    // A bad port.
    await rewrite(lab, { ...cfg, services: [{ ...svc, port: 70000 }] });
    const port = await lb(lab, "--reload");
    assert.equal(port.code, 1, port.stdout);
    assert.match(port.stderr, /services\[0\]\.port/);
    const check2 = await lb(lab, "--check");
    assert.equal(check2.code, 1);
    assert.match(await sighup(lab), /^fnat-lb reload failed: .*services\[0\]\.port/);

    // What only a restart changes: the gateway itself refuses it, by name.
    for (const [key, value] of [["tun", "flnotthis"], ["workers", 2]] as const) {
      await Deno.writeTextFile(
        path,
        JSON.stringify({ ...cfg, tun: lab.gw!.tun, control: lab.gw!.control, [key]: value }),
      );
      const r = await lb(lab, "--reload");
      console.log(`--reload, ${key} changed: ${r.stderr.trim()}`);
      assert.equal(r.code, 1, r.stdout);
      assert.match(
        r.stderr,
        new RegExp(
          `^fnat-lb: reload failed: config: ${key} cannot change while the gateway runs \\(restart it\\)`,
        ),
      );
    }

    // A local address with live connections cannot go: hold connections open, remove the address they use.
    const hold = spawnIn(lab, lab.t.nsCli, [
      "python3",
      "-c",
      `import socket, time\nss = [socket.create_connection(("${VIP}", 80)) for _ in range(4)]\nprint("held", flush=True)\ntime.sleep(30)`,
    ]);
    await hold.waitFor(() => hold.stdout().includes("held"), "held connections", 10_000);
    let busy = "";
    await waitUntil(
      async () => {
        busy = (await lab.gw!.stats()).pools.find((p) => p.used > 0)?.address ?? "";
        return busy !== "";
      },
      "a local address in use",
      10_000,
      200,
    );
    await rewrite(lab, { ...cfg, localAddresses: LOCAL4.filter((a) => a !== busy) });
    const local = await lb(lab, "--reload");
    console.log(`--reload, ${busy} removed: ${local.stderr.trim()}`);
    assert.equal(local.code, 1, local.stdout);
    assert.match(
      local.stderr,
      new RegExp(
        `^fnat-lb: reload failed: config: localAddresses: ${
          busy.replaceAll(".", "\\.")
        } cannot be removed while it has \\d+ connections`,
      ),
    );
    await hold.stop("SIGKILL", 1_000);

    // Nothing changed: same services, servers, weights and pools; traffic still served by both servers.
    const after = await lab.gw!.stats();
    assert.deepEqual(shape(after), shape(before));
    assert.equal(after.reloads.ok, 0);
    assert.equal(after.reloads.failed, 5, JSON.stringify(after.reloads)); // 2 SIGHUPs + tun + workers + local
    assert.ok(lab.gw!.process.running(), "the gateway exited");
    assert.deepEqual((await requests(lab, 4)).sort(), ["rs1\n", "rs1\n", "rs2\n", "rs2\n"]);
    const served = (await lab.gw!.stats()).services[0].connectionsTotal;
    assert.ok(served >= before.services[0].connectionsTotal + 4 + 4, `connections: ${served}`);

    // And the good file still applies.
    await rewrite(lab, cfg);
    assert.equal((await lb(lab, "--check")).code, 0);
    assert.match(await cliReload(lab), /reloaded services=1 servers=2 added=- removed=- changed=-/);
  });
});

Deno.test("e2e reload (workers=2): a local address added live takes connections, its replies steered to their worker", async () => {
  const config = (t: Topology, locals: string[]): Raw => ({
    workers: 2,
    localAddresses: locals,
    services: [service(VIP, 80, [[t.rsIp4[0], 1], [t.rsIp4[1], 1]])],
  });
  await withLab({ gateway: (t) => config(t, [LOCAL4[0]]) }, async (lab) => {
    console.log(lab.gw!.readyLine);
    await rewrite(lab, config(lab.t, LOCAL4));
    assert.match(await cliReload(lab), /added="local 198\.18\.2\.2"/);
    const before = await lab.gw!.stats();
    const ab = await nsExec(lab.t.nsCli, ["ab", "-n", "2000", "-c", "10", "-s", "10", httpUrl(VIP)], 120_000);
    assert.match(ab.stdout, /Failed requests:\s+0\n/, ab.stdout + ab.stderr);
    assert.match(ab.stdout, /Complete requests:\s+2000\n/);
    const after = await lab.gw!.stats();
    const peers = (await Promise.all(lab.nginx.map((n) => n.accessLog()))).flat().map((e) => e.peerAddr);
    const fromNew = peers.filter((p) => p === LOCAL4[1]).length;
    const handoffs = (after.runtime.handoff_out ?? 0) - (before.runtime.handoff_out ?? 0);
    console.log(
      `requests from ${LOCAL4[1]}: ${fromNew} of ${peers.length}; hand-offs during ab: ${handoffs}`,
    );
    assert.ok(fromNew > 500, `the added local address carried ${fromNew} requests`);
    // With the steering program (steering=bpf), every packet reaches its connection's worker directly.
    if (lab.gw!.readyLine.includes("steering=bpf")) assert.equal(handoffs, 0, JSON.stringify(after.runtime));
  });
});

Deno.test("e2e reload: a server removed from a service that says onServerDown reset has its connections reset at once", async () => {
  const big = new Uint8Array(32 * 1024 * 1024);
  const config = (servers: string[]): Raw => ({
    localAddresses: LOCAL4,
    services: [{
      ...service(VIP, 80, servers.map((a): [string, number] => [a, 1])),
      onServerDown: "reset",
    }],
  });
  await withLab({
    gateway: (t) => config([t.rsIp4[0], t.rsIp4[1]]),
    files: (i) => ({ "index.html": `rs${i + 1}\n`, "big.bin": big }),
  }, async (lab) => {
    const t = lab.t;
    // Two slow downloads: rr puts one on each server.
    const slow = () =>
      spawnIn(lab, t.nsCli, [
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "--limit-rate",
        "1m",
        httpUrl(VIP, 80, "/big.bin"),
      ]);
    const downloads = [slow(), slow()];
    await waitUntil(
      async () => {
        const s = await lab.gw!.stats();
        return (server(s, `tcp ${VIP}:80`, `${t.rsIp4[1]}:80`)?.active ?? 0) === 1 &&
          (server(s, `tcp ${VIP}:80`, `${t.rsIp4[0]}:80`)?.active ?? 0) === 1;
      },
      "one download on each server",
      10_000,
    );
    await rewrite(lab, config([t.rsIp4[0]]));
    const t0 = performance.now();
    assert.match(await cliReload(lab), /removed="tcp 198\.18\.0\.10:80 198\.18\.3\.11:80"/);
    // The download on the removed server ends with a reset; the other one runs on.
    await waitUntil(() => Promise.resolve(downloads.some((d) => !d.running())), "a download ended", 10_000);
    const ms = Math.round(performance.now() - t0);
    const ended = downloads.filter((d) => !d.running());
    assert.equal(ended.length, 1, "only the removed server's download ended");
    assert.match(ended[0].stderr(), /reset by peer|Recv failure/, ended[0].stderr());
    const s = await lab.gw!.stats();
    assert.equal(server(s, `tcp ${VIP}:80`, `${t.rsIp4[1]}:80`)?.active ?? 0, 0, "its connection is gone");
    assert.equal(server(s, `tcp ${VIP}:80`, `${t.rsIp4[0]}:80`)?.active, 1, "the other download runs on");
    console.log(
      `removed with onServerDown reset: the client's download reset ${ms} ms after --reload returned`,
    );
  });
});
