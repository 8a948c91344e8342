/**
 * End-to-end FULLNAT with real peers, in network namespaces: curl, ab and scapy in the client namespace,
 * the gateway (`mod.ts lb`) in the gateway namespace, nginx on two real servers. The peers' kernels are
 * the judges — every veth end verifies complete checksums (up.sh), nginx logs the peer it saw, tcpdump on
 * a real server captures what arrives and scapy dissects it (and checks the checksums left partial for
 * offload, which veth delivers unverified):
 *
 *   client 198.18.1.2 ──▶ VIP 198.18.0.10:80 ══ gateway ══ 198.18.2.x:lport ──▶ rs1/rs2 :80
 *                                                          SYN + handshake ACK carry TOA = client:cport
 *
 * Each test builds its own lab (namespaces, temp dir, nginx, gateway) and tears it down in `finally`, then
 * checks that no namespace, process or TUN of it is left (tests/helpers/lab.ts). Needs root, nginx, curl,
 * apache2-utils (ab), tcpdump, nftables and python3-scapy.
 *
 * @module
 */

import assert from "node:assert/strict";
import { nsExec, type Topology } from "../netns-scripts/topology.ts";
import {
  type AccessEntry,
  checksumErrors,
  httpUrl,
  kernelCounters,
  type Lab,
  randomBytes,
  sendTcp,
  sha256Hex,
  startCapture,
  type TcpSegment,
  toaOptions,
  waitUntil,
  withLab,
} from "./helpers/mod.ts";

const VIP4 = "198.18.0.10"; // rr over rs1 and rs2
const VIP4_RS1 = "198.18.0.11"; // rs1 only: what the captures on rs1 watch
const VIP6 = "fd00::10"; // rr over rs1 and rs2, IPv6
const VIP6_RS1 = "fd00::11";
const LOCAL4 = ["198.18.2.1", "198.18.2.2"];
const LOCAL6 = ["fd00:2::1"];
const BIG = 20 * 1024 * 1024;

/** The gateway configuration every test uses (`tun` and `control` are filled in by the helper). */
function gatewayConfig(t: Topology): Record<string, unknown> {
  const service = (vip: string, servers: string[]) => ({
    vip,
    port: 80,
    protocol: "tcp",
    scheduler: "rr",
    toa: true,
    realServers: servers.map((address) => ({ address, port: 80, weight: 1 })),
    // These tests judge every segment a real server sees; the gateway's own health-check connections (from
    // its host address, tests/e2e_operate_test.ts) would be among them.
    healthCheck: { type: "none" },
  });
  return {
    localAddresses: [...LOCAL4, ...LOCAL6],
    services: [
      service(VIP4, t.rsIp4),
      service(VIP4_RS1, [t.rsIp4[0]]),
      service(VIP6, t.rsIp6),
      service(VIP6_RS1, [t.rsIp6[0]]),
    ],
  };
}

let bigFile: Uint8Array<ArrayBuffer> | undefined;
/** 20 MB of random bytes, made once per run. */
function big(): Uint8Array<ArrayBuffer> {
  return bigFile ??= randomBytes(BIG);
}

/** curl in the client namespace, bounded by `timeoutMs` (curl's own --max-time a second less). */
async function curl(lab: Lab, args: string[], timeoutMs = 30_000) {
  return await nsExec(
    lab.t.nsCli,
    ["curl", "-sS", "-g", "--max-time", String(timeoutMs / 1000 - 1), ...args],
    timeoutMs,
  );
}

/** Downloads `/big.bin` from `vip` into the temp dir and asserts it is byte-identical; returns seconds. */
async function assertDownload(lab: Lab, vip: string, name: string): Promise<number> {
  const out = `${lab.dir}/${name}.bin`;
  const t0 = performance.now();
  const r = await curl(lab, [
    "--fail",
    "-o",
    out,
    "-w",
    "%{http_code} %{size_download}",
    httpUrl(vip, 80, "/big.bin"),
  ], 31_000);
  const secs = (performance.now() - t0) / 1000;
  assert.ok(r.success, `curl ${name}: ${r.stderr.trim()} ${r.stdout}`);
  assert.equal(r.stdout.trim(), `200 ${BIG}`, `curl ${name}`);
  const got = await Deno.readFile(out);
  assert.equal(got.length, BIG, `${name}: length`);
  assert.equal(await sha256Hex(got), await sha256Hex(big()), `${name}: the download differs from the file`);
  await Deno.remove(out);
  return secs;
}

/** Requests per peer address in access-log entries. */
function byPeer(entries: AccessEntry[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of entries) m.set(e.peerAddr, (m.get(e.peerAddr) ?? 0) + 1);
  return m;
}

async function assertNoChecksumErrors(lab: Lab): Promise<void> {
  for (const ns of [lab.t.nsCli, ...lab.t.nsRs]) {
    assert.deepEqual(await checksumErrors(ns), [], `${ns}: the kernel saw bad checksums`);
  }
}

/** TCP option kinds. */
const TIMESTAMP = 8;
const TOA = 254;

Deno.test("e2e fullnat: curl and ab reach both real servers via rr, which see only local addresses", async () => {
  await withLab({ gateway: gatewayConfig }, async (lab) => {
    const opensBefore = (await kernelCounters(lab.t.nsCli)).get("TcpActiveOpens")!;
    const first = await curl(lab, ["--fail", httpUrl(VIP4)]);
    assert.ok(first.success, `curl ${VIP4}: ${first.stderr}`);
    assert.match(first.stdout, /^rs[12]\n$/);
    const v6 = await curl(lab, ["--fail", httpUrl(VIP6)]);
    assert.ok(v6.success, `curl ${VIP6}: ${v6.stderr}`);
    assert.match(v6.stdout, /^rs[12]\n$/);

    const ab = await nsExec(lab.t.nsCli, ["ab", "-n", "200", "-c", "10", "-s", "10", httpUrl(VIP4)], 60_000);
    assert.ok(ab.success, `ab: ${ab.stderr}\n${ab.stdout}`);
    assert.match(ab.stdout, /Complete requests:\s+200\n/);
    assert.match(ab.stdout, /Failed requests:\s+0\n/);
    assert.doesNotMatch(ab.stdout, /Non-2xx responses/);
    const opens = (await kernelCounters(lab.t.nsCli)).get("TcpActiveOpens")! - opensBefore;

    // 1 + 1 + 200 requests, one per connection (ab without -k); nginx logs each as it completes.
    let [rs1, rs2]: AccessEntry[][] = [[], []];
    await waitUntil(
      async () => {
        [rs1, rs2] = [await lab.nginx[0].accessLog(), await lab.nginx[1].accessLog()];
        return rs1.length + rs2.length >= 202;
      },
      "202 requests in the access logs",
      10_000,
    );
    assert.equal(rs1.length + rs2.length, 202, "requests logged by rs1 + rs2");
    assert.ok([...rs1, ...rs2].every((e) => e.status === 200), "a request failed at a real server");
    const peers = byPeer([...rs1, ...rs2]);
    for (const p of peers.keys()) {
      assert.ok([...LOCAL4, ...LOCAL6].includes(p), `a real server saw peer ${p}, not a local address`);
    }
    assert.ok(!peers.has(lab.t.cliIp4) && !peers.has(lab.t.cliIp6), "a real server saw the client's address");
    for (const l of LOCAL4) assert.ok((peers.get(l) ?? 0) > 0, `local address ${l} was never used`);
    assert.equal(peers.get(LOCAL6[0]), 1, "the IPv6 request came from the IPv6 local address");
    // rr: both real servers used, about evenly.
    const share = rs1.length / (rs1.length + rs2.length);
    assert.ok(share > 0.4 && share < 0.6, `rr split rs1 ${rs1.length} / rs2 ${rs2.length}`);

    // The gateway counted every connection the client opened (ab opens a few more than it sends requests
    // on), and at least as many per real server as that server logged requests.
    const stats = await lab.gw!.stats();
    assert.equal(
      stats.services.reduce((n, s) => n + s.connectionsTotal, 0),
      opens,
      "connectionsTotal: gateway vs client",
    );
    const conns = (i: number) =>
      stats.services.flatMap((s) => s.realServers)
        .filter((r) => r.server === `${lab.t.rsIp4[i]}:80` || r.server === `[${lab.t.rsIp6[i]}]:80`)
        .reduce((n, r) => n + r.connectionsTotal, 0);
    assert.ok(conns(0) >= rs1.length && conns(1) >= rs2.length, `gateway ${conns(0)}/${conns(1)} vs logs`);
    assert.equal(stats.drops.no_service ?? 0, 0);
    await assertNoChecksumErrors(lab);
  });
});

Deno.test("e2e fullnat: 20 MB transfers are byte-identical, clean and with 3% loss on the gateway", async () => {
  const files = (i: number) => ({ "index.html": `rs${i + 1}\n`, "big.bin": big() });
  await withLab({ gateway: gatewayConfig, files }, async (lab) => {
    const secs: Record<string, number> = {};
    secs.down4 = await assertDownload(lab, VIP4, "down4");
    secs.down6 = await assertDownload(lab, VIP6, "down6");

    // Every packet crosses the forward hook twice (into the TUN, out of it): ~6% loss end to end, and a
    // GRO-merged packet is dropped whole.
    const rules = `${lab.dir}/lossy.nft`;
    await Deno.writeTextFile(rules, LOSSY_RULESET);
    const nft = await nsExec(lab.t.nsGw, ["nft", "-f", rules]);
    assert.ok(nft.success, `nft: ${nft.stderr}`);
    const cliBefore = await kernelCounters(lab.t.nsCli);

    secs.lossyDown4 = await assertDownload(lab, VIP4, "lossy-down4");
    secs.lossyDown6 = await assertDownload(lab, VIP6, "lossy-down6");
    // An upload makes the real server send SACK blocks in its view of the client's sequence space, shifted
    // by the connection's delta: they only make sense to the client once the gateway has moved them back.
    // The client-side capture keeps the SYNs and every segment with options from the VIP (its SACKs).
    const cap = await startCapture({
      ns: lab.t.nsCli,
      filter: `tcp and host ${VIP4_RS1} and (tcp[tcpflags] & tcp-syn != 0 or tcp[12] & 0xf0 > 0x50)`,
    });
    lab.defer(() => cap.abort());
    secs.lossyUp4 = await assertUpload(lab, VIP4_RS1, 0, "up4");
    const segs = await cap.stop(`${lab.dir}/cli-up4.pcap`);
    secs.lossyUp6 = await assertUpload(lab, VIP6_RS1, 0, "up6");

    const dropped = await lossyDropped(lab);
    assert.ok(dropped > 0, "the nft rule dropped nothing");
    const syn = segs.find((s) => s.flags === "S" && s.src === lab.t.cliIp4);
    assert.ok(syn, "no client SYN captured");
    const blocks = segs.filter((s) => s.src === VIP4_RS1 && s.dport === syn.sport).flatMap(sackBlocks);
    assert.ok(blocks.length > 0, "the real server sent no SACK blocks to the client");
    // Every block edge lies in what the client sent: after its ISN, within the request's length.
    const sent = BIG + 4096;
    for (const [left, right] of blocks) {
      const l = (left - syn.seq) >>> 0;
      const r = (right - syn.seq) >>> 0;
      assert.ok(
        l >= 1 && l < r && r <= sent,
        `SACK block [${left}, ${right}) outside what the client sent (ISN ${syn.seq})`,
      );
    }
    const cli = await kernelCounters(lab.t.nsCli);
    const grew = (k: string) => (cli.get(k) ?? 0) - (cliBefore.get(k) ?? 0);
    assert.ok(grew("TcpRetransSegs") > 0, "the client retransmitted nothing");
    assert.ok(grew("TcpExtTCPSackRecovery") > 0, "the client never recovered by SACK");
    assert.equal(grew("TcpExtTCPSACKDiscard"), 0, "the client discarded SACK blocks as invalid");
    const summary = `nft dropped ${dropped}, client retransmits ${grew("TcpRetransSegs")}, ` +
      `SACK recoveries ${grew("TcpExtTCPSackRecovery")}, SACK blocks checked ${blocks.length}`;
    console.log(`transfer seconds ${JSON.stringify(secs)}; ${summary}`);
    await assertNoChecksumErrors(lab);
  });
});

Deno.test("e2e fullnat: SYN and handshake ACK reach the real server with TOA = client address:port, no timestamp", async () => {
  await withLab({ gateway: gatewayConfig }, async (lab) => {
    const cap = await startCapture({ ns: lab.t.nsRs[0], filter: "tcp port 80" });
    lab.defer(() => cap.abort());
    const cases = [
      {
        vip: VIP4_RS1,
        client: lab.t.cliIp4,
        cport: 40123,
        rs: lab.t.rsIp4[0],
        locals: LOCAL4,
        toaLen: 8,
        mss: 1452,
      },
      {
        vip: VIP6_RS1,
        client: lab.t.cliIp6,
        cport: 40124,
        rs: lab.t.rsIp6[0],
        locals: LOCAL6,
        toaLen: 20,
        mss: 1420,
      },
    ];
    for (const c of cases) {
      const r = await curl(lab, ["--fail", "--local-port", String(c.cport), httpUrl(c.vip)]);
      assert.ok(r.success, `curl ${c.vip}: ${r.stderr}`);
      assert.equal(r.stdout, "rs1\n");
    }
    const segs = await cap.stop(`${lab.dir}/rs1.pcap`);
    const log = await lab.nginx[0].waitForRequests(2);
    for (const c of cases) {
      const { syn } = assertToaHandshake(segs, c);
      assert.ok(
        log.some((e) => e.peerAddr === syn.src && e.peerPort === syn.sport),
        `nginx on rs1 did not log the captured peer ${syn.src}:${syn.sport}`,
      );
    }
    const stats = await lab.gw!.stats();
    assert.ok((stats.events.toa_inserted ?? 0) >= 4, `toa_inserted ${stats.events.toa_inserted}`);
    assert.ok(
      (stats.events.timestamp_removed ?? 0) >= 2,
      `timestamp_removed ${stats.events.timestamp_removed}`,
    );
    assert.equal(stats.events.toa_no_space ?? 0, 0);
    await assertNoChecksumErrors(lab);
  });
});

Deno.test("e2e fullnat: a client-forged TOA is stripped; the real server sees only the true one", async () => {
  await withLab({ gateway: gatewayConfig }, async (lab) => {
    const cap = await startCapture({ ns: lab.t.nsRs[0], filter: "tcp port 80" });
    lab.defer(() => cap.abort());
    // scapy owns no socket, so the client kernel answers the SYN-ACK with a RST: the SYN is what matters.
    const forged4 = "000106060606"; // port 1, 6.6.6.6
    const forged6 = "0001" + "fd000006000000000000000000000006"; // port 1, fd00:6::6
    await sendTcp(lab.t.nsCli, [
      "--dst",
      VIP4_RS1,
      "--dport",
      "80",
      "--sport",
      "40999",
      "--option",
      "2:05b4",
      "--option",
      `254:${forged4}`,
      "--option",
      "4:",
    ]);
    await sendTcp(lab.t.nsCli, [
      "--dst",
      VIP6_RS1,
      "--dport",
      "80",
      "--sport",
      "40998",
      "--option",
      "2:05a0",
      "--option",
      `254:${forged6}`,
      "--option",
      "4:",
    ]);
    const segs = await cap.stop(`${lab.dir}/rs1.pcap`);
    const syns = segs.filter((s) => s.flags === "S");
    assert.equal(syns.length, 2, `SYNs at rs1:\n${summary(segs)}`);
    for (const [client, cport, len] of [[lab.t.cliIp4, 40999, 8], [lab.t.cliIp6, 40998, 20]] as const) {
      const syn = syns.find((s) => toaOptions(s).some((t) => t.port === cport));
      assert.ok(syn, `no SYN with TOA port ${cport} at rs1`);
      assert.deepEqual(
        toaOptions(syn),
        [{ port: cport, address: client, len }],
        "exactly one TOA, the true one",
      );
      assert.equal(syn.checksum, "ok", "SYN checksum (scapy wrote a complete one)");
    }
    for (const s of segs) {
      assert.ok(
        !s.options.some((o) => o.kind === TOA && (o.data.includes("06060606") || o.data === forged6)),
      );
    }
    const stats = await lab.gw!.stats();
    assert.ok((stats.events.toa_stripped ?? 0) >= 2, `toa_stripped ${stats.events.toa_stripped}`);
    assert.ok((stats.events.toa_inserted ?? 0) >= 2, `toa_inserted ${stats.events.toa_inserted}`);
  });
});

Deno.test("e2e fullnat: tx checksum offload off toward the real servers: every checksum the gateway leaves partial is finished and verified; forged TOAs in partial SYNs; one hop", async () => {
  await withLab({ gateway: gatewayConfig }, async (lab) => {
    assert.match(lab.gw!.readyLine, /offloads=0x(?!0 )/, "the TUN has offloads on");
    // The gateway's kernel finishes in software what it would hand the server-facing veths to finish, so
    // the real servers' kernels (rx offload off, up.sh) verify every TCP checksum the engine kept partial.
    for (const dev of ["br0", ...lab.t.nsRs.map((_, i) => `r${i + 1}`)]) {
      const r = await nsExec(lab.t.nsGw, ["ethtool", "-K", dev, "tx", "off"], 10_000);
      assert.ok(r.success, `ethtool -K ${dev} tx off: ${r.stderr}`);
    }
    const cap = await startCapture({ ns: lab.t.nsRs[0], filter: "tcp port 80" });
    lab.defer(() => cap.abort());
    // Sockets on the client (tx offload on) send partial checksums: the engine reads NEEDS_CSUM.
    for (const vip of [VIP4_RS1, VIP6_RS1]) {
      const r = await curl(lab, ["--fail", httpUrl(vip)]);
      assert.ok(r.success, `curl ${vip}: ${r.stderr}`);
      assert.equal(r.stdout, "rs1\n");
    }
    // A partial SYN with a forged TOA (issue 9 #1): blanking it must keep the partial checksum right.
    const forged4 = "000106060606"; // port 1, 6.6.6.6
    const forged6 = "0001" + "fd000006000000000000000000000006"; // port 1, fd00:6::6
    for (const [vip, sport, forged] of [[VIP4_RS1, "40997", forged4], [VIP6_RS1, "40996", forged6]]) {
      await sendTcp(lab.t.nsCli, [
        "--partial",
        "--dst",
        vip,
        "--dport",
        "80",
        "--sport",
        sport,
        "--option",
        "2:05b4",
        "--option",
        `254:${forged}`,
      ]);
    }
    const segs = await cap.stop(`${lab.dir}/rs1.pcap`);
    for (const [client, cport, len] of [[lab.t.cliIp4, 40997, 8], [lab.t.cliIp6, 40996, 20]] as const) {
      const syn = segs.find((s) => s.flags === "S" && toaOptions(s).some((t) => t.port === cport));
      assert.ok(syn, `no SYN with TOA port ${cport} at rs1:\n${summary(segs)}`);
      assert.deepEqual(
        toaOptions(syn),
        [{ port: cport, address: client, len }],
        "exactly one TOA, the true one",
      );
      assert.equal(syn.checksum, "ok", "finished by the gateway's kernel (tx offload off)");
      // The real server's kernel took the SYN (its checksum verified): it answered.
      assert.ok(
        segs.some((s) => s.flags === "SA" && s.dport === syn.sport && s.src === syn.dst),
        `rs1 did not answer the SYN from ${syn.src}:${syn.sport}:\n${summary(segs)}`,
      );
    }
    // Issue 9 #6: sent with 64 (scapy, curl), the gateway is one hop: 63 at the real server.
    const fromGw = segs.filter((s) => s.dport === 80);
    assert.ok(fromGw.length > 0);
    assert.deepEqual([...new Set(fromGw.map((s) => s.ttl))], [63], `TTL/hop limit at rs1:\n${summary(segs)}`);
    for (const s of fromGw) assert.equal(s.checksum, "ok", `${s.src}:${s.sport} ${s.flags}: checksum`);
    const stats = await lab.gw!.stats();
    assert.ok((stats.events.toa_stripped ?? 0) >= 2, `toa_stripped ${stats.events.toa_stripped}`);
    assert.equal(stats.drops.bad_checksum ?? 0, 0, "the partial SYNs were not taken for bad ones");
    await assertNoChecksumErrors(lab);
  });
});

Deno.test("e2e fullnat: a VIP port without a service is refused at once with a RST", async () => {
  await withLab({ gateway: gatewayConfig }, async (lab) => {
    for (const vip of [VIP4, VIP6]) {
      const t0 = performance.now();
      const r = await curl(lab, ["-v", httpUrl(vip, 81)], 10_000);
      const ms = performance.now() - t0;
      assert.equal(r.code, 7, `curl ${httpUrl(vip, 81)} exit ${r.code}: ${r.stderr}`);
      assert.match(r.stderr, /Connection refused/);
      assert.ok(ms < 2_000, `refusal took ${ms.toFixed(0)} ms (SYN retried, no RST?)`);
    }
    const stats = await lab.gw!.stats();
    assert.ok((stats.drops.no_service ?? 0) >= 2, `no_service ${stats.drops.no_service}`);
    assert.ok((stats.events.rst_sent ?? 0) >= 2, `rst_sent ${stats.events.rst_sent}`);
    assert.equal(stats.activeConnections, 0, "a refused SYN left a connection entry");
    await assertNoChecksumErrors(lab);
  });
});

const LOSSY_RULESET = `table inet lossy {
  chain forwarding {
    type filter hook forward priority 0; policy accept;
    numgen random mod 100 < 3 counter drop
  }
}
`;

/** Packets the lossy rule has dropped so far. */
async function lossyDropped(lab: Lab): Promise<number> {
  const r = await nsExec(lab.t.nsGw, ["nft", "list", "chain", "inet", "lossy", "forwarding"]);
  const m = /counter packets (\d+) bytes \d+ drop/.exec(r.stdout);
  assert.ok(m, `nft counter not found:\n${r.stdout}${r.stderr}`);
  return Number(m[1]);
}

/** PUTs the 20 MB file to real server `rs` through `vip`; asserts the stored copy is identical. */
async function assertUpload(lab: Lab, vip: string, rs: number, name: string): Promise<number> {
  const src = `${lab.dir}/${name}.src`;
  await Deno.writeFile(src, big());
  const t0 = performance.now();
  const r = await curl(lab, [
    "--fail",
    "-T",
    src,
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    httpUrl(vip, 80, `/upload/${name}`),
  ], 31_000);
  const secs = (performance.now() - t0) / 1000;
  assert.ok(r.success, `upload ${name}: ${r.stderr.trim()}`);
  assert.match(r.stdout, /^20[14]$/, `upload ${name}: status`);
  const stored = await Deno.readFile(`${lab.nginx[rs].root}/upload/${name}`);
  assert.equal(stored.length, BIG, `${name}: stored length`);
  assert.equal(
    await sha256Hex(stored),
    await sha256Hex(big()),
    `${name}: the stored upload differs from the file`,
  );
  await Deno.remove(src);
  return secs;
}

interface HandshakeCase {
  client: string;
  cport: number;
  rs: string;
  locals: string[];
  toaLen: number;
  mss: number;
}

/**
 * In the segments captured at the real server, finds the connection whose TOA names `c.cport` and checks
 * its handshake: the SYN from a local address with exactly one TOA = client:cport, no timestamp, MSS
 * clamped; the RS's SYN-ACK; the ACK completing the handshake with the same TOA; no TOA after that.
 */
function assertToaHandshake(segs: TcpSegment[], c: HandshakeCase): { syn: TcpSegment } {
  const toServer = segs.filter((s) => s.dst === c.rs && s.dport === 80);
  const syns = toServer.filter((s) => s.flags === "S" && toaOptions(s).some((t) => t.port === c.cport));
  assert.equal(syns.length, 1, `SYNs with TOA port ${c.cport} at ${c.rs}: ${syns.length}\n${summary(segs)}`);
  const syn = syns[0];
  const want = [{ port: c.cport, address: c.client, len: c.toaLen }];
  assert.ok(c.locals.includes(syn.src), `SYN from ${syn.src}, not a local address`);
  assert.deepEqual(toaOptions(syn), want, "SYN: exactly one TOA, naming the client");
  assert.ok(!syn.options.some((o) => o.kind === TIMESTAMP), "SYN still carries a timestamp option");
  const mss = syn.options.find((o) => o.kind === 2);
  assert.ok(mss && parseInt(mss.data, 16) <= c.mss, `SYN MSS ${mss?.data} not clamped to ${c.mss}`);
  assert.notEqual(syn.checksum, "bad", "SYN checksum");
  const synAck = segs.find((s) =>
    s.src === c.rs && s.sport === 80 && s.dst === syn.src && s.dport === syn.sport && s.flags === "SA"
  );
  assert.ok(synAck, "no SYN-ACK from the real server");
  const flow = toServer.filter((s) => s.src === syn.src && s.sport === syn.sport && s !== syn);
  const ack = flow[0];
  assert.ok(ack && !ack.flags.includes("S") && ack.flags.includes("A"), "no handshake ACK after the SYN");
  assert.equal(ack.seq, (syn.seq + 1) >>> 0, "handshake ACK seq");
  assert.equal(ack.ack, (synAck.seq + 1) >>> 0, "handshake ACK acknowledges the SYN-ACK");
  assert.deepEqual(toaOptions(ack), want, "handshake ACK: exactly one TOA, naming the client");
  assert.notEqual(ack.checksum, "bad", "handshake ACK checksum");
  for (const s of flow.slice(1)) assert.deepEqual(toaOptions(s), [], `TOA after the handshake (${s.flags})`);
  return { syn };
}

/** The SACK blocks (option 5) of a segment, as [left, right) sequence numbers. */
function sackBlocks(s: TcpSegment): [number, number][] {
  const out: [number, number][] = [];
  for (const o of s.options.filter((o) => o.kind === 5)) {
    for (let i = 0; i + 16 <= o.data.length; i += 16) {
      out.push([parseInt(o.data.slice(i, i + 8), 16), parseInt(o.data.slice(i + 8, i + 16), 16)]);
    }
  }
  return out;
}

/** One line per captured segment, for failure messages. */
function summary(segs: TcpSegment[]): string {
  return segs.map((s) => {
    const toa = toaOptions(s).map((t) => ` toa=${t.address}:${t.port}`).join("");
    return `${s.src}:${s.sport} > ${s.dst}:${s.dport} ${s.flags}${toa}${
      s.checksum === "ok" ? "" : ` (${s.checksum} csum)`
    }`;
  }).join("\n");
}
