/**
 * The pool warning of a running gateway: a local address whose ports are more than 90 % in use gets one
 * `fnat-lb pool_nearly_exhausted` line on stderr, and `fnat-lb pool_recovered` once its use falls below 80 %.
 *
 *   client ── holds 10 connections open ──▶ VIP 198.18.0.10:80 ══ gateway (one local address, 10 ports) ══▶ rs1
 *
 * Needs root, nginx, python3.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Lab, rs1HttpService, spawnIn, withLab } from "./helpers/mod.ts";

const VIP = "198.18.0.10";
const LOCAL = "198.18.2.1";

/** Opens `n` connections to host:port, prints "open", holds them `seconds`, closes them, prints "closed". */
const HOLD = `
import socket, sys, time
host, port, n, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = [socket.create_connection((host, port), timeout=5) for _ in range(n)]
print("open", flush=True)
time.sleep(seconds)
for s in socks:
    s.close()
print("closed", flush=True)
`;

const lines = (lab: Lab, what: string) =>
  lab.gw!.process.stderr().split("\n").filter((l) => l.startsWith(`fnat-lb ${what} `));

Deno.test("e2e pool warning: past 90 % of a local address's ports, one line; below 80 %, one more", async () => {
  await withLab({
    rs: 1,
    gateway: (t) => ({
      localAddresses: [LOCAL],
      portRange: [2000, 2009],
      timeouts: { timeWait: 2, finWait: 2 },
      services: [rs1HttpService(t, VIP)],
    }),
  }, async (lab) => {
    const file = `${lab.dir}/hold.py`;
    await Deno.writeTextFile(file, HOLD);
    // 10 of 10 ports: past 90 %.
    const hold = spawnIn(lab, lab.t.nsCli, ["python3", file, VIP, "80", "10", "14"]);
    await hold.waitFor(() => hold.stdout().includes("open"), "10 connections open", 15_000);
    await lab.gw!.process.waitFor(
      () => lines(lab, "pool_nearly_exhausted").length > 0,
      "the warning line",
      15_000,
      100,
    );
    const warned = lines(lab, "pool_nearly_exhausted");
    assert.equal(warned.length, 1, warned.join("\n"));
    assert.match(warned[0], new RegExp(`address=${LOCAL} used=10 free=0 percent=100\\.0 misses=0$`));
    // Still full a poll later: no second line.
    await new Promise((r) => setTimeout(r, 6_000));
    assert.equal(lines(lab, "pool_nearly_exhausted").length, 1, "said once");
    // The client closes them; the entries go (TIME_WAIT 2 s): below 80 %.
    await hold.waitFor(() => hold.stdout().includes("closed"), "connections closed", 20_000);
    await lab.gw!.process.waitFor(
      () => lines(lab, "pool_recovered").length > 0,
      "the recovery line",
      30_000,
      100,
    );
    assert.match(
      lines(lab, "pool_recovered")[0],
      new RegExp(`^fnat-lb pool_recovered address=${LOCAL} used=[0-7] `),
    );
    assert.equal(lines(lab, "pool_nearly_exhausted").length, 1);
  });
});
