/**
 * The gateway process: one TUN device with a queue per worker, VIPs and local addresses routed into it,
 * and one Deno Worker per queue running the engine (worker/worker.ts, started and stopped together by
 * worker/pool.ts). The kernel does the rest: packets the workers write back are forwarded to the real servers
 * or the clients by the namespace's routing table.
 *
 * Start-up: device, steering, workers (until all are ready), MTU and link up, routes, control socket, the
 * ready line. A stop (signal or `opts.stop`) at any point of it skips the rest and tears down.
 *
 * The device has two queues per worker: its normal one and its SYN queue. A steering eBPF program
 * (tun/steering_bpf.ts) sends each packet to a queue of the worker that owns its connection, connection
 * attempts to its SYN queue, which the worker reads only after its normal one (established traffic first
 * under a SYN flood); where the program cannot load, the kernel picks queues by flow hash and the workers
 * hand packets to each other through shared-memory rings (worker/handoff_ring.ts), counted.
 *
 * Control: SIGINT/SIGTERM stop it (routes and TUN removed), SIGHUP re-reads the config file and applies the
 * difference (lb/control/reload.ts), SIGUSR2 prints stats on stderr (not SIGUSR1: Deno opens the V8 inspector
 * on 127.0.0.1:9229 when it gets SIGUSR1, so never send it one). The unix socket at `config.control` answers
 * one JSON request per connection (lb/control/server.ts: stats, connections, reload — `mod.ts lb --list …`),
 * health checks (lb/health/) set servers' effective weights, `metrics` serves Prometheus text and a status
 * page (lb/control/http.ts), and with NOTIFY_SOCKET set the gateway speaks sd_notify (READY, RELOADING,
 * STOPPING, STATUS). Every few seconds the pools' use is polled: a local address past 90 % of its pairs
 * gets one warning line (lb/pool_watch.ts).
 *
 * @module
 */
import type { IpAddress } from "../base/addr.ts";
import { type GatewayConfig, loadConfig } from "./config.ts";
import { type MetricsServer, serveMetrics } from "./control/http.ts";
import { planReload, reloadLine, serverKey, serviceKey } from "./control/reload.ts";
import { notifyReady, notifyReloading, notifyStopping } from "./control/sd_notify.ts";
import { serveControl } from "./control/server.ts";
import { HealthMonitor, type HealthTarget } from "./health/monitor.ts";
import { isnSecretPath, loadIsnSecret } from "./isn_secret.ts";
import { PoolWatch } from "./pool_watch.ts";
import { type EngineCounters, type GatewayStats, type ReloadStats, snapshot } from "./stats.ts";
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
import { linkStats } from "./tun/link_stats.ts";
import { attachSteering, buildSteeringProgram, closeProgram, loadSocketFilter } from "./tun/steering_bpf.ts";
import { WorkerPool } from "./worker/pool.ts";

/** How often the pools' use is looked at for {@link PoolWatch}'s warnings, in milliseconds. */
const POOL_WATCH_MS = 5000;

/** Options of {@link runGateway}. */
export interface GatewayOptions {
  /** Called with one line once the device, workers and routes are up. */
  onReady?: (line: string) => void;
  /** Resolves when the gateway should stop (in addition to SIGINT/SIGTERM); also cuts start-up short. */
  stop?: Promise<void>;
  /** Install signal handlers (default true). */
  signals?: boolean;
  /** The file the config came from: a reload (SIGHUP, `--reload`) reads it again. */
  configPath?: string;
}

/** The addresses routed into the device: every VIP and local address, once each, by text. */
function routedAddresses(config: GatewayConfig): Map<string, IpAddress> {
  return new Map([...config.services.map((s) => s.vip), ...config.localAddresses].map((a) => [a.text, a]));
}

/** The health-check targets of a configuration: every real server of every service. */
function healthTargets(config: GatewayConfig): HealthTarget[] {
  return config.services.flatMap((s) =>
    s.realServers.map((r) => ({
      service: serviceKey(s),
      server: serverKey(r),
      address: r.address,
      port: r.port,
      check: s.healthCheck,
    }))
  );
}

/** Tells systemd (when it supervises us) what is going on; a failure to tell is logged, never fatal. */
function notify(send: () => boolean): void {
  try {
    send();
  } catch (e) {
    console.error(`fnat-lb notify error=${JSON.stringify((e as Error).message)}`);
  }
}

/**
 * Loads and attaches the steering program (with one worker too: it still splits connection attempts from
 * the rest); returns "bpf", or "handoff" with the reason it could not.
 */
function setUpSteering(config: GatewayConfig, dev: TunDevice): { mode: string; reason?: string } {
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
export async function runGateway(initial: GatewayConfig, opts: GatewayOptions = {}): Promise<void> {
  let config = initial;
  const startedAt = Date.now();
  const dev = TunDevice.open({
    name: config.tun,
    // Two kernel queues per worker, always (one worker too): 2w for its traffic, 2w + 1 for its SYNs.
    queues: config.workers,
    synQueues: true,
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
  let metrics: MetricsServer | undefined;
  let health: HealthMonitor | undefined;
  const reloads: ReloadStats = { ok: 0, failed: 0 };
  /** How packets reach their worker ("bpf", "handoff"), set at start-up. */
  let steeringMode = "";
  const stats = async (): Promise<GatewayStats> => {
    const parts = await pool!.gather();
    return snapshot(config, parts, {
      health: health?.state(),
      reloads,
      startedAt,
      runtime: await deviceRuntime(),
    });
  };
  /** The device's kernel counters as gateway-level runtime counters (none when they cannot be read). */
  const deviceRuntime = async (): Promise<Record<string, number>> => {
    const link = await linkStats(dev.name).catch(() => null);
    // Packets the kernel dropped at a full queue ring (txqueuelen packets each), before any worker read them.
    return link ? { tun_tx_dropped: link.txDropped } : {};
  };
  const printStats = () => {
    if (pool) stats().then((s) => console.error(`fnat-lb stats ${JSON.stringify(s)}`)).catch(() => {});
  };
  // Local pools nearly exhausted: one line on crossing 90 %, again only after falling below 80 %.
  const poolWatch = new PoolWatch();
  let poolTimer: ReturnType<typeof setInterval> | undefined;
  const watchPools = () => {
    if (pool) {
      stats().then((s) => poolWatch.update(s.pools).forEach((line) => console.error(line))).catch(() => {});
    }
  };
  const summary = () =>
    `${config.services.length} services, ${config.services.reduce((n, s) => n + s.realServers.length, 0)} ` +
    `servers, ${reloads.ok} reloads`;

  /** Starts (or moves) the metrics listener to what the config says. */
  const placeMetrics = async () => {
    const want = config.metrics;
    const at = metrics?.addr;
    if (want && at && at.hostname === want.address.text && at.port === want.port) return;
    await metrics?.shutdown();
    metrics = want ? serveMetrics({ hostname: want.address.text, port: want.port, stats }) : undefined;
  };

  /** Re-reads the config file and applies the difference; one line either way. Serialized. */
  let reloading: Promise<{ ok: boolean; message: string }> = Promise.resolve({ ok: true, message: "" });
  const reload = () => (reloading = reloading.then(reloadOnce, reloadOnce));
  const reloadOnce = async (): Promise<{ ok: boolean; message: string }> => {
    notify(() => notifyReloading());
    let result: { ok: boolean; message: string };
    try {
      if (!opts.configPath) {
        throw new Error("no config file to reload (the gateway was started from a value)");
      }
      const next = await loadConfig(opts.configPath);
      const live = new Map((await stats()).pools.map((p) => [p.address, p.used]));
      const plan = planReload(config, next, (a) => live.get(a) ?? 0);
      if ("error" in plan) throw new Error(`config: ${plan.error}`);
      // The steering program lists the local addresses: without a new one there, its replies would reach
      // the wrong worker and be handed over. Replaced before any route leads a packet to a new address.
      if (steeringMode === "bpf" && [...plan.added, ...plan.removed].some((k) => k.startsWith("local "))) {
        setUpSteering({ ...next, steering: "bpf" }, dev);
      }
      await pool!.reconfigure(next);
      // Only new addresses need a route; a removed VIP or local address keeps its own while it drains.
      const routed = routedAddresses(config);
      for (const [text, a] of routedAddresses(next)) if (!routed.has(text)) await addRoute(a, dev.name);
      config = next;
      // Removed where the service says onServerDown "reset": RST both ways now instead of draining.
      for (const r of plan.resetServers) await pool!.drainReset(r.service, r.server);
      for (const svc of plan.resetServices) await pool!.drainReset(svc);
      health?.update(healthTargets(config));
      await placeMetrics();
      result = { ok: true, message: reloadLine(plan) };
    } catch (e) {
      result = { ok: false, message: `fnat-lb reload failed: ${(e as Error).message}` };
    }
    if (result.ok) reloads.ok++;
    else reloads.failed++;
    reloads.last = { at: new Date().toISOString(), ok: result.ok, message: result.message };
    console.error(result.message);
    notify(() => notifyReady(summary()));
    return result;
  };
  const onHup = () => void reload();

  const signals = opts.signals ?? true;
  if (signals) {
    Deno.addSignalListener("SIGINT", requestStop);
    Deno.addSignalListener("SIGTERM", requestStop);
    Deno.addSignalListener("SIGUSR2", printStats);
    // Before READY=1: systemd's ExecReload sends SIGHUP, whose default action would end the process.
    Deno.addSignalListener("SIGHUP", onHup);
  }
  opts.stop?.then(requestStop);
  // Between the steps of start-up: give up on a stop, or on a worker that failed, before doing more.
  const cut = () => stopRequested || pool?.failure !== undefined;

  /** Brings everything up; false when start-up was cut short. */
  const startUp = async (): Promise<boolean> => {
    const steering = setUpSteering(config, dev);
    steeringMode = steering.mode;
    if (steering.reason && steering.mode === "handoff" && steering.reason !== "configured") {
      console.error(`fnat-lb steering=handoff reason=${JSON.stringify(steering.reason)}`);
    }
    const isnSecret = await loadIsnSecret(config.isnSecretFile ?? isnSecretPath(config.control, config.tun));
    if (cut()) return false;
    pool = new WorkerPool({
      config,
      tun: dev.name,
      queueFds: dev.queues.map((q) => q.fd),
      synQueueFds: dev.queues.map((q) => q.synFd),
      vnetHdr: dev.vnetHdr,
      isnSecret,
    });
    if (!(await pool.whenReady(stop.promise)) || cut()) return false;
    await setMtu(dev.name, config.mtu);
    await linkUp(dev.name);
    for (const a of routedAddresses(config).values()) {
      if (cut()) return false;
      await addRoute(a, dev.name);
    }
    const workers = pool;
    health = new HealthMonitor(healthTargets(config));
    health.onTransition((t) => {
      const svc = config.services.find((s) => serviceKey(s) === t.service);
      workers.setHealth(t.service, t.server, t.up, !t.up && svc?.onServerDown === "reset").catch((e) =>
        console.error(`fnat-lb health apply_error=${JSON.stringify((e as Error).message)}`)
      );
    });
    control = await serveControl(config.control, {
      stats,
      connections: (max) => workers.connections(max),
      reload,
    });
    await placeMetrics();
    if (cut()) return false;
    const offloads = `0x${dev.offloads.toString(16)}`;
    opts.onReady?.(
      `fnat-lb ready tun=${dev.name} workers=${config.workers} steering=${steering.mode} offloads=${offloads} ` +
        `services=${config.services.length} control=${config.control}` +
        (config.metrics ? ` metrics=${metrics!.addr.hostname}:${metrics!.addr.port}` : ""),
    );
    notify(() => notifyReady(summary()));
    poolTimer = setInterval(watchPools, POOL_WATCH_MS);
    return true;
  };

  let finals: EngineCounters[] = [];
  let finalDevice: Record<string, number> = {};
  try {
    if (await startUp()) await Promise.race([stop.promise, pool!.failed]);
  } finally {
    notify(() => notifyStopping());
    clearInterval(poolTimer);
    await health?.stop();
    await metrics?.shutdown();
    control?.close();
    // Stop the workers first (they own the queues' fds while running), then close the device: its routes go
    // with it.
    finals = (await pool?.stop()) ?? [];
    if (signals) {
      Deno.removeSignalListener("SIGINT", requestStop);
      Deno.removeSignalListener("SIGTERM", requestStop);
      Deno.removeSignalListener("SIGUSR2", printStats);
      Deno.removeSignalListener("SIGHUP", onHup);
    }
    await Deno.remove(config.control).catch(() => {});
    finalDevice = await deviceRuntime();
    await dev.close();
  }
  if (pool?.failure) throw pool.failure;
  if (stopRequested && finals.length > 0) {
    console.error(
      `fnat-lb stop tun=${config.tun} ${
        JSON.stringify(snapshot(config, finals, { reloads, startedAt, runtime: finalDevice }))
      }`,
    );
  }
}
