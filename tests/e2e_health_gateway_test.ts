/**
 * End-to-end: the real gateway process with health checks on, two nginx real servers behind `rr`, traffic
 * from the client namespace. Killing one nginx takes it out of rotation within about `interval × fall`
 * (one transition line with reason `refused`; the time from the kill to the last new connection that still
 * reached it is measured and printed); every new connection after that goes to the other; starting nginx
 * again brings it back after `rise` checks. With HTTP checks, a check page answering 503 takes a server down
 * with reason `status 503`. A server that hangs (SIGSTOP) under a long download goes down with reason
 * `timeout`; with `onServerDown: "reset"` the download's connection is reset at once (the RST is timed at
 * the client's kernel), not left hanging; with `keep` it stays open. With every server down, a new connection is refused by the
 * gateway at once (a RST, counted as `no_real_server`), not left to time out.
 *
 * @module
 */
import { parseTransitionLine } from "../lb/health/monitor.ts";
import assert from "node:assert/strict";
import { nsExec } from "../netns-scripts/topology.ts";
import { type Lab, spawnIn, startNginx, waitUntil, withLab } from "./helpers/mod.ts";

const VIP = "198.18.0.10";
const SERVICE = `tcp ${VIP}:80`;
const INTERVAL = 0.5;
const FALL = 2;
const RISE = 2;
const TIMEOUT = 0.3;

/** One sequential HTTP/1.0 request per new connection, for `seconds`; a JSON line per attempt. */
const PROBE = `
import json, socket, sys, time
host, port, seconds, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
end = time.time() + seconds
while time.time() < end:
    t = time.time()
    try:
        s = socket.create_connection((host, port), timeout=2)
        s.settimeout(2)
        s.sendall(b"GET / HTTP/1.0\\r\\nHost: vip\\r\\n\\r\\n")
        data = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
        s.close()
        print(json.dumps({"t": t, "ok": True, "body": data.split(b"\\r\\n\\r\\n", 1)[-1].decode().strip()}), flush=True)
    except Exception as e:
        print(json.dumps({"t": t, "ok": False, "err": type(e).__name__ + ": " + str(e)}), flush=True)
    time.sleep(gap)
`;

interface Attempt {
  /** Wall-clock ms. */
  t: number;
  ok: boolean;
  body?: string;
  err?: string;
}

/** The gateway's health transition lines for `server`, oldest first. */
function transitions(stderr: string, server: string): { state: string; reason: string }[] {
  return stderr.split("\n").map(parseTransitionLine)
    .filter((t) => t !== null && t.service === SERVICE && t.server === server)
    .map((t) => ({ state: t!.up ? "up" : "down", reason: t!.reason }));
}

/** The gateway configuration: one rr service over both real servers, checked as `check` says. */
function config(rs: string[], check: Record<string, unknown>, onServerDown = "keep") {
  return {
    localAddresses: ["198.18.2.1", "198.18.2.2"],
    services: [{
      vip: VIP,
      port: 80,
      scheduler: "rr",
      toa: false,
      realServers: rs.map((address) => ({ address, port: 80 })),
      healthCheck: { interval: INTERVAL, timeout: TIMEOUT, rise: RISE, fall: FALL, ...check },
      onServerDown,
    }],
  };
}

/** A real server's entry in the gateway's stats. */
async function server(lab: Lab, i: number) {
  const s = (await lab.gw!.stats()).services.find((x) => x.service === SERVICE)!;
  return s.realServers.find((r) => r.address === lab.t.rsIp4[i])!;
}

/** Starts nginx again on real server `i`, in its old directory; owned by the lab. */
async function restartNginx(lab: Lab, i: number) {
  const n = await startNginx({
    ns: lab.t.nsRs[i],
    dir: lab.nginx[i].dir,
    listen: [`${lab.t.rsIp4[i]}:80`, `[${lab.t.rsIp6[i]}]:80`],
  });
  lab.track(n.process);
  lab.defer(() => n.stop());
  return n;
}

/** `curl` in the client namespace: exit code, stdout, stderr and elapsed ms. */
async function curl(lab: Lab, args: string[], timeoutMs = 15_000) {
  const t0 = performance.now();
  const r = await nsExec(lab.t.nsCli, ["curl", "-sS", ...args], timeoutMs);
  return { ...r, ms: performance.now() - t0 };
}

/** Kill, measure, return: the scenario of both check types. */
async function deathAndReturn(type: "tcp" | "http") {
  await withLab({
    rs: 2,
    files: (i) => ({ "index.html": `rs${i + 1}\n`, "health": "ok\n", "ab.bin": new Uint8Array(32 * 1024) }),
    gateway: (t) => config(t.rsIp4, { type, path: "/health" }),
  }, async (lab) => {
    const t = lab.t;
    const gw = lab.gw!;
    const rs2 = `${t.rsIp4[1]}:80`;
    await waitUntil(async () => (await server(lab, 1)).health === "up", "rs2 up", 10_000);
    // Both in rotation before anything happens.
    const before = await Promise.all([1, 2, 3, 4].map(() => curl(lab, [`http://${VIP}/`])));
    assert.deepEqual(new Set(before.map((r) => r.stdout.trim())), new Set(["rs1", "rs2"]));

    // A steady stream of new connections across the death; ab alongside it.
    const probeFile = `${lab.dir}/probe.py`;
    await Deno.writeTextFile(probeFile, PROBE);
    const probe = spawnIn(lab, t.nsCli, ["python3", probeFile, VIP, "80", "6", "0.01"]);
    const ab = spawnIn(lab, t.nsCli, [
      "ab",
      "-r",
      "-s",
      "5",
      "-n",
      "5000",
      "-c",
      "2",
      `http://${VIP}/ab.bin`,
    ]);
    await new Promise((r) => setTimeout(r, 1_000));

    const kill = Date.now();
    const abSpans = ab.running();
    await lab.nginx[1].stop();
    await gw.process.waitFor(() => transitions(gw.process.stderr(), rs2).length > 0, "rs2 down", 10_000);
    const detected = Date.now();
    const downMs = detected - kill;
    assert.deepEqual(transitions(gw.process.stderr(), rs2), [{ state: "down", reason: "refused" }]);
    // The verdict reaches the workers' schedulers (asynchronously, by message) right after the line.
    await waitUntil(async () => (await server(lab, 1)).effectiveWeight === 0, "rs2 weight 0", 2_000);
    const appliedMs = Date.now() - detected;
    const down = await server(lab, 1);
    assert.equal(down.health, "down");
    const totalAtDown = down.connectionsTotal;

    await probe.waitFor(() => !probe.running(), "probe done", 20_000);
    const attempts = probe.stdout().trim().split("\n").map((l) => {
      const a = JSON.parse(l);
      return { ...a, t: a.t * 1000 } as Attempt;
    });
    const failed = attempts.filter((a) => !a.ok);
    const lastFailed = failed.at(-1);
    const reachedMs = lastFailed ? lastFailed.t - kill : 0;
    await ab.waitFor(() => !ab.running(), "ab done", 60_000);
    const abOut = ab.stdout() + ab.stderr();
    const abFailed = /Failed requests:\s+(\d+)(\s+\(Connect[^)]*\))?/.exec(abOut)?.slice(1).join(" ") ??
      "aborted";
    const abDone = /Complete requests:\s+(\d+)/.exec(abOut)?.[1] ?? "-";
    const abAbort = /apr_\w+\(\): [^\n]*/.exec(abOut)?.[0];
    console.log(
      `${type}: kill → down line ${downMs} ms (interval ${INTERVAL} s × fall ${FALL}), weight 0 ${appliedMs} ms later; ` +
        `kill → last new ` +
        `connection to the dead server ${Math.round(reachedMs)} ms; probe ${attempts.length} connections, ` +
        `${failed.length} failed (${[...new Set(failed.map((f) => f.err))].join("; ")}); ab complete ` +
        `${abDone}, failed ${abFailed}${abAbort ? ` (${abAbort})` : ""}${
          abSpans ? "" : " (ab ended before the kill)"
        }`,
    );
    const bound = (INTERVAL * (FALL + 1) + TIMEOUT) * 1000 * 2 + 500; // generous: others share the CPUs
    assert.ok(downMs <= bound, `down after ${downMs} ms, over ${bound}`);
    assert.ok(downMs >= (FALL - 1) * INTERVAL * 900, `down after only ${downMs} ms`);
    // Only connections sent to rs2 between its death and the transition fail, and they fail at once
    // (refused by its kernel), never later; after it, every connection is answered by rs1.
    for (const f of failed) {
      assert.ok(f.t >= kill - 50 && f.t <= detected + 200, `failure at ${f.t - kill} ms: ${f.err}`);
      assert.match(f.err!, /refused|reset/i);
    }
    const after = attempts.filter((a) => a.t > detected + 200);
    assert.ok(after.length >= 20, `${after.length} connections after the transition`);
    assert.ok(
      after.every((a) => a.ok && a.body === "rs1"),
      JSON.stringify(after.find((a) => a.body !== "rs1")),
    );
    assert.equal((await server(lab, 1)).connectionsTotal, totalAtDown, "no new connection reached rs2");

    // A clean ab with one server down: nothing fails.
    const ab2 = await nsExec(t.nsCli, ["ab", "-s", "5", "-n", "2000", "-c", "4", `http://${VIP}/`], 60_000);
    const ab2Failed = Number(/Failed requests:\s+(\d+)/.exec(ab2.stdout)?.[1]);
    console.log(
      `${type}: ab with rs2 down: ${/Complete requests:\s+\d+/.exec(ab2.stdout)?.[0]}, failed ${ab2Failed}`,
    );
    assert.equal(ab2Failed, 0, ab2.stdout + ab2.stderr);

    // nginx back: in rotation after RISE good checks.
    const again = await restartNginx(lab, 1);
    const listening = Date.now();
    await gw.process.waitFor(() => transitions(gw.process.stderr(), rs2).length > 1, "rs2 up", 10_000);
    const upMs = Date.now() - listening;
    console.log(`${type}: nginx listening → up line ${upMs} ms (interval ${INTERVAL} s × rise ${RISE})`);
    assert.deepEqual(transitions(gw.process.stderr(), rs2), [
      { state: "down", reason: "refused" },
      { state: "up", reason: "ok" },
    ]);
    assert.ok(upMs <= bound, `up after ${upMs} ms, over ${bound}`);
    const back = await Promise.all([1, 2, 3, 4].map(() => curl(lab, [`http://${VIP}/`])));
    assert.deepEqual(new Set(back.map((r) => r.stdout.trim())), new Set(["rs1", "rs2"]));

    if (type === "http") {
      // The check page answers 503 (a maintenance switch in nginx's configuration): down with that reason.
      const conf = `${again.dir}/nginx.conf`;
      const text = await Deno.readTextFile(conf);
      const sw = `    location = /health { if (-f ${again.root}/maintenance) { return 503; } }\n`;
      await Deno.writeTextFile(conf, text.replace("    index index.html;\n", `    index index.html;\n${sw}`));
      Deno.kill(again.process.pid, "SIGHUP"); // nginx reloads its configuration
      await Deno.writeTextFile(`${again.root}/maintenance`, "");
      await gw.process.waitFor(() => transitions(gw.process.stderr(), rs2).length > 2, "rs2 503", 10_000);
      assert.deepEqual(transitions(gw.process.stderr(), rs2)[2], { state: "down", reason: "status 503" });
      assert.equal((await server(lab, 1)).healthReason, "status 503");
      const only = await Promise.all([1, 2, 3, 4].map(() => curl(lab, [`http://${VIP}/`])));
      assert.deepEqual(only.map((r) => r.stdout.trim()), ["rs1", "rs1", "rs1", "rs1"]);
      await Deno.remove(`${again.root}/maintenance`);
      await gw.process.waitFor(
        () => transitions(gw.process.stderr(), rs2).length > 3,
        "rs2 up again",
        10_000,
      );
      assert.deepEqual(transitions(gw.process.stderr(), rs2)[3], { state: "up", reason: "ok" });
      assert.ok(
        (await again.accessLog()).some((e) => e.uri === "/health" && e.status === 503),
        "nginx answered the checks 503",
      );
    }
    // rs1 never moved.
    assert.deepEqual(transitions(gw.process.stderr(), `${t.rsIp4[0]}:80`), []);
  });
}

Deno.test("gateway health, tcp checks: a killed server leaves rotation in ≈ interval × fall and comes back", async () => {
  await deathAndReturn("tcp");
});

Deno.test("gateway health, http checks: killed → refused, 503 → down, both come back", async () => {
  await deathAndReturn("http");
});

/** PIDs of every process in namespace `ns`. */
async function pidsIn(ns: string): Promise<number[]> {
  const out = await new Deno.Command("ip", { args: ["netns", "pids", ns], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => /^\d+$/.test(l)).map(Number);
}

/** A server hangs under a long download: `reset` ends its connection at once, `keep` leaves it; then all down. */
async function hungServer(mode: "keep" | "reset") {
  const big = new Uint8Array(32 * 1024 * 1024); // past the socket buffers: still sending when it hangs
  await withLab({
    rs: 2,
    files: (i) => ({ "index.html": `rs${i + 1}\n`, "health": "ok\n", "big.bin": big }),
    gateway: (t) => config(t.rsIp4, { type: "http", path: "/health" }, mode),
  }, async (lab) => {
    const t = lab.t;
    const gw = lab.gw!;
    const rs2 = `${t.rsIp4[1]}:80`;
    await waitUntil(async () => (await server(lab, 1)).health === "up", "rs2 up", 10_000);
    // Two slow downloads (rr: one on each server), long-lived.
    const slow = () =>
      spawnIn(lab, t.nsCli, [
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "--limit-rate",
        "1m",
        "-w",
        "%{http_code} %{size_download}\n",
        `http://${VIP}/big.bin`,
      ]);
    const a = slow();
    const b = slow();
    await waitUntil(
      async () => {
        const [x, y] = [await server(lab, 0), await server(lab, 1)];
        return x.active === 1 && y.active === 1;
      },
      "one download on each server",
      10_000,
    );

    // rs2 hangs (stopped, its sockets open): its checks time out, and its download must not hang with it.
    const nginxPids = await pidsIn(t.nsRs[1]);
    for (const p of nginxPids) Deno.kill(p, "SIGSTOP");
    const resume = () => nginxPids.forEach((p) => Deno.kill(p, "SIGCONT"));
    lab.defer(() => {
      try {
        resume();
      } catch { /* already stopped and gone */ }
    });
    const hung = performance.now();
    // The client's kernel drops a connection from its table when the RST arrives: one of the two is left.
    // (curl itself notices later, when its rate limit lets it read past what its socket buffered.)
    const established = async () =>
      (await nsExec(t.nsCli, ["ss", "-Htn", "state", "established", "dst", `${VIP}:80`], 10_000)).stdout
        .split("\n").filter((l) => l.trim() !== "").length;
    const bound = (INTERVAL * (FALL + 1) + TIMEOUT) * 1000 * 2 + 1000;
    let alive: typeof a;
    if (mode === "keep") {
      await gw.process.waitFor(() => transitions(gw.process.stderr(), rs2).length > 0, "rs2 down", bound);
      const downMs = performance.now() - hung;
      await new Promise((r) => setTimeout(r, 1_500));
      assert.equal(await established(), 2, "keep: the hung server's connection is left open");
      assert.equal((await server(lab, 1)).active, 1, "keep: the gateway keeps its entry");
      assert.ok(a.running() && b.running(), "keep: both downloads go on");
      console.log(
        `keep: server hung → down after ${Math.round(downMs)} ms; its connection still open 1.5 s later`,
      );
      alive = a;
      resume();
      lab.defer(() => b.stop("SIGKILL", 2_000));
    } else {
      await waitUntil(async () => (await established()) === 1, "one client connection reset", 15_000, 20);
      const resetMs = performance.now() - hung;
      await waitUntil(() => !a.running() || !b.running(), "one download ends", 60_000);
      const curlMs = performance.now() - hung;
      const [gone, other] = a.running() ? [b, a] : [a, b];
      alive = other;
      assert.ok(alive.running(), "the download from rs1 goes on");
      assert.match(gone.stderr(), /reset by peer|Recv failure/i, gone.stderr());
      assert.equal((await server(lab, 1)).active, 0, "the gateway ended its connection");
      console.log(
        `reset: server hung → the client's connection reset after ${Math.round(resetMs)} ms (interval ` +
          `${INTERVAL} s × fall ${FALL}, timeout ${TIMEOUT} s; bound ${bound}); curl exits after ` +
          `${Math.round(curlMs)} ms: ${gone.stderr().trim()}`,
      );
      assert.ok(resetMs <= bound, `reset after ${resetMs} ms`);
      resume();
    }
    assert.deepEqual(transitions(gw.process.stderr(), rs2), [{ state: "down", reason: "timeout" }]);

    // Every server down: a new connection is refused by the gateway at once.
    await alive.stop("SIGKILL", 2_000);
    await lab.nginx[0].stop();
    await lab.nginx[1].stop();
    await waitUntil(async () => (await server(lab, 0)).health === "down", "rs1 down", 10_000);
    const dropsBefore = (await gw.stats()).drops.no_real_server ?? 0;
    const r = await curl(lab, ["--max-time", "10", `http://${VIP}/`]);
    const dropsAfter = (await gw.stats()).drops.no_real_server ?? 0;
    console.log(`all down: curl exit ${r.code} after ${Math.round(r.ms)} ms: ${r.stderr.trim()}`);
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, /Connection refused|Couldn't connect/);
    assert.ok(r.ms < 2_000, `refused after ${r.ms} ms`);
    assert.ok(dropsAfter > dropsBefore, `no_real_server ${dropsBefore} → ${dropsAfter}`);
  });
}

Deno.test("gateway health, onServerDown keep: a hung server's connection is left alone; all down → RST at once", async () => {
  await hungServer("keep");
});

Deno.test("gateway health, onServerDown reset: a hung server's connection is reset; all down → RST at once", async () => {
  await hungServer("reset");
});
