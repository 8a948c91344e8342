/**
 * End-to-end: the health monitor, run inside the gateway's namespace (`lb/health/main.ts`), watching a real
 * nginx in a real-server namespace over IPv4 and IPv6 with HTTP checks. Killing nginx takes both servers
 * down with reason `refused` within about `interval × fall`; starting it again brings them up after `rise`
 * checks. Targets that cannot be healthy fail with their own reasons: a closed port (`refused`), a missing
 * page (`status 404`), an address nobody answers ARP for (`timeout`) and one with no route (`unreachable`).
 * The measured detection times are printed.
 *
 * @module
 */
import { parseTransitionLine } from "../lb/health/monitor.ts";
import assert from "node:assert/strict";
import { type Lab, spawnIn, startNginx, withLab } from "./helpers/mod.ts";

const MAIN = new URL("../lb/health/main.ts", import.meta.url).pathname;
const SERVICE = "tcp 198.18.0.100:80";
const INTERVAL = 0.5;
const FALL = 3;
const RISE = 2;

/** Transition lines (`state`, `reason`) of `server` in the monitor's stderr, oldest first. */
function transitions(stderr: string, server: string): { state: string; reason: string }[] {
  return stderr.split("\n").map(parseTransitionLine)
    .filter((t) => t !== null && t.service === SERVICE && t.server === server)
    .map((t) => ({ state: t!.up ? "up" : "down", reason: t!.reason }));
}

Deno.test("health checks from the gateway namespace: nginx killed → down, restarted → up", async () => {
  await withLab({ rs: 1 }, async (lab: Lab) => {
    const t = lab.t;
    const check = { type: "http", interval: INTERVAL, timeout: 0.3, rise: RISE, fall: FALL, path: "/" };
    const v4 = `${t.rsIp4[0]}:80`;
    const v6 = `[${t.rsIp6[0]}]:80`;
    const targets = [
      { service: SERVICE, address: t.rsIp4[0], port: 80, check },
      { service: SERVICE, address: t.rsIp6[0], port: 80, check },
      { service: SERVICE, address: t.rsIp4[0], port: 81, check: { ...check, type: "tcp" } },
      // nginx answers 404 for a missing page: the address and port are fine, the check is not.
      { service: SERVICE, address: t.rsIp4[0], port: 8080, check: { ...check, port: 80, path: "/nope" } },
      // On the real-server bridge, but no host: ARP goes unanswered, the connect never completes.
      { service: SERVICE, address: "198.18.3.250", port: 80, check: { ...check, type: "tcp" } },
      // The gateway namespace has no default route.
      { service: SERVICE, address: "198.19.255.1", port: 80, check: { ...check, type: "tcp" } },
    ];
    const file = `${lab.dir}/targets.json`;
    await Deno.writeTextFile(file, JSON.stringify(targets));
    const mon = spawnIn(lab, t.nsGw, [Deno.execPath(), "run", "-A", MAIN, "--targets", file]);
    await mon.waitFor(() => mon.stdout().includes("ready"), "monitor ready", 20_000);

    // Every broken target goes down with its own reason; nginx's two stay up.
    const expectDown: [string, string][] = [
      [`${t.rsIp4[0]}:81`, "refused"],
      [`${t.rsIp4[0]}:8080`, "status 404"],
      ["198.18.3.250:80", "timeout"],
      ["198.19.255.1:80", "unreachable"],
    ];
    await mon.waitFor(
      () => expectDown.every(([s]) => transitions(mon.stderr(), s).length > 0),
      "broken targets down",
      (INTERVAL * (FALL + 1) + 1) * 1000 * 2,
    );
    for (const [s, reason] of expectDown) {
      assert.deepEqual(transitions(mon.stderr(), s), [{ state: "down", reason }], s);
    }
    assert.deepEqual(transitions(mon.stderr(), v4), []);
    assert.deepEqual(transitions(mon.stderr(), v6), []);

    // Kill nginx: down after FALL failed checks.
    const t0 = performance.now();
    await lab.nginx[0].stop();
    const bound = (INTERVAL * 1.1 * (FALL + 1) + 0.3) * 1000; // a round in flight, then FALL more, ±10 %
    await mon.waitFor(
      () => [v4, v6].every((s) => transitions(mon.stderr(), s).length === 1),
      "nginx's servers down",
      bound * 3,
    );
    const downMs = performance.now() - t0;
    const limit = `bound ${Math.round(bound)} ms`;
    console.log(`down after ${Math.round(downMs)} ms (interval ${INTERVAL} s × fall ${FALL}; ${limit})`);
    for (const s of [v4, v6]) {
      assert.deepEqual(transitions(mon.stderr(), s), [{ state: "down", reason: "refused" }]);
    }
    assert.ok(downMs <= bound, `down after ${downMs} ms, over ${bound}`);
    // FALL checks, the first at most one interval after the kill: at least (FALL - 1) intervals.
    assert.ok(downMs >= (FALL - 1) * INTERVAL * 0.9 * 1000, `down after only ${downMs} ms`);

    // Start it again: up after RISE good checks, timed from when it listens.
    const again = await startNginx({
      ns: t.nsRs[0],
      dir: lab.nginx[0].dir,
      listen: [`${t.rsIp4[0]}:80`, `[${t.rsIp6[0]}]:80`],
      files: { "index.html": "rs1\n" },
    });
    const t1 = performance.now();
    lab.track(again.process);
    lab.defer(() => again.stop());
    const upBound = (INTERVAL * 1.1 * (RISE + 1) + 0.3) * 1000;
    await mon.waitFor(
      () => [v4, v6].every((s) => transitions(mon.stderr(), s).length === 2),
      "nginx's servers up",
      upBound * 3,
    );
    const upMs = performance.now() - t1;
    const upLimit = `bound ${Math.round(upBound)} ms`;
    console.log(`up after ${Math.round(upMs)} ms (interval ${INTERVAL} s × rise ${RISE}; ${upLimit})`);
    for (const s of [v4, v6]) {
      assert.deepEqual(transitions(mon.stderr(), s)[1], { state: "up", reason: "ok" });
    }
    assert.ok(upMs <= upBound, `up after ${upMs} ms, over ${upBound}`);
    assert.ok(
      (await again.accessLog()).some((e) => e.uri === "/" && e.status === 200),
      "nginx saw the checks",
    );

    // A clean stop: exit 0 and a final state line naming every target.
    const st = await mon.stop("SIGTERM", 5_000);
    assert.equal(st.code, 0, st.stderr);
    const last = st.stderr.trim().split("\n").at(-1)!;
    assert.match(last, /^fnat-lb health stop /);
    assert.ok(
      last.includes(`"${SERVICE} ${v4}"=up`) && last.includes(`"${SERVICE} 198.19.255.1:80"=down`),
      last,
    );
  });
});
