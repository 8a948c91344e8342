/**
 * deploy/fnat-lb.service: `systemd-analyze verify` accepts it without a single warning (it exits 0 on unknown
 * keys and bad values, printing them, so its stderr must be empty too), and it keeps the promises the README
 * makes: Type=notify, the config checked before a start and a reload, the HUP, KillMode=mixed, and only the
 * capabilities the gateway needs. Skipped, with the reason, where systemd-analyze is not installed.
 *
 * @module
 */
import assert from "node:assert/strict";

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const UNIT = `${REPO}/deploy/fnat-lb.service`;

function which(cmd: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${cmd}`).isFile) return `${dir}/${cmd}`;
    } catch { /* not here */ }
  }
  return undefined;
}

const analyze = which("systemd-analyze");

/** The unit's `Key=value` settings, in order (a key may repeat, as ExecReload does). */
function settings(text: string): [string, string][] {
  return text.split("\n").filter((l) => /^[A-Za-z]+=/.test(l)).map((l) => {
    const i = l.indexOf("=");
    return [l.slice(0, i), l.slice(i + 1)];
  });
}

Deno.test("deploy: the unit checks the config before start and reload, and asks for only what it needs", async () => {
  const s = settings(await Deno.readTextFile(UNIT));
  const all = (k: string) => s.filter(([key]) => key === k).map(([, v]) => v);
  assert.deepEqual(all("Type"), ["notify"]);
  assert.match(all("ExecStartPre")[0], / lb --config \/etc\/fnat-lb\/gateway\.json --check$/);
  assert.match(all("ExecStart")[0], / lb --config \/etc\/fnat-lb\/gateway\.json$/);
  const reload = all("ExecReload");
  assert.equal(reload.length, 2);
  assert.match(reload[0], / --check$/, "a bad file stops the reload before the HUP");
  assert.equal(reload[1], "/bin/kill -HUP $MAINPID");
  assert.deepEqual(all("KillMode"), ["mixed"]);
  assert.deepEqual(all("Restart"), ["on-failure"]);
  assert.deepEqual(all("CapabilityBoundingSet"), ["CAP_NET_ADMIN CAP_BPF"]);
  assert.deepEqual(all("NoNewPrivileges"), ["yes"]);
  assert.deepEqual(all("MemoryDenyWriteExecute"), [], "V8's JIT needs writable code pages");
  assert.deepEqual(all("DeviceAllow"), ["/dev/net/tun rw"]);
});

Deno.test({
  name: "deploy: systemd-analyze verify accepts the unit without warnings" +
    (analyze ? "" : " (skipped: no systemd-analyze; Debian package systemd)"),
  ignore: analyze === undefined,
  fn: async () => {
    // verify checks that the ExecStart binaries exist: point /opt/fnat-lb at this checkout.
    const dir = await Deno.makeTempDir({ prefix: "fnat-unit-" });
    try {
      const text = (await Deno.readTextFile(UNIT)).replaceAll("/opt/fnat-lb", REPO);
      await Deno.writeTextFile(`${dir}/fnat-lb.service`, text);
      const out = await new Deno.Command(analyze!, {
        args: ["verify", "--man=no", `${dir}/fnat-lb.service`],
        stdout: "piped",
        stderr: "piped",
        env: { SYSTEMD_LOG_COLOR: "0" },
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      assert.equal(stderr.trim(), "", "systemd-analyze warned");
      // And verify does catch what this test relies on it catching.
      await Deno.writeTextFile(`${dir}/fnat-lb.service`, text.replace("KillMode=mixed", "KillMode=mixd"));
      const bad = await new Deno.Command(analyze!, {
        args: ["verify", "--man=no", `${dir}/fnat-lb.service`],
        stderr: "piped",
        stdout: "null",
      }).output();
      assert.match(new TextDecoder().decode(bad.stderr), /kill mode/i);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
