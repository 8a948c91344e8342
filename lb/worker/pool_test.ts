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
