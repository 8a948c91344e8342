/**
 * End-to-end toa-proxy, in network namespaces, through the FULLNAT gateway:
 *
 *   client 198.18.1.2 ─▶ VIP ══ gateway (TOA) ══ 198.18.2.1 ─▶ rs1 toa-proxy :80/:81/[v6]:80 ─▶ nginx / HAProxy
 *   rs2 198.18.3.11 ─────────────────────────────────────────▶ rs1 toa-proxy (directly; forged TOA too)
 *
 * The receivers are real PROXY-protocol implementations — nginx (`listen … proxy_protocol`,
 * `$proxy_protocol_addr`) for v1 and HAProxy (`accept-proxy`, `%[src]`) for v2 — so our headers are judged by
 * independent parsers. Each answer must be the client's own address and port: through the gateway the
 * client's, directly from rs2 rs2's, and rs2 with a forged TOA still rs2's. Then bulk (20 MB
 * byte-identical), 2000 short connections, half-close with backpressure, and a dead backend.
 *
 * One lab (tests/helpers/lab.ts) for all steps, torn down on every exit path. Needs root, nginx, haproxy,
 * curl, apache2-utils (ab), nftables and python3-scapy.
 *
 * @module
 */
import assert from "node:assert/strict";
import { nsExec } from "../netns-scripts/topology.ts";
import {
  type Lab,
  oneServerService,
  randomBytes,
  sha256Hex,
  spawnBackground,
  withLab,
} from "./helpers/mod.ts";
import {
  haproxyConfig,
  startHaproxy,
  startPpNginx,
  startToaProxy,
  type ToaProxyProcess,
} from "../toa/testing/servers.ts";

const REPO = new URL("..", import.meta.url).pathname;
const PYTHON = "/usr/bin/python3";
const VIP_NGINX = "198.18.0.100"; // → rs1:80, toa-proxy v1 → nginx
const VIP_HAPROXY = "198.18.0.101"; // → rs1:81, toa-proxy v2 → HAProxy
const VIP_HALF = "198.18.0.102"; // → rs1:82, toa-proxy none → half-close backend
const VIP6 = "fd00::100"; // → [rs1]:80, toa-proxy v1 → nginx (TCP6 header)
const LOCAL4 = "198.18.2.1";
const LOCAL6 = "fd00:2::1";
const TRUST = "198.18.2.0/24,fd00:2::/64";
const BIG = 20 * 1024 * 1024;

function gatewayConfig(rs1v4: string, rs1v6: string): Record<string, unknown> {
  return {
    localAddresses: [LOCAL4, LOCAL6],
    services: [
      oneServerService(VIP_NGINX, rs1v4, 80),
      oneServerService(VIP_HAPROXY, rs1v4, 81),
      oneServerService(VIP_HALF, rs1v4, 82),
      oneServerService(VIP6, rs1v6, 80),
    ],
  };
}

/** curl in `ns`; returns the body and curl's local port (`%{local_port}` after a tab). */
async function curlIp(
  ns: string,
  url: string,
  extra: string[] = [],
): Promise<{ body: string; port: number }> {
  const r = await nsExec(
    ns,
    ["curl", "-sS", "--max-time", "10", ...extra, "-w", "\t%{local_port}", url],
    20_000,
  );
  assert.ok(r.success, `curl ${url}: ${r.stderr}`);
  const [body, port] = r.stdout.split("\t");
  return { body: body.trim(), port: Number(port) };
}

interface Rig {
  lab: Lab;
  proxies: Record<string, ToaProxyProcess>;
}

/** Starts nginx, HAProxy, the half-close backend and four toa-proxies on rs1. */
async function startRig(lab: Lab): Promise<Rig> {
  const t = lab.t;
  const rs1 = t.nsRs[0];
  const big = randomBytes(BIG);
  await Deno.writeFile(`${lab.dir}/big.bin`, big);
  const nginx = await startPpNginx(rs1, `${lab.dir}/nginx`, ["127.0.0.1:8080"], { "big.bin": big });
  lab.defer(() => nginx.stop());
  lab.track(nginx.process);
  const hap = await startHaproxy(
    rs1,
    `${lab.dir}/haproxy`,
    haproxyConfig("receiver", "127.0.0.1:8081"),
    "127.0.0.1:8081",
  );
  lab.defer(() => hap.stop());
  lab.track(hap.process);
  const half = spawnBackground([
    "ip",
    "netns",
    "exec",
    rs1,
    PYTHON,
    `${REPO}toa/testdata/halfclose_server.py`,
    "127.0.0.1",
    "8082",
  ]);
  lab.defer(() => half.stop("SIGKILL", 1_000));
  lab.track(half);
  await half.waitFor(() => half.stdout().includes("listening"), "half-close backend", 10_000);
  const proxies: Record<string, ToaProxyProcess> = {};
  const start = async (name: string, listen: string, backend: string, pp: string) => {
    const p = await startToaProxy(rs1, [
      "--listen",
      listen,
      "--backend",
      backend,
      "--proxy-protocol",
      pp,
      "--trust",
      TRUST,
    ]);
    lab.defer(() => p.stop());
    lab.track(p.process);
    proxies[name] = p;
  };
  await Promise.all([
    start("nginx", `${t.rsIp4[0]}:80`, "127.0.0.1:8080", "v1"),
    start("haproxy", `${t.rsIp4[0]}:81`, "127.0.0.1:8081", "v2"),
    start("half", `${t.rsIp4[0]}:82`, "127.0.0.1:8082", "none"),
    start("nginx6", `[${t.rsIp6[0]}]:80`, "127.0.0.1:8080", "v1"),
    start("dead", `${t.rsIp4[0]}:83`, "127.0.0.1:8089", "v1"), // nothing listens on 8089
  ]);
  return { lab, proxies };
}

Deno.test("e2e: toa-proxy announces the real client to nginx and HAProxy, and only trusts the gateway", async (tc) => {
  await withLab({ nginx: false, gateway: (t) => gatewayConfig(t.rsIp4[0], t.rsIp6[0]) }, async (lab) => {
    const t = lab.t;
    const { proxies } = await startRig(lab);
    const rs1 = t.rsIp4[0];
    const rs2 = t.nsRs[1];

    await tc.step("through the gateway, nginx (v1) sees the client's address and port", async () => {
      const r = await curlIp(t.nsCli, `http://${VIP_NGINX}/ip`);
      assert.equal(r.body, `${t.cliIp4}:${r.port}`);
    });

    await tc.step("through the gateway, HAProxy (v2) sees the client's address and port", async () => {
      const r = await curlIp(t.nsCli, `http://${VIP_HAPROXY}/`);
      assert.equal(r.body, `${t.cliIp4}:${r.port}`);
    });

    await tc.step("over IPv6 through the gateway, nginx gets a TCP6 header with the client", async () => {
      const r = await curlIp(t.nsCli, `http://[${VIP6}]/ip`, ["-6"]);
      assert.equal(r.body, `${t.cliIp6}:${r.port}`);
    });

    await tc.step("a host beside the real server is announced as itself", async () => {
      const r = await curlIp(rs2, `http://${rs1}/ip`);
      assert.equal(r.body, `${t.rsIp4[1]}:${r.port}`);
      const h = await curlIp(rs2, `http://${rs1}:81/`);
      assert.equal(h.body, `${t.rsIp4[1]}:${h.port}`);
    });

    await tc.step("the same host with a forged TOA in its SYN is still announced as itself", async () => {
      const sport = 20000 + Math.floor(Math.random() * 20000);
      // scapy owns this connection, not rs2's kernel: keep the kernel from resetting it.
      const nft =
        `table inet toaforge { chain out { type filter hook output priority 0; tcp sport ${sport} tcp flags rst drop; }; }`;
      const add = await nsExec(rs2, ["nft", nft]);
      assert.ok(add.success, `nft: ${add.stderr}`);
      const r = await nsExec(rs2, [
        PYTHON,
        `${REPO}toa/testdata/forged_toa_client.py`,
        "--dst",
        rs1,
        "--dport",
        "80",
        "--sport",
        String(sport),
        "--toa",
        "6.6.6.6:6666",
      ], 30_000);
      await nsExec(rs2, ["nft", "delete", "table", "inet", "toaforge"]);
      assert.equal(r.code, 0, `forged client: ${r.stderr}`);
      assert.equal(r.stdout.trim(), `${t.rsIp4[1]}:${sport}`);
    });

    await tc.step("a 20 MB download through gateway and proxy is byte-identical", async () => {
      const out = `${lab.dir}/download.bin`;
      const r = await nsExec(t.nsCli, [
        "curl",
        "-sS",
        "--max-time",
        "60",
        "-o",
        out,
        `http://${VIP_NGINX}/big.bin`,
      ], 90_000);
      assert.ok(r.success, r.stderr);
      const got = await Deno.readFile(out);
      assert.equal(got.length, BIG);
      assert.equal(await sha256Hex(got), await sha256Hex(await Deno.readFile(`${lab.dir}/big.bin`)));
    });

    await tc.step("2000 short connections through gateway and proxy all succeed", async () => {
      const r = await nsExec(t.nsCli, [
        "ab",
        "-q",
        "-n",
        "2000",
        "-c",
        "50",
        "-s",
        "10",
        `http://${VIP_NGINX}/ip`,
      ], 120_000);
      assert.ok(r.success, `ab: ${r.stderr}${r.stdout}`);
      assert.match(r.stdout, /Complete requests:\s+2000\b/);
      assert.match(r.stdout, /Failed requests:\s+0\b/);
      assert.match(r.stdout, /Non-2xx responses:|Total transferred/); // sanity: ab printed its report
      assert.doesNotMatch(r.stdout, /Non-2xx responses/);
    });

    await tc.step(
      "half-close: 8 MB up, EOF passed on after the last byte, the answer still comes back",
      async () => {
        const n = 8 * 1024 * 1024;
        const r = await nsExec(t.nsCli, [
          PYTHON,
          `${REPO}toa/testdata/halfclose_client.py`,
          VIP_HALF,
          "80",
          String(n),
        ], 60_000);
        assert.equal(r.code, 0, r.stderr);
        const [sent, count, got] = r.stdout.trim().split(" ");
        assert.equal(Number(count), n);
        assert.equal(got, sent);
      },
    );

    await tc.step("a dead backend: the client's connection is closed promptly and counted", async () => {
      const t0 = performance.now();
      const r = await nsExec(rs2, ["curl", "-sS", "--max-time", "10", `http://${rs1}:83/ip`], 20_000);
      assert.ok(!r.success);
      assert.match(r.stderr, /Empty reply|reset|Recv failure/i);
      assert.ok(performance.now() - t0 < 3_000, "not closed promptly");
    });

    await tc.step(
      "counters: trusted TOA, ignored forged TOA, backend errors, nothing left open",
      async () => {
        const c = (await proxies.nginx.stop()).counters;
        assert.ok(c.toa_trusted >= 2002, `toa_trusted=${c.toa_trusted}`); // curl, 20 MB, ab
        assert.equal(c.toa_untrusted_ignored, 1);
        assert.equal(c.no_toa, 1); // rs2's plain curl
        assert.equal(c.backend_errors, 0);
        assert.equal(c.active, 0);
        assert.ok(c.bytes_backend_to_client > BIG);
        const dead = await proxies.dead.stop();
        assert.equal(dead.counters.backend_errors, 1);
        assert.match(
          dead.stderr,
          /event=backend_error client=198\.18\.3\.11:\d+ peer=198\.18\.3\.11:\d+ backend=127\.0\.0\.1:8089 errno=ECONNREFUSED/,
        );
        const six = (await proxies.nginx6.stop()).counters;
        assert.equal(six.toa_trusted, 1);
      },
    );
  });
});
