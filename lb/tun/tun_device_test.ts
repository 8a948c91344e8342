/**
 * TUN device tests. Anything that creates an interface runs in a child Deno process inside a throwaway
 * network namespace (`ip netns exec`), so nothing is ever created in the root namespace and a crash
 * cannot leak a device: deleting the namespace deletes everything in it. Needs root and iproute2.
 *
 * @module
 */

import assert from "node:assert/strict";
import { dirname, join, relative, sep } from "node:path";
import {
  TUN_POLL_READABLE,
  TUN_POLL_SYN_READABLE,
  TUN_POLL_WOKEN,
  TunDevice,
  TunError,
  TunQueue,
  TunUnavailableError,
} from "./mod.ts";
import {
  cString,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  eventfdSignal,
  libc,
  O_CLOEXEC,
  O_RDONLY,
  O_RDWR,
} from "../../base/sys/libc.ts";
import { VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, VNET_HDR_LEN } from "../../base/packet/virtio_net_hdr.ts";

const MOD_URL = new URL("./mod.ts", import.meta.url).href;

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  cmd: string[],
  env?: Record<string, string>,
  timeoutMs = 30_000,
  cwd?: string,
): Promise<Out> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** How a child runs: extra command before Deno (setpriv), environment, cwd, Deno binary, module to import. */
interface ChildOptions {
  prefixCmd?: string[];
  env?: Record<string, string>;
  cwd?: string;
  deno?: string;
  modUrl?: string;
}

/** Runs `code` (a module body importing `TUN`) in a fresh namespace that is deleted afterwards. */
async function inThrowawayNetns(code: string, o: ChildOptions = {}): Promise<Out> {
  const ns = `lbttun${Deno.pid.toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
  const add = await run(["ip", "netns", "add", ns]);
  assert.equal(add.code, 0, add.stderr);
  try {
    const script = `import * as TUN from ${JSON.stringify(o.modUrl ?? MOD_URL)};\n${code}`;
    const deno = o.deno ?? Deno.execPath();
    return await run(
      ["ip", "netns", "exec", ns, ...(o.prefixCmd ?? []), deno, "eval", script],
      o.env,
      30_000,
      o.cwd,
    );
  } finally {
    await run(["ip", "netns", "del", ns]);
  }
}

/** True when a user with no ownership or group claim can reach `path`: o+x on every directory above it. */
function reachableByOthers(path: string): boolean {
  for (let d = dirname(path);; d = dirname(d)) {
    if (((Deno.statSync(d).mode ?? 0) & 0o001) === 0) return false;
    if (d === dirname(d)) return true;
  }
}

/**
 * Copies the local module graph of `entry` (what `deno info` lists) into `into`, keeping the paths relative
 * to their common directory, world-readable; returns the copy of `entry`. So a process that cannot read the
 * checkout (uid 65534 under a 0700 home or mktemp -d) can still import the module.
 */
async function copyModuleGraph(entry: string, into: string, extra: string[] = []): Promise<string> {
  const info = await run([Deno.execPath(), "info", "--json", entry]);
  assert.equal(info.code, 0, info.stderr);
  const files: string[] = [
    ...JSON.parse(info.stdout).modules.map((m: { local?: string }) => m.local).filter((l?: string) => l),
    ...extra,
  ];
  let root = dirname(files[0]);
  for (const f of files) while (relative(root, f).startsWith("..")) root = dirname(root);
  for (const f of files) {
    const to = join(into, relative(root, f));
    await Deno.mkdir(dirname(to), { recursive: true, mode: 0o755 });
    await Deno.copyFile(f, to);
    await Deno.chmod(to, 0o644);
  }
  // mkdir's mode passes through the umask: open every directory below `into` for others explicitly.
  for (const f of files) {
    const parts = relative(root, dirname(f)).split(sep).filter((p) => p);
    for (let i = 1; i <= parts.length; i++) await Deno.chmod(join(into, ...parts.slice(0, i)), 0o755);
  }
  return join(into, relative(root, entry));
}

/**
 * The Deno binary as uid 65534 can execute it: this one when reachable, else a hard link (or, across
 * file systems, a copy) in `dir` — a checkout with its own node_modules under a 0700 home has it there.
 */
async function denoForOthers(dir: string): Promise<string> {
  const exe = Deno.realPathSync(Deno.execPath());
  if (reachableByOthers(exe) && ((Deno.statSync(exe).mode ?? 0) & 0o005) === 0o005) return exe;
  const to = join(dir, "deno");
  try {
    await Deno.link(exe, to);
  } catch {
    await Deno.copyFile(exe, to);
  }
  await Deno.chmod(to, 0o755);
  return to;
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
    const sq = TUN.TunDevice.open({ name: "sq%d", queues: 2, synQueues: true });
    out.sq = {
      queues: sq.queues.length,
      fds: new Set(sq.queues.flatMap((q) => [q.fd, q.synFd])).size,
      synQueues: sq.synQueues,
      multiQueue: sq.multiQueue,
      more: err(() => TUN.TunDevice.open({ name: "sq9", queues: 129, synQueues: true })),
    };
    await sq.close();
    out.sqGone = !(await TUN.linkExists(sq.name));
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
  assert.deepEqual({ ...out.sq, more: out.sq.more.slice(0, 2) }, {
    queues: 2,
    fds: 4,
    synQueues: true,
    multiQueue: true,
    more: ["TunError", "invalid-argument"],
  });
  assert.equal(out.sqGone, true);
});

Deno.test("in a namespace without privileges: TunPermissionError (EPERM or EACCES)", async () => {
  // Deno runs as uid 65534, which may not read this checkout (a clone under /root or mktemp -d is 0700):
  // it imports a world-readable copy of the module graph, run by a Deno binary it can execute.
  const denoDir = await Deno.makeTempDir({ prefix: "tun-test-deno-" });
  try {
    await Deno.chmod(denoDir, 0o777);
    assert.ok(reachableByOthers(denoDir), `${denoDir}: a directory above it is closed to other users`);
    const src = join(denoDir, "src");
    const mod = await copyModuleGraph(new URL(MOD_URL).pathname, src);
    const deno = await denoForOthers(denoDir);
    const r = await inThrowawayNetns(
      `try { TUN.TunDevice.open({ name: "t0" }); console.log("opened"); }
       catch (e) { console.log(JSON.stringify([e.name, e.reason, e.message])); }`,
      {
        prefixCmd: ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"],
        env: { DENO_DIR: join(denoDir, "cache"), HOME: denoDir },
        cwd: src,
        deno,
        modUrl: new URL(`file://${mod}`).href,
      },
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

Deno.test({
  name: "the unprivileged test passes from a checkout under a 0700 directory (a clone in /root, mktemp -d)",
  ignore: Deno.env.get("TUN_TEST_NESTED") === "1",
  fn: async () => {
    const home = await Deno.makeTempDir({ prefix: "tun-test-home-" });
    try {
      await Deno.chmod(home, 0o700);
      const here = new URL(import.meta.url).pathname;
      const cfg = new URL("../../deno.json", import.meta.url).pathname;
      const test = await copyModuleGraph(here, join(home, "x"), [cfg]);
      await Deno.chmod(join(home, "x"), 0o755); // as a clone is: only its parent is closed
      const r = await run(
        [Deno.execPath(), "test", "-A", "--filter", "without privileges", test],
        { TUN_TEST_NESTED: "1", NO_COLOR: "1" },
        60_000,
        dirname(test),
      );
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /without privileges.* ok/);
      assert.match(r.stdout, /ok \| 1 passed/);
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test("TunQueue.poll: the wake eventfd wakes it once; a readable queue fd is reported", () => {
  const c = libc();
  const fd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); // stands in for the device: readable when non-zero
  const wake = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  try {
    const q = new TunQueue(0, "t0", fd, wake);
    assert.equal(q.poll(0), 0);
    eventfdSignal(wake);
    assert.equal(q.poll(0), TUN_POLL_WOKEN);
    assert.equal(q.poll(0), 0, "the wake-up was consumed");
    eventfdSignal(fd);
    eventfdSignal(wake);
    assert.equal(q.poll(1000), TUN_POLL_READABLE | TUN_POLL_WOKEN);
    assert.equal(q.poll(0), TUN_POLL_READABLE, "the queue fd is not drained by poll");
  } finally {
    c.close(fd);
    c.close(wake);
  }
});

Deno.test("TunQueue with a SYN queue: poll reports it apart; readSyn reads it, read does not", () => {
  const c = libc();
  const fd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); // stand-ins: an eventfd reads as one 8-byte frame
  const syn = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  const wake = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  try {
    const q = new TunQueue(0, "t0", fd, wake, false, syn);
    assert.equal(q.synFd, syn);
    assert.equal(q.poll(0), 0);
    eventfdSignal(syn);
    assert.equal(q.poll(1000), TUN_POLL_SYN_READABLE);
    const buf = new Uint8Array(64);
    assert.equal(q.read(buf), 0, "the normal queue is empty");
    assert.equal(q.readSyn(buf), 8);
    assert.equal(q.readSyn(buf), 0, "EAGAIN");
    eventfdSignal(fd);
    eventfdSignal(syn);
    assert.equal(q.poll(0), TUN_POLL_READABLE | TUN_POLL_SYN_READABLE);
    assert.equal(q.counters.rxPackets, 1);
    const none = new TunQueue(1, "t0", fd, wake);
    assert.equal(none.synFd, -1);
    assert.equal(none.readSyn(buf), 0, "no SYN queue: nothing to read");
    assert.equal(none.poll(0), TUN_POLL_READABLE);
  } finally {
    for (const x of [fd, syn, wake]) c.close(x);
  }
});

Deno.test("TunQueue.write: refused writes are counted by errno name; the vnet header is fixed on write", () => {
  const c = libc();
  const ro = c.open(cString("/dev/null"), O_RDONLY | O_CLOEXEC, 0); // write(2): EBADF
  const efd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); // write(2) of 4 bytes: EINVAL
  const sink = c.open(cString("/dev/null"), O_RDWR | O_CLOEXEC, 0); // takes anything
  const wake = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  try {
    const frame = new Uint8Array(64);
    const bad = new TunQueue(0, "t0", ro, wake);
    assert.equal(bad.write(frame, 20), false);
    assert.equal(bad.write(frame, 20), false);
    assert.equal(new TunQueue(1, "t0", efd, wake).write(frame, 4), false);
    assert.deepEqual(bad.txErrors(), { tx_error_EBADF: 2 });
    assert.equal(bad.counters.txDropped, 2);
    const merged = new TunQueue(1, "t0", efd, wake);
    merged.write(frame, 4);
    assert.deepEqual(merged.txErrors({ rx_packets: 7 }), { rx_packets: 7, tx_error_EINVAL: 1 });

    const q = new TunQueue(0, "t0", sink, wake, true);
    assert.equal(q.headroom, VNET_HDR_LEN);
    // A TCPv4 super-packet with a partial checksum: hdr_len 40, gso_size 1448, csum_start 20, offset 16.
    const hdr = [VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, 40, 0, 0xa8, 0x05, 20, 0, 16, 0];
    frame.set(hdr);
    assert.equal(q.loadFrame(frame, 60), 50);
    assert.equal(q.csumPartial, true);
    assert.equal(q.gso, true);
    assert.equal(q.loadFrame(frame, 9), -1);
    assert.equal(q.write(frame, 50, false, 8), true); // a TOA (8 bytes) went into the TCP header
    assert.deepEqual([...frame.subarray(0, 10)], [...hdr.slice(0, 2), 48, ...hdr.slice(3)]);
    assert.deepEqual([q.counters.txPackets, q.counters.txBytes], [1, 50]);
    assert.equal(q.write(frame, 50, true), true); // a generated reply: plain packet, complete checksum
    assert.deepEqual([...frame.subarray(0, 10)], new Array(10).fill(0));
    frame.set([0, 0, 40, 0]); // not a super-packet: hdr_len is left alone
    q.write(frame, 50, false, 8);
    assert.equal(frame[2], 40);
    assert.equal(q.loadFrame(frame, 60), 50);
    assert.deepEqual([q.csumPartial, q.gso], [false, false]);
    assert.deepEqual(q.txErrors(), {});
  } finally {
    for (const fd of [ro, efd, sink, wake]) c.close(fd);
  }
});
