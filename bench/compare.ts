/**
 * Side-by-side benchmark of the FULLNAT gateway against the kernel and HAProxy, in one run on one
 * namespace topology (netns-scripts/up.sh: client — gw — rs1, rs2):
 *
 *   direct    client → rs1 through the gw namespace's kernel forwarding, no NAT (the limit)
 *   nft       nftables DNAT+SNAT in the gw namespace
 *   haproxy   Debian's HAProxy, mode tcp, in the gw namespace
 *   gwN       `mod.ts lb` with N workers (default gw1 and gw2)
 *
 * Per path: iperf3 bulk TCP (iperf3 -s on rs1), short connections/s (ab, HTTP/1.0, no keep-alive, to nginx
 * on the real servers), latency at concurrency 1 (ab -c 1 mean: connect+request+close; wrk -c1 p50:
 * keep-alive round trip), and the CPU use of the forwarding process during the bulk and short-connection
 * runs (/proc/PID/stat utime+stime) next to the host's softirq time (/proc/stat) — the only place the
 * kernel paths' work shows. Then the gateway's ratios against the targets. Figures, not assertions: the
 * exit status is 0 whether or not a target is met, non-zero only when the run itself could not be done.
 *
 * Everything lives in namespaces named `lbb<hex>-*` created for this run, and is removed on every exit
 * path (also on SIGINT/SIGTERM); should the process be SIGKILLed, `netns-scripts/down.sh lbb<hex>` removes
 * what is left (the prefix is printed first).
 *
 * Run (as root): deno run -A bench/compare.ts [--paths direct,nft,haproxy,gw1,gw2] [--time 5] …
 * (`--help` lists the flags; docs/performance.md has the latest figures.)
 *
 * @module
 */
import { parseArgs } from "node:util";
import { downTopology, type Topology, upTopology } from "../netns-scripts/topology.ts";
import { leftovers } from "../tests/helpers/lab.ts";
import { startNginx } from "../tests/helpers/nginx.ts";
import type { Background } from "../tests/helpers/process.ts";
import { ConfigError, validateConfig } from "../lb/config.ts";
import { ab, iperf3, wrkC1 } from "./lib/load.ts";
import {
  parsePathName,
  type PathEnv,
  type PathHandle,
  type PathSpec,
  setUpPath,
  startIperf3Server,
} from "./lib/paths.ts";
import { checkAbort, cpuPercent, cpuSample, Interrupted, sleep } from "./lib/proc.ts";
import {
  formatMachine,
  formatRatios,
  formatResults,
  machineInfo,
  type PathResult,
  ratios,
} from "./lib/report.ts";

const REPO = new URL("..", import.meta.url).pathname;

const USAGE = `usage: deno run -A bench/compare.ts [flags]      (as root; about 100 s with the defaults)

  --paths LIST     paths in run order, comma-separated: direct, nft, haproxy, gwN (N workers)
                   (default direct,nft,haproxy,gw1,gw2)
  --time S         seconds of each bulk (iperf3 -t, plus 1 s omitted) and short-connection (ab -t) run (5)
  --lat-time S     seconds of each concurrency-1 run: ab -c1 and wrk -c1 (3)
  --conc N         ab concurrency of the short-connection run (32)
  --streams N      iperf3 parallel streams (1)
  --file-size B    bytes of the small file nginx serves (128)
  --offload MODE   gateway "offload" key: default (key left out), on, off, both (each gwN twice)
  --steering MODE  gateway steering with several workers: auto, bpf, handoff (auto)
  --busy-poll LIST gateway "busyPollUs" values, comma-separated: each gwN once per value, named
                   gwN+bpUS when not 0 (0: the gateway's default, off)
  --shared-local   nftables SNATs to the gateways' local addresses and every gateway uses the same ones:
                   each meets the TIME_WAIT tuples earlier paths left on the servers (takeover)
  --json FILE      also write the machine, figures and ratios as JSON
  -h, --help       this text`;

interface Options {
  specs: PathSpec[];
  time: number;
  latTime: number;
  conc: number;
  streams: number;
  fileSize: number;
  steering: string;
  busyPolls: number[];
  sharedLocal: boolean;
  json?: string;
  offloadNote?: string;
}

/** True when this checkout's lb/config.ts accepts an `"offload"` key. */
function offloadSupported(): boolean {
  const minimal = {
    localAddresses: ["198.18.2.1"],
    services: [{ vip: "198.18.0.10", port: 80, realServers: [{ address: "198.18.3.10" }] }],
  };
  try {
    validateConfig({ ...minimal, offload: true });
    return true;
  } catch (e) {
    if (e instanceof ConfigError && e.field === "offload") return false;
    throw e;
  }
}

function positiveInt(name: string, text: string, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new Error(`--${name}: expected an integer 1..${max}, got ${text}`);
  }
  return n;
}

function parseOptions(args: string[]): Options | undefined {
  const { values } = parseArgs({
    args,
    options: {
      paths: { type: "string", default: "direct,nft,haproxy,gw1,gw2" },
      time: { type: "string", default: "5" },
      "lat-time": { type: "string", default: "3" },
      conc: { type: "string", default: "32" },
      streams: { type: "string", default: "1" },
      "file-size": { type: "string", default: "128" },
      offload: { type: "string", default: "default" },
      steering: { type: "string", default: "auto" },
      "busy-poll": { type: "string", default: "0" },
      "shared-local": { type: "boolean", default: false },
      json: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const offload = values.offload;
  if (!["default", "on", "off", "both"].includes(offload)) {
    throw new Error(`--offload: expected default, on, off or both, got ${offload}`);
  }
  if (!["auto", "bpf", "handoff"].includes(values.steering)) {
    throw new Error(`--steering: expected auto, bpf or handoff, got ${values.steering}`);
  }
  let offloadNote: string | undefined;
  const supported = offloadSupported();
  if (offload !== "default" && !supported) {
    throw new Error(`--offload ${offload}: this checkout's lb/config.ts has no "offload" key yet`);
  }
  if (!supported) offloadNote = `the gateway has no "offload" config key in this checkout`;
  const busyPolls = values["busy-poll"].split(",").map((v) => {
    const n = Number(v.trim());
    if (!Number.isInteger(n) || n < 0 || n > 10_000) {
      throw new Error(`--busy-poll: expected integers from 0 to 10000, got ${JSON.stringify(v)}`);
    }
    return n;
  });
  const specs: PathSpec[] = [];
  for (const name of values.paths.split(",").map((s) => s.trim()).filter(Boolean)) {
    const base = parsePathName(name);
    if (base.kind !== "gw") {
      specs.push(base);
      continue;
    }
    const offloads = offload === "default"
      ? [undefined]
      : offload === "both"
      ? [true, false]
      : [offload === "on"];
    for (const on of offloads) {
      for (const us of busyPolls) {
        const suffix = (on === undefined ? "" : on ? "+offload" : "-offload") + (us > 0 ? `+bp${us}` : "");
        specs.push({
          ...base,
          name: base.name + suffix,
          ...(on === undefined ? {} : { offload: on }),
          ...(us > 0 ? { busyPollUs: us } : {}),
        });
      }
    }
  }
  if (specs.length === 0) throw new Error("--paths: no path given");
  if (new Set(specs.map((s) => s.name)).size !== specs.length) {
    throw new Error("--paths: a path is listed twice");
  }
  return {
    specs,
    time: positiveInt("time", values.time, 600),
    latTime: positiveInt("lat-time", values["lat-time"], 600),
    conc: positiveInt("conc", values.conc, 1000),
    streams: positiveInt("streams", values.streams, 16),
    fileSize: positiveInt("file-size", values["file-size"], 1 << 20),
    steering: values.steering,
    busyPolls,
    sharedLocal: values["shared-local"],
    json: values.json,
    offloadNote,
  };
}

/** Measures one path that is up; a failed measurement is recorded and the next one still runs. */
async function measure(
  t: Topology,
  spec: PathSpec,
  path: PathHandle,
  o: Options,
  dir: string,
  signal: AbortSignal,
): Promise<PathResult> {
  const res: PathResult = { name: spec.name, notes: [], errors: [] };
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      if (e instanceof Interrupted) throw e;
      res.errors.push(`${what}: ${(e as Error).message}`);
    }
  };
  const log = (s: string) => console.error(`bench: ${spec.name}: ${s}`);
  // Reachability and warm-up (neighbour entries, the servers' first accepts) before anything is timed.
  const warm = await ab(t.nsCli, path.url, { concurrency: 4, seconds: 5, requests: 200 }, signal);
  if (warm.complete - warm.failed <= 0) throw new Error(`no HTTP answer through ${path.url}`);

  await attempt("bulk", async () => {
    log(`iperf3 ${o.time}s → ${path.bulkHost}`);
    const a = await cpuSample(path.pid);
    res.bulk = await iperf3(t.nsCli, path.bulkHost, 5201, o.time, o.streams, signal);
    res.cpuBulk = cpuPercent(a, await cpuSample(path.pid));
  });
  await sleep(500, signal);
  await attempt("short connections", async () => {
    log(`ab -c ${o.conc} ${o.time}s → ${path.url}`);
    const a = await cpuSample(path.pid);
    res.conn = await ab(
      t.nsCli,
      path.url,
      { concurrency: o.conc, seconds: o.time, requests: 500_000 },
      signal,
    );
    res.cpuConn = cpuPercent(a, await cpuSample(path.pid));
  });
  await attempt("latency (ab -c 1)", async () => {
    log(`ab -c 1 ${o.latTime}s, wrk -c1 ${o.latTime}s`);
    const percentileFile = `${dir}/${spec.name}-c1.csv`;
    const c1 = { concurrency: 1, seconds: o.latTime, requests: 50_000, percentileFile };
    res.latency = await ab(t.nsCli, path.url, c1, signal);
  });
  await attempt("latency (wrk -c1)", async () => {
    res.rtt = await wrkC1(t.nsCli, path.url, o.latTime, signal);
    if (res.rtt.errors > 0) res.notes.push(`wrk errors: ${res.rtt.errors}`);
  });
  if (res.conn && res.conn.failed > 0) res.notes.push(`ab failed requests: ${res.conn.failed}`);
  return res;
}

async function main(args: string[]): Promise<number> {
  let o: Options | undefined;
  try {
    o = parseOptions(args);
  } catch (e) {
    console.error(`bench: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!o) {
    console.log(USAGE);
    return 0;
  }
  if (Deno.uid() !== 0) {
    console.error("bench: must run as root (it creates network namespaces)");
    return 2;
  }
  const abort = new AbortController();
  const onSignal = () => {
    if (abort.signal.aborted) return;
    console.error("bench: interrupted, tearing down");
    abort.abort();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const signal = abort.signal;

  const machine = await machineInfo(REPO);
  const hex = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, "0"));
  // "lbb", not up.sh's "lbt": tests/run.sh counts leftover "lbt*" namespaces, and a benchmark running
  // beside a test run must not fail it.
  const prefix = `lbb${hex.join("")}`;
  console.error(
    `bench: topology ${prefix} (if this process is killed: bash netns-scripts/down.sh ${prefix})`,
  );
  const started = performance.now();
  const results: PathResult[] = [];
  const tracked: Background[] = [];
  const tuns: string[] = [];
  let failure: unknown;
  let topo: Topology | undefined;
  let dir = "";
  try {
    topo = await upTopology({ rs: 2, prefix });
    const t = topo;
    checkAbort(signal);
    dir = await Deno.makeTempDir({ prefix: `fnat-bench-${prefix}-` });
    const file = "small.html";
    for (let i = 0; i < t.nsRs.length; i++) {
      const n = await startNginx({
        ns: t.nsRs[i],
        dir: `${dir}/rs${i + 1}`,
        listen: [`${t.rsIp4[i]}:80`],
        files: { [file]: "x".repeat(o.fileSize - 1) + "\n" },
      });
      tracked.push(n.process);
    }
    const env = (index: number): PathEnv => ({
      t,
      dir,
      file,
      steering: o!.steering,
      index,
      sharedLocal: o!.sharedLocal,
      track: (p) => tracked.push(p),
      trackTun: (n) => tuns.push(n),
    });
    await startIperf3Server(env(0));
    for (const [i, spec] of o.specs.entries()) {
      checkAbort(signal);
      console.error(`bench: ${spec.name}: setting up`);
      let path: PathHandle | undefined;
      try {
        path = await setUpPath(env(i), spec);
        const r = await measure(t, spec, path, o, dir, signal);
        r.notes.unshift(...await path.notes());
        results.push(r);
      } catch (e) {
        if (e instanceof Interrupted) throw e;
        results.push({ name: spec.name, notes: [], errors: [(e as Error).message] });
      } finally {
        await path?.stop();
      }
      await sleep(1000, signal); // let the last run's connections close before the next path
    }
  } catch (e) {
    failure = e;
  } finally {
    // Teardown: every step runs whatever the one before did.
    for (const p of tracked) await p.stop("SIGTERM", 3_000).catch(() => {});
    if (topo) await downTopology(prefix).catch((e) => console.error(`bench: ${(e as Error).message}`));
    if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    const left = await leftovers(prefix, tracked.map((p) => p.pid), tuns).catch((e) => [String(e)]);
    if (left.length > 0) console.error(`bench: left behind: ${left.join(", ")}`);
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }

  const secs = ((performance.now() - started) / 1000).toFixed(0);
  const rs = ratios(results);
  const out = [
    "",
    `## fnat-lb comparison (${secs} s${failure instanceof Interrupted ? ", interrupted" : ""})`,
    "",
    formatMachine(machine),
    `- flags: --time ${o.time} --lat-time ${o.latTime} --conc ${o.conc} --streams ${o.streams} ` +
    `--file-size ${o.fileSize} --steering ${o.steering} --busy-poll ${o.busyPolls.join(",")}` +
    (o.sharedLocal ? " --shared-local" : ""),
    ...(o.offloadNote ? [`- note: ${o.offloadNote}`] : []),
    "",
    formatResults(results),
    "",
    "CPU: % of one core, utime+stime of the forwarding process (HAProxy, the gateway: all threads); n/a for",
    "the kernel paths, whose work is softirq time — the softirq columns are host-wide (client and servers too).",
    "",
    formatRatios(rs),
    "",
    ...results.flatMap((r) =>
      [...r.notes, ...r.errors.map((e) => `ERROR ${e}`)].map((n) =>
        `- ${r.name}: ${n.replace(/\s*\n\s*/g, " ")}`
      )
    ),
  ];
  console.log(out.join("\n"));
  if (o.json) {
    await Deno.writeTextFile(
      o.json,
      JSON.stringify({ machine, options: o, results, ratios: rs }, null, 2) + "\n",
    );
  }
  if (failure instanceof Interrupted) return 130;
  if (failure !== undefined) {
    console.error(`bench: ${(failure as Error).message}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
