/**
 * End-to-end proof of the TUN layer: the echo responder (lb/echo) runs on a TUN in the gateway namespace
 * and the client namespace pings it and sends it UDP over IPv4 and IPv6. The kernel is the judge: it drops
 * any reply whose IP, ICMP or UDP checksum is wrong, so 0% loss and byte-identical UDP replies mean the
 * device, the FFI read/write path and the checksum fix-ups all work. Needs root, iproute2, iputils-ping
 * and python3.
 *
 * @module
 */

import assert from "node:assert/strict";
import { namespacesWithPrefix, nsExec, run, withTopology } from "../netns-scripts/topology.ts";
import { parseIpAddress } from "../base/addr.ts";

const REPO = new URL("..", import.meta.url).pathname;
const PYTHON = "/usr/bin/python3";
const ECHO4 = "198.18.0.100";
const ECHO6 = "fd00::100";
const TUN = "echo0";

/** A running echo responder and what it printed. */
interface EchoProcess {
  pid: number;
  /** Sends SIGTERM and waits (bounded) for exit; returns the exit code and the full stderr. */
  stop(): Promise<{ code: number; stderr: string }>;
}

/** Starts lb/echo in namespace `ns` and waits (bounded) for its `ready` line. */
async function startEcho(ns: string, timeoutMs = 20_000): Promise<EchoProcess> {
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns,
      Deno.execPath(),
      "run",
      "-A",
      `${REPO}lb/echo/main.ts`,
      "--tun",
      TUN,
      "--addr",
      ECHO4,
      "--addr6",
      ECHO6,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const stderrDone = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
  })();
  let stdout = "";
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => markReady = resolve);
  const stdoutDone = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      stdout += chunk;
      if (stdout.split("\n").includes("ready")) markReady();
    }
  })();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });

  const stop = async () => {
    if (!exited) child.kill("SIGTERM");
    const timer = setTimeout(() => {
      if (!exited) child.kill("SIGKILL");
    }, 5_000);
    const s = await status;
    clearTimeout(timer);
    await Promise.all([stdoutDone, stderrDone]);
    return { code: s.code, stderr };
  };

  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) =>
    timer = setTimeout(() => resolve("timeout"), timeoutMs)
  );
  const first = await Promise.race([
    ready.then(() => "ready" as const),
    status.then(() => "exit" as const),
    timedOut,
  ]);
  clearTimeout(timer);
  if (first !== "ready") {
    const { stderr: err } = await stop();
    throw new Error(`echo responder ${first === "exit" ? "exited" : "not ready in time"}: ${err.trim()}`);
  }
  return { pid: child.pid, stop };
}

function randomHex(len: number): string {
  const b = crypto.getRandomValues(new Uint8Array(len));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

async function assertPing(ns: string, addr: string): Promise<void> {
  const r = await nsExec(ns, [
    "ping",
    ...(parseIpAddress(addr)?.family === 6 ? ["-6"] : []),
    "-c",
    "3",
    "-i",
    "0.2",
    "-W",
    "2",
    addr,
  ], 20_000);
  assert.ok(r.success, `ping ${addr} failed:\n${r.stdout}${r.stderr}`);
  assert.match(r.stdout, / 0% packet loss/, `ping ${addr} lost packets:\n${r.stdout}`);
}

async function assertUdpEcho(ns: string, addr: string, port: number, payloadLen: number): Promise<void> {
  const hex = randomHex(payloadLen);
  const r = await nsExec(ns, [
    PYTHON,
    `${REPO}netns-scripts/udp_echo_client.py`,
    addr,
    String(port),
    "--hex",
    hex,
  ], 20_000);
  assert.equal(r.code, 0, `UDP echo ${addr}:${port}: ${r.stderr.trim()}`);
  assert.equal(r.stdout.trim(), hex, `UDP echo ${addr}:${port} reply differs from what was sent`);
}

Deno.test("e2e: echo on a TUN answers ping and UDP over IPv4 and IPv6, and leaves nothing behind", async () => {
  let prefix = "";
  let echoPid = 0;
  await withTopology(async (t) => {
    prefix = t.prefix;
    const echo = await startEcho(t.nsGw);
    echoPid = echo.pid;
    let result: { code: number; stderr: string } | undefined;
    try {
      await assertPing(t.nsCli, ECHO4);
      await assertPing(t.nsCli, ECHO6);
      await assertUdpEcho(t.nsCli, ECHO4, 7, 64);
      await assertUdpEcho(t.nsCli, ECHO6, 9000, 1200);
      await assertUdpEcho(t.nsCli, ECHO4, 53, 1); // odd length: exercises the checksum's tail byte
    } finally {
      result = await echo.stop();
    }
    assert.deepEqual(await checksumErrors(t.nsCli), [], "the client kernel saw bad checksums");
    assert.equal(result.code, 0, `echo exited with ${result.code}: ${result.stderr}`);
    assert.match(result.stderr, /icmp4=3 icmp6=3 udp4=2 udp6=1 dropMalformed=0 dropChecksum=0/);
    // Closing the last queue fd must have deleted the TUN (and with it its routes).
    const tuns = await nsExec(t.nsGw, ["ip", "-o", "link", "show", "type", "tun"]);
    assert.equal(tuns.stdout.trim(), "", "echo left its TUN behind");
    const routes = await nsExec(t.nsGw, ["ip", "route", "show", `${ECHO4}/32`]);
    assert.equal(routes.stdout.trim(), "", "echo left its route behind");
  });
  assert.deepEqual(await namespacesWithPrefix(prefix), [], "namespaces left behind");
  assert.ok(!(await exists(`/proc/${echoPid}`)), "echo process left behind");
  const rootTuns = await run(["ip", "-o", "link", "show", "type", "tun"]);
  assert.ok(!rootTuns.stdout.includes(`${TUN}:`), "a TUN leaked into the root namespace");
});

/** Non-zero `*InCsumErrors` counters of a namespace's kernel (IPv4 and IPv6 ICMP, UDP, TCP), as `name=value`. */
async function checksumErrors(ns: string): Promise<string[]> {
  const r = await nsExec(ns, ["cat", "/proc/net/snmp", "/proc/net/snmp6"]);
  const bad: string[] = [];
  const lines = r.stdout.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const snmp6 = /^(\w+InCsumErrors)\s+(\d+)$/.exec(lines[i]);
    if (snmp6 && snmp6[2] !== "0") bad.push(`${snmp6[1]}=${snmp6[2]}`);
    // /proc/net/snmp: a header line "Proto: Name ..." followed by a value line "Proto: 1 2 ...".
    const [proto, ...names] = lines[i].split(" ");
    const values = lines[i + 1]?.split(" ") ?? [];
    if (!proto.endsWith(":") || values[0] !== proto || !/^\d/.test(values[1] ?? "")) continue;
    names.forEach((n, j) => {
      if (n === "InCsumErrors" && values[j + 1] !== "0") bad.push(`${proto}${n}=${values[j + 1]}`);
    });
    i++;
  }
  return bad;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
