/**
 * The gateway's workers as one pool, from the main thread: spawn one Deno Worker per TUN queue (worker.ts),
 * wait until all are ready, gather their counters, stop them. The gateway (gateway.ts) only sequences these.
 *
 * Workers block in poll() on their queue and their wake eventfd, so a message alone may wait up to a poll
 * timeout before it is seen. Stop and stats therefore go through shared control words (Int32 × 3 per worker:
 * [0] stop when non-zero, [1] id of the latest stats request, [2] requests posted, which the worker yields
 * for until it has handled as many), and the pool writes the worker's eventfd after
 * changing them so that the poll returns at once. Replies come back as messages ({@link FromWorker}).
 *
 * @module
 */
import type { GatewayConfig } from "../config.ts";
import type { ConnectionRow, EngineCounters } from "../stats.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK, eventfdSignal, libc } from "../../base/sys/libc.ts";
import { handoffRingBytes } from "./handoff_ring.ts";
import type { ToWorker, WorkerInit, WorkerReply } from "./worker.ts";

/** Messages a worker sends to the main thread. */
export type FromWorker =
  | { type: "ready"; worker: number }
  | { type: "stats"; id: number; counters: EngineCounters }
  | { type: "stopped"; worker: number; counters: EngineCounters }
  | { type: "error"; message: string }
  | WorkerReply;

/** A request in flight to every worker: the replies so far and how to settle. */
interface Request {
  replies: WorkerReply[];
  expected: number;
  done: (replies: WorkerReply[]) => void;
}

/** A request message without its id (the pool numbers them). */
type RequestBody =
  | { type: "reconfigure"; config: GatewayConfig }
  | { type: "health"; service: string; server: string; up: boolean; reset: boolean }
  | { type: "reset"; service: string; server?: string }
  | { type: "connections"; max: number };

/** What {@link WorkerPool} needs to start its workers. */
export interface PoolOptions {
  /** The validated configuration; `config.workers` workers are started. */
  config: GatewayConfig;
  /** TUN device name (for the workers' error messages). */
  tun: string;
  /** One queue fd per worker, by index. */
  queueFds: readonly number[];
  /** One SYN queue fd per worker, by index (TunQueue.synFd); absent or -1: none. */
  synQueueFds?: readonly number[];
  /** Packets carry a virtio_net_hdr (TUN offloads on). */
  vnetHdr: boolean;
  /** The ISN secret every worker shares. */
  isnSecret: Uint32Array;
  /** Data bytes of each hand-off ring (per ordered pair of workers); default 1 MiB. */
  ringBytes?: number;
  /** Longest wait for the workers to start, and to stop; default 10 s. */
  timeoutMs?: number;
  /** Longest wait for a stats answer before the last complete one is used; default 2 s. */
  statsTimeoutMs?: number;
  /** The module the workers run; default worker.ts (tests pass a stand-in). */
  module?: URL;
}

/** A stats request in flight: the parts so far and the resolver of {@link WorkerPool.gather}. */
interface Gathering {
  parts: EngineCounters[];
  done: (parts: EngineCounters[]) => void;
}

/** One Deno Worker per TUN queue, started, asked and stopped together. */
export class WorkerPool {
  /** Number of workers. */
  readonly size: number;
  /** Resolves with the first failure of a worker (an error message, or an uncaught error); never rejects. */
  readonly failed: Promise<Error>;

  private readonly c = libc();
  private readonly workers: Worker[] = [];
  private readonly controls: Int32Array[] = [];
  private readonly wakeFds: number[] = [];
  private readonly ready = new Set<number>();
  private readonly allReady = Promise.withResolvers<void>();
  private readonly failedWith = Promise.withResolvers<Error>();
  private readonly allStopped = Promise.withResolvers<void>();
  private readonly finals: EngineCounters[] = [];
  /** Workers that will not run again: stopped, or failed (their loop has ended; no "stopped" follows). */
  private readonly ended = new Set<number>();
  private readonly pending = new Map<number, Gathering>();
  private readonly requests = new Map<number, Request>();
  private readonly timeoutMs: number;
  private readonly statsTimeoutMs: number;
  private nextId = 1;
  private last: EngineCounters[] = [];
  private stopping: Promise<EngineCounters[]> | undefined;
  private firstFailure: Error | undefined;

  /** Spawns the workers and hands each its init; throws (with nothing left running) if that fails. */
  constructor(opts: PoolOptions) {
    const n = opts.config.workers;
    this.size = n;
    this.failed = this.failedWith.promise;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.statsTimeoutMs = opts.statsTimeoutMs ?? 2_000;
    try {
      for (let i = 0; i < n; i++) {
        const fd = this.c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0) throw new Error("eventfd failed");
        this.wakeFds.push(fd);
      }
      const ringBytes = handoffRingBytes(opts.ringBytes ?? 1 << 20);
      const rings = Array.from(
        { length: n },
        (_, f) => Array.from({ length: n }, (_, t) => (f === t ? null : new SharedArrayBuffer(ringBytes))),
      );
      const module = opts.module ?? new URL("./worker.ts", import.meta.url);
      for (let i = 0; i < n; i++) {
        this.controls.push(new Int32Array(new SharedArrayBuffer(12)));
        const w = new Worker(module, { type: "module" });
        w.onmessage = (ev: MessageEvent<FromWorker>) => this.receive(i, ev.data);
        w.onerror = (ev) => {
          ev.preventDefault();
          this.fail(i, new Error(`worker ${i}: ${ev.message}`));
        };
        this.workers.push(w);
        const init: WorkerInit = {
          config: opts.config,
          worker: i,
          tun: opts.tun,
          queueFd: opts.queueFds[i],
          synQueueFd: opts.synQueueFds?.[i] ?? -1,
          vnetHdr: opts.vnetHdr,
          isnSecret: opts.isnSecret,
          control: this.controls[i].buffer as SharedArrayBuffer,
          wakeFds: this.wakeFds,
          rings,
        };
        w.postMessage({ type: "init", init } satisfies ToWorker);
      }
    } catch (e) {
      for (const w of this.workers) w.terminate();
      for (const fd of this.wakeFds) this.c.close(fd);
      throw e;
    }
  }

  /** The first failure of a worker, once there is one. */
  get failure(): Error | undefined {
    return this.firstFailure;
  }

  /**
   * Waits until every worker is ready: true. False as soon as `stop` resolves first (start-up is cut
   * short, nothing more should be set up). Throws on a worker failure or after the start timeout.
   */
  async whenReady(stop: Promise<unknown>): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("workers did not start in time")), this.timeoutMs);
    });
    try {
      return await Promise.race([
        this.allReady.promise.then(() => true),
        stop.then(() => false),
        this.failed.then((e) => Promise.reject(e)),
        late,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Every worker's counters, asked through the control words. After the stats timeout it settles for the
   * answers it has, or else the last complete set (empty before the first).
   */
  gather(): Promise<EngineCounters[]> {
    // Once stopping, the eventfds are (or are about to be) closed, and their numbers may be reused.
    if (this.stopping) return Promise.resolve(this.last);
    const id = this.nextId++;
    const { promise, resolve } = Promise.withResolvers<EngineCounters[]>();
    const entry: Gathering = { parts: [], done: resolve };
    this.pending.set(id, entry);
    this.controls.forEach((ctl, i) => {
      Atomics.store(ctl, 1, id);
      this.wake(i);
    });
    setTimeout(() => {
      if (this.pending.delete(id)) resolve(entry.parts.length ? entry.parts : this.last);
    }, this.statsTimeoutMs);
    return promise;
  }

  /**
   * Applies a new configuration in every worker (Engine.reconfigure): matched services and servers keep
   * their slots, new ones are added, removed ones drain. Rejects with the first worker's error (a worker
   * refuses before changing anything, and all get the same configuration).
   */
  async reconfigure(config: GatewayConfig): Promise<void> {
    await this.ask({ type: "reconfigure", config });
  }

  /**
   * Marks `server` ("198.18.3.10:80") of `service` ("tcp 198.18.0.100:80") up or down in every worker
   * (down: effective weight 0, configured weight kept); `reset`: its existing connections get a RST both
   * ways now and end.
   */
  async setHealth(service: string, server: string, up: boolean, reset: boolean): Promise<void> {
    await this.ask({ type: "health", service, server, up, reset });
  }

  /** Resets (RST both ways) and ends the connections of `server` of `service`, or of every server of it. */
  async drainReset(service: string, server?: string): Promise<void> {
    await this.ask({ type: "reset", service, server });
  }

  /** Up to `max` live connections over all workers (ipvsadm -Lnc rows). */
  async connections(max = 10000): Promise<ConnectionRow[]> {
    const replies = await this.ask({ type: "connections", max });
    const rows: ConnectionRow[] = [];
    for (const r of replies) for (const row of r.rows ?? []) if (rows.length < max) rows.push(row);
    return rows;
  }

  /**
   * Posts a request to every running worker, wakes them (they see messages when their loop yields), and
   * waits for every reply (bounded by the timeout). Rejects with the first error a worker reports.
   */
  private async ask(body: RequestBody): Promise<WorkerReply[]> {
    if (this.stopping) throw new Error("workers are stopping");
    const id = this.nextId++;
    const targets = this.workers.map((_, i) => i).filter((i) => !this.ended.has(i));
    const { promise, resolve } = Promise.withResolvers<WorkerReply[]>();
    const req: Request = { replies: [], expected: targets.length, done: resolve };
    this.requests.set(id, req);
    for (const i of targets) {
      this.workers[i].postMessage({ ...body, id } as ToWorker);
      // Counted in the control words too: the worker keeps yielding until it has handled as many.
      Atomics.add(this.controls[i], 2, 1);
      this.wake(i);
    }
    if (targets.length === 0) resolve([]);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`workers did not answer ${body.type} in time`)),
        this.timeoutMs,
      );
    });
    try {
      const replies = await Promise.race([promise, late]);
      const bad = replies.find((r) => r.error !== undefined);
      if (bad) throw new Error(`worker ${bad.worker}: ${bad.error}`);
      return replies.sort((a, b) => a.worker - b.worker);
    } finally {
      clearTimeout(timer);
      this.requests.delete(id);
    }
  }

  /**
   * Stops every worker (bounded by the timeout), terminates them and closes the wake eventfds; returns the
   * final counters of those that reported. Idempotent: later calls get the same answer.
   */
  stop(): Promise<EngineCounters[]> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  private async stopAll(): Promise<EngineCounters[]> {
    for (const ctl of this.controls) Atomics.store(ctl, 0, 1);
    for (const w of this.workers) w.postMessage({ type: "stop" } satisfies ToWorker);
    for (let i = 0; i < this.workers.length; i++) this.wake(i);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, this.timeoutMs)));
    await Promise.race([this.allStopped.promise, late]);
    clearTimeout(timer);
    for (const w of this.workers) w.terminate();
    for (const fd of this.wakeFds) this.c.close(fd);
    return this.finals;
  }

  private wake(i: number): void {
    // The worker blocks in poll(): a write to its eventfd makes it look at the control words now.
    eventfdSignal(this.wakeFds[i]);
  }

  private fail(worker: number, e: Error): void {
    this.firstFailure ??= e;
    this.failedWith.resolve(this.firstFailure);
    this.end(worker);
  }

  private end(worker: number): void {
    this.ended.add(worker);
    if (this.ended.size === this.size) this.allStopped.resolve();
  }

  private receive(worker: number, m: FromWorker): void {
    if (m.type === "ready") {
      this.ready.add(m.worker);
      if (this.ready.size === this.size) this.allReady.resolve();
    } else if (m.type === "stats") {
      const p = this.pending.get(m.id);
      if (!p) return;
      p.parts.push(m.counters);
      if (p.parts.length === this.size) {
        this.pending.delete(m.id);
        this.last = p.parts;
        p.done(p.parts);
      }
    } else if (m.type === "stopped") {
      this.finals.push(m.counters);
      this.end(worker);
    } else if (m.type === "reply") {
      const r = this.requests.get(m.id);
      if (!r) return;
      r.replies.push(m);
      if (r.replies.length === r.expected) r.done(r.replies);
    } else if (m.type === "error") {
      this.fail(worker, new Error(`worker: ${m.message}`));
    }
  }
}
