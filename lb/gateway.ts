/**
 * The gateway process: one TUN device with a queue per worker, VIPs and local addresses routed into it,
 * and one Deno Worker per queue running the engine (worker.ts). The kernel does the rest: packets the
 * workers write back are forwarded to the real servers or the clients by the namespace's routing table.
 *
 * With several workers, a steering eBPF program (tun/steering_bpf.ts) sends each packet to the queue of
 * the worker that owns its connection; where it cannot load, the workers hand packets to each other
 * through shared-memory rings (worker/handoff_ring.ts), counted.
 *
 * Control: SIGINT/SIGTERM stop it (routes and TUN removed), SIGUSR2 prints stats on stderr (not SIGUSR1: Deno opens
 * the V8 inspector on 127.0.0.1:9229 when it gets SIGUSR1, so never send it one), and the unix
 * socket at `config.control` answers every connection with the stats as JSON (`mod.ts lb --stats`).
 *
 * @module
 */
import { hostPrefix } from "../base/addr.ts";
import type { GatewayConfig } from "./config.ts";
import { handoffRingBytes } from "./worker/handoff_ring.ts";
import { isnSecretPath, loadIsnSecret } from "./isn_secret.ts";
import { type EngineCounters, type GatewayStats, snapshot } from "./stats.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK, libc } from "./tun/libc.ts";
import {
  addRoute,
  linkUp,
  setMtu,
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  TUN_F_TSO_ECN,
  TUN_F_USO4,
  TUN_F_USO6,
  TunDevice,
} from "./tun/mod.ts";
import { attachSteering, buildSteeringProgram, closeProgram, loadSocketFilter } from "./tun/steering_bpf.ts";
import type { ToWorker, WorkerInit } from "./worker/worker.ts";

/** Data bytes of each hand-off ring (per ordered pair of workers). */
const RING_BYTES = 1 << 20;
/** Longest wait for workers to start or stop. */
const WORKER_TIMEOUT_MS = 10_000;

/** Options of {@link runGateway}. */
export interface GatewayOptions {
  /** Called with one line once the device, workers and routes are up. */
  onReady?: (line: string) => void;
  /** Resolves when the gateway should stop (in addition to SIGINT/SIGTERM). */
  stop?: Promise<void>;
  /** Install signal handlers (default true). */
  signals?: boolean;
}

type FromWorker =
  | { type: "ready"; worker: number }
  | { type: "stats"; id: number; counters: EngineCounters }
  | { type: "stopped"; worker: number; counters: EngineCounters }
  | { type: "error"; message: string };

/** Loads and attaches the steering program; returns "bpf", or "handoff" with the reason it could not. */
function setUpSteering(config: GatewayConfig, dev: TunDevice): { mode: string; reason?: string } {
  if (config.workers === 1) return { mode: "single" };
  if (config.steering === "handoff") return { mode: "handoff", reason: "configured" };
  const v4 = config.localAddresses.filter((a) => a.family === 4).map((a) => a.words[0]);
  const v6 = config.localAddresses.filter((a) => a.family === 6).map((a) => [...a.words]);
  try {
    const fd = loadSocketFilter(buildSteeringProgram(config.workers, v4, v6));
    try {
      attachSteering(dev.queues[0].fd, fd);
    } finally {
      closeProgram(fd);
    }
    return { mode: "bpf" };
  } catch (e) {
    if (config.steering === "bpf") throw new Error(`steering: ${(e as Error).message}`);
    return { mode: "handoff", reason: (e as Error).message };
  }
}

/** Runs the gateway until stopped; throws (with a one-line reason) when the device, routes or workers fail. */
export async function runGateway(config: GatewayConfig, opts: GatewayOptions = {}): Promise<void> {
  const n = config.workers;
  const dev = TunDevice.open({
    name: config.tun,
    queues: n,
    // USO (Linux 6.2+) is dropped by TunDevice.open where the kernel refuses it; the ready line shows what is on.
    offloads: config.offload
      ? TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_USO4 | TUN_F_USO6
      : undefined,
  });
  const c = libc();
  const wakeFds: number[] = [];
  const wakeOne = new BigUint64Array([1n]);
  const controls: Int32Array[] = [];
  const workers: Worker[] = [];
  let last: EngineCounters[] = [];
  let control: Deno.Listener | undefined;
  let stopRequested = false;
  let wake!: () => void;
  const stopped = new Promise<void>((r) => (wake = r));
  const stop = () => {
    stopRequested = true;
    wake();
  };
  const pending = new Map<number, { parts: EngineCounters[]; done: (s: EngineCounters[]) => void }>();
  let nextId = 1;
  const gather = (): Promise<EngineCounters[]> => {
    const id = nextId++;
    return new Promise((resolve) => {
      const entry = { parts: [] as EngineCounters[], done: resolve };
      pending.set(id, entry);
      controls.forEach((ctl, i) => {
        Atomics.store(ctl, 1, id);
        c.write(wakeFds[i], wakeOne, 8); // the worker blocks in poll(): wake it to look
      });
      setTimeout(() => {
        if (pending.delete(id)) resolve(entry.parts.length ? entry.parts : last);
      }, 2000);
    });
  };
  const stats = async (): Promise<GatewayStats> => snapshot(config, await gather());
  const printStats = () => stats().then((s) => console.error(`fnat-lb stats ${JSON.stringify(s)}`));
  const signals = opts.signals ?? true;
  if (signals) {
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    Deno.addSignalListener("SIGUSR2", printStats);
  }
  opts.stop?.then(stop);
  const finals: EngineCounters[] = [];
  let finished!: () => void;
  const allStopped = new Promise<void>((r) => (finished = r));
  let failure: Error | undefined;
  try {
    const steering = setUpSteering(config, dev);
    if (steering.reason && steering.mode === "handoff" && steering.reason !== "configured") {
      console.error(`fnat-lb steering=handoff reason=${JSON.stringify(steering.reason)}`);
    }
    const isnSecret = await loadIsnSecret(isnSecretPath(config.control, config.tun));
    for (let i = 0; i < n; i++) {
      const fd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (fd < 0) throw new Error("eventfd failed");
      wakeFds.push(fd);
    }
    const rings = Array.from(
      { length: n },
      (_, f) =>
        Array.from(
          { length: n },
          (_, t) => (f === t ? null : new SharedArrayBuffer(handoffRingBytes(RING_BYTES))),
        ),
    );
    let ready = 0;
    let allReady!: () => void;
    let failed!: (e: Error) => void;
    const readyP = new Promise<void>((res, rej) => {
      allReady = res;
      failed = rej;
    });
    for (let i = 0; i < n; i++) {
      controls.push(new Int32Array(new SharedArrayBuffer(8)));
      const w = new Worker(new URL("./worker/worker.ts", import.meta.url), { type: "module" });
      w.onmessage = (ev: MessageEvent<FromWorker>) => {
        const m = ev.data;
        if (m.type === "ready") {
          if (++ready === n) allReady();
        } else if (m.type === "stats") {
          const p = pending.get(m.id);
          if (p) {
            p.parts.push(m.counters);
            if (p.parts.length === n) {
              pending.delete(m.id);
              last = p.parts;
              p.done(p.parts);
            }
          }
        } else if (m.type === "stopped") {
          finals.push(m.counters);
          if (finals.length === n) finished();
        } else if (m.type === "error") {
          failure = new Error(`worker: ${m.message}`);
          failed(failure);
          stop();
        }
      };
      w.onerror = (ev) => {
        ev.preventDefault();
        failure = new Error(`worker ${i}: ${ev.message}`);
        failed(failure);
        stop();
      };
      workers.push(w);
      const init: WorkerInit = {
        config,
        worker: i,
        tun: dev.name,
        queueFd: dev.queues[i].fd,
        vnetHdr: dev.vnetHdr,
        isnSecret,
        control: controls[i].buffer as SharedArrayBuffer,
        wakeFds,
        rings,
      };
      w.postMessage({ type: "init", init } satisfies ToWorker);
    }
    const timeout = setTimeout(() => failed(new Error("workers did not start in time")), WORKER_TIMEOUT_MS);
    try {
      await Promise.race([readyP, stopped.then(() => readyP)]);
    } finally {
      clearTimeout(timeout);
    }
    await setMtu(dev.name, config.mtu);
    await linkUp(dev.name);
    const prefixes = new Set<string>();
    for (const s of config.services) prefixes.add(hostPrefix(s.vip));
    for (const a of config.localAddresses) prefixes.add(hostPrefix(a));
    for (const p of prefixes) await addRoute(p, dev.name);
    control = await listenControl(config.control, async () => JSON.stringify(await stats()) + "\n");
    opts.onReady?.(
      `fnat-lb ready tun=${dev.name} workers=${n} steering=${steering.mode} offloads=0x${
        dev.offloads.toString(16)
      } ` +
        `services=${config.services.length} ` +
        `control=${config.control}`,
    );
    await stopped;
  } finally {
    // Stop the workers first (they own the queues' fds while running), then close the device.
    const one = new BigUint64Array([1n]);
    for (const ctl of controls) Atomics.store(ctl, 0, 1);
    for (const w of workers) w.postMessage({ type: "stop" } satisfies ToWorker);
    for (const fd of wakeFds) c.write(fd, one, 8);
    if (workers.length > 0) {
      let t: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([allStopped, new Promise<void>((r) => (t = setTimeout(r, WORKER_TIMEOUT_MS)))]);
      clearTimeout(t);
    }
    for (const w of workers) w.terminate();
    if (signals) {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
      Deno.removeSignalListener("SIGUSR2", printStats);
    }
    control?.close();
    await Deno.remove(config.control).catch(() => {});
    await dev.close();
    for (const fd of wakeFds) c.close(fd);
  }
  if (failure) throw failure;
  if (stopRequested && finals.length > 0) {
    console.error(`fnat-lb stop tun=${config.tun} ${JSON.stringify(snapshot(config, finals))}`);
  }
}

/** Serves the stats on a unix socket: every connection gets one JSON document, then EOF. */
async function listenControl(path: string, body: () => Promise<string>): Promise<Deno.Listener> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")) || "/", { recursive: true });
  await Deno.remove(path).catch(() => {});
  const listener = Deno.listen({ transport: "unix", path });
  (async () => {
    for await (const conn of listener) {
      body().then((text) => writeAll(conn, new TextEncoder().encode(text))).catch(() => {}).finally(() =>
        conn.close()
      );
    }
  })().catch(() => {});
  return listener;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** Reads the stats of a running gateway from its control socket. */
export async function readStats(path: string): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  const decoder = new TextDecoder();
  const buf = new Uint8Array(65536);
  let text = "";
  try {
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      text += decoder.decode(buf.subarray(0, n), { stream: true });
    }
  } finally {
    conn.close();
  }
  return text + decoder.decode();
}
