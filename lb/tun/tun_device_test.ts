/**
 * TUN device tests. Anything that creates an interface runs in a child Deno process inside a throwaway
 * network namespace (`ip netns exec`), so nothing is ever created in the root namespace and a crash
 * cannot leak a device: deleting the namespace deletes everything in it. Needs root and iproute2.
 *
 * @module
 */

import assert from "node:assert/strict";
import { TunDevice, TunError, TunUnavailableError } from "./mod.ts";

const MOD_URL = new URL("./mod.ts", import.meta.url).href;

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string[], env?: Record<string, string>, timeoutMs = 30_000): Promise<Out> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs `code` (a module body importing `TUN`) in a fresh namespace that is deleted afterwards. */
async function inThrowawayNetns(
  code: string,
  prefixCmd: string[] = [],
  env?: Record<string, string>,
): Promise<Out> {
  const ns = `lbttun${Deno.pid.toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
  const add = await run(["ip", "netns", "add", ns]);
  assert.equal(add.code, 0, add.stderr);
  try {
    const script = `import * as TUN from ${JSON.stringify(MOD_URL)};\n${code}`;
    return await run(["ip", "netns", "exec", ns, ...prefixCmd, Deno.execPath(), "eval", script], env);
  } finally {
    await run(["ip", "netns", "del", ns]);
  }
}

Deno.test("open: invalid names and queue counts fail before any syscall", () => {
  for (const name of ["", "a-name-that-is-too-long", "a/b", "a b"]) {
    assert.throws(
      () => TunDevice.open({ name }),
      (e) => e instanceof TunError && e.reason === "invalid-argument",
    );
  }
  assert.throws(
    () => TunDevice.open({ name: "t0", queues: 0 }),
    (e) => e instanceof TunError && e.reason === "invalid-argument",
  );
  assert.throws(
    () => TunDevice.open({ name: "t0", queues: 2, multiQueue: false }),
    (e) => e instanceof TunError && e.reason === "invalid-argument",
  );
});

Deno.test("open: a missing clone device is TunUnavailableError (ENOENT)", () => {
  assert.throws(
    () => TunDevice.open({ name: "t0", devicePath: "/nonexistent/tun" }),
    (e) =>
      e instanceof TunUnavailableError && e.reason === "unavailable" && /ENOENT/.test(e.message) &&
      !e.message.includes("\n"),
  );
});

Deno.test("in a namespace: open, read a routed packet, name-in-use errors, multi-queue, clean close", async () => {
  const r = await inThrowawayNetns(`
    const out = {};
    const err = (f) => { try { f(); return "no error"; } catch (e) { return [e.name, e.reason, e.message]; } };
    const dev = TUN.TunDevice.open({ name: "t0" });
    out.name = dev.name;
    out.busy = err(() => TUN.TunDevice.open({ name: "t0" }));
    out.mqOnSingle = err(() => TUN.TunDevice.open({ name: "t0", queues: 2 }));
    out.notTun = err(() => TUN.TunDevice.open({ name: "lo" }));
    await TUN.linkUp("t0");
    await TUN.addAddress("t0", "198.18.5.1/24");
    const ping = new Deno.Command("ping", { args: ["-c", "1", "-W", "1", "198.18.5.2"], stdout: "null" }).output();
    const buf = new Uint8Array(2048);
    const q = dev.queues[0];
    // Link-up also queues the kernel's own IPv6 MLD/RS packets: look for ours among them, bounded.
    const deadline = Date.now() + 3000;
    let reads = 0;
    while (out.packet === undefined && Date.now() < deadline) {
      if (!(await q.waitReadable(500))) continue;
      for (let n = q.read(buf); n > 0; n = q.read(buf)) {
        reads++;
        if (buf[0] >> 4 === 4) {
          out.packet = { n, version: 4, proto: buf[9], dst: Array.from(buf.subarray(16, 20)).join(".") };
        }
      }
    }
    out.reads = reads;
    out.readCounter = q.counters.rxPackets;
    await ping;
    const pending = q.waitReadable(-1);
    await dev.close(); // must wake the pending poll, not hang
    out.pendingAfterClose = await pending;
    out.goneAfterClose = !(await TUN.linkExists("t0"));
    const mq = TUN.TunDevice.open({ name: "mq%d", queues: 3 });
    out.mqName = mq.name;
    out.mqFds = new Set(mq.queues.map((q) => q.fd)).size;
    const extra = TUN.TunDevice.open({ name: mq.name, multiQueue: true }); // attach one more queue
    out.extraAttached = extra.name === mq.name;
    out.singleOnMq = err(() => TUN.TunDevice.open({ name: mq.name }));
    await mq.close();
    out.mqAliveWhileExtraOpen = await TUN.linkExists(mq.name);
    await extra.close();
    out.mqGone = !(await TUN.linkExists(mq.name));
    console.log(JSON.stringify(out));
  `);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.name, "t0");
  assert.deepEqual(out.busy.slice(0, 2), ["TunNameInUseError", "name-in-use"]);
  assert.match(out.busy[2], /^tun "t0": name already in use .*\(EBUSY\)$/);
  assert.deepEqual(out.mqOnSingle.slice(0, 2), ["TunNameInUseError", "name-in-use"]);
  assert.match(out.mqOnSingle[2], /\(EINVAL\)$/);
  assert.deepEqual(out.notTun.slice(0, 2), ["TunNameInUseError", "name-in-use"]);
  assert.equal(out.packet.version, 4);
  assert.equal(out.packet.proto, 1);
  assert.equal(out.packet.dst, "198.18.5.2");
  assert.equal(out.packet.n, 84);
  assert.equal(out.readCounter, out.reads);
  assert.equal(out.pendingAfterClose, false);
  assert.equal(out.goneAfterClose, true);
  assert.equal(out.mqName, "mq0");
  assert.equal(out.mqFds, 3);
  assert.equal(out.extraAttached, true);
  assert.deepEqual(out.singleOnMq.slice(0, 2), ["TunNameInUseError", "name-in-use"]);
  assert.equal(out.mqAliveWhileExtraOpen, true);
  assert.equal(out.mqGone, true);
});

Deno.test("in a namespace without privileges: TunPermissionError (EPERM or EACCES)", async () => {
  const denoDir = await Deno.makeTempDir({ prefix: "tun-test-deno-" });
  try {
    await Deno.chmod(denoDir, 0o777);
    const r = await inThrowawayNetns(
      `try { TUN.TunDevice.open({ name: "t0" }); console.log("opened"); }
       catch (e) { console.log(JSON.stringify([e.name, e.reason, e.message])); }`,
      ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"],
      { DENO_DIR: denoDir, HOME: denoDir },
    );
    assert.equal(r.code, 0, r.stderr);
    const [name, reason, message] = JSON.parse(r.stdout);
    assert.equal(name, "TunPermissionError");
    assert.equal(reason, "permission");
    // EACCES when /dev/net/tun is root-only (0600/0660), EPERM from TUNSETIFF when it is world-accessible.
    assert.match(message, /CAP_NET_ADMIN.*\((EPERM|EACCES)\)$/);
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
});
