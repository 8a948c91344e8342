/**
 * End-to-end toa-proxy limits, inside a real-server namespace of a fresh lab (no gateway). Two addresses the
 * test adds to the namespace's loopback play two clients; the proxy listens on the first:
 *
 *   many_clients.py --source 198.18.3.201 (flood) ─┐
 *                                                  ├─▶ 198.18.3.201:91xx toa-proxy ── PROXY v1 ─▶ echo_server.py
 *   many_clients.py --source 198.18.3.202 (client) ┘
 *
 * - The case, scaled down: the proxy has fds for about 30 connections; one source holds 60 idle
 *   connections. Without `--max-per-source` the other client waits (its echo times out); with
 *   `--max-per-source 20` the flood gets 20, the other 40 are reset at once, and the other client is served
 *   at once. Counted (`per_source_rejected`) and logged once, not 40 times.
 * - IPv6: two addresses of one /64 share one per-source count; a client from another /64 is served.
 * - `--max-connections 10`: 15 connections from one source, 10 served, 5 wait in the backlog (not reset)
 *   and are served once the first ones close.
 * - A trusted peer (scapy, from an address inside --trust) sends a SYN with a length-6 option 254 before its
 *   TOA: the TOA after it is announced to nginx, the skipped one counted and logged; a port-0 TOA is
 *   announced, not dropped.
 * - SYN cookies on (`net.ipv4.tcp_syncookies=2` in the namespace): no SYN is saved, the peer is announced,
 *   and the fallback is logged once per interval with its count, not once per connection.
 *
 * Every wait is bounded; the lab (processes, namespaces, temp dir) is torn down on every exit path. Needs
 * root, python3 with scapy, nginx and nftables.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Background, spawnIn, waitUntil, withLab } from "./helpers/mod.ts";
import { nsExec } from "../netns-scripts/topology.ts";
import { startPpNginx, startToaProxy, type ToaProxyProcess } from "../toa/testing/servers.ts";
import type { Lab } from "./helpers/mod.ts";

const REPO = new URL("..", import.meta.url).pathname;
const PYTHON = "/usr/bin/python3";
const ECHO = "127.0.0.1:9000";
/** The proxy's address and the flooding source. */
const FLOOD = "198.18.3.201";
/** The other client's source. */
const OTHER = "198.18.3.202";

/** `key=value` integers of the line of `out` that starts with `name`; throws when there is none. */
function phase(out: string, name: string): Record<string, number> {
  const line = out.split("\n").find((l) => l.startsWith(`${name} `) || l === name);
  if (line === undefined) throw new Error(`no "${name}" line in:\n${out}`);
  const r: Record<string, number> = {};
  for (const m of line.matchAll(/(\w+)=(-?\d+)/g)) r[m[1]] = Number(m[2]);
  return r;
}

/** many_clients.py in `ns`: `n` connections from `source` to `to`:`port` (default FLOOD), owned by the lab. */
function clients(
  lab: Lab,
  ns: string,
  port: number,
  n: number,
  source: string,
  opts: string[],
  to = FLOOD,
): Background {
  return spawnIn(lab, ns, [
    PYTHON,
    `${REPO}toa/testdata/many_clients.py`,
    to,
    String(port),
    String(n),
    "--source",
    source,
    ...opts,
  ]);
}

/**
 * How many of many_clients.py's connections were refused (reset, or closed before their echo): a reset can
 * land while the connection is still being opened or during its echo, so both phases count.
 */
function refused(out: string): number {
  const o = phase(out, "opened");
  const e = phase(out, "echoed");
  return (o.reset ?? 0) + (o.eof ?? 0) + (o.error ?? 0) + (e.reset ?? 0) + (e.eof ?? 0) + (e.error ?? 0);
}

/** A toa-proxy on `listen` (default FLOOD:`port`) in `ns` in front of the echo server, owned by the lab. */
async function proxyIn(
  lab: Lab,
  ns: string,
  port: number,
  extra: string[],
  wrapper: string[] = [],
  listen = `${FLOOD}:${port}`,
  backend = ECHO,
): Promise<ToaProxyProcess> {
  const args = ["--listen", listen, "--backend", backend, "--proxy-protocol", "v1"];
  const p = await startToaProxy(ns, [...args, "--trust", "198.18.2.0/24", ...extra], 20_000, wrapper);
  lab.track(p.process);
  lab.defer(() => p.stop());
  return p;
}

/** Polls the proxy's counters until `active` is 0; returns them. */
async function drained(p: ToaProxyProcess, what: string): Promise<Record<string, number>> {
  let c: Record<string, number> = {};
  await waitUntil(async () => (c = await p.stats()).active === 0, `${what}: active back to 0`, 15_000, 200);
  return c;
}

/** The proxy's stderr lines of `event`. */
function events(p: ToaProxyProcess, event: string): string[] {
  return p.process.stderr().split("\n").filter((l) => l.includes(`event=${event} `));
}

/**
 * One source holds `flood` idle connections; then one connection from OTHER sends a line. Returns the flood's
 * `echoed` counts, the other client's, and the proxy's counters while the flood still holds.
 */
async function floodThenOther(lab: Lab, ns: string, proxy: ToaProxyProcess, port: number, flood: number) {
  const f = clients(lab, ns, port, flood, FLOOD, [
    "--echo-timeout",
    "2",
    "--hold",
    "30",
    "--close-timeout",
    "5",
  ]);
  await f.waitFor(() => f.stdout().includes("holding"), "flood open and echoed", 20_000);
  const other = clients(lab, ns, port, 1, OTHER, [
    "--echo-timeout",
    "2",
    "--hold",
    "0",
    "--close-timeout",
    "5",
  ]);
  await other.waitFor(() => other.stdout().includes("closed"), "the other client", 15_000);
  const during = await proxy.stats();
  Deno.kill(f.pid, "SIGUSR1");
  await f.waitFor(() => f.stdout().includes("closed"), "flood closed", 20_000);
  return {
    flood: phase(f.stdout(), "echoed"),
    floodOut: f.stdout(),
    other: phase(other.stdout(), "echoed"),
    during,
  };
}

Deno.test("e2e: toa-proxy --max-per-source keeps one source from starving the others; --max-connections queues", async (tc) => {
  await withLab({ rs: 1, nginx: false }, async (lab) => {
    const ns = lab.t.nsRs[0];
    for (const a of [FLOOD, OTHER]) {
      const r = await nsExec(ns, ["ip", "addr", "add", `${a}/32`, "dev", "lo"], 10_000);
      assert.equal(r.code, 0, r.stderr);
    }
    const echo = spawnIn(lab, ns, [
      PYTHON,
      `${REPO}toa/testdata/echo_server.py`,
      "127.0.0.1",
      "9000",
      "--pp",
      "v1",
    ]);
    await echo.waitFor(() => echo.stdout().includes("listening"), "echo server", 10_000);
    // 96 fds: about 27 are Deno's own, two per connection: room for about 35 connections.
    const fewFds = ["prlimit", "--nofile=96:96"];

    await tc.step(
      "without --max-per-source: 60 idle connections from one source make another wait",
      async () => {
        const proxy = await proxyIn(lab, ns, 9101, [], fewFds);
        const r = await floodThenOther(lab, ns, proxy, 9101, 60);
        assert.ok(r.flood.ok > 10 && r.flood.ok < 40, `flood served ${r.flood.ok}`);
        assert.equal(r.other.ok ?? 0, 0, `the other client was served: ${JSON.stringify(r.other)}`);
        assert.equal(r.other.timeout, 1);
        assert.ok(r.during.fd_exhausted > 0);
        console.log(
          `no per-source limit: flood served ${r.flood.ok} of 60, the other client timed out after 2 s`,
        );
        await drained(proxy, "no limit");
        await proxy.stop();
      },
    );

    await tc.step(
      "--max-per-source 20: the flood gets 20, the rest are reset at once, the other is served",
      async () => {
        const proxy = await proxyIn(lab, ns, 9102, ["--max-per-source", "20"], fewFds);
        assert.equal(phase(proxy.process.stdout(), "toa-proxy ready").max_per_source, 20);
        const r = await floodThenOther(lab, ns, proxy, 9102, 60);
        assert.equal(r.flood.ok, 20, JSON.stringify(r.flood));
        // Refused ones are reset while opening or before their echo (a write may see a broken pipe: "error").
        assert.equal(refused(r.floodOut), 40, r.floodOut);
        assert.ok(r.flood.ms < 1_500, `flood refused within ${r.flood.ms} ms, not at a timeout`);
        assert.equal(r.other.ok, 1, JSON.stringify(r.other));
        assert.ok(r.other.ms < 1_000, `the other client echoed in ${r.other.ms} ms`);
        assert.equal(r.during.active, 20);
        assert.equal(r.during.per_source_rejected, 40);
        assert.equal(r.during.fd_exhausted, 0);
        console.log(
          `--max-per-source 20: flood ${
            JSON.stringify(r.flood)
          }; the other client echoed in ${r.other.ms} ms`,
        );
        const c = await drained(proxy, "per-source");
        assert.equal(c.accepted, 61);
        assert.equal(c.relay_errors + c.backend_errors, 0);
        // One line for the first refusal, the other 39 summed into at most one more (10 s interval).
        const logs = events(proxy, "per_source_limit");
        assert.ok(logs.length >= 1 && logs.length <= 2, logs.join("\n"));
        assert.match(logs[0], /rejected=1 interval_s=10 max_per_source=20 last_source=198\.18\.3\.201$/);
        const stopped = await proxy.stop();
        const total = events(proxy, "per_source_limit").reduce(
          (s, l) => s + Number(/rejected=(\d+)/.exec(l)![1]),
          0,
        );
        assert.equal(total, 40, stopped.stderr);
      },
    );

    await tc.step(
      "--max-connections 10: 15 connections, 10 served, 5 wait in the backlog and are served later",
      async () => {
        const proxy = await proxyIn(lab, ns, 9103, ["--max-connections", "10"]);
        assert.equal(phase(proxy.process.stdout(), "toa-proxy ready").max_connections, 10);
        const f = clients(lab, ns, 9103, 15, FLOOD, [
          "--echo-timeout",
          "1",
          "--hold",
          "30",
          "--close-timeout",
          "5",
        ]);
        await f.waitFor(() => f.stdout().includes("holding"), "15 clients", 20_000);
        const echoed = phase(f.stdout(), "echoed");
        // Not refused: the 5 beyond the limit are connected in the kernel's backlog, unanswered.
        assert.deepEqual({ ...echoed, ms: 0 }, { ok: 10, timeout: 5, ms: 0 }, f.stdout());
        const during = await proxy.stats();
        assert.equal(during.active, 10);
        assert.equal(during.accepted, 10);
        assert.ok(during.max_connections_reached >= 1);
        assert.equal(during.per_source_rejected, 0);
        assert.match(
          events(proxy, "max_connections")[0],
          /reached=1 interval_s=10 max_connections=10 active=10$/,
        );
        Deno.kill(f.pid, "SIGUSR1");
        await f.waitFor(() => f.stdout().includes("closed"), "clients closed", 20_000);
        // The waiting 5 were taken as the first closed; their half-close and the echo of their line end them.
        assert.equal(phase(f.stdout(), "closed").ok, 15, f.stdout());
        const c = await drained(proxy, "max-connections");
        assert.equal(c.accepted, 15);
        assert.equal(c.relay_errors + c.backend_errors, 0);
        await proxy.stop();
      },
    );

    await tc.step("--max-per-source with IPv6: two addresses of one /64 count as one source", async () => {
      const [a1, a2, b1] = ["fd00:3:1::1", "fd00:3:1::2", "fd00:3:2::1"];
      for (const a of [a1, a2, b1]) {
        const r = await nsExec(ns, ["ip", "addr", "add", `${a}/128`, "dev", "lo", "nodad"], 10_000);
        assert.equal(r.code, 0, r.stderr);
      }
      const proxy = await proxyIn(lab, ns, 9105, ["--max-per-source", "15"], [], `[${a1}]:9105`);
      const opts = ["--echo-timeout", "2", "--hold", "30", "--close-timeout", "5"];
      const first = clients(lab, ns, 9105, 10, a1, opts, a1);
      await first.waitFor(() => first.stdout().includes("holding"), "10 from the first address", 20_000);
      const second = clients(lab, ns, 9105, 10, a2, opts, a1);
      await second.waitFor(() => second.stdout().includes("holding"), "10 from the second address", 20_000);
      const other = clients(lab, ns, 9105, 1, b1, ["--echo-timeout", "2", "--hold", "0"], a1);
      await other.waitFor(() => other.stdout().includes("closed"), "one from another /64", 15_000);
      assert.equal(phase(first.stdout(), "echoed").ok, 10, first.stdout());
      const s2 = phase(second.stdout(), "echoed");
      assert.equal(s2.ok, 5, second.stdout()); // 15 for the /64 in all
      assert.equal(refused(second.stdout()), 5, second.stdout());
      assert.equal(phase(other.stdout(), "echoed").ok, 1, other.stdout());
      const during = await proxy.stats();
      assert.equal(during.active, 15);
      assert.equal(during.per_source_rejected, 5);
      assert.match(events(proxy, "per_source_limit")[0], /last_source=fd00:3:1::\/64$/);
      for (const c of [first, second]) Deno.kill(c.pid, "SIGUSR1");
      for (const c of [first, second]) await c.waitFor(() => c.stdout().includes("closed"), "closed", 20_000);
      await drained(proxy, "ipv6 per-source");
      await proxy.stop();
    });

    await tc.step(
      "a trusted peer's malformed TOA is skipped, the valid one after it announced, port 0 kept",
      async () => {
        // The scapy client plays the gateway: a source inside --trust, its own SYN, the kernel kept from
        // resetting a connection it does not own.
        const gw = "198.18.2.250";
        const add = await nsExec(ns, ["ip", "addr", "add", `${gw}/32`, "dev", "lo"], 10_000);
        assert.equal(add.code, 0, add.stderr);
        const nginx = await startPpNginx(ns, `${lab.dir}/nginx-pp`, ["127.0.0.1:8080"]);
        lab.track(nginx.process);
        lab.defer(() => nginx.stop());
        const proxy = await proxyIn(lab, ns, 9106, [], [], `${FLOOD}:9106`, "127.0.0.1:8080");
        const forged = async (toa: string, badFirst: boolean) => {
          const sport = 20000 + Math.floor(Math.random() * 20000);
          const table = `toahyg${sport}`;
          const nft = `table inet ${table} { chain out { type filter hook output priority 0; ` +
            `tcp sport ${sport} tcp flags rst drop; }; }`;
          const n = await nsExec(ns, ["nft", nft], 10_000);
          assert.equal(n.code, 0, n.stderr);
          try {
            const args = [
              "--dst",
              FLOOD,
              "--dport",
              "9106",
              "--sport",
              String(sport),
              "--src",
              gw,
              "--toa",
              toa,
            ];
            const r = await nsExec(ns, [
              PYTHON,
              `${REPO}toa/testdata/forged_toa_client.py`,
              ...args,
              ...(badFirst ? ["--bad-first"] : []),
            ], 30_000);
            assert.equal(r.code, 0, r.stderr);
            return r.stdout.trim();
          } finally {
            await nsExec(ns, ["nft", "delete", "table", "inet", table], 10_000);
          }
        };
        assert.equal(await forged("198.18.1.77:4077", true), "198.18.1.77:4077");
        // Announced, not dropped as "no TOA" (which would show the peer, 198.18.2.250). nginx accepts the header
        // (it answered) and prints an empty $proxy_protocol_port for port 0; the exact PROXY line with port 0
        // is checked in toa/client_address_test.ts.
        assert.equal(await forged("198.18.1.78:0", false), "198.18.1.78:");
        const c = await drained(proxy, "malformed toa");
        assert.equal(c.toa_trusted, 2);
        assert.equal(c.toa_malformed_options, 1);
        assert.equal(c.toa_malformed, 0);
        assert.match(
          events(proxy, "toa_malformed")[0],
          /count=1 interval_s=10 last_peer=198\.18\.2\.250:\d+$/,
        );
        await proxy.stop();
      },
    );

    await tc.step(
      "SYN cookies: no saved SYN, one log line for many connections, the count kept",
      async () => {
        const r = await nsExec(ns, ["sysctl", "-qw", "net.ipv4.tcp_syncookies=2"], 10_000);
        assert.equal(r.code, 0, r.stderr);
        const proxy = await proxyIn(lab, ns, 9104, []);
        const f = clients(lab, ns, 9104, 12, FLOOD, [
          "--echo-timeout",
          "5",
          "--hold",
          "0",
          "--close-timeout",
          "5",
        ]);
        await f.waitFor(() => f.stdout().includes("closed"), "12 clients", 20_000);
        assert.equal(phase(f.stdout(), "echoed").ok, 12, f.stdout());
        const c = await drained(proxy, "syn cookies");
        assert.equal(c.no_saved_syn, 12);
        // The first fallback at once, the other 11 held for the interval (10 s): one line now.
        const now = events(proxy, "no_saved_syn");
        assert.equal(now.length, 1, now.join("\n"));
        assert.match(now[0], /count=1 interval_s=10 last_peer=198\.18\.3\.201:\d+ announced=peer$/);
        // At exit the rest is written, so no fallback goes unlogged.
        await proxy.stop();
        const all = events(proxy, "no_saved_syn");
        assert.equal(all.length, 2, all.join("\n"));
        assert.match(all[1], /count=11 /);
        await nsExec(ns, ["sysctl", "-qw", "net.ipv4.tcp_syncookies=1"], 10_000);
      },
    );
  });
});
