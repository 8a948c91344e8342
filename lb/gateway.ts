/**
 * The gateway process: one TUN device, VIPs and local addresses routed into it, and the packet loop that
 * feeds every packet through the engine and writes the result back. The kernel does the rest: packets we
 * write are forwarded to the real servers or the clients by the namespace's routing table.
 *
 * Control: SIGINT/SIGTERM stop it (routes and TUN removed), SIGUSR1 prints stats on stderr, and the unix
 * socket at `config.control` answers every connection with the stats as JSON (`mod.ts lb --stats`).
 *
 * @module
 */
import type { GatewayConfig } from "./config.ts";
import { Engine } from "./engine/engine.ts";
import { snapshot } from "./stats.ts";
import { addRoute, linkUp, setMtu, TunDevice, type TunQueue } from "./tun/mod.ts";

/** A read buffer: the largest IP packet plus room for the TOA the engine may insert. */
const BUF_SIZE = 65536 + 64;
/** Longest wait for packets before the loop looks at the clock (timeouts) again. */
const POLL_MS = 250;
/** Packets handled per loop turn before yielding to timers and signals. */
const BATCH = 256;

/** Options of {@link runGateway}. */
export interface GatewayOptions {
  /** Called with one line once the device and routes are up. */
  onReady?: (line: string) => void;
  /** Resolves when the gateway should stop (in addition to SIGINT/SIGTERM). */
  stop?: Promise<void>;
  /** Install signal handlers (default true). */
  signals?: boolean;
}

function now(): number {
  return performance.now() / 1000;
}

async function pump(q: TunQueue, engine: Engine, running: () => boolean): Promise<void> {
  const buf = new Uint8Array(BUF_SIZE);
  let lastTick = now();
  while (running()) {
    const readable = await q.waitReadable(POLL_MS);
    const t = now();
    if (readable) {
      for (let i = 0; i < BATCH; i++) {
        const n = q.read(buf);
        if (n <= 0) break;
        const out = engine.process(buf, n, t);
        if (out > 0) q.write(buf, out);
      }
    }
    if (t - lastTick >= 1) {
      engine.tick(t);
      lastTick = t;
    }
  }
}

/** Runs the gateway until stopped; throws (with a one-line reason) when the device or routes fail. */
export async function runGateway(config: GatewayConfig, opts: GatewayOptions = {}): Promise<void> {
  if (config.workers !== 1) {
    throw new Error(`config: workers: ${config.workers} workers are not available in this build; use 1`);
  }
  const engine = new Engine(config, { now: now() });
  const dev = TunDevice.open({ name: config.tun });
  let running = true;
  let wake!: () => void;
  const stopped = new Promise<void>((r) => (wake = r));
  const stop = () => {
    running = false;
    wake();
  };
  const printStats = () => console.error(`fnat-lb stats ${JSON.stringify(snapshot([engine]))}`);
  const signals = opts.signals ?? true;
  if (signals) {
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    Deno.addSignalListener("SIGUSR1", printStats);
  }
  opts.stop?.then(stop);
  let control: Deno.Listener | undefined;
  try {
    await setMtu(dev.name, config.mtu);
    await linkUp(dev.name);
    const prefixes = new Set<string>();
    for (const s of config.services) prefixes.add(s.vip.includes(":") ? `${s.vip}/128` : `${s.vip}/32`);
    for (const a of config.localAddresses) prefixes.add(a.includes(":") ? `${a}/128` : `${a}/32`);
    for (const p of prefixes) await addRoute(p, dev.name);
    control = await listenControl(config.control, () => JSON.stringify(snapshot([engine])) + "\n");
    const loop = pump(dev.queues[0], engine, () => running);
    opts.onReady?.(
      `fnat-lb ready tun=${dev.name} workers=1 services=${config.services.length} control=${config.control}`,
    );
    await Promise.race([stopped, loop]);
    running = false;
    await dev.close();
    await loop;
  } finally {
    running = false;
    if (signals) {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
      Deno.removeSignalListener("SIGUSR1", printStats);
    }
    control?.close();
    await Deno.remove(config.control).catch(() => {});
    await dev.close();
  }
  console.error(`fnat-lb stop tun=${config.tun} ${JSON.stringify(snapshot([engine]))}`);
}

/** Serves the stats on a unix socket: every connection gets one JSON document, then EOF. */
async function listenControl(path: string, body: () => string): Promise<Deno.Listener> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")) || "/", { recursive: true });
  await Deno.remove(path).catch(() => {});
  const listener = Deno.listen({ transport: "unix", path });
  (async () => {
    for await (const conn of listener) {
      writeAll(conn, new TextEncoder().encode(body())).catch(() => {}).finally(() => conn.close());
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
