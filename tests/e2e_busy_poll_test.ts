/**
 * End-to-end: `busyPollUs`. With it set, the worker polls without sleeping after a turn that moved packets:
 * during a keep-alive request/response exchange through the gateway its busy polls find the next packet
 * (`busy_poll_hits`); an idle gateway does not spin (its CPU time stays flat); a reload to 0 stops the busy
 * polls. The figure it is for (latency at concurrency 1) is in bench/compare.ts and docs/performance.md.
 * Needs root, nginx, python3.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Topology } from "../netns-scripts/topology.ts";
import { type Lab, rs1HttpService, spawnIn, withLab } from "./helpers/mod.ts";

const VIP = "198.18.0.33";

/** `count` GETs on one keep-alive connection; prints "ok N" when every body was the server's. */
const CLIENT = `
import http.client, sys
host, count = sys.argv[1], int(sys.argv[2])
c = http.client.HTTPConnection(host, 80, timeout=5)
ok = 0
for _ in range(count):
    c.request("GET", "/")
    r = c.getresponse()
    if r.status == 200 and r.read() == b"rs1\\n":
        ok += 1
print("ok", ok, flush=True)
`;

/** Runs the client once and returns how many answers were right. */
async function requests(lab: Lab, count: number): Promise<number> {
  const file = `${lab.dir}/client.py`;
  await Deno.writeTextFile(file, CLIENT);
  const p = spawnIn(lab, lab.t.nsCli, ["python3", file, VIP, String(count)]);
  await p.waitFor(() => /ok \d+/.test(p.stdout()), "the client's count", 30_000);
  return Number(/ok (\d+)/.exec(p.stdout())![1]);
}

/** utime+stime of a process in seconds. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

Deno.test("busy polling: hits while a flow is busy, no spinning when idle, off after a reload to 0", async () => {
  const config = (t: Topology, busyPollUs: number) => ({
    busyPollUs,
    localAddresses: ["198.18.2.1"],
    services: [rs1HttpService(t, VIP)],
  });
  await withLab({ rs: 1, gateway: (t) => config(t, 1000) }, async (lab) => {
    const gw = lab.gw!;
    assert.equal(await requests(lab, 200), 200);
    const busy = (await gw.stats()).runtime;
    console.log(
      `busy polling: polls=${busy.busy_polls} hits=${busy.busy_poll_hits} turns=${busy.loop_turns}`,
    );
    assert.ok(busy.busy_polls >= 1, JSON.stringify(busy));
    assert.ok(busy.busy_poll_hits >= 1, JSON.stringify(busy));

    // Idle: the busy poll runs once after the last packets, then the worker sleeps in poll(2).
    await new Promise((r) => setTimeout(r, 200));
    const before = await cpuSeconds(gw.process.pid);
    await new Promise((r) => setTimeout(r, 1500));
    const idle = (await cpuSeconds(gw.process.pid)) - before;
    console.log(`busy polling: idle gateway used ${idle.toFixed(2)} s of CPU in 1.5 s`);
    assert.ok(idle < 0.3, `idle gateway used ${idle} s of CPU in 1.5 s`);

    // A reload to 0: the same traffic makes no more busy polls.
    await Deno.writeTextFile(gw.configPath, JSON.stringify({ ...gw.config, busyPollUs: 0 }, null, 2));
    const lines = () => gw.process.stderr().split("\n").filter((l) => l.startsWith("fnat-lb reload"));
    const n = lines().length;
    Deno.kill(gw.process.pid, "SIGHUP");
    await gw.process.waitFor(() => lines().length > n, "a reload line", 20_000);
    assert.match(lines()[n], /^fnat-lb reloaded/);
    const was = (await gw.stats()).runtime.busy_polls;
    assert.equal(await requests(lab, 100), 100);
    assert.equal((await gw.stats()).runtime.busy_polls, was);
  });
});
