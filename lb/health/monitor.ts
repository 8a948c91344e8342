/**
 * Built-in health checks of the real servers, keepalived's model: every target is probed every `interval`
 * seconds off the packet path (on the main thread's event loop), a check slower than `timeout` fails with
 * reason `timeout`, `fall` consecutive failures take an up server down and `rise` consecutive successes
 * bring a down server back. Each transition is one log line with stable keys and a callback the gateway
 * turns into `WorkerPool.setHealth`:
 *
 *     fnat-lb health service="tcp 198.18.0.100:80" server=198.18.3.10:80 state=down reason=refused
 *
 * Choices, and why:
 * - A checked server starts **up**, as keepalived's real servers do unless `alpha` is set: a gateway that
 *   starts or reloads keeps serving at once instead of refusing everyone until a first round of checks.
 *   `type: "none"` servers are `unchecked` and never change.
 * - **Jitter**: the first check runs at a random offset within the interval, and each next one after the
 *   interval ±10 %, so a thousand servers configured together are not probed in the same instant and do not
 *   stay in lock-step afterwards.
 * - The next check is timed from the **start** of the previous one (and never overlaps it), so a failing
 *   server is down after about `interval × fall` seconds even when each failure is a full `timeout`.
 *
 * Clock, timers, randomness and the probe are injectable, so the state machine is tested with a fake clock.
 *
 * @module
 */
import type { HealthCheckConfig } from "../config.ts";
import { hostPort, type IpAddress } from "../../base/addr.ts";
import { httpProbe, type ProbeResult, tcpProbe } from "./probe.ts";

/** One real server to watch. */
export interface HealthTarget {
  /** Service key, as in the stats: `tcp 198.18.0.100:80`. */
  service: string;
  /** Server key within its service: `198.18.3.10:80`. */
  server: string;
  /** The server's address. */
  address: IpAddress;
  /** The server's port (the check uses `check.port` when set). */
  port: number;
  /** How to check it. */
  check: HealthCheckConfig;
}

/** A server's health, as the stats report it. */
export type HealthState = "up" | "down" | "unchecked";

/** A server's health and the reason of its last transition (none before the first). */
export interface HealthStatus {
  /** Current state. */
  state: HealthState;
  /** The last transition's reason: `refused`, `timeout`, `status 503`, `ok`, … */
  reason?: string;
}

/** A change of a server's health, handed to {@link HealthMonitor.onTransition} listeners. */
export interface HealthTransition {
  /** Service key. */
  service: string;
  /** Server key. */
  server: string;
  /** True when it came up, false when it went down. */
  up: boolean;
  /** Why: the deciding check's failure reason, or `ok` when it came up. */
  reason: string;
}

/** Runs one check of `target`; must resolve (not reject) and should stop early when `signal` fires. */
export type HealthProbe = (target: HealthTarget, signal: AbortSignal) => Promise<ProbeResult>;

/** Timer functions the monitor uses; the global ones unless a test injects a fake clock. */
export interface HealthTimers {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Calls `fn` after `ms`; returns a handle for `clear`. */
  set(fn: () => void, ms: number): unknown;
  /** Cancels a pending `set`. */
  clear(handle: unknown): void;
}

/** Options of {@link HealthMonitor}. */
export interface HealthMonitorOptions {
  /** The check to run (default: {@link defaultProbe}). */
  probe?: HealthProbe;
  /** Clock and timers (default: `performance.now`, `setTimeout`). */
  timers?: HealthTimers;
  /** Uniform random numbers in [0, 1) for the jitter (default `Math.random`). */
  random?: () => number;
  /** Where transition lines go (default `console.error`, with the gateway's other logs). */
  log?: (line: string) => void;
}

/** The real timers. */
const REAL_TIMERS: HealthTimers = {
  now: () => performance.now(),
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** The probe a target's `check.type` names, against `check.port` or the server's port. */
export const defaultProbe: HealthProbe = (t, signal) => {
  const port = t.check.port ?? t.port;
  const ms = t.check.timeout * 1000;
  if (t.check.type === "http") {
    return httpProbe(t.address, port, t.check.path, t.check.expectStatus, ms, signal);
  }
  return tcpProbe(t.address, port, ms, signal);
};

/** Key of a target in {@link HealthMonitor.state}: `service + " " + server`. */
export function healthKey(service: string, server: string): string {
  return `${service} ${server}`;
}

/** A log value: bare when it is one token, else quoted, so `key=value` pairs split unambiguously. */
function logValue(v: string): string {
  return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
}

/** The transition's log line (stable keys; see the module doc). */
export function transitionLine(t: HealthTransition): string {
  return `fnat-lb health service=${logValue(t.service)} server=${logValue(t.server)} ` +
    `state=${t.up ? "up" : "down"} reason=${logValue(t.reason)}`;
}

const TRANSITION_LINE =
  /^fnat-lb health service=("(?:[^"\\]|\\.)*"|[^\s"=]+) server=("(?:[^"\\]|\\.)*"|[^\s"=]+) state=(up|down) reason=("(?:[^"\\]|\\.)*"|[^\s"=]+)$/;

/** The transition a {@link transitionLine} says, or null for any other line (for log readers and tests). */
export function parseTransitionLine(line: string): HealthTransition | null {
  const m = TRANSITION_LINE.exec(line);
  if (m === null) return null;
  const value = (v: string) => (v.startsWith('"') ? JSON.parse(v) as string : v);
  return { service: value(m[1]), server: value(m[2]), up: m[3] === "up", reason: value(m[4]) };
}

/** Per-target state: configuration, health, counters, and the pending timer or check. */
interface Entry {
  target: HealthTarget;
  state: HealthState;
  reason?: string;
  /** Consecutive successes (while down) or failures (while up) toward a transition. */
  streak: number;
  timer?: unknown;
  /** Aborts the check in flight. */
  inflight?: AbortController;
  /** Set when the entry was removed or replaced: late results are dropped. */
  dead: boolean;
}

/** True when two checks behave alike (a reload that changes nothing must not reset the schedule). */
function sameCheck(a: HealthTarget, b: HealthTarget): boolean {
  const x = a.check, y = b.check;
  return hostPort(a.address, a.port) === hostPort(b.address, b.port) && x.type === y.type &&
    x.interval === y.interval && x.timeout === y.timeout && x.rise === y.rise && x.fall === y.fall &&
    x.path === y.path && x.expectStatus === y.expectStatus && x.port === y.port;
}

/**
 * Watches real servers and reports their up/down transitions.
 *
 * @example
 * ```ts
 * const m = new HealthMonitor(targets);
 * m.onTransition((t) => pool.setHealth(t.service, t.server, t.up, false));
 * // on reload: m.update(newTargets); at shutdown: await m.stop();
 * ```
 */
export class HealthMonitor {
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Set<(t: HealthTransition) => void>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #probe: HealthProbe;
  readonly #timers: HealthTimers;
  readonly #random: () => number;
  readonly #log: (line: string) => void;
  #stopped = false;

  /** Starts watching `targets` (first checks at random offsets within their interval). */
  constructor(targets: readonly HealthTarget[], opts: HealthMonitorOptions = {}) {
    this.#probe = opts.probe ?? defaultProbe;
    this.#timers = opts.timers ?? REAL_TIMERS;
    this.#random = opts.random ?? Math.random;
    this.#log = opts.log ?? ((l) => console.error(l));
    this.update(targets);
  }

  /** Calls `cb` on every transition; returns a function that unsubscribes it. */
  onTransition(cb: (t: HealthTransition) => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  /** Every target's health, keyed by {@link healthKey}. */
  state(): Map<string, HealthStatus> {
    const out = new Map<string, HealthStatus>();
    for (const [k, e] of this.#entries) {
      out.set(k, e.reason === undefined ? { state: e.state } : { state: e.state, reason: e.reason });
    }
    return out;
  }

  /**
   * Live reload: unchanged targets keep their state and schedule; a changed check keeps the health but
   * restarts its schedule; new targets start (up, or unchecked for `none`); removed ones stop.
   */
  update(targets: readonly HealthTarget[]): void {
    if (this.#stopped) throw new Error("HealthMonitor.update after stop");
    const next = new Map<string, HealthTarget>();
    for (const t of targets) next.set(healthKey(t.service, t.server), t);
    for (const [k, e] of this.#entries) {
      if (!next.has(k)) {
        this.#cancel(e);
        this.#entries.delete(k);
      }
    }
    for (const [k, t] of next) {
      const old = this.#entries.get(k);
      if (old && sameCheck(old.target, t)) {
        old.target = t;
        continue;
      }
      let state: HealthState = t.check.type === "none" ? "unchecked" : "up";
      let reason: string | undefined;
      if (old) {
        this.#cancel(old);
        // Keep what we learned unless checking is switched on or off.
        if ((old.state === "unchecked") === (state === "unchecked")) {
          state = old.state;
          reason = old.reason;
        }
      }
      const e: Entry = { target: t, state, reason, streak: 0, dead: false };
      this.#entries.set(k, e);
      if (t.check.type !== "none") this.#schedule(e, this.#random() * t.check.interval * 1000);
    }
  }

  /** Cancels every timer and check in flight and waits for their sockets to close; idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const e of this.#entries.values()) this.#cancel(e);
    this.#listeners.clear();
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  #cancel(e: Entry): void {
    e.dead = true;
    if (e.timer !== undefined) this.#timers.clear(e.timer);
    e.timer = undefined;
    e.inflight?.abort();
  }

  #schedule(e: Entry, ms: number): void {
    e.timer = this.#timers.set(() => {
      e.timer = undefined;
      this.#track(this.#check(e));
    }, Math.max(0, ms));
  }

  #track(p: Promise<unknown>): void {
    this.#pending.add(p);
    p.finally(() => this.#pending.delete(p));
  }

  /** One check: probe bounded by the timeout, apply the result, schedule the next from this one's start. */
  async #check(e: Entry): Promise<void> {
    const t = e.target;
    const started = this.#timers.now();
    const ac = new AbortController();
    e.inflight = ac;
    let timer: unknown;
    const timedOut = new Promise<ProbeResult>((resolve) => {
      timer = this.#timers.set(() => {
        ac.abort();
        resolve({ ok: false, reason: "timeout" });
      }, t.check.timeout * 1000);
    });
    let result: ProbeResult;
    const probing = this.#probe(t, ac.signal).catch((err): ProbeResult => ({
      ok: false,
      reason: `error ${(err as Error)?.name ?? "unknown"}`,
    }));
    // A probe that ignores the abort still finishes before stop() returns.
    this.#track(probing);
    try {
      result = await Promise.race([probing, timedOut]);
    } finally {
      this.#timers.clear(timer);
      if (e.inflight === ac) e.inflight = undefined;
    }
    if (e.dead || this.#stopped) return;
    this.#apply(e, result);
    const jittered = t.check.interval * 1000 * (0.9 + 0.2 * this.#random());
    this.#schedule(e, started + jittered - this.#timers.now());
  }

  #apply(e: Entry, r: ProbeResult): void {
    const up = e.state === "up";
    // A result agreeing with the state resets the count toward the other state.
    if (r.ok === up) {
      e.streak = 0;
      return;
    }
    e.streak++;
    if (e.streak < (up ? e.target.check.fall : e.target.check.rise)) return;
    e.streak = 0;
    e.state = up ? "down" : "up";
    e.reason = r.ok ? "ok" : r.reason;
    const tr: HealthTransition = {
      service: e.target.service,
      server: e.target.server,
      up: !up,
      reason: e.reason,
    };
    this.#log(transitionLine(tr));
    for (const cb of this.#listeners) {
      try {
        cb(tr);
      } catch (err) {
        // One broken listener must not stop the others or the checks.
        this.#log(`fnat-lb health listener_error ${logValue((err as Error)?.message ?? String(err))}`);
      }
    }
  }
}
