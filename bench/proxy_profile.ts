/**
 * Where a relay's time goes per new connection: toa-proxy and HAProxy (`nbthread 1`) set up as in
 * bench/proxy_compare.ts (one fresh namespace, loopback, nginx with `proxy_protocol` behind each), then, for
 * each relay in turn, `ab -c 50` through it for 8 s while one tool looks at the relay's process for 4 s:
 *
 * - `stat` (default): user and system CPU µs per connection (utime, stime of /proc/PID/stat, divided by the
 *   connect calls `perf stat -e syscalls:sys_enter_connect` counted meanwhile), epoll_wait and futex calls;
 * - `strace`: `strace -c -f`, the syscalls and their counts;
 * - `perf`: `perf record -g` into DIR/perf-RELAY.data (start with `DENO_V8_FLAGS=--perf-basic-prof` for JS
 *   names; the files stay, DIR is printed).
 *
 * Usage (root; run it under `flock /tmp/fnat-bench.lock` on a shared machine):
 * `deno run -A bench/proxy_profile.ts [stat|strace|perf]`. The namespace is removed on every exit path.
 *
 * @module
 */
import { nsExec, run } from "../netns-scripts/topology.ts";
import {
  haproxyConfig,
  type Server,
  startHaproxy,
  startPpNginx,
  startToaProxy,
} from "../toa/testing/servers.ts";

const decoder = new TextDecoder();

/** utime and stime of `pid` so far, in clock ticks (fields 14 and 15 of /proc/PID/stat). */
function ticks(pid: number): [number, number] {
  const st = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
  return [Number(f[11]), Number(f[12])];
}

/** sysconf(_SC_CLK_TCK) on every Linux build this runs on: µs per tick = 1e6 / 100. */
const US_PER_TICK = 1e4;

async function look(mode: string, name: string, pid: number, out: string): Promise<string> {
  if (mode === "strace") {
    const r = await new Deno.Command("timeout", {
      args: ["-s", "INT", "4", "strace", "-c", "-f", "-p", String(pid)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return decoder.decode(r.stderr).split("\n").filter((l) => !/attached|detached/.test(l)).join("\n");
  }
  if (mode === "perf") {
    const file = `${out}/perf-${name}.data`;
    const r = await new Deno.Command("perf", {
      args: ["record", "-F", "999", "-g", "-o", file, "-p", String(pid), "--", "sleep", "4"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return `${file}: ${decoder.decode(r.stderr).trim().split("\n").pop()}`;
  }
  const before = ticks(pid);
  const events = ["syscalls:sys_enter_connect", "syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_futex"];
  const r = await new Deno.Command("perf", {
    args: ["stat", "-x", ",", "-e", events.join(","), "-p", String(pid), "--", "sleep", "4"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const after = ticks(pid);
  const counts = new Map<string, number>();
  for (const line of decoder.decode(r.stderr).split("\n")) {
    const f = line.split(",");
    if (f.length > 2) counts.set(f[2], Number(f[0]));
  }
  const conns = counts.get(events[0]) ?? 0;
  if (!(conns > 0)) return `no connections counted: ${decoder.decode(r.stderr).trim()}`;
  const per = (t: number) => (t * US_PER_TICK / conns).toFixed(1);
  return `connections=${conns} user_us=${per(after[0] - before[0])} sys_us=${per(after[1] - before[1])} ` +
    `epoll_wait_per_conn=${((counts.get(events[1]) ?? 0) / conns).toFixed(3)} ` +
    `futex_per_conn=${((counts.get(events[2]) ?? 0) / conns).toFixed(3)}`;
}

async function main(): Promise<number> {
  const mode = Deno.args[0] ?? "stat";
  if (!["stat", "strace", "perf"].includes(mode)) {
    console.error(`proxy_profile: mode: expected stat, strace or perf, got ${JSON.stringify(mode)}`);
    return 2;
  }
  const hex = Array.from(crypto.getRandomValues(new Uint8Array(4)), (x) => x.toString(16).padStart(2, "0"));
  // "lbt" prefix: tests/run.sh flags any such namespace that outlives its run.
  const ns = `lbtp${hex.join("")}-prof`;
  const dir = await Deno.makeTempDir({ prefix: "proxy-profile-" });
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const add = await run(["ip", "netns", "add", ns]);
    if (!add.success) throw new Error(`ip netns add ${ns}: ${add.stderr.trim()}`);
    await nsExec(ns, ["ip", "link", "set", "lo", "up"]);
    const nginx: Server = await startPpNginx(ns, `${dir}/nginx`, ["127.0.0.1:8080"]);
    stops.push(() => nginx.stop());
    const hap = await startHaproxy(
      ns,
      `${dir}/haproxy`,
      haproxyConfig("relay", "127.0.0.1:9002", "127.0.0.1:8080"),
      "127.0.0.1:9002",
    );
    stops.push(() => hap.stop());
    const toa = await startToaProxy(ns, [
      ...["--listen", "127.0.0.1:9001", "--backend", "127.0.0.1:8080", "--proxy-protocol", "v1"],
      ...["--trust", "198.18.2.0/24"],
    ]);
    stops.push(() => toa.stop());
    const relays: [string, number, string][] = [
      ["toa-proxy", toa.process.pid, "http://127.0.0.1:9001/ip"],
      ["haproxy", hap.process.pid, "http://127.0.0.1:9002/ip"],
    ];
    for (const [name, pid, url] of relays) {
      const ab = nsExec(ns, ["ab", "-q", "-n", "1000000", "-c", "50", "-t", "8", "-s", "10", url], 60_000);
      // Past the start (and toa-proxy's JIT warm-up) before looking.
      await new Promise((r) => setTimeout(r, 1500));
      const seen = await look(mode, name, pid, dir);
      const rate = /Requests per second:\s+([\d.]+)/.exec((await ab).stdout)?.[1] ?? "?";
      console.log(`${name} (ab ${rate} conn/s over 8 s) ${seen}`);
    }
    if (mode === "perf") {
      console.log(`perf data kept in ${dir}`);
      await Deno.remove(`${dir}/nginx`, { recursive: true }).catch(() => {});
    }
    return 0;
  } catch (e) {
    console.error(`proxy_profile: ${(e as Error).message}`);
    return 1;
  } finally {
    for (const s of stops.reverse()) await s().catch(() => {});
    await run(["ip", "netns", "del", ns]).catch(() => {});
    if (mode !== "perf") await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main());
