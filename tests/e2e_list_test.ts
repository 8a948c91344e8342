/**
 * The listings of a running gateway (`mod.ts lb --config FILE --list …`, run in the gateway namespace
 * against the real process), checked against traffic the test made and against the peers' own view:
 *
 *   client ── 6 × curl, then a rate-limited download ──▶ VIP 198.18.0.10:80 ══ gateway ══▶ rs1, rs2
 *
 * `--list` (ipvsadm -Ln layout, Forward FullNat, health), `--list --stats` (Conns = the requests made),
 * `--list --rate` (non-zero on the server carrying the download, zero on the idle one), `--list
 * --connections` (ipvsadm -Lnc with the local column: the download's row names the client port the
 * client's kernel used and the local address:port the real server's kernel sees as its peer), `--list
 * --pools`, and `--json` of each agreeing with the text. Needs root, nginx, curl.
 *
 * @module
 */

import assert from "node:assert/strict";
import { nsExec, type RunResult, type Topology } from "../netns-scripts/topology.ts";
import type { ListedConnection } from "../lb/control/list_format.ts";
import type { GatewayStats } from "../lb/stats.ts";
import { httpUrl, type Lab, randomBytes, spawnIn, waitUntil, withLab } from "./helpers/mod.ts";

const MOD = new URL("../mod.ts", import.meta.url).pathname;
const VIP = "198.18.0.10";
const VIP_UNCHECKED = "198.18.0.11";
const LOCAL4 = ["198.18.2.1", "198.18.2.2"];
/** Ports per local address: portRange 1025–65535. */
const PORTS = 65535 - 1025 + 1;
const BIG = 16 * 1024 * 1024;

function config(t: Topology): Record<string, unknown> {
  const servers = (list: string[]) => list.map((address) => ({ address, port: 80, weight: 1 }));
  return {
    localAddresses: LOCAL4,
    // The closed connections must still be listed when the listing runs (dpvs's default is 7 s).
    timeouts: { timeWait: 120 },
    services: [
      {
        vip: VIP,
        port: 80,
        scheduler: "rr",
        realServers: servers(t.rsIp4),
        healthCheck: { type: "tcp", interval: 1, timeout: 1, rise: 1 },
      },
      {
        vip: VIP_UNCHECKED,
        port: 80,
        scheduler: "rr",
        realServers: servers([t.rsIp4[0]]),
        healthCheck: { type: "none" },
      },
    ],
  };
}

/** `mod.ts lb --config FILE ARGS` in the gateway namespace; asserts exit 0 and returns stdout. */
async function lb(lab: Lab, ...args: string[]): Promise<string> {
  const r: RunResult = await nsExec(
    lab.t.nsGw,
    [Deno.execPath(), "run", "-A", MOD, "lb", "--config", lab.gw!.configPath, ...args],
    60_000,
  );
  assert.equal(r.code, 0, `lb ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** The whitespace-separated columns of each line. */
const columns = (text: string) => text.trimEnd().split("\n").map((l) => l.trim().split(/\s+/));

Deno.test("e2e list: --list, --stats, --pools, --rate, --connections and --json of a running gateway match its traffic", async () => {
  await withLab({
    files: (i) => ({ "index.html": `rs${i + 1}\n`, "big.bin": randomBytes(BIG) }),
    gateway: config,
  }, async (lab) => {
    const [rs1, rs2] = lab.t.rsIp4;
    const stats = async () => await lab.gw!.stats();
    await waitUntil(
      async () => (await stats()).services[0].realServers.every((r) => r.health === "up"),
      "both servers up",
      20_000,
      200,
    );
    for (let i = 0; i < 6; i++) {
      const r = await nsExec(
        lab.t.nsCli,
        ["curl", "-sS", "--fail", "--max-time", "10", httpUrl(VIP)],
        15_000,
      );
      assert.ok(r.success, r.stderr);
    }
    const s: GatewayStats = await stats();
    // Six connections, closed and lingering in TIME_WAIT (120 s): 3 per server by rr.
    assert.equal(s.activeConnections, 6);

    // --list: ipvsadm -Ln.
    assert.equal(
      await lb(lab, "--list"),
      [
        "fnat-lb FULLNAT (connections=6)",
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn Health",
        `TCP  ${VIP}:80 rr`,
        `  -> ${`${rs1}:80`.padEnd(28)} FullNat 1      0          3          up`,
        `  -> ${`${rs2}:80`.padEnd(28)} FullNat 1      0          3          up`,
        `TCP  ${VIP_UNCHECKED}:80 rr`,
        `  -> ${`${rs1}:80`.padEnd(28)} FullNat 1      0          0          unchecked`,
        "",
      ].join("\n"),
    );
    const json = JSON.parse(await lb(lab, "--list", "--json")) as GatewayStats;
    assert.equal(json.activeConnections, 6);
    assert.deepEqual(json.services.map((x) => x.service), [`tcp ${VIP}:80`, `tcp ${VIP_UNCHECKED}:80`]);
    assert.deepEqual(json.services[0].realServers.map((r) => [r.server, r.inactive, r.health]), [
      [`${rs1}:80`, 3, "up"],
      [`${rs2}:80`, 3, "up"],
    ]);

    // --list --stats: Conns are the six requests; the figures are the JSON's.
    const st = await lb(lab, "--list", "--stats");
    console.log(st);
    const rows = columns(st);
    assert.equal(rows[0].join(" "), "fnat-lb FULLNAT (connections=6)");
    assert.deepEqual(rows[1], [
      "Prot",
      "LocalAddress:Port",
      "Conns",
      "InPkts",
      "OutPkts",
      "InBytes",
      "OutBytes",
    ]);
    assert.deepEqual(rows[2], ["->", "RemoteAddress:Port"]);
    const fig = (
      t: {
        connectionsTotal: number;
        packetsIn: number;
        packetsOut: number;
        bytesIn: number;
        bytesOut: number;
      },
    ) => [t.connectionsTotal, t.packetsIn, t.packetsOut, t.bytesIn, t.bytesOut].map(String);
    const svc = json.services[0];
    assert.deepEqual(rows[3], ["TCP", `${VIP}:80`, ...fig(svc)]);
    assert.deepEqual(rows[4], ["->", `${rs1}:80`, ...fig(svc.realServers[0])]);
    assert.deepEqual(rows[5], ["->", `${rs2}:80`, ...fig(svc.realServers[1])]);
    assert.deepEqual(rows[6], ["TCP", `${VIP_UNCHECKED}:80`, "0", "0", "0", "0", "0"]);
    const sjson = JSON.parse(await lb(lab, "--list", "--stats", "--json")) as GatewayStats;
    assert.deepEqual(sjson.services.map(fig), json.services.map(fig));
    assert.equal(svc.connectionsTotal, 6);
    assert.deepEqual(svc.realServers.map((r) => r.connectionsTotal), [3, 3]);
    // Each HTTP/1.1 exchange: SYN, ACK, request, ACKs, FIN — at least 4 segments each way, 40+ bytes each.
    assert.ok(svc.packetsIn >= 24 && svc.packetsOut >= 24, JSON.stringify(svc));
    assert.ok(svc.bytesIn >= svc.packetsIn * 40 && svc.bytesOut >= svc.packetsOut * 40);

    // --list --pools: the six connections hold six ports.
    const pools = await lb(lab, "--list", "--pools");
    console.log(pools);
    const prow = columns(pools);
    assert.deepEqual(prow[0], ["LocalAddress", "Used", "Free", "Misses"]);
    assert.deepEqual(prow.slice(1).map((r) => r[0]), LOCAL4);
    for (const r of prow.slice(1)) assert.equal(Number(r[1]) + Number(r[2]), PORTS, r.join(" "));
    assert.equal(prow.slice(1).reduce((n, r) => n + Number(r[1]), 0), 6);
    assert.deepEqual(prow.slice(1).map((r) => r[3]), ["0", "0"]);
    const pjson = JSON.parse(await lb(lab, "--list", "--pools", "--json")) as GatewayStats["pools"];
    assert.deepEqual(
      pjson.map((p) => [p.address, String(p.used), String(p.free), String(p.misses)]),
      prow.slice(1),
    );

    // A download at 500 kB/s, some 30 s long (cut short at the end): live in --connections, non-zero in --rate.
    // The client's receive buffer capped at 64 kB, so curl's pacing paces the wire (no buffer-filling burst).
    const rmem = await nsExec(
      lab.t.nsCli,
      ["sysctl", "-q", "-w", "net.ipv4.tcp_rmem=4096 65536 65536"],
      5_000,
    );
    assert.ok(rmem.success, rmem.stderr);
    const dl = spawnIn(lab, lab.t.nsCli, [
      "curl",
      "-sS",
      "--fail",
      "--limit-rate",
      "500K",
      "--max-time",
      "60",
      "-o",
      "/dev/null",
      httpUrl(VIP, 80, "/big.bin"),
    ]);
    let rowsC: ListedConnection[] = [];
    await waitUntil(
      async () => {
        rowsC = JSON.parse(await lb(lab, "--list", "--connections", "--json")) as ListedConnection[];
        return rowsC.some((r) => r.state === "ESTABLISHED");
      },
      "the download's connection",
      20_000,
      200,
    );
    const live = rowsC.find((r) => r.state === "ESTABLISHED")!;
    // The client's kernel names its port; the real server's kernel names the local address:port it sees.
    const cli = await nsExec(lab.t.nsCli, ["ss", "-tnH", "state", "established", "dst", `${VIP}:80`], 5_000);
    const cport = cli.stdout.trim().split(/\s+/)[2];
    assert.equal(live.source, cport, cli.stdout);
    assert.equal(live.virtual, `${VIP}:80`);
    const rsIndex = lab.t.rsIp4.findIndex((a) => live.destination === `${a}:80`);
    assert.ok(rsIndex >= 0, live.destination);
    const peer = await nsExec(
      lab.t.nsRs[rsIndex],
      ["ss", "-tnH", "state", "established", "sport", ":80"],
      5_000,
    );
    assert.equal(live.local, peer.stdout.trim().split(/\s+/)[3], peer.stdout);
    assert.ok(LOCAL4.includes(live.local.split(":")[0]));
    assert.ok(live.expiresIn > 60 && live.expiresIn <= 90, `expires in ${live.expiresIn}`);

    const conns = await lb(lab, "--list", "--connections");
    console.log(conns);
    const lines = conns.trimEnd().split("\n");
    assert.equal(lines[0], "fnat-lb connection entries");
    assert.deepEqual(columns(lines[1])[0], [
      "pro",
      "expire",
      "state",
      "source",
      "virtual",
      "local",
      "destination",
    ]);
    const row = columns(conns).find((c) => c[3] === live.source)!;
    assert.ok(row, conns);
    assert.equal(row[0], "TCP");
    assert.match(row[1], /^01:[0-3]\d$/);
    assert.deepEqual(row.slice(2), ["ESTABLISHED", live.source, live.virtual, live.local, live.destination]);
    assert.equal(lines.length - 2, 7, "six in TIME_WAIT and the download");

    const rate = await lb(lab, "--list", "--rate");
    console.log(rate);
    const rr = columns(rate);
    assert.deepEqual(rr[0], ["Prot", "LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"]);
    assert.deepEqual(rr[1], ["->", "RemoteAddress:Port"]);
    const busy = rr.find((c) => c[0] === "->" && c[1] === live.destination)!;
    const idle = rr.find((c) => c[0] === "->" && c[1] === `${lab.t.rsIp4[1 - rsIndex]}:80`)!;
    assert.ok(Number(rr[2][6]) > 100_000, `service OutBPS while 500 kB/s flows: ${rr[2].join(" ")}`);
    assert.ok(Number(busy[4]) > 0 && Number(busy[5]) > 0 && Number(busy[6]) > 100_000, busy.join(" "));
    assert.deepEqual(idle.slice(2), ["0", "0", "0", "0", "0"]);
    const rjson = JSON.parse(await lb(lab, "--list", "--rate", "--json")) as {
      services: { service: string; outBps: number; realServers: { server: string; outBps: number }[] }[];
    };
    assert.equal(rjson.services[0].service, `tcp ${VIP}:80`);
    assert.ok(rjson.services[0].outBps > 100_000, JSON.stringify(rjson));
    assert.ok(rjson.services[0].realServers.find((r) => r.server === live.destination)!.outBps > 100_000);

    assert.ok(dl.running(), `the download ended before the listings were read: ${dl.stderr()}`);
    await dl.stop("SIGKILL", 1_000);
  });
});
