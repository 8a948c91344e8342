/**
 * End-to-end toa-proxy under load and at its limits, on loopback inside a real-server namespace of a fresh
 * lab (no gateway: these are the relay's own properties):
 *
 *   many_clients.py ──▶ 127.0.0.1:900x toa-proxy ── PROXY v1 + bytes ─▶ 127.0.0.1:9000 echo_server.py
 *
 * - 3000 connections opened at once and held open together; a message unique to each is echoed back
 *   byte for byte while all are open; the proxy's `active` counter reads 3000, then 0 after all close.
 *   The proxy starts with the common soft fd limit of 1024 (`prlimit --nofile=1024:`), which 3000
 *   connections (6000 fds) would exceed unless the limit is raised.
 * - the idle timeout closes a silent connection after 2 s, not a chatty one.
 * - fd exhaustion (`prlimit --nofile=64:64`): the connections that fit work, the others wait in the
 *   backlog; the proxy does not spin, logs at most once a second, and takes them once fds are free.
 * - a backend that never accepts: connections beyond its backlog end at the connect timeout, those inside
 *   it at the idle timeout; none hangs.
 *
 * Every wait is bounded; the lab (processes, namespaces, temp dir) is torn down on every exit path. Needs
 * root and python3.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Background, spawnIn, waitUntil, withLab } from "./helpers/mod.ts";
import { nsExec } from "../netns-scripts/topology.ts";
import { startToaProxy, type ToaProxyProcess } from "../toa/testing/servers.ts";
import type { Lab } from "./helpers/mod.ts";

const REPO = new URL("..", import.meta.url).pathname;
const PYTHON = "/usr/bin/python3";
const ECHO = "127.0.0.1:9000";
const N = 3000;

/** The `key=value` integers of `text`. */
function keyValues(text: string): Record<string, number> {
  const r: Record<string, number> = {};
  for (const m of text.matchAll(/(\w+)=(-?\d+)/g)) r[m[1]] = Number(m[2]);
  return r;
}

/** `key=value` integers of the line of `out` that starts with `name`; throws when there is none. */
function phase(out: string, name: string): Record<string, number> {
  const line = out.split("\n").find((l) => l.startsWith(`${name} `) || l === name);
  if (line === undefined) throw new Error(`no "${name}" line in:\n${out}`);
  return keyValues(line);
}

/** VmRSS of a process, in kB. */
async function rssKb(pid: number): Promise<number> {
  const s = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(s)![1]);
}

/** User + system CPU time of a process, in clock ticks (1/100 s). */
async function cpuTicks(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // fields 14 and 15 (utime, stime), counted after the comm
}

/** The hard RLIMIT_NOFILE of this process (children inherit it). */
async function hardFdLimit(): Promise<number> {
  const l = (await Deno.readTextFile("/proc/self/limits")).split("\n").find((x) =>
    x.startsWith("Max open files")
  )!;
  const hard = l.split(/\s+/)[4];
  return hard === "unlimited" ? Infinity : Number(hard);
}

/** Runs `toa/testdata/SCRIPT ARGS` with python3 in `ns`, owned by the lab. */
function testdataScript(lab: Lab, ns: string, script: string, args: string[]): Background {
  return spawnIn(lab, ns, [PYTHON, `${REPO}toa/testdata/${script}`, ...args]);
}

/** Runs many_clients.py in `ns`: `n` clients of the proxy on 127.0.0.1:`port`, with `options`. */
function manyClients(lab: Lab, ns: string, port: number, n: number, options: string[]): Background {
  return testdataScript(lab, ns, "many_clients.py", ["127.0.0.1", String(port), String(n), ...options]);
}

/** Starts a toa-proxy in `ns`, owned by the lab. */
async function proxyIn(
  lab: Lab,
  ns: string,
  listen: string,
  backend: string,
  extra: string[] = [],
  wrapper: string[] = [],
): Promise<ToaProxyProcess> {
  const args = [
    "--listen",
    listen,
    "--backend",
    backend,
    "--proxy-protocol",
    "v1",
    "--trust",
    "198.18.2.0/24",
  ];
  const p = await startToaProxy(ns, [...args, ...extra], 20_000, wrapper);
  lab.track(p.process);
  lab.defer(() => p.stop());
  return p;
}

/** Polls the proxy's counters (SIGUSR2) until `active` is 0; returns them. */
async function drained(p: ToaProxyProcess, what: string): Promise<Record<string, number>> {
  let c: Record<string, number> = {};
  await waitUntil(async () => (c = await p.stats()).active === 0, `${what}: active back to 0`, 10_000, 200);
  return c;
}

Deno.test("e2e: toa-proxy holds 3000 connections at once, times out idle ones, survives fd exhaustion", async (tc) => {
  await withLab({ rs: 1, nginx: false }, async (lab) => {
    const ns = lab.t.nsRs[0];
    const echo = testdataScript(lab, ns, "echo_server.py", ["127.0.0.1", "9000", "--pp", "v1"]);
    await echo.waitFor(() => echo.stdout().includes("listening"), "echo server", 10_000);

    await tc.step(
      `${N} connections open at once, each echoes its own message while all are open`,
      async () => {
        const hard = await hardFdLimit();
        assert.ok(hard >= 2 * N + 200, `the hard fd limit (${hard}) is too low for ${N} connections`);
        const t0 = performance.now();
        // The usual soft limit: without raising it the proxy could hold about 500 connections.
        const proxy = await proxyIn(lab, ns, "127.0.0.1:9001", ECHO, [], ["prlimit", "--nofile=1024:"]);
        const ready = phase(proxy.process.stdout(), "toa-proxy ready");
        assert.equal(ready.nofile, hard, "soft fd limit raised to the hard one");
        const pid = proxy.process.pid;
        const rssIdle = await rssKb(pid);
        const cli = manyClients(lab, ns, 9001, N, ["--hold", "40"]);
        await cli.waitFor(() => cli.stdout().includes("holding"), `${N} clients open and echoed`, 40_000);
        const opened = phase(cli.stdout(), "opened");
        const echoed = phase(cli.stdout(), "echoed");
        assert.deepEqual({ ...opened, ms: 0, nofile: 0 }, { ok: N, ms: 0, nofile: 0 }, cli.stderr());
        assert.deepEqual({ ...echoed, ms: 0 }, { ok: N, ms: 0 });

        // All N are open now, on both sides of the proxy.
        const held = await proxy.stats();
        assert.equal(held.active, N);
        assert.equal(held.accepted, N);
        assert.equal(held.no_toa, N);
        assert.equal(held.backend_errors + held.relay_errors + held.accept_errors, 0);
        const fds = [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
        assert.ok(fds >= 2 * N, `proxy holds ${fds} fds`);
        const rssHeld = await rssKb(pid);

        Deno.kill(cli.pid, "SIGUSR1");
        await cli.waitFor(() => cli.stdout().includes("closed"), "clients closed", 20_000);
        const closed = phase(cli.stdout(), "closed");
        assert.deepEqual({ ...closed, ms: 0 }, { ok: N, ms: 0 });
        const after = await drained(proxy, "3000 connections");
        assert.equal(after.relay_errors, 0);
        assert.equal(after.bytes_client_to_backend, after.bytes_backend_to_client);
        const total = performance.now() - t0;
        assert.ok(total < 60_000, `took ${total} ms`);
        console.log(
          `toa-proxy ${N} concurrent connections: open ${opened.ms} ms, echo round ${echoed.ms} ms, ` +
            `close ${closed.ms} ms; proxy fds ${fds}, VmRSS ${rssIdle} kB idle → ${rssHeld} kB with ${N} open; ` +
            `step ${Math.round(total)} ms`,
        );
        await proxy.stop();
      },
    );

    await tc.step("idle timeout 2 s: a silent connection is closed, a chatty one lives on", async () => {
      const proxy = await proxyIn(lab, ns, "127.0.0.1:9002", ECHO, ["--idle-timeout", "2"]);
      assert.equal(phase(proxy.process.stdout(), "toa-proxy ready").idle_timeout, 2);
      const r = testdataScript(lab, ns, "idle_client.py", ["127.0.0.1", "9002", "5", "10"]);
      await r.waitFor(() => r.stdout().includes("idle_eof_ms="), "idle client", 30_000);
      const res = keyValues(r.stdout());
      // Closed within [timeout, timeout + 1 s + a loop turn) of the proxy's clock. The client measures from
      // when *it* saw its last echo, which a loaded machine may delay by a few hundred ms: hence 1.5 s.
      assert.ok(
        res.idle_eof_ms >= 1_500 && res.idle_eof_ms < 5_000,
        `silent one closed after ${res.idle_eof_ms} ms`,
      );
      assert.ok(res.chatty_echoes >= 9, `chatty one echoed ${res.chatty_echoes} times`); // 5 s > 2 s timeout
      assert.ok(
        res.chatty_eof_ms >= 1_500 && res.chatty_eof_ms < 5_000,
        `then closed after ${res.chatty_eof_ms}`,
      );
      const c = await drained(proxy, "idle");
      assert.equal(c.idle_closed, 2);
      assert.equal(c.accepted, 2);
    });

    // Two limits of either parity: each connection takes two fds, so with one of them the last free fd is
    // the client's (accept4 works, the backend's socket() would not), with the other it is the backend's.
    for (const [limit, port] of [[64, 9003], [65, 9004]]) {
      await tc.step(
        `fd exhaustion at ${limit} fds: no busy loop, one log line a second, every connection served once fds free`,
        async () => {
          const proxy = await proxyIn(lab, ns, `127.0.0.1:${port}`, ECHO, [], [
            "prlimit",
            `--nofile=${limit}:${limit}`,
          ]);
          assert.equal(phase(proxy.process.stdout(), "toa-proxy ready").nofile, limit);
          const pid = proxy.process.pid;
          const cli = manyClients(lab, ns, port, 60, ["--echo-timeout", "4", "--hold", "0"]);
          await cli.waitFor(() => cli.stdout().includes("opened"), "60 clients open", 10_000);
          const t0 = performance.now();
          await new Promise((r) => setTimeout(r, 500));
          const cpu0 = await cpuTicks(pid);
          await new Promise((r) => setTimeout(r, 2_500));
          const cpu = await cpuTicks(pid) - cpu0;
          const during = await proxy.stats();
          assert.ok(during.fd_exhausted > 0, "fd exhaustion seen");
          assert.ok(during.active > 5 && during.active < 30, `active=${during.active} with ${limit} fds`);
          assert.ok(cpu < 50, `proxy used ${cpu} ticks of CPU in 2.5 s while out of fds`); // < 20 %: not spinning
          await cli.waitFor(() => cli.stdout().includes("closed"), "clients closed", 30_000);
          const elapsed = (performance.now() - t0) / 1000;
          const echoed = phase(cli.stdout(), "echoed");
          assert.equal(echoed.ok, during.active, "the connections that fit were echoed at once");
          assert.equal(echoed.ok + echoed.timeout, 60, cli.stdout()); // none accepted and then dropped
          assert.deepEqual({ ...phase(cli.stdout(), "closed"), ms: 0 }, { ok: 60, ms: 0 }, "the rest later");
          const c = await drained(proxy, "fd exhaustion");
          assert.equal(c.accepted, 60);
          assert.equal(c.relay_errors + c.backend_errors, 0);
          const logs = proxy.process.stderr().split("\n").filter((l) => l.includes("event=accept_paused"));
          assert.ok(
            logs.length >= 1 && logs.length <= elapsed + 2,
            `${logs.length} log lines in ${elapsed} s`,
          );
          assert.match(logs[0], /call=(accept4|socket) errno=EMFILE failures=\d+ active=\d+ pause_ms=100/);
          // Recovered: fresh connections go through at once.
          const again = manyClients(lab, ns, port, 5, ["--hold", "0"]);
          await again.waitFor(() => again.stdout().includes("closed"), "5 more clients", 15_000);
          assert.equal(phase(again.stdout(), "echoed").ok, 5);
          await proxy.stop();
        },
      );
    }

    await tc.step(
      "a backend that never accepts: no connection hangs past the connect or idle timeout",
      async () => {
        const stuck = spawnIn(lab, ns, [
          PYTHON,
          "-c",
          `import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 9010)); s.listen(2); print("listening", flush=True); time.sleep(300)`,
        ]);
        await stuck.waitFor(() => stuck.stdout().includes("listening"), "stuck backend", 10_000);
        const proxy = await proxyIn(lab, ns, "127.0.0.1:9011", "127.0.0.1:9010", [
          "--connect-timeout",
          "1000",
          "--idle-timeout",
          "2",
        ]);
        const cli = manyClients(lab, ns, 9011, 20, [
          "--echo-timeout",
          "8",
          "--hold",
          "0",
          "--close-timeout",
          "2",
        ]);
        await cli.waitFor(() => cli.stdout().includes("closed"), "clients", 30_000);
        const echoed = phase(cli.stdout(), "echoed");
        // Closed by the proxy (reset or FIN), none waiting out the client's own 8 s.
        assert.equal((echoed.reset ?? 0) + (echoed.eof ?? 0), 20, cli.stdout());
        assert.ok(echoed.ms < 5_000, `echo phase ended after ${echoed.ms} ms`);
        const c = await drained(proxy, "stuck backend");
        // The backend's accept queue (backlog + 1) completes a few handshakes, so those look connected and end
        // at the idle timeout; the SYNs beyond it are dropped, so those connects time out.
        assert.equal(c.backend_errors + c.idle_closed, 20);
        assert.ok(c.idle_closed >= 1 && c.idle_closed <= 5, `idle_closed=${c.idle_closed}`);
        assert.match(proxy.process.stderr(), /event=backend_error .* errno=ETIMEDOUT/);
      },
    );

    await tc.step("--reuse-port: two proxies share one port; a proxy without it cannot join", async () => {
      const listen = "127.0.0.1:9020";
      const a = await proxyIn(lab, ns, listen, ECHO, ["--reuse-port"]);
      const b = await proxyIn(lab, ns, listen, ECHO, ["--reuse-port"]);
      assert.equal(phase(a.process.stdout(), "toa-proxy ready").reuse_port, 1);
      const cli = manyClients(lab, ns, 9020, 200, ["--hold", "0"]);
      await cli.waitFor(() => cli.stdout().includes("closed"), "200 clients", 30_000);
      assert.deepEqual({ ...phase(cli.stdout(), "echoed"), ms: 0 }, { ok: 200, ms: 0 }, cli.stdout());
      const ca = await drained(a, "reuse-port a");
      const cb = await drained(b, "reuse-port b");
      assert.equal(ca.accepted + cb.accepted, 200);
      // The kernel spreads by a hash of the 4-tuple: 200 connections all on one side is a 2^-199 event.
      assert.ok(ca.accepted > 0 && cb.accepted > 0, `accepted ${ca.accepted} and ${cb.accepted}`);
      const lone = await nsExec(ns, [
        Deno.execPath(),
        "run",
        "-A",
        `${REPO}mod.ts`,
        "toa-proxy",
        ...["--listen", listen, "--backend", ECHO, "--proxy-protocol", "v1", "--trust", "198.18.2.0/24"],
      ], 30_000);
      assert.equal(lone.code, 1, lone.stdout + lone.stderr);
      // The decoder line first (saved_syn here: `ip netns exec` hides the cgroups), then the one error.
      assert.match(
        lone.stderr,
        /^(toa-proxy decoder=[^\n]*\n)?toa-proxy: listen 127\.0\.0\.1:9020: bind failed \(EADDRINUSE\)\n$/,
      );
    });
  });
});
