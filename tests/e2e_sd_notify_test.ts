/**
 * End-to-end: the real gateway process under a stand-in for systemd. NOTIFY_SOCKET names a datagram socket
 * the test binds (through the project's libc binding); the gateway is started, reloaded with SIGHUP after
 * its file changed, a refused reload (a broken file) is tried, and it is stopped with SIGTERM. The socket
 * must get exactly: READY=1 (with STATUS=), RELOADING=1 with MONOTONIC_USEC= inside the reload's window,
 * READY=1 (the new status), RELOADING=1 … READY=1 again for the refused one (the old configuration keeps
 * running), STOPPING=1.
 *
 * @module
 */
import assert from "node:assert/strict";
import { bindDatagram } from "../lb/control/testing/notify_socket.ts";
import { libc, monotonicMicros } from "../base/sys/libc.ts";
import { waitUntil, withLab } from "./helpers/mod.ts";

Deno.test("sd_notify from the real gateway: READY, RELOADING…READY on SIGHUP (ok and refused), STOPPING", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fnat-notify-e2e-" });
  const sock = bindDatagram(`${dir}/notify`);
  const got: string[] = [];
  const before = Deno.env.get("NOTIFY_SOCKET");
  // The gateway's child process inherits it (ip netns exec keeps the environment; a path socket is
  // reachable from any network namespace).
  Deno.env.set("NOTIFY_SOCKET", `${dir}/notify`);
  try {
    await withLab({
      rs: 2,
      gateway: (t) => ({
        localAddresses: ["198.18.2.1"],
        services: [{
          vip: "198.18.0.10",
          port: 80,
          realServers: [{ address: t.rsIp4[0], port: 80 }],
          healthCheck: { type: "none" },
        }],
      }),
    }, async (lab) => {
      if (before === undefined) Deno.env.delete("NOTIFY_SOCKET");
      else Deno.env.set("NOTIFY_SOCKET", before);
      const gw = lab.gw!;
      await waitUntil(() => (got.push(...sock.drain()), got.length >= 1), "READY=1", 5_000);
      assert.deepEqual(got, ["READY=1\nSTATUS=1 services, 1 servers, 0 reloads"]);

      // A second server in the file, then SIGHUP (what systemctl reload sends).
      const cfg = JSON.parse(await Deno.readTextFile(gw.configPath));
      cfg.services[0].realServers.push({ address: lab.t.rsIp4[1], port: 80 });
      await Deno.writeTextFile(gw.configPath, JSON.stringify(cfg, null, 2));
      const t0 = monotonicMicros();
      Deno.kill(gw.process.pid, "SIGHUP");
      await waitUntil(() => (got.push(...sock.drain()), got.length >= 3), "reload notifications", 10_000);
      const t1 = monotonicMicros();
      const m = /^RELOADING=1\nMONOTONIC_USEC=(\d+)$/.exec(got[1]);
      assert.ok(m, JSON.stringify(got[1]));
      assert.ok(BigInt(m[1]) >= t0 && BigInt(m[1]) <= t1, `MONOTONIC_USEC ${m[1]} not in [${t0}, ${t1}]`);
      assert.equal(got[2], "READY=1\nSTATUS=1 services, 2 servers, 1 reloads");
      assert.match(
        gw.process.stderr(),
        /fnat-lb reloaded services=1 servers=2 added="tcp 198\.18\.0\.10:80 198\.18\.3\.11:80"/,
      );
      assert.equal((await gw.stats()).services[0].realServers.length, 2);

      // A broken file: the reload is refused, and still ends with READY=1 (the old configuration runs).
      await Deno.writeTextFile(gw.configPath, JSON.stringify({ ...cfg, services: [{ vip: "nope" }] }));
      Deno.kill(gw.process.pid, "SIGHUP");
      await waitUntil(
        () => (got.push(...sock.drain()), got.length >= 5),
        "refused reload notifications",
        10_000,
      );
      assert.match(got[3], /^RELOADING=1\nMONOTONIC_USEC=\d+$/);
      assert.equal(got[4], "READY=1\nSTATUS=1 services, 2 servers, 1 reloads");
      assert.match(gw.process.stderr(), /fnat-lb reload failed: config: /);
      assert.equal((await gw.stats()).reloads.failed, 1);

      const st = await gw.stop();
      assert.equal(st.code, 0, st.stderr);
      got.push(...sock.drain());
      assert.deepEqual(got.slice(5), ["STOPPING=1"]);
      console.log(`sd_notify sequence: ${JSON.stringify(got)}`);
    });
  } finally {
    if (before === undefined) Deno.env.delete("NOTIFY_SOCKET");
    else Deno.env.set("NOTIFY_SOCKET", before);
    libc().close(sock.fd);
    await Deno.remove(dir, { recursive: true });
  }
});
