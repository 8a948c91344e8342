/**
 * The monitor's state machine with a fake probe and a fake clock: rise/fall counting, the timeout, jitter
 * of the first and later checks, live update, and a stop that leaves nothing running.
 */
import assert from "node:assert/strict";
import { parseIpAddress } from "../../base/addr.ts";
import { prng } from "../../tests/helpers/prng.ts";
import { DEFAULT_HEALTH_CHECK, type HealthCheckConfig } from "../config.ts";
import {
  HealthMonitor,
  type HealthTarget,
  type HealthTimers,
  type HealthTransition,
  parseTransitionLine,
  transitionLine,
} from "./monitor.ts";
import type { ProbeResult } from "./probe.ts";

/** Timers on a clock that moves only when the test says so. */
class FakeClock implements HealthTimers {
  t = 0;
  #id = 0;
  readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  set(fn: () => void, ms: number): unknown {
    this.timers.set(++this.#id, { at: this.t + ms, fn });
    return this.#id;
  }
  clear(h: unknown): void {
    this.timers.delete(h as number);
  }
  /** Runs every timer due within `ms`, in time order, letting the checks' promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

/** Lets the checks' promise chains run: a few dozen microtask turns, far more than one check takes. */
async function settle(): Promise<void> {
  for (let i = 0; i < 32; i++) await Promise.resolve();
}

const CHECK: HealthCheckConfig = { ...DEFAULT_HEALTH_CHECK };

function target(i: number, check: Partial<HealthCheckConfig> = {}): HealthTarget {
  return {
    service: "tcp 198.18.0.100:80",
    server: `198.18.3.${i}:80`,
    address: parseIpAddress(`198.18.3.${i}`)!,
    port: 80,
    check: { ...CHECK, ...check },
  };
}

/** A probe answering from a per-server script ("hang" waits for the abort), recording every call. */
class FakeProbe {
  readonly answer = new Map<string, ProbeResult | "hang">();
  readonly calls: { server: string; at: number }[] = [];
  aborted = 0;
  constructor(readonly clock: FakeClock) {}
  readonly probe = (t: HealthTarget, signal: AbortSignal): Promise<ProbeResult> => {
    this.calls.push({ server: t.server, at: this.clock.now() });
    const a = this.answer.get(t.server) ?? { ok: true };
    if (a !== "hang") return Promise.resolve(a);
    return new Promise((resolve) => {
      signal.addEventListener("abort", () => {
        this.aborted++;
        resolve({ ok: false, reason: "aborted" });
      });
    });
  };
  count(server: string): number {
    return this.calls.filter((c) => c.server === server).length;
  }
}

function setup(targets: HealthTarget[], random = () => 0.5) {
  const clock = new FakeClock();
  const fake = new FakeProbe(clock);
  const lines: string[] = [];
  const m = new HealthMonitor(targets, {
    probe: fake.probe,
    timers: clock,
    random,
    log: (l) => lines.push(l),
  });
  const seen: HealthTransition[] = [];
  m.onTransition((t) => seen.push(t));
  return { clock, fake, lines, m, seen };
}

Deno.test("monitor: starts up; fall=2 — one failure keeps it up, the second takes it down", async () => {
  const { clock, fake, lines, m, seen } = setup([target(10)]);
  const key = "tcp 198.18.0.100:80 198.18.3.10:80";
  assert.deepEqual(m.state().get(key), { state: "up" });
  fake.answer.set("198.18.3.10:80", { ok: false, reason: "refused" });
  await clock.advance(1000); // random 0.5 × 2 s: the first check
  assert.equal(fake.count("198.18.3.10:80"), 1);
  assert.deepEqual(m.state().get(key), { state: "up" });
  assert.deepEqual(seen, []);
  await clock.advance(2000); // second check (0.9 + 0.2 × 0.5 = exactly the interval)
  assert.equal(fake.count("198.18.3.10:80"), 2);
  assert.deepEqual(m.state().get(key), { state: "down", reason: "refused" });
  assert.deepEqual(seen, [{
    service: "tcp 198.18.0.100:80",
    server: "198.18.3.10:80",
    up: false,
    reason: "refused",
  }]);
  assert.deepEqual(lines, [
    'fnat-lb health service="tcp 198.18.0.100:80" server=198.18.3.10:80 state=down reason=refused',
  ]);
  // Further failures while down are no new transitions.
  await clock.advance(4000);
  assert.equal(seen.length, 1);
  await m.stop();
});

Deno.test("monitor: rise=3 — a failure in between restarts the count; up with reason ok", async () => {
  const { clock, fake, lines, m, seen } = setup([target(10, { rise: 3, fall: 1 })]);
  const s = "198.18.3.10:80";
  fake.answer.set(s, { ok: false, reason: "status 503" });
  await clock.advance(1000);
  assert.equal(m.state().get(`tcp 198.18.0.100:80 ${s}`)?.state, "down");
  fake.answer.set(s, { ok: true });
  await clock.advance(4000); // two successes
  assert.equal(m.state().get(`tcp 198.18.0.100:80 ${s}`)?.state, "down");
  fake.answer.set(s, { ok: false, reason: "timeout" });
  await clock.advance(2000); // a failure: the count starts over
  fake.answer.set(s, { ok: true });
  await clock.advance(4000); // two more
  assert.equal(m.state().get(`tcp 198.18.0.100:80 ${s}`)?.state, "down");
  await clock.advance(2000); // the third in a row
  assert.deepEqual(m.state().get(`tcp 198.18.0.100:80 ${s}`), { state: "up", reason: "ok" });
  assert.deepEqual(seen.map((t) => [t.up, t.reason]), [[false, "status 503"], [true, "ok"]]);
  assert.equal(
    lines[0],
    'fnat-lb health service="tcp 198.18.0.100:80" server=198.18.3.10:80 state=down reason="status 503"',
  );
  assert.equal(
    lines[1],
    'fnat-lb health service="tcp 198.18.0.100:80" server=198.18.3.10:80 state=up reason=ok',
  );
  await m.stop();
});

Deno.test("monitor: failures separated by a success never reach fall", async () => {
  const { clock, fake, m, seen } = setup([target(10, { fall: 2 })]);
  const s = "198.18.3.10:80";
  for (const ok of [false, true, false, true, false]) {
    fake.answer.set(s, ok ? { ok: true } : { ok: false, reason: "reset" });
    await clock.advance(2000);
  }
  assert.equal(fake.count(s), 5);
  assert.deepEqual(seen, []);
  await m.stop();
});

Deno.test("monitor: a check slower than the timeout fails with reason timeout and is aborted", async () => {
  const { clock, fake, m, seen } = setup([target(10, { fall: 1, timeout: 1, interval: 3 })]);
  fake.answer.set("198.18.3.10:80", "hang");
  await clock.advance(1500); // starts at 1.5 s
  assert.equal(fake.count("198.18.3.10:80"), 1);
  assert.equal(seen.length, 0);
  await clock.advance(999);
  assert.equal(seen.length, 0);
  await clock.advance(1); // 1 s after the start
  assert.deepEqual(seen.map((t) => t.reason), ["timeout"]);
  assert.equal(fake.aborted, 1);
  // The next check is timed from the start of this one: 1.5 + 3 s.
  await clock.advance(4500 - 2500 - 1);
  assert.equal(fake.count("198.18.3.10:80"), 1);
  await clock.advance(1);
  assert.equal(fake.count("198.18.3.10:80"), 2);
  await m.stop();
  assert.equal(clock.timers.size, 0);
});

Deno.test("monitor: jitter — 1,000 targets' first checks spread over the interval, later rounds ±10 %", async () => {
  const r = prng(7);
  const targets = Array.from({ length: 1000 }, (_, i) => ({
    ...target(1),
    server: `198.18.${3 + (i >> 8)}.${i & 255}:80`,
  }));
  const { clock, fake, m } = setup(targets, () => r() / 2 ** 32);
  await clock.advance(2000);
  const first = new Map<string, number>();
  for (const c of fake.calls) if (!first.has(c.server)) first.set(c.server, c.at);
  assert.equal(first.size, 1000);
  const buckets = new Array(10).fill(0);
  for (const at of first.values()) {
    assert.ok(at >= 0 && at < 2000, `first check at ${at}`);
    buckets[Math.floor(at / 200)]++;
  }
  // Uniform over the interval: each tenth holds about 100 (binomial σ ≈ 9.5; 60..140 is over 4σ).
  for (const b of buckets) assert.ok(b >= 60 && b <= 140, `buckets ${buckets}`);
  console.log(`first checks per 200 ms of a 2 s interval: ${buckets.join(" ")}`);
  await clock.advance(2400);
  const gaps: number[] = [];
  for (const [server, at] of first) {
    const second = fake.calls.find((c) => c.server === server && c.at > at);
    assert.ok(second, `second check of ${server}`);
    gaps.push(second.at - at);
  }
  assert.ok(gaps.every((g) => g >= 1800 && g <= 2200), "every gap within interval ±10 %");
  assert.ok(Math.min(...gaps) < 1850 && Math.max(...gaps) > 2150, "gaps use the whole ±10 % range");
  await m.stop();
  assert.equal(clock.timers.size, 0);
});

Deno.test("monitor: type none is unchecked and never probed", async () => {
  const { clock, fake, m } = setup([target(10, { type: "none" })]);
  await clock.advance(10_000);
  assert.equal(fake.calls.length, 0);
  assert.deepEqual(m.state().get("tcp 198.18.0.100:80 198.18.3.10:80"), { state: "unchecked" });
  await m.stop();
});

Deno.test("monitor: update keeps unchanged targets' state, starts new ones up, stops removed ones", async () => {
  const { clock, fake, m, seen } = setup([target(10, { fall: 1 }), target(11, { fall: 1 })]);
  fake.answer.set("198.18.3.10:80", { ok: false, reason: "refused" });
  await clock.advance(1000);
  assert.equal(m.state().get("tcp 198.18.0.100:80 198.18.3.10:80")?.state, "down");
  const before = fake.count("198.18.3.10:80");
  // .10 unchanged, .11 removed, .12 new.
  m.update([target(10, { fall: 1 }), target(12, { fall: 1 })]);
  const st = m.state();
  assert.deepEqual([...st.keys()].sort(), [
    "tcp 198.18.0.100:80 198.18.3.10:80",
    "tcp 198.18.0.100:80 198.18.3.12:80",
  ]);
  assert.deepEqual(st.get("tcp 198.18.0.100:80 198.18.3.10:80"), { state: "down", reason: "refused" });
  assert.deepEqual(st.get("tcp 198.18.0.100:80 198.18.3.12:80"), { state: "up" });
  const removedCalls = fake.count("198.18.3.11:80");
  // The unchanged one keeps its schedule: next check 2 s after its last, not a fresh random offset.
  await clock.advance(1999);
  assert.equal(fake.count("198.18.3.10:80"), before);
  await clock.advance(1);
  assert.equal(fake.count("198.18.3.10:80"), before + 1);
  await clock.advance(6000);
  assert.equal(fake.count("198.18.3.11:80"), removedCalls);
  assert.ok(fake.count("198.18.3.12:80") >= 3);
  // A changed check keeps the health it learned.
  m.update([target(10, { fall: 1, interval: 5 })]);
  assert.deepEqual(m.state().get("tcp 198.18.0.100:80 198.18.3.10:80"), { state: "down", reason: "refused" });
  fake.answer.set("198.18.3.10:80", { ok: true });
  await clock.advance(10_000);
  assert.deepEqual(m.state().get("tcp 198.18.0.100:80 198.18.3.10:80"), { state: "up", reason: "ok" });
  assert.deepEqual(seen.map((t) => `${t.server} ${t.up}`), ["198.18.3.10:80 false", "198.18.3.10:80 true"]);
  await m.stop();
});

Deno.test("monitor: stop aborts checks in flight, waits for them and leaves no timer", async () => {
  const { clock, fake, m, seen } = setup([target(10), target(11)]);
  fake.answer.set("198.18.3.10:80", "hang");
  fake.answer.set("198.18.3.11:80", "hang");
  await clock.advance(1000);
  assert.equal(fake.calls.length, 2);
  await m.stop();
  assert.equal(fake.aborted, 2);
  assert.equal(clock.timers.size, 0);
  assert.deepEqual(seen, []);
  assert.throws(() => m.update([]), /after stop/);
});

Deno.test("monitor: a throwing listener does not stop the others", async () => {
  const { clock, fake, lines, m, seen } = setup([target(10, { fall: 1 })]);
  m.onTransition(() => {
    throw new Error("boom");
  });
  const later: HealthTransition[] = [];
  m.onTransition((t) => later.push(t));
  fake.answer.set("198.18.3.10:80", { ok: false, reason: "unreachable" });
  await clock.advance(1000);
  assert.equal(seen.length, 1);
  assert.equal(later.length, 1);
  assert.ok(lines.some((l) => l.includes("listener_error") && l.includes("boom")));
  await m.stop();
});

Deno.test("monitor: real timers and sockets on loopback — refused goes down, a listener brings it up", async () => {
  const lo = parseIpAddress("127.0.0.1")!;
  // A free port: bind, note it, close.
  const probeL = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probeL.addr as Deno.NetAddr).port;
  probeL.close();
  const seen: HealthTransition[] = [];
  const m = new HealthMonitor([{
    service: "tcp 198.18.0.100:80",
    server: `127.0.0.1:${port}`,
    address: lo,
    port,
    check: { ...CHECK, interval: 0.1, timeout: 0.5, fall: 2, rise: 2 },
  }], { log: () => {} });
  m.onTransition((t) => seen.push(t));
  const until = async (n: number) => {
    for (let i = 0; i < 100 && seen.length < n; i++) await new Promise((r) => setTimeout(r, 20));
  };
  let l: Deno.Listener | undefined;
  try {
    await until(1);
    assert.deepEqual(seen.map((t) => [t.up, t.reason]), [[false, "refused"]]);
    l = Deno.listen({ hostname: "127.0.0.1", port });
    const accepting = (async () => {
      for await (const c of l!) c.close();
    })();
    await until(2);
    assert.deepEqual(seen.map((t) => [t.up, t.reason]), [[false, "refused"], [true, "ok"]]);
    await m.stop();
    l.close();
    await accepting;
  } finally {
    await m.stop();
    try {
      l?.close();
    } catch { /* closed above */ }
  }
});

Deno.test("monitor: stop during a real HTTP check that hangs closes its socket (sanitizers pass)", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  const conns: Deno.Conn[] = [];
  let accepted!: () => void;
  const firstAccept = new Promise<void>((r) => accepted = r);
  const accepting = (async () => {
    for await (const c of l) {
      conns.push(c); // held open, never answered
      accepted();
    }
  })();
  const m = new HealthMonitor([{
    service: "tcp 198.18.0.100:80",
    server: `127.0.0.1:${port}`,
    address: parseIpAddress("127.0.0.1")!,
    port,
    check: { ...CHECK, type: "http", interval: 0.05, timeout: 30 },
  }], { log: () => {} });
  await firstAccept;
  const t0 = performance.now();
  await m.stop();
  assert.ok(performance.now() - t0 < 1000, "stop did not wait for the 30 s timeout");
  assert.deepEqual(m.state().get(`tcp 198.18.0.100:80 127.0.0.1:${port}`), { state: "up" });
  l.close();
  await accepting;
  for (const c of conns) c.close();
});

Deno.test("health: a transition line reads back as the transition it says; other lines are null", () => {
  for (
    const t of [
      { service: "tcp 198.18.0.100:80", server: "198.18.3.11:80", up: false, reason: "refused" },
      { service: "tcp [fd00::100]:80", server: "[fd00:3::11]:80", up: false, reason: "status 503" },
      { service: "udp 198.18.0.100:53", server: "198.18.3.10:53", up: true, reason: "ok" },
    ]
  ) {
    assert.deepEqual(parseTransitionLine(transitionLine(t)), t);
  }
  assert.equal(
    parseTransitionLine("fnat-lb reloaded services=1 servers=2 added=- removed=- changed=-"),
    null,
  );
  assert.equal(
    parseTransitionLine('fnat-lb health service="tcp 198.18.0.100:80" server=x state=sideways reason=ok'),
    null,
  );
});
