/**
 * toa-proxy against HAProxy relaying the same traffic, side by side in one run: bulk throughput (curl
 * downloading a large file) and connections per second (ab, one request per connection), both through a
 * relay that prepends a PROXY v1 header for nginx (`listen … proxy_protocol`). HAProxy runs `mode tcp` with
 * `send-proxy` and `nbthread 1`, since toa-proxy is one thread too; with `--instances N`, N toa-proxy
 * processes share the port (`--reuse-port`) against `nbthread N`. Everything runs on loopback inside one
 * fresh network namespace, removed on every exit path (also Ctrl-C).
 *
 * Usage (root): `deno run -A bench/proxy_compare.ts [--size-mb 256] [--requests 20000] [--concurrency 50]
 * [--instances 1]`. Prints a table: metric, toa-proxy, HAProxy, ratio (toa-proxy / HAProxy). Beside the rate
 * of new connections it shows each relay's CPU time (user + system, from /proc/PID/stat) per connection over
 * the same run: on a machine shared with other work the rate moves with the neighbours, the CPU cost less.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { nsExec, run } from "../netns-scripts/topology.ts";
import {
  haproxyConfig,
  type Server,
  startHaproxy,
  startPpNginx,
  startToaProxy,
  type ToaProxyProcess,
} from "../toa/testing/servers.ts";

/** One measured figure per relay. */
interface Row {
  metric: string;
  unit: string;
  toa: number;
  haproxy: number;
}

async function bulk(ns: string, url: string, runs: number): Promise<number> {
  let best = 0;
  for (let i = 0; i < runs; i++) {
    const r = await nsExec(ns, [
      "curl",
      "-sS",
      "--max-time",
      "120",
      "-o",
      "/dev/null",
      "-w",
      "%{speed_download}",
      url,
    ], 180_000);
    if (!r.success) throw new Error(`curl ${url}: ${r.stderr.trim()}`);
    best = Math.max(best, Number(r.stdout) * 8 / 1e9); // bytes/s → Gbit/s
  }
  return best;
}

async function connsPerSecond(ns: string, url: string, n: number, c: number): Promise<number> {
  const r = await nsExec(ns, ["ab", "-q", "-n", String(n), "-c", String(c), "-s", "10", url], 300_000);
  const m = /Requests per second:\s+([\d.]+)/.exec(r.stdout);
  const failed = /Failed requests:\s+(\d+)/.exec(r.stdout);
  if (!r.success || !m || failed?.[1] !== "0") throw new Error(`ab ${url}: ${r.stderr.trim()} ${r.stdout}`);
  return Number(m[1]);
}

/** User + system CPU seconds of `pids` so far (fields 14 and 15 of /proc/PID/stat, in clock ticks). */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / CLOCK_TICKS;
}

/** sysconf(_SC_CLK_TCK): 100 on every Linux build this runs on. */
const CLOCK_TICKS = 100;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      "size-mb": { type: "string", default: "256" },
      requests: { type: "string", default: "20000" },
      concurrency: { type: "string", default: "50" },
      instances: { type: "string", default: "1" },
    },
  });
  const instances = Number(values.instances);
  if (!Number.isInteger(instances) || instances < 1 || instances > 16) {
    console.error(`proxy_bench: --instances: expected 1..16, got ${JSON.stringify(values.instances)}`);
    return 2;
  }
  const sizeMb = Number(values["size-mb"]);
  const requests = Number(values.requests);
  const concurrency = Number(values.concurrency);
  const hex = Array.from(crypto.getRandomValues(new Uint8Array(4)), (x) => x.toString(16).padStart(2, "0"));
  // "lbt" prefix: tests/run.sh flags any such namespace that outlives its run.
  const ns = `lbtb${hex.join("")}-bench`;
  const dir = await Deno.makeTempDir({ prefix: "proxy-bench-" });
  const stops: (() => Promise<unknown>)[] = [];
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    console.error("proxy_bench: interrupted, cleaning up");
    // Killing the namespace's processes makes the pending curl/ab calls return; `finally` does the rest.
    run(["bash", `${new URL("../netns-scripts/down.sh", import.meta.url).pathname}`, ns.split("-")[0]]);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const add = await run(["ip", "netns", "add", ns]);
    if (!add.success) throw new Error(`ip netns add ${ns}: ${add.stderr.trim()}`);
    await nsExec(ns, ["ip", "link", "set", "lo", "up"]);
    const big = new Uint8Array(sizeMb * 1024 * 1024);
    for (let off = 0; off < big.length; off += 65536) crypto.getRandomValues(big.subarray(off, off + 65536));
    const nginx: Server = await startPpNginx(ns, `${dir}/nginx`, ["127.0.0.1:8080"], { "big.bin": big });
    stops.push(() => nginx.stop());
    const hap: Server = await startHaproxy(
      ns,
      `${dir}/haproxy`,
      haproxyConfig("relay", "127.0.0.1:9002", "127.0.0.1:8080", instances),
      "127.0.0.1:9002",
    );
    stops.push(() => hap.stop());
    const toas: ToaProxyProcess[] = [];
    for (let i = 0; i < instances; i++) {
      const toa = await startToaProxy(ns, [
        ...["--listen", "127.0.0.1:9001", "--backend", "127.0.0.1:8080", "--proxy-protocol", "v1"],
        ...["--trust", "198.18.2.0/24", ...(instances > 1 ? ["--reuse-port"] : [])],
      ]);
      toas.push(toa);
      stops.push(() => toa.stop());
    }
    const targets = { toa: "http://127.0.0.1:9001", haproxy: "http://127.0.0.1:9002" };
    // Both relays must hand nginx a header it accepts before anything is timed.
    for (const url of Object.values(targets)) {
      const r = await nsExec(ns, ["curl", "-sS", "--max-time", "5", `${url}/ip`]);
      if (!/^127\.0\.0\.1:\d+$/.test(r.stdout.trim())) throw new Error(`${url}/ip: ${r.stdout}${r.stderr}`);
    }
    const rows: Row[] = [];
    const pids = { toa: toas.map((t) => t.process.pid), haproxy: [hap.process.pid] };
    /** Runs `f` against `target`; returns its figure and the relay's CPU seconds meanwhile. */
    const timed = async (target: keyof typeof targets, f: (url: string) => Promise<number>) => {
      const before = cpuSeconds(pids[target]);
      const figure = await f(targets[target]);
      return { figure, cpu: cpuSeconds(pids[target]) - before };
    };
    const measure = async (metric: string, unit: string, f: (url: string) => Promise<number>) => {
      // Interleaved order, so neither relay always runs first on a warm or cold page cache.
      const h = await timed("haproxy", f);
      const t = await timed("toa", f);
      rows.push({ metric, unit, toa: t.figure, haproxy: h.figure });
      return { toa: t.cpu, haproxy: h.cpu };
    };
    await measure(`bulk download ${sizeMb} MiB (best of 3)`, "Gbit/s", (u) => bulk(ns, `${u}/big.bin`, 3));
    const cpu = await measure(
      `new connections, ab -n ${requests} -c ${concurrency}`,
      "conn/s",
      (u) => connsPerSecond(ns, `${u}/ip`, requests, concurrency),
    );
    rows.push({
      metric: "relay CPU per new connection (lower is better)",
      unit: "µs",
      toa: cpu.toa / requests * 1e6,
      haproxy: cpu.haproxy / requests * 1e6,
    });
    printTable(rows, instances);
    for (const toa of toas) {
      const { counters } = await toa.stop();
      console.log(
        `toa-proxy pid ${toa.process.pid} counters: accepted=${counters.accepted} ` +
          `backend_errors=${counters.backend_errors} relay_errors=${counters.relay_errors} active=${counters.active}`,
      );
    }
    return 0;
  } catch (e) {
    console.error(`proxy_bench: ${interrupted ? "interrupted" : (e as Error).message}`);
    return 1;
  } finally {
    for (const s of stops.reverse()) await s().catch(() => {});
    await run(["ip", "netns", "del", ns]).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

function printTable(rows: Row[], instances: number): void {
  const head = [
    "metric",
    "unit",
    instances === 1 ? "toa-proxy" : `toa-proxy ×${instances}`,
    `HAProxy ${instances} thread${instances === 1 ? "" : "s"}`,
    "ratio",
  ];
  const body = rows.map((r) => [
    r.metric,
    r.unit,
    r.toa.toFixed(r.unit === "conn/s" ? 0 : r.unit === "µs" ? 1 : 2),
    r.haproxy.toFixed(r.unit === "conn/s" ? 0 : r.unit === "µs" ? 1 : 2),
    (r.toa / r.haproxy).toFixed(2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => "| " + cells.map((c, i) => c.padEnd(widths[i])).join(" | ") + " |";
  console.log(line(head));
  console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
  for (const b of body) console.log(line(b));
}

if (import.meta.main) Deno.exit(await main());
