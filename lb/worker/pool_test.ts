// The pool's start, stats and stop sequencing, with stand-in workers (testing/stand_in_worker.ts): no TUN,
// no engine, the same messages and control words.
import assert from "node:assert/strict";
import { validateConfig } from "../config.ts";
import { WorkerPool } from "./pool.ts";

const MODULE = new URL("./testing/stand_in_worker.ts", import.meta.url);

function cfg(workers = 2) {
  return validateConfig({
    workers,
    localAddresses: ["198.18.2.1"],
    services: [{ vip: "198.18.0.100", port: 80, realServers: [{ address: "198.18.3.10" }] }],
  });
}

function pool(behaviour: string, timeoutMs = 10_000): WorkerPool {
  const config = cfg();
  return new WorkerPool({
    config,
    tun: behaviour,
    queueFds: [-1, -1],
    vnetHdr: false,
    isnSecret: new Uint32Array(4),
    timeoutMs,
    statsTimeoutMs: 500,
    module: MODULE,
  });
}

const never = new Promise<void>(() => {});

Deno.test("pool: ready, stats from every worker, stop with final counters (idempotent)", async () => {
  const p = pool("ready");
  assert.equal(await p.whenReady(never), true);
  const parts = await p.gather();
  assert.deepEqual(parts.map((c) => c.size).sort(), [1, 2]);
  const finals = await p.stop();
  assert.deepEqual(finals.map((c) => c.runtime.worker).sort(), [0, 1]);
  assert.equal(await p.stop(), finals, "a second stop gets the same answer");
  assert.equal(await p.gather(), parts, "stats after stop: the last complete set, no wake-up of closed fds");
  assert.equal(p.failure, undefined);
});

Deno.test("pool: a stop while workers are starting ends the wait at once (start-up cut short)", async () => {
  const p = pool("silent");
  const { promise: stop, resolve } = Promise.withResolvers<void>();
  const t0 = performance.now();
  setTimeout(resolve, 50);
  assert.equal(await p.whenReady(stop), false);
  assert.ok(performance.now() - t0 < 2_000, "waited for the start timeout instead of the stop");
  assert.equal((await p.stop()).length, 2, "both workers still stop and report");
});

Deno.test("pool: workers that never start fail after the timeout", async () => {
  const p = pool("silent", 200);
  await assert.rejects(p.whenReady(never), /workers did not start in time/);
  await p.stop();
});

Deno.test("pool: a worker's error or crash fails the start with its message", async () => {
  for (
    const [behaviour, message] of [["error", /worker: boom$/], ["throw", /worker \d: .*crashed/]] as const
  ) {
    const p = pool(behaviour, 5_000);
    await assert.rejects(p.whenReady(never), message);
    assert.match((await p.failed).message, message);
    assert.match(p.failure!.message, message);
    await p.stop();
  }
});

Deno.test("pool: reconfigure, setHealth, drainReset and connections ask every worker and settle on all replies", async () => {
  const p = pool("ready");
  assert.equal(await p.whenReady(never), true);
  await p.reconfigure(cfg());
  await p.setHealth("tcp 198.18.0.100:80", "198.18.3.10:80", false, true);
  await p.drainReset("tcp 198.18.0.100:80");
  const rows = await p.connections();
  assert.deepEqual(rows.map((r) => r.source), ["198.51.100.1:40000", "198.51.100.2:40000"], "worker order");
  assert.equal((await p.connections(1)).length, 1, "at most max rows");
  await assert.rejects(p.reconfigure(cfg(3)), /worker \d: workers changed/);
  await assert.rejects(p.setHealth("tcp 198.18.0.1:81", "x:1", true, false), /no service tcp 198.18.0.1:81/);
  await p.stop();
  await assert.rejects(p.connections(), /stopping/, "no requests to stopped workers");
});

// The real worker (worker.ts, a real Engine), its TUN queue stood in for by one of two connected datagram sockets:
// each datagram is one IP packet each way, as a TUN queue without virtio_net_hdr carries them.
Deno.test("pool with the real worker: connections listed, reload drains, a reset writes a RST each way", async () => {
  const { libc } = await import("../../base/sys/libc.ts");
  const { tcp } = await import("../engine/testing/packets.ts");
  const { snapshot } = await import("../stats.ts");
  const c = libc();
  // Two AF_UNIX datagram sockets on abstract names, connected to each other (a socketpair, from socket(2)).
  const name = (tag: string) => {
    const text = new TextEncoder().encode(`fnat-lb-pool-test-${Deno.pid}-${tag}`);
    const sa = new Uint8Array(3 + text.length);
    sa[0] = 1; // AF_UNIX, little-endian sa_family; sun_path[0] = 0: an abstract name
    sa.set(text, 3);
    return sa;
  };
  const fds = [0, 1].map(() => c.socket(1, 2 | 0o4000 | 0o2000000, 0)); // SOCK_DGRAM | NONBLOCK | CLOEXEC
  const names = [name("a"), name("b")];
  for (const i of [0, 1]) assert.equal(c.bind(fds[i], names[i], names[i].length), 0);
  for (const i of [0, 1]) assert.equal(c.connect(fds[i], names[1 - i], names[1 - i].length), 0);
  const make = (servers: string[], workers = 1) =>
    validateConfig({
      workers,
      localAddresses: ["198.18.2.1"],
      services: [{ vip: "198.18.0.100", port: 80, realServers: servers.map((address) => ({ address })) }],
    });
  const config = make(["198.18.3.10"]);
  const p = new WorkerPool({
    config,
    tun: "sp0",
    queueFds: [fds[0]],
    vnetHdr: false,
    isnSecret: new Uint32Array(4),
  });
  const buf = new Uint8Array(2048);
  /** The next packet the worker wrote, within 3 s. */
  const next = async (): Promise<Uint8Array> => {
    for (let i = 0; i < 300; i++) {
      const n = c.read(fds[1], buf, buf.length);
      if (n > 0) return buf.slice(0, n);
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("no packet from the worker");
  };
  try {
    assert.equal(await p.whenReady(never), true);
    const syn = tcp({
      src: "198.51.100.7",
      dst: "198.18.0.100",
      sport: 40000,
      dport: 80,
      seq: 1,
      flags: 0x02,
    });
    assert.equal(c.write(fds[1], syn.b, syn.len), syn.len);
    const fwd = await next();
    assert.deepEqual([...fwd.subarray(16, 20)], [198, 18, 3, 10], "the SYN went to the real server");
    const rows = await p.connections();
    assert.equal(rows.length, 1);
    assert.deepEqual([rows[0].state, rows[0].source, rows[0].destination], [
      "SYN_SENT",
      "198.51.100.7:40000",
      "198.18.3.10:80",
    ]);
    // A reload without the server: it drains, its connection stays.
    const next2 = make(["198.18.3.11"]);
    await p.reconfigure(next2);
    const s = snapshot(next2, await p.gather());
    assert.deepEqual(s.services[0].realServers.map((r) => [r.server, r.draining, r.inactive]), [
      ["198.18.3.11:80", false, 0],
      ["198.18.3.10:80", true, 1],
    ]);
    assert.equal((await p.connections()).length, 1);
    await assert.rejects(p.reconfigure(make(["198.18.3.11"], 2)), /workers changed/);
    // The drained server's connection reset now: one RST toward the client, one toward the server.
    await p.drainReset("tcp 198.18.0.100:80", "198.18.3.10:80");
    const rsts = [await next(), await next()];
    assert.ok(rsts.every((r) => (r[33] & 0x04) !== 0), "RST flag set");
    assert.deepEqual(rsts.map((r) => r.subarray(16, 20).join(".")).sort(), ["198.18.3.10", "198.51.100.7"]);
    assert.deepEqual(await p.connections(), []);
    await p.setHealth("tcp 198.18.0.100:80", "198.18.3.11:80", false, false);
    const down = snapshot(next2, await p.gather());
    assert.equal(down.services[0].realServers[0].effectiveWeight, 0);
    assert.equal(down.services[0].realServers[0].weight, 1);
  } finally {
    await p.stop();
    c.close(fds[0]);
    c.close(fds[1]);
  }
});
