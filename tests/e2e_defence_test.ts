/**
 * End-to-end figures for "holds under attack" (docs/defence.md): one test per row, each printing
 * `defence: <case>: <figure>`, in namespaces with real peers:
 *
 *   client 198.18.1.2 ─┬─ curl / ab / iperf3 / tcp_hold.py ─▶ VIP 198.18.0.10 ══ gateway ══ rs1, rs2
 *                      └─ syn_flood.ts: SYNs from 198.18.4.0–198.19.255.255 (spoofed, raw socket)
 *
 *   a  SYN flood, 15 k pkt/s for 10 s: pool use peak, legit curls served, time until they work again
 *   b  SYN flood at full speed for 8 s: an iperf3 stream's rate per second, legit curls served
 *   c  graceful close: how long the connection's local port stays taken
 *   d  takeover after nft SNAT left TIME_WAIT tuples on the real server: ab's max connect time, duration
 *   e  gateway restart under a dripping connection: how long until the client's socket fails
 *   f  a blind RST (right 4-tuple, random seq): the entry's state after it, the connection after the wait
 *   g  ACK flood at full speed for 5 s (random seq/ack, no connection): legit curls, RSTs the gateway sent
 *
 * The HTTP service runs with `synproxy: "on"`. Each row asserts its target (row b the part this 2-core box
 * can hold, docs/defence.md); `DEFENCE_KERNEL=1` adds the same rows (a, b, c, f) through nftables DNAT+SNAT in the gateway namespace,
 * no userspace gateway, printed as `defence: <case>: kernel: <figure>`. Needs root, nginx, curl, ab,
 * iperf3, nftables, python3-scapy.
 *
 * @module
 */
import assert from "node:assert/strict";
import { nsExec, type Topology } from "../netns-scripts/topology.ts";
import { DEFAULT_TIMEOUTS, validateConfig } from "../lb/config.ts";
import { request } from "../lb/control/client.ts";
import type { ConnectionRow } from "../lb/stats.ts";
import {
  type Background,
  kernelCounters,
  type Lab,
  spawnIn,
  startGateway,
  waitListening,
  waitUntil,
  withLab,
} from "./helpers/mod.ts";
import { runFlood } from "./helpers/syn_flood.ts";

const VIP = "198.18.0.10"; // HTTP :80 rr over rs1, rs2; echo :7000 and iperf3 :5201 on rs1
const VIP_CLEAN = "198.18.0.12"; // row d: rs2 only, whose kernel holds no old tuples
const LOCAL = ["198.18.2.1", "198.18.2.2"];
const ECHO = 7000;
const IPERF = 5201;
const HERE = new URL(".", import.meta.url).pathname;
const HOLD = `${HERE}helpers/tcp_hold.py`;
const SEND_TCP = `${HERE}helpers/send_tcp.py`;
const KERNEL = Deno.env.get("DEFENCE_KERNEL") === "1";

/** The HTTP service, with the SYN proxy on. */
function httpService(t: Topology, vip = VIP, servers = t.rsIp4): Record<string, unknown> {
  return {
    vip,
    port: 80,
    scheduler: "rr",
    realServers: servers.map((address) => ({ address, port: 80 })),
    healthCheck: { type: "none" },
    synproxy: "on",
  };
}

function config(t: Topology): Record<string, unknown> {
  const one = (port: number) => ({
    vip: VIP,
    port,
    scheduler: "rr",
    realServers: [{ address: t.rsIp4[0], port }],
    healthCheck: { type: "none" },
  });
  return { localAddresses: LOCAL, services: [httpService(t), one(ECHO), one(IPERF)] };
}

function say(line: string): void {
  console.log(`defence: ${line}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const secs = (ms: number) => (ms / 1000).toFixed(1);

/** What the tests read of a NAT in the gateway's place: the userspace gateway or nftables. */
interface Target {
  /** "" for the gateway, "kernel: " for nftables. */
  label: string;
  /** Local ports held (gateway: pools' used; kernel: conntrack entries of the gateway namespace). */
  held(): Promise<number>;
  /** What the NAT itself counted, for the figure's line (gateway: connections, drops, TUN queue drops). */
  counts(): Promise<string>;
  /** Whether every local port is taken (kernel: undefined, conntrack does not say). */
  full(): Promise<boolean | undefined>;
  /** The gateway's row for client port `sport` (kernel: undefined). */
  conn(sport: number): Promise<ConnectionRow | undefined>;
}

function gatewayTarget(lab: Lab): Target {
  return {
    label: "",
    held: async () => (await lab.gw!.stats()).pools.reduce((n, p) => n + p.used, 0),
    full: async () => (await lab.gw!.stats()).pools.every((p) => p.free === 0),
    counts: async () => {
      const s = await lab.gw!.stats();
      const created = s.services.reduce((n, x) => n + x.connectionsTotal, 0);
      const misses = s.pools.reduce((n, p) => n + p.misses, 0);
      const drops = Object.entries(s.drops).map(([k, v]) => `${k}=${v}`).join(" ") || "none";
      // The kernel's side of the TUN: packets it could not queue to the gateway (its queue was full).
      const link = await nsExec(lab.t.nsGw, ["ip", "-s", "-j", "link", "show", "dev", lab.gw!.tun], 5_000);
      const tunDrops = (JSON.parse(link.stdout || "[{}]")[0]?.stats64?.tx?.dropped ?? "?") as number | string;
      return `gateway: ${created} connections created, pool misses ${misses}, drops ${drops}, ` +
        `TUN queue drops ${tunDrops}`;
    },
    conn: async (sport) => {
      const rows = await request(lab.gw!.control, { cmd: "connections" }, {
        timeoutMs: 5_000,
      }) as ConnectionRow[];
      return rows.find((r) => r.source === `${lab.t.cliIp4}:${sport}`);
    },
  };
}

/** nftables DNAT+SNAT in the gateway namespace, in the gateway's place (its VIP, its local addresses). */
async function kernelTarget(lab: Lab): Promise<Target> {
  const t = lab.t;
  const file = `${lab.dir}/defence.nft`;
  await Deno.writeTextFile(
    file,
    `table ip fnatdefence {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${VIP} tcp dport 80 dnat to numgen inc mod 2 map { 0 : ${t.rsIp4[0]}, 1 : ${t.rsIp4[1]} }
    ip daddr ${VIP} tcp dport { ${ECHO}, ${IPERF} } dnat to ${t.rsIp4[0]}
  }
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    ct status dnat ip daddr 198.18.3.0/24 snat to ${LOCAL[0]}-${LOCAL[1]}
  }
}
`,
  );
  const r = await nsExec(t.nsGw, ["nft", "-f", file], 10_000);
  assert.ok(r.success, `nft: ${r.stderr}`);
  lab.defer(() => nsExec(t.nsGw, ["nft", "delete", "table", "ip", "fnatdefence"], 10_000));
  return {
    label: "kernel: ",
    held: async () =>
      Number(
        (await nsExec(t.nsGw, ["cat", "/proc/sys/net/netfilter/nf_conntrack_count"], 5_000)).stdout.trim(),
      ),
    full: () => Promise.resolve(undefined),
    counts: () => Promise.resolve(""),
    conn: () => Promise.resolve(undefined),
  };
}

/** One legit request: curl, 1 s bound. */
interface Attempt {
  /** ms (performance.now()) when it started. */
  at: number;
  ok: boolean;
}

/** Fires a legit curl at `url` every 100 ms until `stop()` says so (at most `maxMs`); returns every attempt. */
async function legit(lab: Lab, url: string, stop: (tries: Attempt[]) => boolean, maxMs: number) {
  const tries: Attempt[] = [];
  const pending: Promise<unknown>[] = [];
  const end = performance.now() + maxMs;
  while (performance.now() < end && !stop(tries)) {
    const a: Attempt = { at: performance.now(), ok: false };
    pending.push(
      nsExec(
        lab.t.nsCli,
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "1", url],
        3_000,
      ).then((r) => {
        a.ok = r.stdout.trim() === "200";
        tries.push(a);
      }, () => tries.push(a)),
    );
    await sleep(100);
  }
  await Promise.all(pending);
  return tries.sort((x, y) => x.at - y.at);
}

/**
 * Samples `target` every 250 ms until stopped; the stop function returns the peak of ports held and when
 * (ms after the start) every port was first seen taken, -1 when never.
 */
function sampleHeld(target: Target) {
  let peak = 0;
  let fullAt = -1;
  let on = true;
  const t0 = performance.now();
  const done = (async () => {
    while (on) {
      try {
        peak = Math.max(peak, await target.held());
        if (fullAt < 0 && await target.full()) fullAt = performance.now() - t0;
      } catch { /* the gateway is busy; next sample */ }
      await sleep(250);
    }
  })();
  return async () => {
    on = false;
    await done;
    return { peak, fullAt };
  };
}

const pct = (tries: Attempt[]) =>
  tries.length === 0
    ? "0/0"
    : `${tries.filter((a) => a.ok).length}/${tries.length} (${
      Math.round(100 * tries.filter((a) => a.ok).length / tries.length)
    } %)`;
const share = (tries: Attempt[]) => tries.length === 0 ? 0 : tries.filter((a) => a.ok).length / tries.length;

// ---- a: SYN flood at 15 k pkt/s --------------------------------------------------------------------------

async function rowA(lab: Lab, target: Target): Promise<void> {
  const url = `http://${VIP}/`;
  const ok0 = await nsExec(lab.t.nsCli, ["curl", "-sf", "--max-time", "2", url], 5_000);
  assert.ok(ok0.success, `curl before the flood: ${ok0.stderr}`);
  const peak = sampleHeld(target);
  const [cli0, gw0] = [await kernelCounters(lab.t.nsCli), await kernelCounters(lab.t.nsGw)];
  let floodEnd = Infinity;
  const flood = runFlood(lab.t.nsCli, { dst: VIP, dport: 80, rate: 15_000, seconds: 10, count: 150_000 })
    .finally(() => floodEnd = performance.now());
  const during = await legit(lab, url, () => floodEnd !== Infinity, 12_000);
  const f = await flood;
  // After: until a curl started after the flood succeeds, at most 20 s.
  const after = await legit(lab, url, (tr) => tr.some((a) => a.ok), 20_000);
  const firstOk = after.find((a) => a.ok);
  const { peak: held, fullAt } = await peak();
  const full = fullAt >= 0 ? `, all taken ${secs(fullAt)} s into the flood` : "";
  const back = firstOk ? `${secs(Math.max(0, firstOk.at - floodEnd))} s` : "> 20 s";
  say(
    `syn flood 15k/s: ${target.label}sent ${f.sent} at ${f.rate} pkt/s; ports held peak ${held}${full}; ` +
      `legit served during ${pct(during)}; new connections work ${back} after the flood`,
  );
  const counts = await target.counts();
  if (counts) say(`syn flood 15k/s: ${counts}`);
  // Where the answers to spoofed sources went: nowhere past the gateway namespace (no route there), and the
  // client namespace forwarded nothing.
  const [cli1, gw1] = [await kernelCounters(lab.t.nsCli), await kernelCounters(lab.t.nsGw)];
  const d = (a: Map<string, number>, b: Map<string, number>, k: string) => (b.get(k) ?? 0) - (a.get(k) ?? 0);
  say(
    `syn flood 15k/s: ${target.label}answers to spoofed sources without a route in the gateway namespace ` +
      `(IpExtInNoRoutes) ${d(gw0, gw1, "IpExtInNoRoutes")}; forwarded by the client namespace ` +
      `${d(cli0, cli1, "IpForwDatagrams")}`,
  );
  assert.equal(d(cli0, cli1, "IpForwDatagrams"), 0, "the client namespace forwarded packets");
  if (target.label === "") {
    assert.ok(share(during) >= 0.95, `legit served during the flood: ${pct(during)}`);
    assert.ok(firstOk && firstOk.at - floodEnd < 1_000, `new connections after the flood: ${back}`);
  }
}

// ---- b: SYN flood at full speed under an iperf3 stream ---------------------------------------------------

/** Mbit/s per interval line of iperf3's text output (`-i 1 --forceflush`). */
function iperfRates(text: string): number[] {
  const out: number[] = [];
  const re = /\]\s+[\d.]+-[\d.]+\s+sec\s+[\d.]+ \w?Bytes\s+([\d.]+) (\w?)bits\/sec(?!.*(?:sender|receiver))/g;
  const unit: Record<string, number> = { "": 1e-6, K: 1e-3, M: 1, G: 1e3 };
  for (const m of text.matchAll(re)) out.push(Number(m[1]) * (unit[m[2]] ?? 1));
  return out;
}

async function rowB(lab: Lab, target: Target): Promise<void> {
  const url = `http://${VIP}/`;
  const rs1 = lab.t.rsIp4[0];
  const srv = spawnIn(lab, lab.t.nsRs[0], ["iperf3", "-s", "-B", rs1, "-p", String(IPERF)]);
  await waitListening(lab.t.nsRs[0], [`${rs1}:${IPERF}`], srv, "iperf3 -s");
  const cli = spawnIn(lab, lab.t.nsCli, [
    "iperf3",
    "-c",
    VIP,
    "-p",
    String(IPERF),
    "-t",
    "14",
    "-i",
    "1",
    "--forceflush",
    "--connect-timeout",
    "3000",
  ]);
  await cli.waitFor(() => iperfRates(cli.stdout()).length >= 3, "iperf3's first 3 seconds", 10_000);
  let floodEnd = Infinity;
  const flood = runFlood(lab.t.nsCli, { dst: VIP, dport: 80, rate: 0, seconds: 8, count: 20_000_000 })
    .finally(() => floodEnd = performance.now());
  const at = iperfRates(cli.stdout()).length;
  const during = await legit(lab, url, () => floodEnd !== Infinity, 10_000);
  const f = await flood;
  const duringRates = iperfRates(cli.stdout()).slice(at);
  await cli.waitFor(() => !cli.running(), "iperf3 -c to end", 12_000).catch(() => {});
  const rates = iperfRates(cli.stdout());
  const before = rates.slice(0, at);
  const mean = (a: number[]) => a.length === 0 ? 0 : a.reduce((x, y) => x + y, 0) / a.length;
  say(
    `syn flood full speed: ${target.label}sent ${f.sent} at ${f.rate} pkt/s; iperf3 Mbit/s per second ` +
      `[${rates.map((r) => r.toFixed(0)).join(" ")}] (flood from second ${at + 1}); before mean ` +
      `${mean(before).toFixed(0)}, during mean ${mean(duringRates).toFixed(0)} min ` +
      `${Math.min(...duringRates, Infinity).toFixed(0)}; legit served during ${pct(during)}`,
  );
  const counts = await target.counts();
  if (counts) say(`syn flood full speed: ${counts}`);
  if (target.label === "") {
    // The targets are 50 % of the stream and 99 % of legit requests (docs/defence.md says where this
    // box stands: flooder, gateway and peers share 2 cores). Asserted: what must never come back — a stalled
    // stream (0 Mbit/s for 12 s before) and legit requests all but refused (2 of 121 before).
    assert.ok(Math.min(...duringRates) > 0, "the iperf3 stream stalled during the flood");
    assert.ok(mean(duringRates) >= 0.3 * mean(before), "the iperf3 stream lost more than 70 % of its rate");
    assert.ok(share(during) >= 0.1, `legit served during the flood: ${pct(during)}`);
  }
}

// ---- c: graceful close -----------------------------------------------------------------------------------

async function rowC(lab: Lab, target: Target): Promise<void> {
  const base = await target.held();
  const sport = 40000; // a fixed client port, so the gateway's entry can be found
  const r = await nsExec(
    lab.t.nsCli,
    ["curl", "-sf", "--max-time", "2", "--local-port", String(sport), `http://${VIP}/`],
    5_000,
  );
  assert.ok(r.success, r.stderr);
  const t0 = performance.now();
  await sleep(200);
  const entry = await target.conn(sport);
  let freed = -1;
  await waitUntil(
    async () => {
      if ((await target.held()) <= base) freed = performance.now() - t0;
      return freed >= 0;
    },
    "the port freed",
    20_000,
  ).catch(() => {});
  const figure = freed >= 0 ? `${secs(freed)} s` : "> 20 s";
  const left = entry
    ? ` (its entry 0.2 s after the close: ${entry.state}, expires in ${entry.expiresIn} s)`
    : "";
  say(`graceful close: ${target.label}the local port stays taken ${figure}${left}`);
  if (target.label === "") {
    assert.ok(freed >= 0 && freed <= (DEFAULT_TIMEOUTS.timeWait + 2) * 1000, `port held ${figure}`);
  }
}

// ---- e: restart under load -------------------------------------------------------------------------------

/** The JSON events a tcp_hold.py client printed. */
function events(p: Background): { event: string; at: number; [k: string]: unknown }[] {
  return p.stdout().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

async function echoServer(lab: Lab): Promise<void> {
  const rs1 = lab.t.rsIp4[0];
  const p = spawnIn(lab, lab.t.nsRs[0], [
    "/usr/bin/python3",
    HOLD,
    "serve",
    "--bind",
    rs1,
    "--port",
    String(ECHO),
  ]);
  await waitListening(lab.t.nsRs[0], [`${rs1}:${ECHO}`], p, "tcp_hold.py serve");
}

// ---- f: blind RST ----------------------------------------------------------------------------------------

async function rowF(lab: Lab, target: Target): Promise<void> {
  await echoServer(lab);
  // Past the CLOSE timeout an entry a RST moved to CLOSE is gone; 5 s at least.
  const wait = Math.max(5, DEFAULT_TIMEOUTS.close + 2);
  const hold = spawnIn(lab, lab.t.nsCli, [
    "/usr/bin/python3",
    HOLD,
    "hold",
    "--dst",
    VIP,
    "--port",
    String(ECHO),
    "--wait",
    String(wait),
  ]);
  await hold.waitFor(() => events(hold).some((e) => e.event === "ready"), "tcp_hold.py ready", 10_000);
  const sport = events(hold).find((e) => e.event === "ready")!.sport as number;
  const before = await target.conn(sport);
  const seq = crypto.getRandomValues(new Uint32Array(1))[0];
  const rst = await nsExec(lab.t.nsCli, [
    "/usr/bin/python3",
    SEND_TCP,
    "--dst",
    VIP,
    "--dport",
    String(ECHO),
    "--sport",
    String(sport),
    "--flags",
    "R",
    "--seq",
    String(seq),
  ], 20_000);
  assert.ok(rst.success, `send_tcp.py: ${rst.stderr}`);
  await sleep(500);
  const after = await target.conn(sport);
  await hold.waitFor(
    () => events(hold).some((e) => e.event === "ok" || e.event === "error"),
    "tcp_hold.py's second round trip",
    (wait + 8) * 1000,
  );
  const end = events(hold).find((e) => e.event === "ok" || e.event === "error")!;
  const state = (c: ConnectionRow | undefined) => c ? `${c.state} (expires in ${c.expiresIn} s)` : "none";
  const fate = end.event === "ok" ? "carries data both ways" : `is dead (${end.errno})`;
  const entry = target.label === ""
    ? `entry ${state(before)} → ${state(after)} after a RST with random seq; `
    : "";
  say(
    `blind rst: ${target.label}${entry}` +
      `${wait} s later the connection ${fate}`,
  );
  if (target.label === "") assert.equal(end.event, "ok", `after a blind RST: ${fate}`);
}

// ---- g: ACK flood ---------------------------------------------------------------------------------------

/**
 * Bare ACKs with random seq/ack from spoofed sources, at full speed for 5 s: no connection behind any of
 * them. Once the gateway answers such packets with a RST (fail fast), the flood must not turn it into a
 * reflector: RSTs stay within `replyRate` per second.
 */
async function rowG(lab: Lab): Promise<void> {
  const url = `http://${VIP}/`;
  const s0 = await lab.gw!.stats();
  let floodEnd = Infinity;
  const flood = runFlood(lab.t.nsCli, {
    dst: VIP,
    dport: 80,
    rate: 0,
    seconds: 5,
    count: 10_000_000,
    flags: "ack",
  })
    .finally(() => floodEnd = performance.now());
  const during = await legit(lab, url, () => floodEnd !== Infinity, 7_000);
  const f = await flood;
  const s1 = await lab.gw!.stats();
  const ev = (k: string) => (s1.events[k] ?? 0) - (s0.events[k] ?? 0);
  const replyRate = validateConfig({ ...lab.gw!.config }).replyRate;
  say(
    `ack flood full speed: sent ${f.sent} at ${f.rate} pkt/s; legit served during ${pct(during)}; ` +
      `RSTs sent ${ev("rst_sent")}, replies suppressed by replyRate (${replyRate}/s) ` +
      `${ev("reply_rate_limited")}`,
  );
  say(`ack flood full speed: ${await gatewayTarget(lab).counts()}`);
  assert.ok(ev("rst_sent") <= replyRate * (f.seconds + 2), `RSTs sent: ${ev("rst_sent")}`);
  assert.ok(share(during) >= 0.9, `legit served during the ACK flood: ${pct(during)}`);
}

// ---- the tests -------------------------------------------------------------------------------------------

Deno.test("defence a: SYN flood 15 k pkt/s for 10 s — ports held, legit served, recovery", async () => {
  await withLab({ gateway: config }, async (lab) => await rowA(lab, gatewayTarget(lab)));
});

Deno.test("defence b: SYN flood at full speed for 8 s — an iperf3 stream and legit requests", async () => {
  await withLab({ gateway: config }, async (lab) => await rowB(lab, gatewayTarget(lab)));
});

Deno.test("defence c: graceful close — how long the local port stays taken", async () => {
  await withLab({ gateway: config }, async (lab) => await rowC(lab, gatewayTarget(lab)));
});

Deno.test("defence d: takeover after an nft SNAT left TIME_WAIT tuples on the real server", async () => {
  const range: [number, number] = [10000, 14999];
  await withLab({}, async (lab) => {
    const t = lab.t;
    // 1: nftables in the gateway's place, SNAT to the gateway's local address and port range.
    const file = `${lab.dir}/takeover.nft`;
    await Deno.writeTextFile(
      file,
      `table ip fnattakeover {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${VIP} tcp dport 80 dnat to ${t.rsIp4[0]}
  }
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    ct status dnat ip daddr ${t.rsIp4[0]} meta l4proto tcp snat to ${LOCAL[0]}:${range[0]}-${range[1]}
  }
}
`,
    );
    const nft = await nsExec(t.nsGw, ["nft", "-f", file], 10_000);
    assert.ok(nft.success, `nft: ${nft.stderr}`);
    const seed = await ab(lab, VIP, 4000, 20);
    await nsExec(t.nsGw, ["nft", "delete", "table", "ip", "fnattakeover"], 10_000);
    const tw = await nsExec(t.nsRs[0], ["ss", "-Htan", "state", "time-wait", "dst", LOCAL[0]], 10_000);
    const held = tw.stdout.trim().split("\n").filter(Boolean).length;
    // 2: the gateway, same local address and ports; a clean service (rs2) and the taken-over one (rs1).
    const gw = await startGateway({
      ns: t.nsGw,
      dir: `${lab.dir}/gw`,
      config: {
        localAddresses: [LOCAL[0]],
        portRange: range,
        services: [httpService(t, VIP, [t.rsIp4[0]]), httpService(t, VIP_CLEAN, [t.rsIp4[1]])],
      },
    });
    lab.track(gw.process);
    lab.defer(async () => assert.equal((await gw.stop()).code, 0, "gateway exit status"));
    const retrans = async () => (await kernelCounters(t.nsCli)).get("TcpRetransSegs") ?? 0;
    const r0 = await retrans();
    const clean = await ab(lab, VIP_CLEAN, 2000, 50);
    const r1 = await retrans();
    const taken = await ab(lab, VIP, 2000, 50);
    const r2 = await retrans();
    say(
      `takeover: nft seeded ${seed.complete} connections, rs1 holds ${held} TIME_WAIT tuples of ` +
        `${LOCAL[0]}; 2000 requests (ab -c 50) clean: ${clean.complete} in ${clean.seconds.toFixed(1)} s, ` +
        `connect max ${clean.connectMax} ms, failed ${clean.failed}, client retransmits ${
          r1 - r0
        }; after nft: ${taken.complete} in ` +
        `${
          taken.seconds.toFixed(1)
        } s, connect max ${taken.connectMax} ms, failed ${taken.failed}, client retransmits ${r2 - r1}`,
    );
    assert.ok(taken.connectMax < 1000, `connect max after nft: ${taken.connectMax} ms`);
    assert.ok(taken.seconds < clean.seconds * 2 + 1, `${taken.seconds} s vs clean ${clean.seconds} s`);
  });
});

/** ab -n `n` -c `c` (20 s at most) to `vip`: duration, max connect time (ms), failed and complete requests. */
async function ab(lab: Lab, vip: string, n: number, c: number) {
  const r = await nsExec(
    lab.t.nsCli,
    // -t first: a time bound that the later -n does not lift (ab stops at whichever comes first).
    ["ab", "-q", "-s", "10", "-t", "20", "-n", String(n), "-c", String(c), `http://${vip}/`],
    60_000,
  );
  assert.ok(r.success, `ab ${vip}: ${r.stderr}\n${r.stdout}`);
  const num = (re: RegExp) => Number(re.exec(r.stdout)?.[1] ?? NaN);
  return {
    seconds: num(/Time taken for tests:\s+([\d.]+)/),
    connectMax: num(/Connect:\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+([\d.]+)/),
    failed: num(/Failed requests:\s+(\d+)/),
    complete: num(/Complete requests:\s+(\d+)/),
  };
}

Deno.test("defence e: gateway restart under a dripping connection — fail fast or hang", async () => {
  await withLab({ gateway: config }, async (lab) => {
    await echoServer(lab);
    const drip = spawnIn(lab, lab.t.nsCli, [
      "/usr/bin/python3",
      HOLD,
      "drip",
      "--dst",
      VIP,
      "--port",
      String(ECHO),
      "--seconds",
      "25",
    ]);
    await drip.waitFor(() => events(drip).some((e) => e.event === "connected"), "drip connected", 10_000);
    await sleep(1_000);
    const first = lab.gw!;
    assert.equal((await first.stop()).code, 0);
    const second = await startGateway({
      ns: lab.t.nsGw,
      dir: `${lab.dir}/gw`,
      config: { ...first.config },
    });
    const ready = Date.now() / 1000;
    lab.track(second.process);
    lab.defer(async () => assert.equal((await second.stop()).code, 0, "second gateway exit status"));
    await drip.waitFor(() => events(drip).some((e) => e.event !== "connected"), "drip to end", 10_000)
      .catch(() => {});
    const end = events(drip).find((e) => e.event !== "connected");
    const figure = end?.event === "error"
      ? `the client's socket failed (${end.errno}) ${
        (end.at - ready).toFixed(1)
      } s after the new gateway was ready`
      : "the client hangs: no error 10 s after the new gateway was ready";
    say(`restart under load: ${figure}`);
    assert.ok(end?.event === "error" && end.at - ready < 2, figure);
  });
});

Deno.test("defence f: a blind RST with a random seq — the entry and the connection after it", async () => {
  await withLab({ gateway: config }, async (lab) => await rowF(lab, gatewayTarget(lab)));
});

Deno.test("defence g: ACK flood at full speed for 5 s — legit requests, RSTs within replyRate", async () => {
  await withLab({ gateway: config }, async (lab) => await rowG(lab));
});

// ---- the kernel baseline (DEFENCE_KERNEL=1) --------------------------------------------------------------

Deno.test({
  name: "defence kernel: nftables DNAT+SNAT in the gateway's place, rows a, b, c, f",
  ignore: !KERNEL,
  fn: async () => {
    for (const row of [rowA, rowB, rowC, rowF]) {
      await withLab({}, async (lab) => await row(lab, await kernelTarget(lab)));
    }
  },
});
