/**
 * The gateway process: one TUN device with a queue per worker, VIPs and local addresses routed into it,
 * and one Deno Worker per queue running the engine (worker/worker.ts, started and stopped together by
 * worker/pool.ts). The kernel does the rest: packets the workers write back are forwarded to the real servers
 * or the clients by the namespace's routing table.
 *
 * Start-up: device, steering, workers (until all are ready), MTU and link up, routes, control socket, the
 * ready line. A stop (signal or `opts.stop`) at any point of it skips the rest and tears down.
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
import type { GatewayConfig } from "./config.ts";
import { isnSecretPath, loadIsnSecret } from "./isn_secret.ts";
import { type EngineCounters, snapshot } from "./stats.ts";
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
import { WorkerPool } from "./worker/pool.ts";

/** Options of {@link runGateway}. */
export interface GatewayOptions {
  /** Called with one line once the device, workers and routes are up. */
  onReady?: (line: string) => void;
  /** Resolves when the gateway should stop (in addition to SIGINT/SIGTERM); also cuts start-up short. */
  stop?: Promise<void>;
  /** Install signal handlers (default true). */
  signals?: boolean;
}

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

/**
 * Runs the gateway until stopped; throws (with a one-line reason) when the device, routes or workers fail.
 * A stop during start-up cuts it short: no routes, no ready line, the same teardown.
 */
export async function runGateway(config: GatewayConfig, opts: GatewayOptions = {}): Promise<void> {
  const dev = TunDevice.open({
    name: config.tun,
    queues: config.workers,
    // USO (Linux 6.2+) is dropped by TunDevice.open where the kernel refuses it; the ready line shows what is on.
    offloads: config.offload
      ? TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_USO4 | TUN_F_USO6
      : undefined,
  });
  const stop = Promise.withResolvers<void>();
  let stopRequested = false;
  const requestStop = () => {
    stopRequested = true;
    stop.resolve();
  };
  let pool: WorkerPool | undefined;
  let control: Deno.Listener | undefined;
  const printStats = () => {
    pool?.gather().then((parts) => {
      if (parts.length > 0) console.error(`fnat-lb stats ${JSON.stringify(snapshot(config, parts))}`);
    });
  };
  const signals = opts.signals ?? true;
  if (signals) {
    Deno.addSignalListener("SIGINT", requestStop);
    Deno.addSignalListener("SIGTERM", requestStop);
    Deno.addSignalListener("SIGUSR2", printStats);
  }
  opts.stop?.then(requestStop);
  // Between the steps of start-up: give up on a stop, or on a worker that failed, before doing more.
  const cut = () => stopRequested || pool?.failure !== undefined;

  /** Brings everything up; false when start-up was cut short. */
  const startUp = async (): Promise<boolean> => {
    const steering = setUpSteering(config, dev);
    if (steering.reason && steering.mode === "handoff" && steering.reason !== "configured") {
      console.error(`fnat-lb steering=handoff reason=${JSON.stringify(steering.reason)}`);
    }
    const isnSecret = await loadIsnSecret(isnSecretPath(config.control, config.tun));
    if (cut()) return false;
    pool = new WorkerPool({
      config,
      tun: dev.name,
      queueFds: dev.queues.map((q) => q.fd),
      vnetHdr: dev.vnetHdr,
      isnSecret,
    });
    if (!(await pool.whenReady(stop.promise)) || cut()) return false;
    await setMtu(dev.name, config.mtu);
    await linkUp(dev.name);
    const routed = new Map(
      [...config.services.map((s) => s.vip), ...config.localAddresses].map((a) => [a.text, a]),
    );
    for (const a of routed.values()) {
      if (cut()) return false;
      await addRoute(a, dev.name);
    }
    const workers = pool;
    const body = async () => JSON.stringify(snapshot(config, await workers.gather())) + "\n";
    control = await listenControl(config.control, body);
    if (cut()) return false;
    const offloads = `0x${dev.offloads.toString(16)}`;
    opts.onReady?.(
      `fnat-lb ready tun=${dev.name} workers=${config.workers} steering=${steering.mode} offloads=${offloads} ` +
        `services=${config.services.length} control=${config.control}`,
    );
    return true;
  };

  let finals: EngineCounters[] = [];
  try {
    if (await startUp()) await Promise.race([stop.promise, pool!.failed]);
  } finally {
    // Stop the workers first (they own the queues' fds while running), then close the device: its routes go
    // with it.
    finals = (await pool?.stop()) ?? [];
    if (signals) {
      Deno.removeSignalListener("SIGINT", requestStop);
      Deno.removeSignalListener("SIGTERM", requestStop);
      Deno.removeSignalListener("SIGUSR2", printStats);
    }
    control?.close();
    await Deno.remove(config.control).catch(() => {});
    await dev.close();
  }
  if (pool?.failure) throw pool.failure;
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
