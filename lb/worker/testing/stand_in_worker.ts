/**
 * A stand-in for worker.ts in pool tests: the same message protocol, no TUN and no engine. What it does is
 * chosen by `init.tun`: "ready" starts and answers stats and stop; "silent" never says ready but still
 * stops; "error" reports an error; "throw" dies of an uncaught error. Requests (reconfigure, health, reset,
 * connections) are answered as the real worker does: reconfigure refuses a configuration with another
 * number of workers, health refuses an unknown service, connections lists one row per worker.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { EngineCounters } from "../../stats.ts";
import type { FromWorker } from "../pool.ts";
import type { ToWorker, WorkerInit } from "../worker.ts";

function counters(worker: number): EngineCounters {
  return {
    worker,
    size: worker + 1,
    drops: new Float64Array(0),
    events: new Float64Array(0),
    services: new Float64Array(0),
    servers: new Float64Array(0),
    serviceKeys: [],
    schedulers: [],
    serviceDraining: new Uint8Array(0),
    serverKeys: [],
    serverSlots: [],
    configuredWeights: [],
    serverDraining: [],
    weights: [],
    active: [],
    inactive: [],
    pools: [],
    runtime: { worker },
  };
}

function post(m: FromWorker): void {
  self.postMessage(m);
}

function run(init: WorkerInit): void {
  const ctl = new Int32Array(init.control);
  const worker = init.worker;
  if (init.tun === "error") return post({ type: "error", message: "boom" });
  if (init.tun === "throw") throw new Error("crashed");
  if (init.tun === "ready") post({ type: "ready", worker });
  let statsId = 0;
  // The real worker looks at the control words every loop turn; a timer stands in for the loop.
  const timer = setInterval(() => {
    if (Atomics.load(ctl, 0) !== 0) {
      clearInterval(timer);
      post({ type: "stopped", worker, counters: counters(worker) });
      return;
    }
    const wanted = Atomics.load(ctl, 1);
    if (wanted !== statsId && init.tun === "ready") {
      statsId = wanted;
      post({ type: "stats", id: wanted, counters: counters(worker) });
    }
  }, 5);
}

let me = -1;
let workers = 0;
let services: string[] = [];

self.onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  if (m.type === "init") {
    me = m.init.worker;
    workers = m.init.config.workers;
    services = m.init.config.services.map((s) => `${s.protocol} ${s.vip.text}:${s.port}`);
    run(m.init);
  } else if (m.type === "reconfigure") {
    const ok = m.config.workers === workers;
    if (ok) services = m.config.services.map((s) => `${s.protocol} ${s.vip.text}:${s.port}`);
    post({ type: "reply", id: m.id, worker: me, ...(ok ? {} : { error: "workers changed" }) });
  } else if (m.type === "health" || m.type === "reset") {
    const ok = services.includes(m.service);
    post({ type: "reply", id: m.id, worker: me, ...(ok ? {} : { error: `no service ${m.service}` }) });
  } else if (m.type === "connections") {
    const row = {
      proto: "tcp" as const,
      state: "ESTABLISHED",
      expiresIn: 900,
      source: `198.51.100.${me + 1}:40000`,
      virtual: "198.18.0.100:80",
      local: "198.18.2.1:1025",
      destination: "198.18.3.10:80",
    };
    post({ type: "reply", id: m.id, worker: me, rows: m.max > 0 ? [row] : [] });
  }
};
