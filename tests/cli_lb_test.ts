/**
 * The `lb` verbs through the real CLI (`deno run -A mod.ts lb …` in a child process): `--check` on good and
 * bad files, and `--list`/`--stats`/`--reload` against a stand-in control socket (no gateway, no root).
 *
 * @module
 */
import assert from "node:assert/strict";
import { startControlServer } from "../lb/control/testing/control_server.ts";

const MOD = new URL("../mod.ts", import.meta.url).pathname;

/** Runs `mod.ts lb ARGS`; returns its status and output. */
async function lb(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MOD, "lb", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

const good = {
  localAddresses: ["198.18.2.1"],
  services: [
    {
      vip: "198.18.0.100",
      port: 80,
      realServers: [{ address: "198.18.3.10" }, { address: "198.18.3.11", weight: 2 }],
    },
    { vip: "198.18.0.100", port: 53, protocol: "udp", realServers: [{ address: "198.18.3.10" }] },
  ],
};

async function withFile(content: unknown, fn: (path: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "fnat-cli-" });
  const path = `${dir}/gateway.json`;
  await Deno.writeTextFile(path, typeof content === "string" ? content : JSON.stringify(content));
  try {
    await fn(path, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("cli: lb --check accepts a good file: one line, exit 0", async () => {
  await withFile(good, async (path) => {
    const r = await lb("--config", path, "--check");
    assert.equal(r.stdout, `fnat-lb: config ${path} ok (2 services, 3 servers)\n`);
    assert.equal(r.stderr, "");
    assert.equal(r.code, 0);
  });
});

Deno.test("cli: lb --check rejects a bad file with the field and the fix: exit 1", async () => {
  const typo = structuredClone(good) as Record<string, unknown> & typeof good;
  (typo.services[0].realServers[1] as Record<string, unknown>).wieght = 3;
  const cases: [unknown, RegExp][] = [
    [
      typo,
      /^fnat-lb: config: services\[0\]\.realServers\[1\]\.wieght: unknown key \(did you mean "weight"\?\)\n$/,
    ],
    [{ ...good, metrics: "9100" }, /^fnat-lb: config: metrics: expected "ADDR:PORT"/],
    ["{ not json", /^fnat-lb: config: \(file\): .* is not valid JSON/],
  ];
  for (const [content, message] of cases) {
    await withFile(content, async (path) => {
      const r = await lb("--config", path, "--check");
      assert.match(r.stderr, message);
      assert.equal(r.stdout, "");
      assert.equal(r.code, 1);
    });
  }
  const missing = await lb("--config", "/nonexistent/gateway.json", "--check");
  assert.match(missing.stderr, /^fnat-lb: config: \(file\): cannot read \/nonexistent\/gateway\.json/);
  assert.equal(missing.code, 1);
});

const stats = {
  activeConnections: 1,
  services: [{
    service: "tcp 198.18.0.100:80",
    protocol: "tcp",
    vip: "198.18.0.100",
    port: 80,
    scheduler: "wlc",
    draining: false,
    connectionsTotal: 5,
    packetsIn: 50,
    packetsOut: 40,
    bytesIn: 5000,
    bytesOut: 40000,
    realServers: [{
      server: "198.18.3.10:80",
      address: "198.18.3.10",
      port: 80,
      weight: 1,
      effectiveWeight: 1,
      health: "up",
      draining: false,
      active: 1,
      inactive: 0,
      connectionsTotal: 5,
      packetsIn: 50,
      packetsOut: 40,
      bytesIn: 5000,
      bytesOut: 40000,
    }],
  }],
  pools: [{ address: "198.18.2.1", used: 1, free: 64510, misses: 0 }],
};

Deno.test("cli: lb --list, --stats, --rate, --connections, --pools, --json and --reload ask the control socket", async () => {
  let samples = 0;
  let reloadOk = true;
  const srv = await startControlServer((req) => {
    const cmd = (req as { cmd: string }).cmd;
    if (cmd === "stats") {
      // Each sample one second of traffic later: 3 connections and 1000 bytes in per second.
      const s = structuredClone(stats);
      s.services[0].connectionsTotal += 3 * samples;
      s.services[0].bytesIn += 1000 * samples++;
      return s;
    }
    if (cmd === "connections") {
      return [{
        proto: "tcp",
        state: "ESTABLISHED",
        expiresIn: 900,
        source: "198.18.1.5:40000",
        virtual: "198.18.0.100:80",
        local: "198.18.2.1:1025",
        destination: "198.18.3.10:80",
      }];
    }
    if (cmd === "reload") {
      return reloadOk
        // As the gateway answers: its log line (lb/gateway.ts).
        ? {
          ok: true,
          message: 'fnat-lb reloaded services=2 servers=3 added="tcp 198.18.0.100:80 198.18.3.12:80"',
        }
        : {
          ok: false,
          message: "fnat-lb reload failed: config: services[0].port: expected an integer from 1 to 65535",
        };
    }
    return { error: "unknown cmd" };
  });
  try {
    await withFile({ ...good, control: srv.path }, async (path) => {
      const list = await lb("--config", path, "--list");
      assert.equal(list.code, 0, list.stderr);
      assert.equal(
        list.stdout,
        [
          "fnat-lb FULLNAT (connections=1)",
          "Prot LocalAddress:Port Scheduler Flags",
          "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn Health",
          "TCP  198.18.0.100:80 wlc",
          "  -> 198.18.3.10:80               FullNat 1      1          0          up",
          "",
        ].join("\n"),
      );
      const st = await lb("--config", path, "--list", "--stats");
      assert.match(st.stdout, /^TCP {2}198\.18\.0\.100:80 {21}8 {7}50 {7}40 {5}6000 {4}40000$/m);
      const json = await lb("--config", path, "--list", "--json");
      assert.equal(JSON.parse(json.stdout).pools[0].free, 64510);
      const raw = await lb("--config", path, "--stats");
      assert.equal(JSON.parse(raw.stdout).activeConnections, 1, "--stats stays raw JSON");
      const rate = await lb("--config", path, "--list", "--rate");
      assert.equal(rate.code, 0, rate.stderr);
      assert.match(rate.stdout, /^TCP {2}198\.18\.0\.100:80 {21}3 {8}0 {8}0 {5}1000 {8}0$/m);
      const conns = await lb("--config", path, "--list", "--connections");
      assert.match(conns.stdout, /^TCP 15:00 {2}ESTABLISHED 198\.18\.1\.5:40000 {3}198\.18\.0\.100:80 /m);
      const pools = await lb("--config", path, "--list", "--pools");
      assert.match(pools.stdout, /^198\.18\.2\.1 +1 +64510 +0$/m);
      const ok = await lb("--config", path, "--reload");
      assert.equal(
        ok.stdout,
        'fnat-lb: reload ok: reloaded services=2 servers=3 added="tcp 198.18.0.100:80 198.18.3.12:80"\n',
      );
      assert.equal(ok.code, 0);
      reloadOk = false;
      const failed = await lb("--config", path, "--reload");
      assert.match(failed.stderr, /^fnat-lb: reload failed: config: services\[0\]\.port/);
      assert.doesNotMatch(failed.stderr, /reload failed: fnat-lb reload failed/);
      assert.equal(failed.code, 1);
      assert.deepEqual(
        srv.requests.map((r) => (r as { cmd: string }).cmd),
        ["stats", "stats", "stats", "stats", "stats", "stats", "connections", "stats", "reload", "reload"],
      );
    });
  } finally {
    await srv.close();
  }
});

Deno.test("cli: asking with no gateway running says so, exit 1; conflicting flags exit 2", async () => {
  await withFile({ ...good, control: "/nonexistent/fnat.sock" }, async (path) => {
    const r = await lb("--config", path, "--list");
    assert.match(r.stderr, /^fnat-lb: no gateway is running for .*gateway\.json/);
    assert.equal(r.code, 1);
    const both = await lb("--config", path, "--check", "--reload");
    assert.match(both.stderr, /^fnat-lb: --check and --reload do not go together/);
    assert.equal(both.code, 2);
    const lone = await lb("--config", path, "--rate");
    assert.match(lone.stderr, /^fnat-lb: --rate goes with --list/);
    assert.equal(lone.code, 2);
  });
});
