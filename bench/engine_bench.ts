/**
 * The FULLNAT engine alone — no TUN, no syscalls: `engine.process(buf, len, now)` on packets built in
 * memory, on one core. Three figures:
 *
 * 1. new connections/s: client SYNs (Linux-like options: MSS, SACK-permitted, timestamps, window scale)
 *    from distinct client addresses and ports, each scheduled, given a local address/port from 16 × 64511
 *    pairs, its timestamp option removed, MSS clamped and TOA inserted; when the table is full the clock
 *    jumps past the SYN timeout and `tick` expires everything (that cost is included);
 * 2. established packets/s: one connection, alternately a pure ACK client→server and a 1448-byte data
 *    segment server→client. The engine rewrites in place, so before each packet only its 40 header bytes
 *    are restored from a template (the payload is never touched); that restore is measured on its own and
 *    reported, and the packet rate is given with and without it;
 * 3. memory per connection: N connections (default 1,000,000; `--connections N`) in one engine, most made
 *    by SYNs, one and then N/10 (at most 1M) established, with ⌈N / 64511⌉ local addresses; RSS and V8
 *    heap/external before and after; then the pair of 2. on that one connection of the big table (its
 *    lookups go through a table of N), the same pair sent to the N/10 established connections visited in a
 *    random order (cold buckets and entries: what a busy big table costs per packet in cache misses), and
 *    random client-side lookups of the SYN-made connections alone.
 *
 * Run: `deno bench -A bench/engine_bench.ts` (Deno.bench, 1000 SYNs / 1000 packet pairs per iteration), or
 * `deno run -A --v8-flags=--expose-gc bench/engine_bench.ts [--connections N]` (= `deno task bench:engine`)
 * for a table against the targets (≥ 2 M established packets/s per core, also at table size N; 1,000,000
 * connections in ≤ 300 MB RSS, 10,000,000 in ≤ 1200 MB).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type GatewayConfig, validateConfig } from "../lb/config.ts";
import { read16, read32 } from "../base/packet/checksum.ts";
import { ipv4SetDst, ipv4SetSrc } from "../base/packet/ipv4.ts";
import {
  TCP_ACK,
  TCP_PSH,
  TCP_SYN,
  tcpAdjustChecksum32,
  tcpSetAck,
  tcpSetDstPort,
  tcpSetSrcPort,
} from "../base/packet/tcp.ts";
import { Engine } from "../lb/engine/engine.ts";
import { ALIGNED_HUGE_MEMORY } from "../base/sys/aligned.ts";
import { optMss, optTimestamp, tcp } from "../lb/engine/testing/packets.ts";

const VIP = "198.18.0.100";
const RS = ["198.18.3.10", "198.18.3.11"];
const CLIENT = "198.18.1.2";
/** First client address of the SYN flood: 198.18.128.0, then one more every 64000 ports. */
const CLIENT_BASE = 0xc6128000;
const CLIENT_PORTS = 64000;
/** Local ports per local address with the full range 1025–65535. */
const PORTS_PER_LOCAL = 64511;
/** Seconds: past any SYN_SENT timeout (the default is 3 s; IPVS's was 120 s). */
const SYN_EXPIRY_JUMP = 121;

/**
 * A configuration with `locals` IPv4 local addresses (198.18.2.1 …) and room for `maxConnections`; the SYN
 * proxy off unless asked (the forwarding figures must not turn into cookie figures when the table fills).
 */
function benchConfig(locals: number, maxConnections: number, synproxy = "off"): GatewayConfig {
  return validateConfig({
    tun: "bench0",
    localAddresses: Array.from({ length: locals }, (_, i) => `198.18.2.${i + 1}`),
    portRange: [1025, 65535],
    maxConnections,
    services: [{
      vip: VIP,
      port: 80,
      protocol: "tcp",
      scheduler: "rr",
      toa: true,
      synproxy,
      realServers: RS.map((address) => ({ address, port: 80, weight: 1 })),
    }],
    control: "/nonexistent/bench.sock",
  });
}

function dropped(e: Engine): number {
  return e.counters.drops.reduce((a, b) => a + b, 0);
}

/**
 * Feeds SYNs from distinct client tuples. The template is a Linux SYN (60 bytes); each SYN is the template
 * copied back (the engine grew the last one by TOA and rewrote it) with a new client address and port. The
 * checksum is left stale and the packet marked partial (checksum offload): the engine only adjusts it.
 */
class SynFlood {
  readonly engine: Engine;
  private readonly tmpl: Uint8Array;
  private readonly buf: Uint8Array;
  private readonly len: number;
  private i = 0;
  now = 1000;

  constructor(engine: Engine) {
    this.engine = engine;
    const { b, len } = tcp({
      src: CLIENT,
      dst: VIP,
      sport: 1024,
      dport: 80,
      seq: 0x01020304,
      flags: TCP_SYN,
      window: 64240,
      options: [...optMss(1460), 4, 2, ...optTimestamp(0x11223344, 0), 1, 3, 3, 7],
    });
    this.len = len;
    this.tmpl = b.slice(0, len);
    this.buf = b;
  }

  /** Sends `n` SYNs; expires the whole table (clock jump + tick) whenever it is full. Returns bytes out. */
  run(n: number): number {
    const e = this.engine;
    const b = this.buf;
    const cap = e.conns.capacity;
    let out = 0;
    for (let k = 0; k < n; k++) {
      if (e.conns.size >= cap) {
        this.now += SYN_EXPIRY_JUMP;
        e.tick(this.now);
      }
      const i = this.i++;
      const addr = (CLIENT_BASE + Math.floor(i / CLIENT_PORTS) % 32768) >>> 0;
      const port = 1024 + (i % CLIENT_PORTS);
      b.set(this.tmpl);
      // A new client each SYN, with checksums kept right (the engine verifies a SYN before it makes state).
      const old = read32(b, 12);
      ipv4SetSrc(b, 0, addr);
      tcpAdjustChecksum32(b, 20, old, addr);
      tcpSetSrcPort(b, 20, port);
      out += e.process(b, this.len, this.now);
    }
    return out;
  }
}

/**
 * One established connection and two packet templates: a pure ACK client→server (40 bytes) and a
 * 1448-byte data segment server→client (1488 bytes), each in its own buffer, restored to the template's
 * 40 header bytes before every packet.
 */
class Established {
  readonly engine: Engine;
  private readonly c2s: Uint8Array;
  private readonly s2c: Uint8Array;
  private readonly c2sHead: Uint8Array;
  private readonly s2cHead: Uint8Array;
  private readonly c2sLen: number;
  private readonly s2cLen: number;
  now = 1000;

  /**
   * `synproxy`: the connection is opened through the SYN proxy (cookie, then the server's handshake).
   * `engine`: open it on this engine (a big table) instead of a small one of its own.
   */
  constructor(synproxy = false, engine?: Engine) {
    const e = engine ??
      new Engine(benchConfig(1, 1024, synproxy ? "on" : "off"), {
        now: this.now,
        memory: ALIGNED_HUGE_MEMORY,
      });
    this.engine = e;
    const syn = tcp({
      src: CLIENT,
      dst: VIP,
      sport: 40000,
      dport: 80,
      seq: 1000,
      flags: TCP_SYN,
      options: [...optMss(1460), 1, 3, 3, 7],
    });
    if (e.process(syn.b, syn.len, this.now) === 0) throw new Error("handshake: SYN dropped");
    // With the SYN proxy the gateway answered: the cookie is the client's view of the server's ISN.
    let toClient = 5000;
    if (synproxy) {
      toClient = read32(syn.b, 24);
      const ack = tcp({
        src: CLIENT,
        dst: VIP,
        sport: 40000,
        dport: 80,
        seq: 1001,
        ack: toClient + 1,
        flags: TCP_ACK,
      });
      if (e.process(ack.b, ack.len, this.now) === 0) throw new Error("handshake: cookie ACK dropped");
      syn.b.set(ack.b.subarray(0, 64));
    }
    const local = `198.18.2.${syn.b[15]}`;
    const lport = read16(syn.b, 20);
    const rs = `${syn.b[16]}.${syn.b[17]}.${syn.b[18]}.${syn.b[19]}`;
    const isn = read32(syn.b, 24); // the client's ISN as the real server sees it
    const synAck = tcp({
      src: rs,
      dst: local,
      sport: 80,
      dport: lport,
      seq: 5000,
      ack: isn + 1,
      flags: TCP_SYN | TCP_ACK,
      options: [...optMss(1460), 1, 3, 3, 7],
    });
    if (e.process(synAck.b, synAck.len, this.now) === 0) throw new Error("handshake: SYN-ACK dropped");
    if (!synproxy) {
      const ack = tcp({
        src: CLIENT,
        dst: VIP,
        sport: 40000,
        dport: 80,
        seq: 1001,
        ack: 5001,
        flags: TCP_ACK,
      });
      if (e.process(ack.b, ack.len, this.now) === 0) throw new Error("handshake: ACK dropped");
    }

    const a = tcp({
      src: CLIENT,
      dst: VIP,
      sport: 40000,
      dport: 80,
      seq: 1001,
      ack: toClient + 1 + 1448,
      flags: TCP_ACK,
    });
    const payload = new Uint8Array(1448).fill(0x5a);
    const d = tcp({
      src: rs,
      dst: local,
      sport: 80,
      dport: lport,
      seq: 5001,
      ack: (isn + 1) >>> 0,
      flags: TCP_ACK | TCP_PSH,
      payload,
    });
    this.c2s = a.b;
    this.s2c = d.b;
    this.c2sLen = a.len;
    this.s2cLen = d.len;
    this.c2sHead = a.b.slice(0, 40);
    this.s2cHead = d.b.slice(0, 40);
  }

  /** `n` pairs: client→server ACK, then server→client data. Returns the bytes written back. */
  run(n: number): number {
    const e = this.engine;
    const a = this.c2s;
    const d = this.s2c;
    const ah = this.c2sHead;
    const dh = this.s2cHead;
    const now = this.now;
    let out = 0;
    for (let k = 0; k < n; k++) {
      a.set(ah);
      out += e.process(a, this.c2sLen, now);
      d.set(dh);
      out += e.process(d, this.s2cLen, now);
    }
    return out;
  }

  /** The same restores without the engine: what `run` spends outside it. */
  restoreOnly(n: number): number {
    const a = this.c2s;
    const d = this.s2c;
    const ah = this.c2sHead;
    const dh = this.s2cHead;
    let x = 0;
    for (let k = 0; k < n; k++) {
      a.set(ah);
      x += a[k & 31];
      d.set(dh);
      x += d[k & 31];
    }
    return x;
  }

  /** Bytes a pair should return (both packets forwarded, none grown). */
  get pairBytes(): number {
    return this.c2sLen + this.s2cLen;
  }
}

/** First client address of the {@link Spread} connections: 198.18.64.0, then one more every 64000 ports. */
const SPREAD_BASE = 0xc6124000;

/**
 * `count` established connections on a big engine, and the packets of {@link Established} sent to them in a
 * random order: each packet finds its connection through cold buckets and entries, as on a busy big table.
 * One buffer per direction; before each packet its 40 header bytes are restored and the tuple and
 * acknowledgement of the connection written in (IP header checksum kept right; the TCP checksum is left
 * stale: an established connection's segments pass with any checksum, by design).
 */
class Spread {
  readonly engine: Engine;
  private readonly c2s: Uint8Array;
  private readonly s2c: Uint8Array;
  private readonly c2sHead: Uint8Array;
  private readonly s2cHead: Uint8Array;
  private readonly c2sLen: number;
  private readonly s2cLen: number;
  /** Per connection: the real server, the local address and port it sees, the client's ISN as it sees it. */
  private readonly rs: Uint32Array;
  private readonly local: Uint32Array;
  private readonly lport: Uint16Array;
  private readonly ack: Uint32Array;
  /** The connections in the order they are visited. */
  readonly order: Int32Array;
  now = 1000;

  constructor(engine: Engine, count: number) {
    this.engine = engine;
    this.rs = new Uint32Array(count);
    this.local = new Uint32Array(count);
    this.lport = new Uint16Array(count);
    this.ack = new Uint32Array(count);
    // The handshakes from three templates, rewritten in place (no garbage to blur the RSS figures).
    const opts = [...optMss(1460), 1, 3, 3, 7];
    const synT = tcp({
      src: CLIENT,
      dst: VIP,
      sport: 1024,
      dport: 80,
      seq: 1000,
      flags: TCP_SYN,
      options: opts,
    });
    const synAckT = tcp({
      src: RS[0],
      dst: "198.18.2.1",
      sport: 80,
      dport: 1025,
      seq: 5000,
      ack: 1001,
      flags: TCP_SYN | TCP_ACK,
      options: opts,
    });
    const ackT = tcp({ src: CLIENT, dst: VIP, sport: 1024, dport: 80, seq: 1001, ack: 5001, flags: TCP_ACK });
    const synHead = synT.b.slice(0, synT.len);
    const synAckHead = synAckT.b.slice(0, synAckT.len);
    const ackHead = ackT.b.slice(0, ackT.len);
    const setClient = (p: Uint8Array, k: number) => {
      const addr = this.clientWord(k);
      tcpAdjustChecksum32(p, 20, read32(p, 12), addr);
      ipv4SetSrc(p, 0, addr);
      tcpSetSrcPort(p, 20, 1024 + (k % CLIENT_PORTS));
    };
    for (let k = 0; k < count; k++) {
      const syn = synT.b;
      syn.set(synHead);
      setClient(syn, k);
      if (engine.process(syn, synT.len, this.now) === 0) throw new Error("spread: SYN dropped");
      this.rs[k] = read32(syn, 16);
      this.local[k] = read32(syn, 12);
      this.lport[k] = read16(syn, 20);
      this.ack[k] = (read32(syn, 24) + 1) >>> 0;
      const sa = synAckT.b;
      sa.set(synAckHead);
      tcpAdjustChecksum32(sa, 20, read32(sa, 12), this.rs[k]);
      ipv4SetSrc(sa, 0, this.rs[k]);
      tcpAdjustChecksum32(sa, 20, read32(sa, 16), this.local[k]);
      ipv4SetDst(sa, 0, this.local[k]);
      tcpSetDstPort(sa, 20, this.lport[k]);
      tcpSetAck(sa, 20, this.ack[k]);
      if (engine.process(sa, synAckT.len, this.now) === 0) throw new Error("spread: SYN-ACK dropped");
      const ack = ackT.b;
      ack.set(ackHead);
      setClient(ack, k);
      if (engine.process(ack, ackT.len, this.now) === 0) throw new Error("spread: ACK dropped");
    }
    const a = tcp({
      src: CLIENT,
      dst: VIP,
      sport: 1024,
      dport: 80,
      seq: 1001,
      ack: 5001 + 1448,
      flags: TCP_ACK,
    });
    const d = tcp({
      src: RS[0],
      dst: "198.18.2.1",
      sport: 80,
      dport: 1025,
      seq: 5001,
      ack: 1001,
      flags: TCP_ACK | TCP_PSH,
      payload: new Uint8Array(1448).fill(0x5a),
    });
    this.c2s = a.b;
    this.s2c = d.b;
    this.c2sLen = a.len;
    this.s2cLen = d.len;
    this.c2sHead = a.b.slice(0, 40);
    this.s2cHead = d.b.slice(0, 40);
    this.order = new Int32Array(count);
    for (let k = 0; k < count; k++) this.order[k] = k;
    for (let k = count - 1; k > 0; k--) {
      const j = Math.floor(Math.random() * (k + 1));
      const t = this.order[k];
      this.order[k] = this.order[j];
      this.order[j] = t;
    }
  }

  private clientWord(k: number): number {
    return (SPREAD_BASE + Math.floor(k / CLIENT_PORTS)) >>> 0;
  }

  /** `n` pairs, each on the next connection of {@link order}. Returns the bytes written back. */
  run(n: number, engine = true): number {
    const e = this.engine;
    const a = this.c2s;
    const d = this.s2c;
    const order = this.order;
    let out = 0;
    for (let k = 0; k < n; k++) {
      const c = order[k % order.length];
      a.set(this.c2sHead);
      ipv4SetSrc(a, 0, this.clientWord(c));
      tcpSetSrcPort(a, 20, 1024 + (c % CLIENT_PORTS));
      d.set(this.s2cHead);
      ipv4SetSrc(d, 0, this.rs[c]);
      ipv4SetDst(d, 0, this.local[c]);
      tcpSetDstPort(d, 20, this.lport[c]);
      tcpSetAck(d, 20, this.ack[c]);
      if (engine) {
        out += e.process(a, this.c2sLen, this.now);
        out += e.process(d, this.s2cLen, this.now);
      } else {
        out += a[k & 31] + d[k & 31];
      }
    }
    return out;
  }

  /** Bytes a pair should return (both packets forwarded, none grown). */
  get pairBytes(): number {
    return this.c2sLen + this.s2cLen;
  }
}

// ---- Deno.bench ---------------------------------------------------------------------------------------

/** The Deno.bench cases; their engines are made only under `deno bench`, so script mode starts clean. */
function registerBenches(): void {
  const flood = new SynFlood(
    new Engine(benchConfig(16, 1_000_000), { now: 1000, memory: ALIGNED_HUGE_MEMORY }),
  );
  Deno.bench(
    "engine: 1000 new connections (SYN → local pair, TOA, no timestamp)",
    { group: "engine" },
    () => {
      if (flood.run(1000) === 0) throw new Error("every SYN dropped");
    },
  );
  const est = new Established();
  Deno.bench("engine: 1000 established pairs (ACK c→s + 1448 B data s→c)", { group: "engine" }, () => {
    if (est.run(1000) !== 1000 * est.pairBytes) throw new Error("a packet was dropped");
  });
  Deno.bench(
    "baseline: 1000 pairs of 40-byte header restores only",
    { group: "engine", baseline: true },
    () => {
      est.restoreOnly(1000);
    },
  );
}

// ---- script mode ----------------------------------------------------------------------------------------

/** Best of `rounds` timings of `fn()` (ms) after one warm-up call. */
function best(rounds: number, fn: () => void): number {
  fn();
  let min = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    fn();
    min = Math.min(min, performance.now() - t0);
  }
  return min;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

const MB = 1024 * 1024;

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"));
    return m ? m[1] : "unknown CPU";
  } catch {
    return "unknown CPU";
  }
}

function fmtRate(perSec: number): string {
  return perSec >= 1e6 ? `${(perSec / 1e6).toFixed(2)} M/s` : `${(perSec / 1e3).toFixed(0)} k/s`;
}

/** Whole-process RSS targets: the 1M figure, and the 10M one for bigger tables. */
function rssTarget(n: number): number {
  return n <= 1_000_000 ? 300 * MB : 1200 * MB;
}

/**
 * Client-side lookups of the connections {@link SynFlood} made, its tuples numbered by `probes` (random):
 * each probe lands on a cold bucket and a cold entry once the table outgrows the caches. Returns
 * how many were found.
 */
function randomLookups(e: Engine, probes: Int32Array): number {
  let found = 0;
  const conns = e.conns;
  for (let k = 0; k < probes.length; k++) {
    const i = probes[k];
    const addr = (CLIENT_BASE + Math.floor(i / CLIENT_PORTS) % 32768) >>> 0;
    if (conns.findClient(0, addr, 0, 0, 0, 1024 + (i % CLIENT_PORTS)) >= 0) found++;
  }
  return found;
}

function main(): void {
  const hasGc = typeof (globalThis as { gc?: unknown }).gc === "function";
  const { values } = parseArgs({ args: Deno.args, options: { connections: { type: "string" } } });
  const N = Number(values.connections ?? 1_000_000);
  if (!Number.isInteger(N) || N < 2) throw new Error(`--connections: a whole number ≥ 2, not ${N}`);
  const nLabel = N.toLocaleString("en-US");
  // Enough local addresses for N pairs (64511 ports each), one spare for the established pair.
  const locals = Math.ceil(N / PORTS_PER_LOCAL);
  if (locals > 254) throw new Error(`--connections ${N}: needs ${locals} local addresses, at most 254 here`);

  // Established connections visited in a random order: a tenth of the table, at most 1M.
  const spreadN = Math.min(1_000_000, Math.floor(N / 10));
  // 3 first, while the process holds nothing else: memory with N connections (N − 1 by SYNs, then one
  // established on the same table).
  gc();
  const m0 = Deno.memoryUsage();
  const big = new SynFlood(new Engine(benchConfig(locals, N), { now: 1000, memory: ALIGNED_HUGE_MEMORY }));
  gc();
  const m1 = Deno.memoryUsage();
  const t0 = performance.now();
  big.run(N - 1 - spreadN);
  const fillMs = performance.now() - t0;
  const estBig = new Established(false, big.engine);
  const spread = new Spread(big.engine, spreadN);
  gc();
  const m2 = Deno.memoryUsage();
  const conns = big.engine.conns.size;
  if (conns !== N || dropped(big.engine) !== 0) {
    throw new Error(`fill: ${conns} connections of ${N}, ${dropped(big.engine)} drops`);
  }
  const perConnRss = (m2.rss - m0.rss) / conns;
  const perConnTyped = (m2.external + m2.heapUsed - m0.external - m0.heapUsed) / conns;

  // 2c. Established packets/s on the big table, and random lookups in it (cache misses).
  const PAIRS_BIG = 2_000_000;
  const estBigMs = best(5, () => {
    if (estBig.run(PAIRS_BIG) !== PAIRS_BIG * estBig.pairBytes) throw new Error("a packet was dropped");
  });
  const spreadMs = best(3, () => {
    if (spread.run(PAIRS_BIG) !== PAIRS_BIG * spread.pairBytes) throw new Error("a packet was dropped");
  });
  const spreadRestoreMs = best(3, () => spread.run(PAIRS_BIG, false));
  const ppsSpread = (2 * PAIRS_BIG) / ((spreadMs - spreadRestoreMs) / 1000);
  const probes = new Int32Array(2_000_000);
  for (let k = 0; k < probes.length; k++) probes[k] = Math.floor(Math.random() * (N - 1 - spreadN));
  const lookupMs = best(3, () => {
    if (randomLookups(big.engine, probes) !== probes.length) throw new Error("a lookup missed");
  });
  const lookupRate = probes.length / (lookupMs / 1000);

  // 1. New connections/s, steady state (a full table expired by tick on the way).
  const flood = new SynFlood(
    new Engine(benchConfig(16, 1_000_000), { now: 1000, memory: ALIGNED_HUGE_MEMORY }),
  );
  const N_SYN = 2_000_000;
  const synMs = best(3, () => {
    if (flood.run(N_SYN) === 0) throw new Error("every SYN dropped");
  });
  if (dropped(flood.engine) !== 0) throw new Error(`SYN flood dropped ${dropped(flood.engine)} packets`);
  const synRate = N_SYN / (synMs / 1000);

  // 1b. SYNs answered with cookies/s (SYN proxy on: no entry, no port; the SYN+ACK built in place).
  const cookies = new SynFlood(
    new Engine(benchConfig(16, 1_000_000, "on"), { now: 1000, memory: ALIGNED_HUGE_MEMORY }),
  );
  const cookieMs = best(3, () => {
    if (cookies.run(N_SYN) === 0) throw new Error("no SYN answered");
  });
  if (cookies.engine.conns.size !== 0) throw new Error("a cookie SYN made an entry");
  const cookieRate = N_SYN / (cookieMs / 1000);

  // 2. Established packets/s, opened directly and through the SYN proxy.
  const est = new Established();
  const PAIRS = 2_000_000;
  const estMs = best(5, () => {
    if (est.run(PAIRS) !== PAIRS * est.pairBytes) throw new Error("an established packet was dropped");
  });
  const restoreMs = best(5, () => est.restoreOnly(PAIRS));
  const pps = (2 * PAIRS) / (estMs / 1000);
  const ppsEngine = (2 * PAIRS) / ((estMs - restoreMs) / 1000);
  const estSp = new Established(true);
  const estSpMs = best(5, () => {
    if (estSp.run(PAIRS) !== PAIRS * estSp.pairBytes) throw new Error("a SYN-proxied packet was dropped");
  });
  const ppsSp = (2 * PAIRS) / ((estSpMs - restoreMs) / 1000);
  const ppsBig = (2 * PAIRS_BIG) / ((estBigMs - restoreMs * PAIRS_BIG / PAIRS) / 1000);

  const rows: [string, string, string, string][] = [
    ["new connections (SYN: schedule, local pair, TOA, no TS)", fmtRate(synRate), "—", "—"],
    [
      "established packets/s (incl. 40 B header restore)",
      fmtRate(pps),
      "≥ 2.00 M/s",
      `${(pps / 2e6).toFixed(2)}× ${pps >= 2e6 ? "ok" : "MISS"}`,
    ],
    [
      "established packets/s (engine only, restore excluded)",
      fmtRate(ppsEngine),
      "≥ 2.00 M/s",
      `${(ppsEngine / 2e6).toFixed(2)}× ${ppsEngine >= 2e6 ? "ok" : "MISS"}`,
    ],
    [
      "  ns per established packet (engine only)",
      `${((estMs - restoreMs) * 1e6 / (2 * PAIRS)).toFixed(1)} ns`,
      "—",
      "—",
    ],
    ["SYNs answered with a cookie (SYN proxy on)", fmtRate(cookieRate), "—", "—"],
    [
      "established packets/s, SYN proxy connection (engine only)",
      fmtRate(ppsSp),
      "vs direct",
      `${(ppsSp / ppsEngine).toFixed(2)}×`,
    ],
    [
      "  ns per established packet, SYN proxy connection",
      `${((estSpMs - restoreMs) * 1e6 / (2 * PAIRS)).toFixed(1)} ns`,
      "—",
      "—",
    ],
    [
      `established packets/s, table of ${nLabel} (engine only)`,
      fmtRate(ppsBig),
      "≥ 2.00 M/s",
      `${(ppsBig / 2e6).toFixed(2)}× ${ppsBig >= 2e6 ? "ok" : "MISS"}`,
    ],
    [
      `  … ${spreadN.toLocaleString("en-US")} connections in random order (engine only)`,
      fmtRate(ppsSpread),
      "≥ 2.00 M/s",
      `${(ppsSpread / 2e6).toFixed(2)}× ${ppsSpread >= 2e6 ? "ok" : "MISS"}`,
    ],
    [`  random client lookups in the ${nLabel} table`, fmtRate(lookupRate), "—", "—"],
    [
      `RSS with ${nLabel} connections (whole process)`,
      `${(m2.rss / MB).toFixed(0)} MB`,
      `≤ ${rssTarget(N) / MB} MB`,
      `${(m2.rss / rssTarget(N)).toFixed(2)}× ${m2.rss <= rssTarget(N) ? "ok" : "MISS"}`,
    ],
    [`  RSS growth: engine built + ${nLabel}`, `${((m2.rss - m0.rss) / MB).toFixed(0)} MB`, "—", "—"],
    ["  of which at construction (preallocated)", `${((m1.rss - m0.rss) / MB).toFixed(0)} MB`, "—", "—"],
    [`  bytes per connection (RSS growth / N), ${locals} locals`, `${perConnRss.toFixed(0)} B`, "—", "—"],
    ["  bytes per connection (V8 heap + external)", `${perConnTyped.toFixed(0)} B`, "—", "—"],
    [`  time to make ${nLabel} connections`, `${fillMs.toFixed(0)} ms`, "—", "—"],
  ];
  const w = [58, 14, 12, 12];
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  console.log(`engine bench — Deno ${Deno.version.deno}, V8 ${Deno.version.v8}, ${cpuModel()}, 1 core`);
  console.log(line(["figure", "measured", "target", "ratio"]));
  console.log("-".repeat(w.reduce((a, b) => a + b + 2, -2)));
  for (const r of rows) console.log(line(r));
  console.log(
    `heap used ${(m0.heapUsed / MB).toFixed(1)} → ${(m2.heapUsed / MB).toFixed(1)} MB, external ` +
      `${(m0.external / MB).toFixed(1)} → ${(m2.external / MB).toFixed(1)} MB; RSS ${
        (m0.rss / MB).toFixed(0)
      } → ` +
      `${(m1.rss / MB).toFixed(0)} (built) → ${(m2.rss / MB).toFixed(0)} MB (filled)` +
      (hasGc ? "" : "; run with --v8-flags=--expose-gc for figures after a full GC"),
  );
}

if (import.meta.main) main();
else registerBenches();
