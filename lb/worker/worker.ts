/**
 * One gateway worker, run as a Deno Worker: its own engine (connections, local-port slice), its own TUN
 * queue, and the hand-off rings to and from the other workers. The main thread (gateway.ts) opens the
 * device and passes the queue's fd number: fds are process-wide, so the worker wraps it in its own
 * `TunQueue` (over this thread's own binding of base/sys/libc.ts) and nothing crosses threads on the packet
 * path but the hand-off rings.
 *
 * Loop turn: poll(queue fd, wake eventfd, SYN queue fd) → drain the rings from other workers → read up to
 * BATCH packets from the normal queue and process them (write back, or push to the owner's ring and wake
 * it) → then at most SYN_BUDGET from the SYN queue → once a second, expire. Established traffic comes first:
 * a SYN flood fills the SYN queue's own kernel ring (and is dropped there, counted by the kernel in the
 * device's tx_dropped), while each turn still admits a bounded number of new connections.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { GatewayConfig } from "../config.ts";
import { Engine } from "../engine/engine.ts";
import type { ConnectionRow } from "../stats.ts";
import { HandoffRing } from "./handoff_ring.ts";
import { eventfdSignal } from "../../base/sys/libc.ts";
import { ALIGNED_HUGE_MEMORY } from "../../base/sys/aligned.ts";
import { TUN_POLL_SYN_READABLE, TUN_POLL_WOKEN, TunQueue } from "../tun/tun_device.ts";

/** Everything a worker needs, sent once by the main thread. */
export interface WorkerInit {
  /** The validated configuration. */
  config: GatewayConfig;
  /** This worker's index. */
  worker: number;
  /** TUN device name (for error messages). */
  tun: string;
  /** This worker's queue fd (kernel queue 2w: everything but connection attempts). */
  queueFd: number;
  /** This worker's SYN queue fd (kernel queue 2w + 1: TCP SYN without ACK), -1 for none. */
  synQueueFd: number;
  /** Packets carry a virtio_net_hdr (TUN offloads on). */
  vnetHdr: boolean;
  /** The ISN secret shared by all workers and kept across restarts (isn_secret.ts). */
  isnSecret: Uint32Array;
  /**
   * Control words shared with the main thread (Int32 × 3): [0] stop when non-zero, [1] id of the latest
   * stats request, [2] requests (reconfigure, health, reset, connections) posted so far. Read every loop turn, so stopping and stats never wait on message delivery to a thread
   * that is blocked in poll().
   */
  control: SharedArrayBuffer;
  /** Wake eventfd of every worker, by index. */
  wakeFds: number[];
  /** rings[from][to]: shared buffers of the hand-off rings (null where from === to). */
  rings: (SharedArrayBuffer | null)[][];
}

/** Messages the main thread sends; those with an `id` are answered with a {@link WorkerReply} of that id. */
export type ToWorker =
  | { type: "init"; init: WorkerInit }
  | { type: "reconfigure"; id: number; config: GatewayConfig }
  | { type: "health"; id: number; service: string; server: string; up: boolean; reset: boolean }
  | { type: "reset"; id: number; service: string; server?: string }
  | { type: "connections"; id: number; max: number }
  | { type: "stop" };

/** A worker's answer to a request: `error` when it failed, `rows` for a connections request. */
export interface WorkerReply {
  /** "reply". */
  type: "reply";
  /** The request's id. */
  id: number;
  /** The answering worker. */
  worker: number;
  /** Why the request failed (nothing was changed). */
  error?: string;
  /** Connections listed (a connections request). */
  rows?: ConnectionRow[];
}

/** A read buffer: the largest IP packet plus room for the TOA the engine may insert. */
const BUF_SIZE = 65536 + 64;
/** Packets read per loop turn from the normal queue before the SYN queue, rings, timers and messages. */
const BATCH = 256;
/**
 * Connection attempts read per loop turn from the SYN queue, after the normal queue: enough for a fast
 * accept rate (a turn takes well under a millisecond when busy), few enough that a flood cannot take the
 * loop from established traffic. What does not fit waits in the kernel's ring, or is dropped there.
 */
const SYN_BUDGET = 64;
/** Longest wait for packets before the loop looks at the clock again. */
const POLL_MS = 250;
/** The configuration's busyPollUs in ms (performance.now()'s unit); a reconfigure changes it. */
let busyPollMs = 0;
/** rx_packets when the loop last busy-polled: it polls again only after a turn that read more. */
let polledAfter = 0;

function now(): number {
  return performance.now() / 1000;
}

const yieldChannel = new MessageChannel();
let yieldResolve: (() => void) | undefined;
yieldChannel.port1.onmessage = () => yieldResolve?.();

/** Lets queued messages (stop, stats, weights) run: a macrotask turn without setTimeout's 4 ms clamp. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((r) => {
    yieldResolve = r;
    yieldChannel.port2.postMessage(null);
  });
}

let engine: Engine | undefined;
let running = true;
const runtime = {
  rx_packets: 0,
  tx_packets: 0,
  tx_dropped: 0,
  handoff_out: 0,
  handoff_in: 0,
  handoff_ring_full: 0,
  loop_errors: 0,
  loop_turns: 0,
  gso_packets: 0,
  csum_partial: 0,
  /** Packets read from the SYN queue (connection attempts; also counted in rx_packets). */
  rx_syn_packets: 0,
  /** Loop turns that read a whole SYN_BUDGET: SYNs were arriving faster than the budget admits. */
  syn_budget_exhausted: 0,
  /** Busy polls (busyPollUs) after a turn with packets. */
  busy_polls: 0,
  /** Busy polls that found something to do before their time ran out (the rest ended in a sleeping poll). */
  busy_poll_hits: 0,
};

let queue: TunQueue | undefined;

/** The engine's counters with this worker's runtime ones, TUN write errors by errno name among them. */
function counters() {
  const r: Record<string, number> = { ...runtime };
  queue?.txErrors(r);
  return engine!.exportCounters(r);
}

async function run(init: WorkerInit): Promise<void> {
  const { config, worker } = init;
  const workers = config.workers;
  busyPollMs = config.busyPollUs / 1000;
  // The worker may call the kernel, the engine may not: it hands over aligned, huge-page table memory.
  engine = new Engine(config, {
    worker,
    workers,
    now: now(),
    isnSecret: init.isnSecret,
    memory: ALIGNED_HUGE_MEMORY,
  });
  // The queue owns the poll set (its fd + this worker's wake eventfd) and the vnet header framing.
  const q = queue = new TunQueue(
    worker,
    init.tun,
    init.queueFd,
    init.wakeFds[worker],
    init.vnetHdr,
    init.synQueueFd,
  );
  const outRings: (HandoffRing | null)[] = init.rings[worker].map((s) => (s ? new HandoffRing(s) : null));
  const inRings: HandoffRing[] = [];
  for (let f = 0; f < workers; f++) {
    const s = init.rings[f][worker];
    if (s) inRings.push(new HandoffRing(s));
  }
  const e = engine;
  const wakeNeeded = new Uint8Array(workers);
  // One frame buffer; the IP packet starts after the vnet header (if any): one view, made once.
  const buf = new Uint8Array(BUF_SIZE);
  const hr = q.headroom;
  const pkt = buf.subarray(hr);
  /** Runs the packet just read or loaded (`n` IP bytes at pkt) through the engine; returns bytes to write. */
  const handle = (n: number, t: number): number => {
    if (q.csumPartial) runtime.csum_partial++;
    if (q.gso) runtime.gso_packets++;
    return e.process(pkt, n, t, q.csumPartial);
  };
  /** Writes the engine's output `out` (> 0), then any more packets it has for the same input (fragments). */
  const send = (out: number): void => {
    for (let m = out; m > 0; m = e.nextOutput(pkt)) {
      if (q.write(buf, m, e.generated, e.headerDelta)) runtime.tx_packets++;
      else runtime.tx_dropped++;
    }
  };
  /**
   * Runs the packet in `buf` (`n` IP bytes at pkt) through the engine: written back, or handed to its owner
   * — the whole frame, vnet header included, which the owner loads as if read (a datagram reassembled here
   * may belong to a third worker).
   */
  const dispatch = (n: number, t: number): void => {
    const out = handle(n, t);
    if (out > 0) send(out);
    else if (out < 0) handOff(out);
  };
  /** Runs the packet just read from the device. */
  const received = (n: number, t: number): void => {
    runtime.rx_packets++;
    dispatch(n, t);
  };
  /** Hands the frame in `buf` (the engine's `length` bytes: a datagram it reassembled may be longer) over. */
  const handOff = (out: number): void => {
    const owner = -out - 1;
    if (outRings[owner]!.push(buf, hr + e.length)) {
      runtime.handoff_out++;
      wakeNeeded[owner] = 1;
    } else {
      runtime.handoff_ring_full++;
    }
  };
  let lastTick = now();
  let synproxyWas = false;
  let lastYield = lastTick;
  const ctl = new Int32Array(init.control);
  let statsId = 0;
  self.postMessage({ type: "ready", worker });
  while (running && Atomics.load(ctl, 0) === 0) {
    // A blocking poll on this worker's own thread (TunQueue.poll): no thread-pool hop and promise per
    // wake-up, which is most of the latency of a packet. The main thread writes this worker's eventfd after
    // changing the control words or posting a message, so the poll returns at once.
    let ready = 0;
    if (busyPollMs > 0 && runtime.rx_packets !== polledAfter && Atomics.load(ctl, 2) === handled) {
      // busyPollUs: after a turn that moved packets, poll without sleeping for a while. A blocked thread's
      // wake-up costs the next packet tens of µs; a busy flow's next packet (the reply, the next ACK) is
      // often nearer than that. Once per turn with packets, so an idle worker never spins.
      polledAfter = runtime.rx_packets;
      runtime.busy_polls++;
      const end = performance.now() + busyPollMs;
      do ready = q.poll(0); while (ready === 0 && performance.now() < end);
      if (ready !== 0) runtime.busy_poll_hits++;
    }
    if (ready === 0) ready = q.poll(Atomics.load(ctl, 2) !== handled ? 0 : POLL_MS);
    runtime.loop_turns++;
    let t = now();
    if (Atomics.load(ctl, 0) !== 0) break;
    const wanted = Atomics.load(ctl, 1);
    if (wanted !== statsId) {
      statsId = wanted;
      self.postMessage({ type: "stats", id: wanted, counters: counters() });
    }
    if (
      ready === 0 || (ready & TUN_POLL_WOKEN) !== 0 || t - lastYield >= 1 || Atomics.load(ctl, 2) !== handled
    ) {
      // Messages (reconfigure, health, listings) are delivered while the loop yields.
      await yieldToEventLoop();
      // A request posted from the main thread is not always delivered in a MessageChannel turn; a timer
      // turn delivers it. Only while one is outstanding, so hand-off wake-ups keep the cheap yield.
      if (Atomics.load(ctl, 2) !== handled) await new Promise((r) => setTimeout(r, 0));
      lastYield = t = now();
      if (!running) break;
    }
    try {
      // Packets other workers handed over: this worker owns them.
      for (const r of inRings) {
        for (let f = r.pop(buf); f > 0; f = r.pop(buf)) {
          runtime.handoff_in++;
          const n = q.loadFrame(buf, f);
          if (n < 0) continue;
          dispatch(n, t);
        }
      }
      // Established traffic first: the normal queue until EAGAIN or BATCH, then a bounded number of SYNs.
      for (let i = 0; i < BATCH; i++) {
        const n = q.read(buf);
        if (n <= 0) break;
        received(n, t);
      }
      if ((ready & TUN_POLL_SYN_READABLE) !== 0) {
        let syns = 0;
        for (; syns < SYN_BUDGET; syns++) {
          const n = q.readSyn(buf);
          if (n <= 0) break;
          runtime.rx_syn_packets++;
          received(n, t);
        }
        if (syns === SYN_BUDGET) runtime.syn_budget_exhausted++;
      }
      for (let w = 0; w < workers; w++) {
        if (wakeNeeded[w]) {
          wakeNeeded[w] = 0;
          eventfdSignal(init.wakeFds[w]);
        }
      }
    } catch (err) {
      // A device error ends nothing but this turn: count it, say it once per second at most.
      runtime.loop_errors++;
      if (runtime.loop_errors === 1 || t - lastTick >= 1) {
        console.error(`fnat-lb worker=${worker} error=${JSON.stringify((err as Error).message)}`);
      }
    }
    if (t - lastTick >= 1) {
      e.tick(t);
      lastTick = t;
      if (e.synproxyActive !== synproxyWas) {
        // The `auto` SYN proxy switched (engine.ts counts it): operators see when and why in the log.
        synproxyWas = e.synproxyActive;
        console.log(
          `fnat-lb worker=${worker} synproxy=${synproxyWas ? "on" : "off"} half_open=${e.halfOpen} ` +
            `threshold=${Math.ceil(config.synproxyThreshold / workers)}`,
        );
      }
    }
  }
  yieldChannel.port1.close();
  self.postMessage({ type: "stopped", worker, counters: counters() });
}

let workerIndex = -1;
/** Requests handled, against the count the pool posted (control word 2). */
let handled = 0;

/** Writes a packet the engine built on the control path (a reset) to this worker's queue. */
function emit(b: Uint8Array, len: number): void {
  const q = queue;
  if (!q) return;
  const frame = new Uint8Array(q.headroom + len);
  frame.set(b.subarray(0, len), q.headroom);
  if (q.write(frame, len, true, 0)) runtime.tx_packets++;
  else runtime.tx_dropped++;
}

/** Resets the connections of `server` of `service` (every server of it when absent); returns how many. */
function reset(e: Engine, service: string, server?: string): number {
  const svc = e.serviceSlot(service);
  if (svc < 0) throw new Error(`no service ${service}`);
  if (server === undefined) {
    let n = 0;
    for (let j = 0; j < e.sets[svc].size; j++) n += e.resetServer(svc, j, emit);
    return n;
  }
  const j = e.serverSlot(svc, server);
  if (j < 0) throw new Error(`no server ${server} in ${service}`);
  return e.resetServer(svc, j, emit);
}

/** Handles a request (control path, between loop turns) and posts its reply. */
function request(m: Exclude<ToWorker, { type: "init" | "stop" }>): void {
  const reply: WorkerReply = { type: "reply", id: m.id, worker: workerIndex };
  handled++;
  try {
    const e = engine;
    if (!e) throw new Error("worker not started");
    if (m.type === "reconfigure") {
      e.reconfigure(m.config);
      busyPollMs = m.config.busyPollUs / 1000;
    } else if (m.type === "health") {
      const svc = e.serviceSlot(m.service);
      const j = e.serverSlot(svc, m.server);
      if (j < 0) throw new Error(`no server ${m.server} in ${m.service}`);
      e.setServerUp(svc, j, m.up);
      if (m.reset) e.resetServer(svc, j, emit);
    } else if (m.type === "reset") {
      reset(e, m.service, m.server);
    } else {
      reply.rows = e.connections(m.max);
    }
  } catch (err) {
    reply.error = (err as Error).message;
  }
  self.postMessage(reply);
}

self.onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  if (m.type === "init") {
    workerIndex = m.init.worker;
    run(m.init).catch((err) => self.postMessage({ type: "error", message: (err as Error).message }));
  } else if (m.type === "stop") {
    running = false;
  } else {
    request(m);
  }
};
