/**
 * End-to-end `toa-transparent`: an unmodified nginx (plain `listen`, `$remote_addr:$remote_port` in its
 * access log) in a cgroup made by the test, behind the FULLNAT gateway:
 *
 *   client 198.18.1.2 ─▶ VIP ══ gateway (TOA) ══ 198.18.2.1 ─▶ rs1 nginx :80 (in the cgroup)   → the client
 *                                              ══ 198.18.2.1 ─▶ rs1 nginx :8080 (not in it)    → the gateway
 *   rs2 198.18.3.11 (not trusted) ───────────────────────────▶ rs1 :80, plain and forged TOA  → rs2 itself
 *   gw  198.18.3.1 (trusted) scapy handshake, TOA in the ACK only ─▶ rs1 :80                  → the TOA's client
 *
 * Then 10,000 connections through the gateway and the per-socket table back to empty; after SIGTERM nothing
 * attached to the cgroup (BPF_PROG_QUERY); `--pin` leaves the programs attached after exit, `--detach`
 * removes them. Needs root, nginx, curl, apache2-utils (ab), nftables, python3-scapy.
 *
 * @module
 */
import assert from "node:assert/strict";
import { nsExec } from "../netns-scripts/topology.ts";
import { oneServerService, spawnBackground, startNginx, waitUntil, withLab } from "./helpers/mod.ts";
import { attachedPrograms, createCgroup, removeCgroup } from "../toa/bpf/cgroup.ts";
import { pinnedStats } from "../toa/transparent_cli.ts";
import { parseCounters, startToaTransparent } from "../toa/testing/servers.ts";

const REPO = new URL("..", import.meta.url).pathname;
const PYTHON = "/usr/bin/python3";
const VIP = "198.18.0.110";
const VIP_OUTSIDE = "198.18.0.111";
const VIP6 = "fd00::110";
const VIP_PROXY = "198.18.0.112"; // → rs1:81, toa-proxy (sockops decoder) → nginx outside the cgroup
const LOCAL4 = "198.18.2.1";
const LOCAL6 = "fd00:2::1";
const HTTP = "GET / HTTP/1.0\\r\\n\\r\\n";

function gatewayConfig(rs1v4: string, rs1v6: string): Record<string, unknown> {
  return {
    localAddresses: [LOCAL4, LOCAL6],
    services: [
      oneServerService(VIP, rs1v4, 80),
      oneServerService(VIP_OUTSIDE, rs1v4, 8080),
      oneServerService(VIP6, rs1v6, 80),
      oneServerService(VIP_PROXY, rs1v4, 81),
    ],
  };
}

async function curl(ns: string, url: string, extra: string[] = []): Promise<number> {
  const r = await nsExec(ns, [
    "curl",
    "-sS",
    "--max-time",
    "10",
    ...extra,
    "-o",
    "/dev/null",
    "-w",
    "%{local_port}",
    url,
  ]);
  assert.ok(r.success, `curl ${url}: ${r.stderr}`);
  return Number(r.stdout);
}

/** One scapy handshake with TOA options, an HTTP request, a reset; from namespace `ns`. */
async function scapyRequest(
  ns: string,
  src: string,
  dst: string,
  sport: number,
  syn: string[],
  ack: string[],
) {
  const args = ["--src", src, "--dst", dst, "--dport", "80", "--sport", String(sport), "--payload", HTTP];
  for (const o of syn) args.push("--syn-option", o);
  for (const o of ack) args.push("--ack-option", o);
  const r = await nsExec(ns, [PYTHON, `${REPO}toa/testdata/toa_handshake.py`, ...args], 30_000);
  assert.ok(r.success, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.synack, true);
  assert.match(j.reply, /^HTTP\/1\.1 200/);
}

/** An nft table in `ns` that drops the kernel's resets (scapy owns those connections, not the kernel). */
async function dropResets(ns: string): Promise<void> {
  const r = await nsExec(ns, [
    "nft",
    "table inet toarst { chain o { type filter hook output priority 0; tcp flags rst drop; }; }",
  ]);
  assert.ok(r.success, r.stderr);
}

Deno.test("e2e: toa-transparent gives an unmodified nginx the client's address, from trusted peers only", async (tc) => {
  await withLab({ nginx: false, gateway: (t) => gatewayConfig(t.rsIp4[0], t.rsIp6[0]) }, async (lab) => {
    const t = lab.t;
    const rs1 = t.rsIp4[0];
    const cg = createCgroup(`${t.prefix}-transparent`);
    lab.defer(() => removeCgroup(cg));
    const trust = `${LOCAL4}/32,${LOCAL6}/128,${t.gwRsIp4}/32`;
    const tt = await startToaTransparent(cg, trust);
    lab.track(tt);
    lab.defer(() => tt.stop("SIGKILL", 1_000));
    assert.equal(attachedPrograms(cg).length, 3);

    const inCgroup = ["sh", "-c", `echo $$ > ${cg}/cgroup.procs && exec "$@"`, "sh"];
    const nginx = await startNginx({
      ns: t.nsRs[0],
      dir: `${lab.dir}/nginx-in`,
      listen: [`${rs1}:80`, `[${t.rsIp6[0]}]:80`],
      files: { "index.html": "in\n" },
      wrapper: inCgroup,
    });
    lab.defer(() => nginx.stop());
    lab.track(nginx.process);
    const outside = await startNginx({
      ns: t.nsRs[0],
      dir: `${lab.dir}/nginx-out`,
      listen: [`${rs1}:8080`],
      files: { "index.html": "out\n" },
    });
    lab.defer(() => outside.stop());
    lab.track(outside.process);
    const last = async (n: number, log = nginx) => (await log.waitForRequests(n)).at(-1)!;
    let n = 0;

    await tc.step("through the gateway: the client's address and port, IPv4 and IPv6", async () => {
      const port = await curl(t.nsCli, `http://${VIP}/`);
      assert.deepEqual(await last(++n), { ...(await last(n)), peerAddr: t.cliIp4, peerPort: port });
      const port6 = await curl(t.nsCli, `http://[${VIP6}]/`, ["-6"]);
      assert.deepEqual(await last(++n), { ...(await last(n)), peerAddr: t.cliIp6, peerPort: port6 });
    });

    await tc.step("a process outside the cgroup still sees the gateway", async () => {
      await curl(t.nsCli, `http://${VIP_OUTSIDE}/`);
      assert.equal((await last(1, outside)).peerAddr, LOCAL4);
    });

    await tc.step("a direct peer outside --trust is logged as itself, with a forged TOA too", async () => {
      const port = await curl(t.nsRs[1], `http://${rs1}/`);
      assert.deepEqual([(await last(++n)).peerAddr, (await last(n)).peerPort], [t.rsIp4[1], port]);
      await dropResets(t.nsRs[1]);
      const forged = "254:1a0a06060606"; // 6.6.6.6:6666
      await scapyRequest(t.nsRs[1], t.rsIp4[1], rs1, 23456, [forged], [forged]);
      assert.deepEqual([(await last(++n)).peerAddr, (await last(n)).peerPort], [t.rsIp4[1], 23456]);
    });

    await tc.step("a trusted peer's TOA in the ACK only (dpvs ≥ 1.9.6) gives the client", async () => {
      await dropResets(t.nsGw);
      await scapyRequest(t.nsGw, t.gwRsIp4, rs1, 23457, [], ["254:9c40cb007107"]); // 203.0.113.7:40000
      assert.deepEqual([(await last(++n)).peerAddr, (await last(n)).peerPort], ["203.0.113.7", 40000]);
    });

    await tc.step(
      "10,000 connections through the gateway: all announced, the table back to empty",
      async () => {
        const r = await nsExec(t.nsCli, ["ab", "-q", "-n", "10000", "-c", "50", `http://${VIP}/`], 300_000);
        assert.ok(r.success, r.stderr);
        assert.match(r.stdout, /Failed requests:\s+0/);
        const entries = await nginx.waitForRequests(n + 10_000, 30_000);
        assert.equal(entries.slice(n).filter((e) => e.peerAddr !== t.cliIp4).length, 0);
        n += 10_000;
        const stats = async () => {
          const before = tt.stderr().split("\n").filter((l) => l.includes("event=stats")).length;
          Deno.kill(tt.pid, "SIGUSR2");
          await tt.waitFor(
            () => tt.stderr().split("\n").filter((l) => l.includes("event=stats")).length > before,
            "stats line",
            5_000,
          );
          return parseCounters(tt.stderr().split("\n").filter((l) => l.includes("event=stats"))[before]);
        };
        let s = await stats();
        assert.ok(s.ack >= 10_002, `ack=${s.ack}`);
        await waitUntil(
          async () => (s = await stats()).entries === 0,
          "the per-socket table empty",
          90_000,
          1_000,
        );
      },
    );

    await tc.step(
      "toa-proxy's sockops decoder through the gateway: TOA from the ACK, SYN cookies on or off",
      async () => {
        // nsenter, not `ip netns exec`: the proxy must see /sys/fs/cgroup to make its own cgroup.
        const proxy = spawnBackground([
          "nsenter",
          `--net=/run/netns/${t.nsRs[0]}`,
          Deno.execPath(),
          "run",
          "-A",
          `${REPO}mod.ts`,
          "toa-proxy",
          "--listen",
          `${rs1}:81`,
          "--backend",
          `${rs1}:8080`,
          "--proxy-protocol",
          "none",
          "--trust",
          trust,
        ]);
        lab.track(proxy);
        lab.defer(() => proxy.stop("SIGKILL", 1_000));
        await proxy.waitFor(() => proxy.stdout().includes("toa-proxy ready"), "toa-proxy ready", 20_000);
        assert.match(proxy.stderr(), /toa-proxy decoder=sockops\+saved_syn /);
        await curl(t.nsCli, `http://${VIP_PROXY}/`);
        const cookies = await nsExec(t.nsRs[0], ["sysctl", "-qw", "net.ipv4.tcp_syncookies=2"]);
        assert.ok(cookies.success, cookies.stderr);
        await curl(t.nsCli, `http://${VIP_PROXY}/`);
        // The transparent nginx too, under SYN cookies: the ACK still carries the client.
        const port = await curl(t.nsCli, `http://${VIP}/`);
        assert.deepEqual([(await last(++n)).peerAddr, (await last(n)).peerPort], [t.cliIp4, port]);
        const s = await proxy.stop("SIGTERM", 5_000);
        const c = parseCounters(s.stderr.split("\n").find((l) => l.includes("event=stopped")) ?? "");
        assert.deepEqual([c.toa_from_ack, c.toa_trusted, c.no_saved_syn], [2, 2, 0], s.stderr);
        await nsExec(t.nsRs[0], ["sysctl", "-qw", "net.ipv4.tcp_syncookies=1"]);
      },
    );

    await tc.step("SIGTERM: detached, nothing left on the cgroup", async () => {
      const s = await tt.stop("SIGTERM", 5_000);
      assert.equal(s.code, 0, s.stderr);
      assert.match(s.stderr, /toa-transparent event=stopped .*entries=0/);
      assert.deepEqual(attachedPrograms(cg), []);
    });

    await tc.step("--pin stays attached after exit; --detach removes it", async () => {
      const pin = `/sys/fs/bpf/${t.prefix}-toa`;
      const cmd = (args: string[]) =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", `${REPO}mod.ts`, "toa-transparent", ...args],
        })
          .output();
      lab.defer(() => cmd(["--detach", pin]));
      const p = await cmd(["--cgroup", cg, "--trust", trust, "--pin", pin]);
      assert.ok(p.success, new TextDecoder().decode(p.stderr));
      assert.equal(attachedPrograms(cg).length, 3);
      const port = await curl(t.nsCli, `http://${VIP}/`);
      assert.deepEqual([(await last(++n)).peerAddr, (await last(n)).peerPort], [t.cliIp4, port]);
      assert.equal(pinnedStats(pin).stats.ack, 1);
      const d = await cmd(["--detach", pin]);
      assert.ok(d.success, new TextDecoder().decode(d.stderr));
      assert.deepEqual(attachedPrograms(cg), []);
      await curl(t.nsCli, `http://${VIP}/`);
      assert.equal((await last(++n)).peerAddr, LOCAL4);
    });
  });
});
