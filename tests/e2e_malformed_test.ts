/**
 * End-to-end, on the wire: a few thousand malformed frames at a running gateway while a client keeps
 * working, and a capture on the real server that shows what got through (issue 9).
 *
 *   client ns ── eth0 ══▶ c0 ── gateway ns kernel ──▶ TUN ══ fnat-lb ══ TUN ──▶ br0/r1 ──▶ rs1 eth0
 *     │  malformed_frames.py: seeded scapy frames        (tx checksum offload off    tcpdump: every IP
 *     │  over AF_PACKET, exactly as built                  on c0, br0, r1: complete   packet, audited by
 *     └─ curl and a UDP echo client through the VIPs,     checksums on the wire)     pcap_audit.py;
 *        all the while                                                               a UDP echo server
 *
 * The frames (tests/helpers/malformed_frames.py) aim at the TCP and UDP VIPs, a VIP port without a service
 * and the local addresses, IPv4 and IPv6: truncated headers, IHL / data-offset / length lies, bad IP and
 * transport checksums, TCP option soups with forged TOAs, odd flag combinations, fragments, IPv4 options and
 * IPv6 extension chains, martian-like sources inside 198.18.0.0/15 and fd00::/8, random protocols, ICMP
 * errors quoting garbage. The gateway namespace's kernel drops some before the TUN (header checksum,
 * length, IHL lies); the rest reach fnat-lb.
 *
 * Then: every curl succeeded with the right body, no UDP echo came back corrupted (at least 99% came
 * back: UDP has no retransmission, and a busy box may drop a datagram in a burst); every packet that reached the real server came from a
 * local address (or is the gateway kernel's neighbour discovery), is well-formed with complete, correct
 * checksums (pcap_audit.py sums the wire bytes itself); TOA at most once per segment, only on a SYN or
 * the handshake ACK, always naming a source that really sent (never a forged TOA's content); the gateway
 * is alive and counted its drops by reason; the real server's and the client's kernels counted no
 * checksum error. The seed is printed; FNAT_FUZZ_SEED replays a run.
 *
 * Needs root, nginx, curl, tcpdump, ethtool and python3-scapy.
 *
 * @module
 */
import assert from "node:assert/strict";
import { nsExec, run, type Topology } from "../netns-scripts/topology.ts";
import {
  checksumErrors,
  httpUrl,
  kernelCounters,
  PYTHON,
  spawnIn,
  startCapture,
  withLab,
} from "./helpers/mod.ts";

const HERE = new URL("./helpers/", import.meta.url).pathname;
const VIP4 = "198.18.0.10";
const VIP6 = "fd00::10";
const UDP_VIP4 = "198.18.0.20";
const UDP_VIP6 = "fd00::20";
const UDP_PORT = 5353;
const LOCAL4 = "198.18.2.1";
const LOCAL6 = "fd00:2::1";
const LOCALS = [LOCAL4, LOCAL6];
/** Frames the generator sends (it refuses more than 5000, and stops sending after 20 s). */
const FRAMES = 3000;
/** curl requests at least, and at most: the loop runs while the frames go out, then a few more. */
const MIN_REQUESTS = 40;
const MAX_REQUESTS = 3000;
const AFTER_REQUESTS = 10;
/** UDP client runs (2 flows × 4 rounds × 4 datagrams each) at least. */
const MIN_UDP_RUNS = 4;

function config(t: Topology): Record<string, unknown> {
  const svc = (vip: string, port: number, protocol: string, rs: string) => ({
    vip,
    port,
    protocol,
    scheduler: "rr",
    ...(protocol === "tcp" ? { toa: true } : {}),
    realServers: [{ address: rs, port }],
    // Every packet the real server sees is judged: the gateway's own health-check connections are off here.
    healthCheck: { type: "none" },
  });
  return {
    localAddresses: LOCALS,
    services: [
      svc(VIP4, 80, "tcp", t.rsIp4[0]),
      svc(VIP6, 80, "tcp", t.rsIp6[0]),
      svc(UDP_VIP4, UDP_PORT, "udp", t.rsIp4[0]),
      svc(UDP_VIP6, UDP_PORT, "udp", t.rsIp6[0]),
    ],
  };
}

/** What malformed_frames.py prints. */
interface FuzzSummary {
  seed: number;
  built: number;
  sent: number;
  seconds: number;
  classes: Record<string, number>;
  /** Frames with a sound IP layer and an unusable transport layer (null when not all were sent). */
  gatewayDrops: number | null;
  /** `tcp|udp address port` of every TCP segment and UDP datagram sent. */
  sources: string[];
  /** Addresses only ever written into forged TOA options. */
  forged: string[];
}

/** One packet as pcap_audit.py reports it. */
interface Audited {
  family?: 4 | 6;
  src?: string;
  dst?: string;
  proto?: number;
  len?: number;
  id?: number;
  sport?: number;
  dport?: number;
  flags?: string;
  toa?: { len: number; address: string; port: number }[];
  icmpType?: number;
  problems: string[];
  hex?: string;
}

/** One curl through a VIP. */
interface Request {
  vip: string;
  ok: boolean;
  body: string;
  status: string;
  localIp: string;
  localPort: number;
  error: string;
}

async function curl(ns: string, vip: string): Promise<Request> {
  const r = await nsExec(ns, [
    "curl",
    "-sS",
    "-g",
    "--max-time",
    "15",
    "-w",
    "\n%{http_code} %{local_ip} %{local_port}",
    httpUrl(vip),
  ], 20_000).catch((e) => ({ success: false, stdout: "", stderr: String(e), code: -1 }));
  const lines = r.stdout.split("\n");
  const [status = "", localIp = "", localPort = "0"] = (lines.pop() ?? "").split(" ");
  return {
    vip,
    ok: r.success,
    body: lines.join("\n"),
    status,
    localIp,
    localPort: Number(localPort),
    error: r.stderr.trim(),
  };
}

/** ICMPv6 neighbour discovery (router/neighbour solicitation and advertisement, redirect). */
function isNeighbourDiscovery(p: Audited): boolean {
  return p.family === 6 && p.proto === 58 && p.icmpType !== undefined && p.icmpType >= 133 &&
    p.icmpType <= 137;
}

/** Gateway-namespace kernel counters that drop malformed IP before the TUN. */
const GW_KERNEL_DROPS = [
  "IpInHdrErrors",
  "IpInAddrErrors",
  "IpInTruncatedPkts",
  "IpInCsumErrors",
  "IpInDiscards",
  "Ip6InHdrErrors",
  "Ip6InAddrErrors",
  "Ip6InTruncatedPkts",
  "Ip6InDiscards",
  "Ip6InNoRoutes",
];

Deno.test("e2e malformed: thousands of malformed frames at the gateway; the client keeps working, nothing malformed reaches the server", async (t) => {
  const seed = Number(Deno.env.get("FNAT_FUZZ_SEED") ?? crypto.getRandomValues(new Uint32Array(1))[0]);
  console.log(`malformed-frame seed ${seed} (FNAT_FUZZ_SEED=${seed} replays it)`);
  await withLab({ rs: 1, gateway: config }, async (lab) => {
    const { t: topo } = lab;
    const gw = lab.gw!;
    // Complete checksums on the wire toward the real server (and the client): the kernel finishes the
    // partial ones the gateway leaves when a device cannot, and the receivers (rx offload off) verify all.
    for (const dev of ["c0", "br0", "r1"]) {
      const r = await nsExec(topo.nsGw, ["ethtool", "-K", dev, "tx", "off"], 10_000);
      assert.ok(r.success, `ethtool -K ${dev} tx off: ${r.stderr}`);
    }
    const mac = (await nsExec(topo.nsGw, ["cat", "/sys/class/net/c0/address"])).stdout.trim();
    assert.match(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, "the gateway's c0 MAC");
    const gwBefore = await kernelCounters(topo.nsGw);

    // Only what is addressed to the real server (ARP aside): what it sends back is not under test.
    const cap = await startCapture({
      ns: topo.nsRs[0],
      filter: `dst host ${topo.rsIp4[0]} or dst host ${topo.rsIp6[0]}`,
      maxPackets: 200_000,
      bufferKiB: 32_768,
    });
    lab.defer(() => cap.abort());
    // The ICMP the client gets (the gateway's echo replies, port unreachables and translated errors), for
    // a reproducer should its kernel count a bad checksum.
    const cliCap = await startCapture({
      ns: topo.nsCli,
      filter: `(icmp and dst host ${topo.cliIp4}) or (icmp6 and dst host ${topo.cliIp6})`,
      bufferKiB: 8_192,
    });
    lab.defer(() => cliCap.abort());

    const echo = spawnIn(lab, topo.nsRs[0], [PYTHON, `${HERE}udp_gso.py`, "server", String(UDP_PORT)]);
    await echo.waitFor(() => echo.stdout().includes("listening"), "UDP echo server", 10_000);

    // The clients work before, during and after the frames.
    const requests: Request[] = [];
    let fuzzing = true;
    const vips = [VIP4, VIP6];
    const client = (async () => {
      while (requests.length < MAX_REQUESTS && (fuzzing || requests.length < MIN_REQUESTS)) {
        requests.push(await curl(topo.nsCli, vips[requests.length % 2]));
      }
      for (let i = 0; i < AFTER_REQUESTS; i++) requests.push(await curl(topo.nsCli, vips[i % 2]));
    })();
    // And a UDP client: rounds of datagrams echoed by the real server, each checked byte for byte.
    const udp = { sent: 0, ok: 0, bad: 0, missing: 0, dup: 0, runs: 0 };
    const udpClient = (async () => {
      while (udp.runs < MAX_REQUESTS && (fuzzing || udp.runs < MIN_UDP_RUNS)) {
        const vip = udp.runs++ % 2 === 0 ? UDP_VIP4 : UDP_VIP6;
        const r = await nsExec(topo.nsCli, [
          PYTHON,
          `${HERE}udp_gso.py`,
          "client",
          vip,
          String(UDP_PORT),
          "--flows",
          "2",
          "--rounds",
          "4",
          "--segments",
          "4",
          "--size",
          "300",
        ], 60_000);
        for (const m of r.stdout.matchAll(/(sent|ok|bad|missing|dup)=(\d+)/g)) {
          udp[m[1] as "sent"] += Number(m[2]);
        }
      }
    })();
    const manifest = `${lab.dir}/frames.jsonl`;
    const fuzzConfig = {
      vip4: VIP4,
      vip6: VIP6,
      udpVip4: UDP_VIP4,
      udpVip6: UDP_VIP6,
      local4: LOCAL4,
      local6: LOCAL6,
      client4: topo.cliIp4,
      client6: topo.cliIp6,
      rs4: topo.rsIp4[0],
      rs6: topo.rsIp6[0],
      gw4: topo.gwCliIp4,
      gw6: topo.gwCliIp6,
      port: 80,
      udpPort: UDP_PORT,
    };
    let fuzz: FuzzSummary;
    const during = { from: 0, to: 0, udpFrom: 0, udpTo: 0 };
    try {
      // Let the client's first requests go through a quiet gateway.
      await new Promise((r) => setTimeout(r, 500));
      [during.from, during.udpFrom] = [requests.length, udp.runs];
      const r = await nsExec(topo.nsCli, [
        PYTHON,
        `${HERE}malformed_frames.py`,
        "--iface",
        "eth0",
        "--dst-mac",
        mac,
        "--config",
        JSON.stringify(fuzzConfig),
        "--seed",
        String(seed),
        "--count",
        String(FRAMES),
        "--manifest",
        manifest,
      ], 90_000);
      assert.ok(r.success, `malformed_frames.py: ${r.stderr.trim()}`);
      fuzz = JSON.parse(r.stdout) as FuzzSummary;
      [during.to, during.udpTo] = [requests.length, udp.runs];
    } finally {
      fuzzing = false;
      await client;
      await udpClient;
    }
    // The last frames' echoes (the real server's answers, the client's resets) settle.
    await new Promise((r) => setTimeout(r, 1_000));
    const pcap = `${lab.dir}/rs1.pcap`;
    const capStats = await cap.save(pcap);
    await cliCap.save(`${lab.dir}/cli-icmp.pcap`);
    const audit = await run([PYTHON, `${HERE}pcap_audit.py`, pcap], 120_000);
    assert.ok(audit.success, `pcap_audit.py: ${audit.stderr.trim()}`);
    const packets = JSON.parse(audit.stdout) as Audited[];
    const frames = await readManifest(manifest);

    const rsAddrs = new Set([topo.rsIp4[0], topo.rsIp6[0]]);
    const toServer = packets.filter((p) => p.dst !== undefined && rsAddrs.has(p.dst));
    const vipAddrs = new Set([VIP4, VIP6, UDP_VIP4, UDP_VIP6]);
    const gwAddrs = new Set([topo.gwRsIp4, topo.gwRsIp6]);
    const fromGateway = toServer.filter((p) => p.src !== undefined && LOCALS.includes(p.src));
    const stats = await gw.stats();
    const drops = Object.values(stats.drops).reduce((a, b) => a + b, 0);
    const gwAfter = await kernelCounters(topo.nsGw);
    const kernelDrops: Record<string, number> = {};
    for (const k of GW_KERNEL_DROPS) {
      const v = (gwAfter.get(k) ?? 0) - (gwBefore.get(k) ?? 0);
      if (v !== 0) kernelDrops[k] = v;
    }
    const good = requests.filter((r) => r.ok && r.status === "200" && r.body === "rs1\n");
    const traced = traceToFrames(fromGateway, frames);
    console.log(
      `frames: built ${fuzz.built}, sent ${fuzz.sent} in ${fuzz.seconds} s; ` +
        `certain gateway drops ${fuzz.gatewayDrops}; classes ${JSON.stringify(fuzz.classes)}`,
    );
    console.log(
      `server rs1: ${toServer.length} packets addressed to it, ${fromGateway.length} from local ` +
        `addresses (about ${traced.size} of them traced to a frame); client: ${good.length}/${requests.length} ` +
        `requests right (${during.to - during.from} while the generator ran), UDP ${JSON.stringify(udp)} (${
          during.udpTo - during.udpFrom
        } runs while it ran); gateway drops ${drops} ${JSON.stringify(stats.drops)}; events ` +
        `${JSON.stringify(stats.events)}; gateway runtime ${JSON.stringify(stats.runtime)}; ` +
        `gateway-kernel drops ${JSON.stringify(kernelDrops)}; tcpdump: ${capStats}`,
    );

    await t.step("every frame was sent, within the bounds", () => {
      assert.equal(fuzz.sent, FRAMES, "frames sent");
      assert.ok(fuzz.gatewayDrops !== null && fuzz.gatewayDrops > 0, "frames the gateway must drop");
    });

    await t.step("the client kept working: every request answered with the right body", () => {
      const bad = requests.filter((r) => !good.includes(r));
      assert.ok(requests.length >= MIN_REQUESTS + AFTER_REQUESTS, `only ${requests.length} requests`);
      assert.deepEqual(bad.map((r) => `${r.vip}: ${r.status} ${JSON.stringify(r.body)} ${r.error}`), []);
    });

    await t.step("the UDP client kept working: no echo corrupted, at least 99% back", () => {
      // UDP has no retransmission: a datagram a busy box drops in a burst stays lost, so a few may miss.
      // Each run: 2 flows × 4 rounds × 4 datagrams; a run that printed no counts sent none.
      assert.ok(udp.runs >= MIN_UDP_RUNS && udp.sent === udp.runs * 32, `UDP runs ${JSON.stringify(udp)}`);
      assert.equal(udp.bad, 0, `corrupted echoes: ${JSON.stringify(udp)}`);
      assert.equal(udp.dup, 0, `duplicated echoes: ${JSON.stringify(udp)}`);
      assert.ok(udp.ok >= 0.99 * udp.sent, `UDP echoes back: ${JSON.stringify(udp)}`);
    });

    await t.step("the gateway is alive and counted its drops by reason", () => {
      assert.ok(gw.process.running(), `the gateway exited: ${gw.process.stderr()}`);
      // Every frame the gateway must drop reached it (the kernel forwards sound IP) and was counted; the
      // kernel dropped part of the others. Neither total can pass the frames sent (plus a few of the
      // kernel's own IPv6 packets on the TUN, counted not_for_us).
      const { not_for_us: own = 0, ...fuzzDrops } = stats.drops;
      const sum = Object.values(fuzzDrops).reduce((a, b) => a + b, 0);
      assert.ok(sum >= fuzz.gatewayDrops!, `gateway drops ${sum} < ${fuzz.gatewayDrops} certain ones`);
      assert.ok(sum <= fuzz.sent, `gateway drops ${sum} > ${fuzz.sent} frames sent`);
      assert.ok(own <= fuzz.sent + 100, `not_for_us ${own}`);
      for (
        const reason of [
          "truncated",
          "bad_data_offset",
          "option_overflow",
          "length_mismatch",
          "unsupported",
          "no_connection",
          "no_connection_reply",
          "icmp_no_connection",
          "bad_checksum",
        ]
      ) {
        assert.ok(
          (stats.drops[reason] ?? 0) > 0,
          `no drop counted as ${reason}: ${JSON.stringify(stats.drops)}`,
        );
      }
      // Fragments are reassembled: the generator's broken ones are refused by the reassembler's reasons.
      assert.ok(
        Object.keys(stats.drops).some((k) => k === "fragment" || k.startsWith("frag_")),
        `no fragment refused: ${JSON.stringify(stats.drops)}`,
      );
      assert.ok(
        Object.values(kernelDrops).reduce((a, b) => a + b, 0) > 0,
        "the gateway kernel dropped nothing",
      );
    });

    await t.step("only local addresses reached the server, but for answers to its spoofed address", () => {
      // Frames that spoofed the real server's own address as their source are answered toward it: by the
      // gateway from a VIP (a SYN-ACK, RST, UDP echo, echo reply or port unreachable for that "client"), by the
      // gateway namespace's kernel (ICMP errors about frames it dropped). Nothing else but neighbour
      // discovery may come from anywhere but a local address.
      const others = toServer.filter((p) => !fromGateway.includes(p) && !isNeighbourDiscovery(p));
      const spoofedRs = new Set(fuzz.sources.filter((s) => rsAddrs.has(s.split(" ")[1])));
      const icmp = (p: Audited) => p.proto === 1 || p.proto === 58;
      const answer = (p: Audited) =>
        (vipAddrs.has(p.src!) &&
          (icmp(p) || spoofedRs.has(`${p.proto === 6 ? "tcp" : "udp"} ${p.dst} ${p.dport}`))) ||
        (gwAddrs.has(p.src!) && icmp(p));
      assert.deepEqual(others.filter((p) => !answer(p)).map(describe), []);
      assert.ok(fromGateway.length > 0, "nothing reached the server");
    });

    // A bad checksum that came in with the frame and went out with it (see the bad-checksum step below).
    const passedThrough = (p: Audited, why: string) => {
      const f = traced.get(p);
      return CHECKSUM_PROBLEMS.includes(why) && f !== undefined && PASS_THROUGH.has(f.class);
    };
    const problems = (pass: boolean) => {
      const byProblem = new Map<string, Audited[]>();
      for (const p of toServer) {
        for (const why of p.problems) {
          if (passedThrough(p, why) === pass) byProblem.set(why, [...byProblem.get(why) ?? [], p]);
        }
      }
      return problemReport(byProblem, traced);
    };

    await t.step(
      "nothing malformed reached the server, and every checksum the gateway made is right",
      async () => {
        assert.deepEqual(problems(false), []);
        // The real server's kernel saw no bad checksum but those the frames brought in (the bad-checksum step).
        const passed = toServer.filter((p) => p.problems.some((why) => passedThrough(p, why))).length;
        const counted = (await checksumErrors(topo.nsRs[0])).reduce(
          (n, kv) => n + Number(kv.split("=")[1]),
          0,
        );
        const lost = Number(/(\d+) packets? dropped by kernel/.exec(capStats)?.[1] ?? 0);
        assert.ok(
          counted <= passed + lost,
          `the server counted ${counted} checksum errors, ${passed} came in`,
        );
      },
    );

    await t.step(
      "bad checksums make nothing: no segment whose TCP/UDP checksum is wrong (or an IPv6 UDP checksum " +
        "of 0) reaches the server, whose kernel counts no checksum error",
      async () => {
        // The gateway verifies the checksum of what would create state (a client SYN, a flow's first
        // datagram; an IPv6 UDP checksum of 0 is a bad one, RFC 8200 8.1) and adjusts every other one
        // incrementally (RFC 1624), so a wrong one would stay wrong: before the check, a SYN with a bad
        // checksum got a connection, a local port and a TOA, and the real server's kernel discarded it.
        const report = problems(true);
        const counted = await checksumErrors(topo.nsRs[0]);
        if (report.length > 0) console.log(`unverified checksums:\n${report.join("\n")}\n${counted}`);
        assert.deepEqual({ atTheServer: report, serverKernel: counted }, {
          atTheServer: [],
          serverKernel: [],
        });
      },
    );

    await t.step("TOA: at most one, only on a SYN or the handshake ACK, always a true source", () => {
      const sources = new Set(fuzz.sources.filter((s) => s.startsWith("tcp ")).map((s) => s.slice(4)));
      for (const r of good) sources.add(`${r.localIp} ${r.localPort}`);
      const forged = new Set(fuzz.forged);
      const wrong: string[] = [];
      const synSeen = new Set<string>();
      const ackDone = new Set<string>();
      for (const p of fromGateway) {
        if (p.proto !== 6 || p.flags === undefined) continue;
        const flow = `${p.src} ${p.sport} ${p.dst} ${p.dport}`;
        const toa = p.toa ?? [];
        const isSyn = p.flags.includes("S");
        const isHandshakeAck = !isSyn && p.flags.includes("A") && !p.flags.includes("R") &&
          synSeen.has(flow) && !ackDone.has(flow);
        if (isSyn) synSeen.add(flow);
        else if (synSeen.has(flow)) ackDone.add(flow);
        if (toa.length === 0) continue;
        const where = `${describe(p)} toa=${JSON.stringify(toa)}`;
        if (toa.length > 1) wrong.push(`more than one TOA: ${where}`);
        if (!isSyn && !isHandshakeAck) wrong.push(`TOA on a segment past the handshake: ${where}`);
        for (const o of toa) {
          if (o.len !== (p.family === 4 ? 8 : 20)) wrong.push(`TOA of length ${o.len}: ${where}`);
          if (forged.has(o.address)) wrong.push(`a forged TOA got through: ${where}`);
          else if (!sources.has(`${o.address} ${o.port}`)) wrong.push(`TOA names no sender: ${where}`);
        }
      }
      assert.deepEqual(wrong, []);
      const announced = fromGateway.filter((p) => (p.toa ?? []).length > 0).length;
      console.log(
        `TOA checked on ${announced} segments; ${stats.events.toa_stripped ?? 0} forged ones stripped`,
      );
      assert.ok((stats.events.toa_stripped ?? 0) > 0, "no client-sent option 254 was stripped");
      // Every request's connection was announced with its true client, on the SYN and the handshake ACK —
      // as far as the capture holds them: a starved tcpdump may lose a few (it says how many).
      const missing: string[] = [];
      for (const r of good) {
        const mine = fromGateway.filter((p) =>
          (p.toa ?? []).some((o) => o.address === r.localIp && o.port === r.localPort)
        );
        if (!mine.some((p) => p.flags === "S")) missing.push(`no SYN announcing ${r.localIp}:${r.localPort}`);
        if (!mine.some((p) => p.flags !== undefined && !p.flags.includes("S") && p.flags.includes("A"))) {
          missing.push(`no handshake ACK announcing ${r.localIp}:${r.localPort}`);
        }
      }
      const lost = Number(/(\d+) packets? dropped by kernel/.exec(capStats)?.[1] ?? 0);
      if (missing.length > 0) console.log(`not in the capture (tcpdump lost ${lost}): ${missing.join("; ")}`);
      assert.ok(missing.length <= lost, `${missing.length} announcements missing:\n${missing.join("\n")}`);
    });

    // What the client got from the gateway (echo replies, port unreachables, translated errors).
    const cliAudit = await run([PYTHON, `${HERE}pcap_audit.py`, `${lab.dir}/cli-icmp.pcap`], 60_000);
    assert.ok(cliAudit.success, `pcap_audit.py: ${cliAudit.stderr.trim()}`);
    const atClient = (JSON.parse(cliAudit.stdout) as Audited[]).filter((p) => p.problems.length > 0);
    // An echo reply whose checksum field is 0x0000 where 0xffff is due: the -0/+0 of RFC 1624 §3.
    const zeroEcho = (p: Audited) => p.proto === 1 && p.icmpType === 0 && /^0000/.test(p.hex!.slice(44));
    const clientCounted = await checksumErrors(topo.nsCli);

    await t.step(
      "the reply to an all-zero echo request (frame 0: 08 00 f7 ff 00 00 00 00) carries checksum 0xffff",
      () => {
        // Changing the type 8 → 0 by RFC 1624 (~(~HC + ~m + m')) from 0xf7ff gives ~(0x0800 + 0xf7ff) = 0x0000,
        // but the message is all zero now, whose sum is +0, so the checksum must be 0xffff; a reply with
        // 0x0000 is discarded by the client's kernel (IcmpInCsumErrors).
        const bad = atClient.filter(zeroEcho).map((p) => `${describe(p)} ${p.hex}`);
        if (bad.length > 0) console.log(`zero-sum echo replies:\n${bad.join("\n")}\n${clientCounted}`);
        assert.deepEqual(bad, []);
      },
    );

    await t.step(
      "the client's kernel counted no other checksum error, nor did any other reply have one",
      () => {
        const others = atClient.filter((p) => !zeroEcho(p)).map((p) => `${describe(p)} ${p.hex}`);
        assert.deepEqual(others, []);
        const zero = atClient.filter(zeroEcho).length;
        const rest = clientCounted.filter((kv) =>
          !(kv.startsWith("IcmpInCsumErrors=") && Number(kv.split("=")[1]) <= zero)
        );
        assert.deepEqual(rest, []);
      },
    );
  });
});

/** Checksum problems pcap_audit.py reports. */
const CHECKSUM_PROBLEMS = ["tcp_checksum", "udp_checksum", "udp6_zero_checksum"];
/**
 * Frame classes that carry a wrong transport checksum in: a flipped checksum byte, an IPv6 UDP checksum of
 * 0, or an IP length shorter than the segment (the gateway namespace's kernel trims the packet to it, so
 * the sum no longer covers what is left).
 */
const PASS_THROUGH = new Set([
  "tcp_bad_checksum/v4",
  "tcp_bad_checksum/v6",
  "udp_bad_checksum/v4",
  "udp_bad_checksum/v6",
  "udp_zero_checksum/v6",
  "ip_length_lie/v4",
  "ip_length_lie/v6",
]);

/** Problems by name, each with a count, the server-side bytes and the frame that caused it. */
function problemReport(byProblem: Map<string, Audited[]>, traced: Map<Audited, Frame>): string[] {
  return [...byProblem].map(([why, ps]) =>
    `${why}: ${ps.length} packet(s), e.g. ${describe(ps[0])}\n  at the server ${ps[0].hex}\n  ${
      reproducer(ps[0], traced)
    }`
  );
}

/** One sent frame from the manifest. */
interface Frame {
  i: number;
  class: string;
  hex: string;
}

async function readManifest(path: string): Promise<Frame[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Frame);
}

/**
 * Server-side packets whose IPv4 identification or IPv6 flow label carries a frame index (the generator's
 * 0x8000 | i and 0x80000 | i), mapped to that frame when its family and protocol agree. "About": a kernel's
 * own identification can fall in that range by chance.
 */
function traceToFrames(packets: Audited[], frames: Frame[]): Map<Audited, Frame> {
  const out = new Map<Audited, Frame>();
  for (const p of packets) {
    if (p.id === undefined) continue;
    const mark = p.family === 4 ? 0x8000 : 0x80000;
    if ((p.id & mark) === 0) continue;
    const f = frames[p.id & (mark - 1)];
    if (f && f.class.endsWith(`/v${p.family}`) && frameProto(f) === p.proto) out.set(p, f);
  }
  return out;
}

/** The transport protocol of a frame's bytes (after IPv6 extension headers), or -1. */
function frameProto(f: Frame): number {
  const b = f.hex;
  if (b.startsWith("4")) return parseInt(b.slice(18, 20), 16);
  if (!b.startsWith("6")) return -1;
  let nh = parseInt(b.slice(12, 14), 16);
  let p = 40;
  for (let n = 0; n < 16 && [0, 43, 60, 44].includes(nh) && p * 2 + 4 <= b.length; n++) {
    const next = parseInt(b.slice(p * 2, p * 2 + 2), 16);
    p += nh === 44 ? 8 : (parseInt(b.slice(p * 2 + 2, p * 2 + 4), 16) + 1) * 8;
    nh = next;
  }
  return nh;
}

/** The frame a bad server-side packet came from, as a hex reproducer (IP layer; send it on L2). */
function reproducer(p: Audited, traced: Map<Audited, Frame>): string {
  const f = traced.get(p);
  return f ? `sent as frame ${f.i} (${f.class}): ${f.hex}` : `no frame traced (id ${p.id})`;
}

function describe(p: Audited): string {
  return `${p.src}:${p.sport ?? ""} > ${p.dst}:${p.dport ?? ""} proto ${p.proto} ${p.flags ?? ""} ` +
    `[${p.problems.join(",")}]`;
}
