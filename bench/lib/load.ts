/**
 * The three load generators of the comparison, run in the client namespace with hard bounds, and their
 * output parsed into numbers:
 *
 * - iperf3 (`-t`, `-J`): bulk TCP throughput, bits/s received by the server, and the sender's retransmits;
 * - ab (ApacheBench, HTTP/1.0, no `-k`): one new TCP connection per request — connections/s at a
 *   concurrency, and at concurrency 1 the mean time of a whole connect+request+close transaction;
 * - wrk (`-t1 -c1 --latency`, HTTP/1.1 keep-alive): request round-trip time on an open connection, p50/avg.
 *
 * Every run is bounded twice: by the tool's own limit (iperf3 -t, ab -t/-n/-s, wrk -d/--timeout) and by a
 * kill deadline a few seconds later ({@link runBounded}).
 *
 * @module
 */
import { nsRun } from "./proc.ts";

/** Bulk TCP figures from iperf3. */
export interface BulkResult {
  /** Received by the server, bits/s. */
  bitsPerSecond: number;
  /** Sender retransmits. */
  retransmits: number;
}

/** Short-connection figures from ab. */
export interface AbResult {
  /** Requests (= connections) per second. */
  perSecond: number;
  /** Requests completed. */
  complete: number;
  /** Failed requests (connect, receive, length, exceptions) plus non-2xx responses. */
  failed: number;
  /** Mean time per request at the run's concurrency, ms (`Time per request … (mean)`). */
  meanMs: number;
  /** Median time per request, ms (from ab's `-e` percentile file), when asked for. */
  p50Ms?: number;
  /** 99th percentile time per request, ms, when asked for. */
  p99Ms?: number;
}

/** Keep-alive request latency from wrk. */
export interface WrkResult {
  /** Median request latency, µs. */
  p50Us: number;
  /** Mean request latency, µs. */
  avgUs: number;
  /** Requests per second. */
  perSecond: number;
  /** Socket errors plus non-2xx/3xx responses. */
  errors: number;
}

/** Parses `iperf3 -J` output; throws with iperf3's own error text when the test failed. */
export function parseIperf3(json: string): BulkResult {
  let doc: {
    error?: string;
    end?: { sum_received?: { bits_per_second?: number }; sum_sent?: { retransmits?: number } };
  };
  try {
    doc = JSON.parse(json);
  } catch {
    throw new Error(`iperf3: no JSON output (${json.trim().slice(0, 200)})`);
  }
  if (doc.error) throw new Error(`iperf3: ${doc.error}`);
  const bps = doc.end?.sum_received?.bits_per_second;
  if (typeof bps !== "number") throw new Error("iperf3: no end.sum_received.bits_per_second");
  return { bitsPerSecond: bps, retransmits: doc.end?.sum_sent?.retransmits ?? 0 };
}

function abField(text: string, label: string): number | undefined {
  const m = new RegExp(`^${label}:\\s+([0-9.]+)`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Parses ab's report. */
export function parseAb(text: string): AbResult {
  const complete = abField(text, "Complete requests");
  const perSecond = abField(text, "Requests per second");
  const meanMs = abField(text, "Time per request");
  if (complete === undefined || perSecond === undefined || meanMs === undefined) {
    throw new Error(`ab: no report (${text.trim().slice(-300)})`);
  }
  const failed = (abField(text, "Failed requests") ?? 0) + (abField(text, "Non-2xx responses") ?? 0);
  return { perSecond, complete, failed, meanMs };
}

/** Parses ab's `-e` percentile file (`Percentage served,Time in ms` then `0,0.181` … `99,1.402`). */
export function parseAbPercentiles(csv: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of csv.split("\n")) {
    const m = /^(\d+),([0-9.]+)$/.exec(line.trim());
    if (m) out.set(Number(m[1]), Number(m[2]));
  }
  return out;
}

/** A wrk duration (`81.00us`, `1.20ms`, `2.00s`) in µs. */
export function wrkMicros(text: string): number {
  const m = /^([0-9.]+)(us|ms|s|m)$/.exec(text);
  if (!m) throw new Error(`wrk: unknown duration ${JSON.stringify(text)}`);
  const scale = { us: 1, ms: 1e3, s: 1e6, m: 60e6 }[m[2] as "us" | "ms" | "s" | "m"];
  return Number(m[1]) * scale;
}

/** Parses wrk's report (run with `--latency`). */
export function parseWrk(text: string): WrkResult {
  const avg = /^\s+Latency\s+(\S+)/m.exec(text);
  const p50 = /^\s+50%\s+(\S+)/m.exec(text);
  const rps = /^Requests\/sec:\s+([0-9.]+)/m.exec(text);
  if (!avg || !p50 || !rps) throw new Error(`wrk: no report (${text.trim().slice(-300)})`);
  let errors = 0;
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  if (sock) errors += sock.slice(1).reduce((n, x) => n + Number(x), 0);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  if (non2xx) errors += Number(non2xx[1]);
  return { p50Us: wrkMicros(p50[1]), avgUs: wrkMicros(avg[1]), perSecond: Number(rps[1]), errors };
}

/** iperf3 client from `ns` to `host:port` for `seconds` (plus one omitted warm-up second). */
export async function iperf3(
  ns: string,
  host: string,
  port: number,
  seconds: number,
  streams: number,
  signal?: AbortSignal,
): Promise<BulkResult> {
  const cmd = ["iperf3", "-c", host, "-p", String(port), "-t", String(seconds), "-O", "1", "-J"];
  cmd.push("-P", String(streams), "--connect-timeout", "3000");
  const r = await nsRun(ns, cmd, (seconds + 1 + 15) * 1000, signal);
  return parseIperf3(r.stdout);
}

/** Limits of one ab run. */
export interface AbOptions {
  /** Concurrency. */
  concurrency: number;
  /** Time limit, seconds. */
  seconds: number;
  /** Request limit (ab stops at whichever comes first). */
  requests: number;
  /** Where ab writes its percentile file (`-e`); with it the result has p50 and p99. */
  percentileFile?: string;
}

/** ab (HTTP/1.0, a new connection per request) from `ns` against `url`. */
export async function ab(ns: string, url: string, o: AbOptions, signal?: AbortSignal): Promise<AbResult> {
  // -t before -n: -t resets the request limit to 50000, a later -n sets ours. -s: per-socket timeout;
  // -r: a failed connection is counted, not fatal.
  const cmd = ["ab", "-q", "-r", "-s", "5", "-c", String(o.concurrency), "-t", String(o.seconds)];
  cmd.push("-n", String(o.requests));
  if (o.percentileFile) cmd.push("-e", o.percentileFile);
  cmd.push(url);
  const r = await nsRun(ns, cmd, (o.seconds + 15) * 1000, signal);
  if (r.code !== 0 && !/Complete requests/.test(r.stdout)) {
    throw new Error(`ab exited ${r.code}: ${(r.stderr || r.stdout).trim().split("\n").slice(-2).join(" ")}`);
  }
  const res = parseAb(r.stdout);
  if (o.percentileFile) {
    const p = parseAbPercentiles(await Deno.readTextFile(o.percentileFile).catch(() => ""));
    res.p50Ms = p.get(50);
    res.p99Ms = p.get(99);
  }
  return res;
}

/** wrk, one thread, one keep-alive connection, from `ns` against `url` for `seconds`. */
export async function wrkC1(
  ns: string,
  url: string,
  seconds: number,
  signal?: AbortSignal,
): Promise<WrkResult> {
  const cmd = ["wrk", "-t1", "-c1", `-d${seconds}s`, "--timeout", "2s", "--latency", url];
  const r = await nsRun(ns, cmd, (seconds + 15) * 1000, signal);
  if (r.code !== 0) throw new Error(`wrk exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  return parseWrk(r.stdout);
}
