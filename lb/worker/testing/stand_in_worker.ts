/**
 * A stand-in for worker.ts in pool tests: the same message protocol, no TUN and no engine. What it does is
 * chosen by `init.tun`: "ready" starts and answers stats and stop; "silent" never says ready but still
 * stops; "error" reports an error; "throw" dies of an uncaught error.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { EngineCounters } from "../../stats.ts";
import type { FromWorker } from "../pool.ts";
import type { ToWorker, WorkerInit } from "../worker.ts";

function counters(worker: number): EngineCounters {
  return {
    size: worker + 1,
    drops: new Float64Array(0),
    events: new Float64Array(0),
    services: new Float64Array(0),
    servers: new Float64Array(0),
    weights: [],
    active: [],
    inactive: [],
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

self.onmessage = (ev: MessageEvent<ToWorker>) => {
  if (ev.data.type === "init") run(ev.data.init);
};
