/**
 * A bounded TCP flooder for the defence tests (tests/e2e_defence_test.ts, bench/defence.ts): SYNs (or bare
 * ACKs with random sequence and acknowledgment numbers) to one VIP:port, from random spoofed IPv4 sources,
 * at a target rate or at full speed — for at most `--seconds` (≤ 15) AND at most `--count` packets, both
 * required. Run it inside the client namespace; as a script it prints one JSON line at the end:
 * `{"sent":…,"seconds":…,"rate":…,"flags":"syn","errors":…}`.
 *
 * Sources are drawn from 198.18.4.0–198.19.255.255: inside the benchmarking block 198.18.0.0/15 (RFC 2544)
 * and outside 198.18.0.0/22, where the topology's real addresses live (VIPs 198.18.0.x, client network
 * 198.18.1.x, local addresses 198.18.2.x, real servers 198.18.3.x; netns-scripts/up.sh). Where the answers
 * go: the gateway namespace has routes only to its two networks and into the TUN, so the SYN+ACKs and
 * RSTs the gateway sends to a spoofed source find no route there and die inside the gateway namespace
 * (the kernel counts them, `IpExtInNoRoutes`; row a of tests/e2e_defence_test.ts prints the count):
 * none reaches the client namespace, and nothing leaves the namespaces (the client namespace forwards
 * nothing either: ip_forward stays 0 there, and row a asserts it).
 *
 * How: one raw socket (AF_INET, SOCK_RAW, IPPROTO_RAW: the header is ours) and `sendmmsg(2)` batches of
 * up to 256 datagrams through the project's libc binding (base/sys/libc.ts). Each segment is written in
 * place with correct IPv4 and TCP checksums (the peer kernels verify them: up.sh turns rx offload off).
 *
 *   IPv4 (20) | TCP (20 + MSS option 4 on SYNs)
 *   src random in the range above, sport random ≥ 1024, seq random; SYN: window 64240, MSS 1460
 *
 * @example
 * ```ts
 * // From a test: 15 k SYN/s for 10 s (at most 150 000 packets), in the client namespace.
 * const r = await runFlood(lab.t.nsCli, { dst: "198.18.0.10", dport: 80, rate: 15_000, seconds: 10, count: 150_000 });
 * console.log(r.sent, r.rate);
 * ```
 * ```sh
 * ip netns exec $NS_CLI deno run -A tests/helpers/syn_flood.ts --dst 198.18.0.10 --dport 80 \
 *   --rate 0 --seconds 5 --count 5000000
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  AF_INET,
  errno,
  intOption,
  IOVEC_SIZE,
  IPPROTO_RAW,
  libc,
  MMSGHDR_SIZE,
  SO_SNDBUFFORCE,
  SOCK_RAW,
  SOCKADDR_IN_SIZE,
  SOL_SOCKET,
} from "../../base/sys/libc.ts";

/** The hard cap on a flood's duration, seconds. */
export const MAX_SECONDS = 15;
/** First spoofed source (198.18.4.0) and how many follow it (to 198.19.255.255). */
const SRC_BASE = ((198 << 24) | (18 << 16) | (4 << 8)) >>> 0;
const SRC_COUNT = (1 << 17) - 4 * 256;
const BATCH = 256;
const SLOT = 64; // bytes per packet in the arena

/** What to send. */
export interface FloodOptions {
  /** Destination IPv4 address (the VIP). */
  dst: string;
  /** Destination port. */
  dport: number;
  /** Packets per second; 0 = as fast as the socket takes them. */
  rate: number;
  /** Stop after this many seconds (1..15). */
  seconds: number;
  /** Stop after this many packets. */
  count: number;
  /** `syn` (default) or `ack` (random seq/ack, no connection behind them). */
  flags?: "syn" | "ack";
}

/** What a flood did. */
export interface FloodResult {
  /** Packets the kernel took. */
  sent: number;
  /** Seconds it ran. */
  seconds: number;
  /** sent / seconds. */
  rate: number;
  /** The flags sent. */
  flags: string;
  /** sendmmsg calls that failed (ENOBUFS …). */
  errors: number;
}

/** Checks the bounds; throws a RangeError naming the option. */
export function checkFloodOptions(o: FloodOptions): void {
  if (!/^198\.1[89]\.\d{1,3}\.\d{1,3}$/.test(o.dst)) {
    throw new RangeError(`--dst must be an IPv4 address inside 198.18.0.0/15, got ${o.dst}`);
  }
  if (!Number.isInteger(o.dport) || o.dport < 1 || o.dport > 65535) throw new RangeError("--dport: 1..65535");
  if (!Number.isFinite(o.seconds) || o.seconds <= 0 || o.seconds > MAX_SECONDS) {
    throw new RangeError(`--seconds: required, 0 < s <= ${MAX_SECONDS}, got ${o.seconds}`);
  }
  if (!Number.isInteger(o.count) || o.count < 1) {
    throw new RangeError(`--count: required, >= 1, got ${o.count}`);
  }
  if (!Number.isFinite(o.rate) || o.rate < 0) {
    throw new RangeError(`--rate: >= 0 (0 = full speed), got ${o.rate}`);
  }
}

function ipv4(text: string): number {
  return text.split(".").reduce((a, p) => (a << 8) | Number(p), 0) >>> 0;
}

/** One's-complement sum of `len` bytes of `b` from `off`, as 16-bit big-endian words (len even). */
function sum16(b: Uint8Array, off: number, len: number, acc: number): number {
  for (let i = off; i < off + len; i += 2) acc += (b[i] << 8) | b[i + 1];
  return acc;
}

function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Floods in this process (it must run in the client namespace); returns what it sent. */
export async function flood(o: FloodOptions): Promise<FloodResult> {
  checkFloodOptions(o);
  const syn = (o.flags ?? "syn") === "syn";
  const tcpLen = syn ? 24 : 20;
  const pktLen = 20 + tcpLen;
  const c = libc();
  const fd = c.socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0) throw new Error(`socket(AF_INET, SOCK_RAW, IPPROTO_RAW): errno ${errno()} (needs root)`);
  try {
    c.setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, intOption(4 << 20), 4);
    // One arena: packets, iovecs, mmsghdrs, the destination; the headers point into it by address.
    const pktOff = 0;
    const iovOff = BATCH * SLOT;
    const msgOff = iovOff + BATCH * IOVEC_SIZE;
    const addrOff = msgOff + BATCH * MMSGHDR_SIZE;
    const arena = new Uint8Array(addrOff + SOCKADDR_IN_SIZE);
    const dv = new DataView(arena.buffer);
    const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(arena)));
    const dst = ipv4(o.dst);
    dv.setUint16(addrOff, AF_INET, true);
    dv.setUint32(addrOff + 4, dst, false);
    for (let i = 0; i < BATCH; i++) {
      const iov = iovOff + i * IOVEC_SIZE;
      dv.setBigUint64(iov, base + BigInt(pktOff + i * SLOT), true);
      dv.setBigUint64(iov + 8, BigInt(pktLen), true);
      const m = msgOff + i * MMSGHDR_SIZE;
      dv.setBigUint64(m, base + BigInt(addrOff), true); // msg_name
      dv.setUint32(m + 8, SOCKADDR_IN_SIZE, true); // msg_namelen
      dv.setBigUint64(m + 16, base + BigInt(iov), true); // msg_iov
      dv.setBigUint64(m + 24, 1n, true); // msg_iovlen
      // The fixed fields of each packet.
      const p = pktOff + i * SLOT;
      arena[p] = 0x45;
      dv.setUint16(p + 2, pktLen);
      arena[p + 8] = 64; // TTL
      arena[p + 9] = 6; // TCP
      dv.setUint32(p + 16, dst);
      dv.setUint16(p + 22, o.dport);
      arena[p + 32] = (tcpLen / 4) << 4;
      arena[p + 33] = syn ? 0x02 : 0x10;
      dv.setUint16(p + 34, 64240);
      if (syn) dv.setUint32(p + 40, 0x020405b4); // MSS 1460
    }
    const msgs = arena.subarray(msgOff, msgOff + BATCH * MMSGHDR_SIZE);
    let x = (crypto.getRandomValues(new Uint32Array(1))[0] | 1) >>> 0;
    const rnd = () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x >>> 0;
    };
    const fill = (n: number) => {
      for (let i = 0; i < n; i++) {
        const p = pktOff + i * SLOT;
        const src = SRC_BASE + (rnd() % SRC_COUNT);
        dv.setUint16(p + 4, rnd() & 0xffff); // IP id
        dv.setUint16(p + 10, 0);
        dv.setUint32(p + 12, src);
        dv.setUint16(p + 10, fold(sum16(arena, p, 20, 0)));
        dv.setUint16(p + 20, 1024 + (rnd() % 64512));
        dv.setUint32(p + 24, rnd());
        dv.setUint32(p + 28, syn ? 0 : rnd());
        dv.setUint16(p + 36, 0);
        // Pseudo-header: addresses, protocol, TCP length.
        const pseudo = sum16(arena, p + 12, 8, 6 + tcpLen);
        dv.setUint16(p + 36, fold(sum16(arena, p + 20, tcpLen, pseudo)));
      }
    };
    const t0 = performance.now();
    const end = t0 + o.seconds * 1000;
    let sent = 0;
    let errors = 0;
    for (;;) {
      const now = performance.now();
      if (now >= end || sent >= o.count) break;
      let want = Math.min(BATCH, o.count - sent);
      if (o.rate > 0) {
        const due = Math.floor(((now - t0) / 1000) * o.rate) - sent;
        if (due <= 0) {
          await new Promise((r) => setTimeout(r, 1));
          continue;
        }
        want = Math.min(want, due);
      }
      fill(want);
      const n = c.sendmmsg(fd, msgs, want, 0);
      if (n < 0) {
        errors++;
        if (errors > 1_000_000) throw new Error(`sendmmsg: errno ${errno()}`);
        continue;
      }
      sent += n;
    }
    const seconds = (performance.now() - t0) / 1000;
    return { sent, seconds, rate: Math.round(sent / seconds), flags: syn ? "syn" : "ack", errors };
  } finally {
    c.close(fd);
  }
}

const SELF = new URL(import.meta.url).pathname;

/**
 * Runs this script in namespace `ns` (bounded: killed 10 s after its own limit) and returns its JSON line.
 */
export async function runFlood(ns: string, o: FloodOptions): Promise<FloodResult> {
  checkFloodOptions(o);
  const args = [
    "ip",
    "netns",
    "exec",
    ns,
    Deno.execPath(),
    "run",
    "-A",
    SELF,
    "--dst",
    o.dst,
    "--dport",
    String(o.dport),
    "--rate",
    String(o.rate),
    "--seconds",
    String(o.seconds),
    "--count",
    String(o.count),
    "--flags",
    o.flags ?? "syn",
  ];
  const child = new Deno.Command(args[0], { args: args.slice(1), stdout: "piped", stderr: "piped" }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, (o.seconds + 10) * 1000);
  try {
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
    if (!out.success) {
      throw new Error(`syn_flood.ts exited ${out.code}: ${new TextDecoder().decode(out.stderr).trim()}`);
    }
    return JSON.parse(text) as FloodResult;
  } finally {
    clearTimeout(timer);
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      dst: { type: "string" },
      dport: { type: "string" },
      rate: { type: "string", default: "0" },
      seconds: { type: "string" },
      count: { type: "string" },
      flags: { type: "string", default: "syn" },
    },
  });
  if (values.seconds === undefined || values.count === undefined || values.dst === undefined) {
    console.error(
      "usage: syn_flood.ts --dst VIP --dport N --seconds S(<=15) --count M [--rate PPS|0] [--flags syn|ack]",
    );
    Deno.exit(2);
  }
  if (values.flags !== "syn" && values.flags !== "ack") {
    console.error(`--flags: syn or ack, got ${values.flags}`);
    Deno.exit(2);
  }
  const r = await flood({
    dst: values.dst,
    dport: Number(values.dport ?? 80),
    rate: Number(values.rate),
    seconds: Number(values.seconds),
    count: Number(values.count),
    flags: values.flags,
  });
  console.log(JSON.stringify(r));
}
