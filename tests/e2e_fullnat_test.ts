/**
 * End-to-end FULLNAT with real peers, in network namespaces: curl, ab and scapy in the client namespace,
 * the gateway (`mod.ts lb`) in the gateway namespace, nginx on two real servers. The peers' kernels are
 * the judges — every veth end verifies checksums (up.sh), nginx logs the peer it saw, tcpdump on a real
 * server captures what arrives and scapy dissects it:
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
import { nsExec } from "../netns-scripts/topology.ts";
import type { Topology } from "../netns-scripts/topology.ts";
import {
  type AccessEntry,
  checksumErrors,
  type Lab,
  sendTcp,
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
  const servers = (addrs: string[]) => addrs.map((address) => ({ address, port: 80, weight: 1 }));
  return {
    localAddresses: [...LOCAL4, ...LOCAL6],
    services: [
      { vip: VIP4, port: 80, protocol: "tcp", scheduler: "rr", toa: true, realServers: servers(t.rsIp4) },
      {
        vip: VIP4_RS1,
        port: 80,
        protocol: "tcp",
        scheduler: "rr",
        toa: true,
        realServers: servers([t.rsIp4[0]]),
      },
      { vip: VIP6, port: 80, protocol: "tcp", scheduler: "rr", toa: true, realServers: servers(t.rsIp6) },
      {
        vip: VIP6_RS1,
        port: 80,
        protocol: "tcp",
        scheduler: "rr",
        toa: true,
        realServers: servers([t.rsIp6[0]]),
      },
    ],
  };
}

let bigFile: Uint8Array | undefined;
/** 20 MB of random bytes, made once per run. */
function big(): Uint8Array {
  if (!bigFile) {
    bigFile = new Uint8Array(BIG);
    for (let off = 0; off < BIG; off += 65536) crypto.getRandomValues(bigFile.subarray(off, off + 65536));
  }
  return bigFile;
}

async function sha256(b: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}

function url(vip: string, port = 80, path = "/"): string {
  return `http://${vip.includes(":") ? `[${vip}]` : vip}${port === 80 ? "" : `:${port}`}${path}`;
}

/** curl in the client namespace; returns the result and curl's `-w` line. */
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
    url(vip, 80, "/big.bin"),
  ], 61_000);
  const secs = (performance.now() - t0) / 1000;
  assert.ok(r.success, `curl ${name}: ${r.stderr.trim()} ${r.stdout}`);
  assert.equal(r.stdout.trim(), `200 ${BIG}`, `curl ${name}`);
  const got = await Deno.readFile(out);
  assert.equal(got.length, BIG, `${name}: length`);
  assert.equal(await sha256(got), await sha256(big()), `${name}: the download differs from the file`);
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

const TIMESTAMP = 8;
const TOA = 254;

Deno.test("e2e fullnat: curl and ab reach both real servers via rr, which see only local addresses", async () => {
  await withLab({ gateway: gatewayConfig }, async (lab) => {
    const first = await curl(lab, ["--fail", url(VIP4)]);
    assert.ok(first.success, `curl ${VIP4}: ${first.stderr}`);
    assert.match(first.stdout, /^rs[12]\n$/);
    const v6 = await curl(lab, ["--fail", url(VIP6)]);
    assert.ok(v6.success, `curl ${VIP6}: ${v6.stderr}`);
    assert.match(v6.stdout, /^rs[12]\n$/);

    const ab = await nsExec(lab.t.nsCli, ["ab", "-n", "200", "-c", "10", "-s", "10", url(VIP4)], 60_000);
    assert.ok(ab.success, `ab: ${ab.stderr}\n${ab.stdout}`);
    assert.match(ab.stdout, /Complete requests:\s+200\n/);
    assert.match(ab.stdout, /Failed requests:\s+0\n/);
    assert.doesNotMatch(ab.stdout, /Non-2xx responses/);

    // 1 + 1 + 200 requests, each on its own connection (ab without -k); nginx logs as each one completes.
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
    const v4 = [...rs1, ...rs2].filter((e) => !e.peerAddr.includes(":"));
    const peers = byPeer([...rs1, ...rs2]);
    for (const p of peers.keys()) {
      assert.ok([...LOCAL4, ...LOCAL6].includes(p), `a real server saw peer ${p}, not a local address`);
    }
    assert.ok(!peers.has(lab.t.cliIp4) && !peers.has(lab.t.cliIp6), "a real server saw the client address");
    for (const l of LOCAL4) assert.ok((peers.get(l) ?? 0) > 0, `local address ${l} never used`);
    assert.equal(v4.length, 201);
    assert.ok(rs1.every((e) => e.status === 200) && rs2.every((e) => e.status === 200));
    // rr: both used, and about evenly.
    const share = rs1.length / (rs1.length + rs2.length);
    assert.ok(share > 0.4 && share < 0.6, `rr split rs1 ${rs1.length} / rs2 ${rs2.length}`);

    // The gateway's per-server connection counts agree with what the servers logged.
    const stats = await lab.gw!.stats();
    const svc4 = stats.services.find((s) => s.service === `tcp ${VIP4}:80`)!;
    const svc6 = stats.services.find((s) => s.service === `tcp [${VIP6}]:80`)!;
    const conns = (ip: string) =>
      [...svc4.realServers, ...svc6.realServers].filter((r) =>
        r.server.startsWith(ip) || r.server.startsWith(`[${ip}]`)
      )
        .reduce((n, r) => n + r.connections, 0);
    assert.equal(
      conns(lab.t.rsIp4[0]) + conns(lab.t.rsIp6[0]),
      rs1.length,
      "rs1: gateway connections vs log",
    );
    assert.equal(
      conns(lab.t.rsIp4[1]) + conns(lab.t.rsIp6[1]),
      rs2.length,
      "rs2: gateway connections vs log",
    );
    assert.equal(stats.drops.no_service ?? 0, 0);
    await assertNoChecksumErrors(lab);
  });
});
