/**
 * Echo responder on a TUN: the first end-to-end proof of the TUN layer. Creates the TUN, brings it up,
 * routes the given addresses into it, prints `ready`, and answers ICMP/ICMPv6 echo and UDP (any port) for
 * those addresses until SIGINT/SIGTERM; then closes the TUN, which deletes it with its routes.
 *
 * Usage: `deno run -A lb/echo/main.ts --tun echo0 --addr 198.18.0.100 --addr6 fd00::100 [--queues N]`
 *
 * Logs are single lines on stderr with stable keys; stdout carries only `ready`, for scripts to wait on.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type IpAddress, parseIpAddress } from "../../base/addr.ts";
import { addRoute, linkUp, TunDevice, TunError } from "../tun/mod.ts";
import { type EchoCounters, echoReply, newEchoCounters } from "./echo.ts";

/** Largest packet a TUN hands us without offloads: the 16-bit IP length field caps it. */
const BUF_SIZE = 65536;
/** Upper bound of one wait, so a lost wake-up can never stall shutdown for long. */
const POLL_TIMEOUT_MS = 1000;

const USAGE = "usage: main.ts --tun NAME [--addr IPV4]... [--addr6 IPV6]... [--queues N]";

/** Parsed command line. */
interface EchoOptions {
  tun: string;
  addrs: IpAddress[];
  addrs6: IpAddress[];
  queues: number;
}

function parseOptions(argv: string[]): EchoOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      tun: { type: "string", default: "echo0" },
      addr: { type: "string", multiple: true, default: [] },
      addr6: { type: "string", multiple: true, default: [] },
      queues: { type: "string", default: "1" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const queues = Number(values.queues);
  if (!Number.isInteger(queues) || queues < 1) throw new Error(`--queues: expected a positive integer`);
  const addresses = (flag: string, list: string[], family: 4 | 6): IpAddress[] =>
    list.map((text) => {
      const a = parseIpAddress(text);
      if (a?.family !== family) throw new Error(`${flag} ${text}: expected an IPv${family} address`);
      return a;
    });
  const addrs = addresses("--addr", values.addr, 4);
  const addrs6 = addresses("--addr6", values.addr6, 6);
  if (addrs.length + addrs6.length === 0) throw new Error(`give at least one --addr or --addr6`);
  return { tun: values.tun, addrs, addrs6, queues };
}

/** Serves one queue until it is closed: wait, drain until EAGAIN, answer each packet in place. */
async function serveQueue(dev: TunDevice, index: number, c: EchoCounters): Promise<void> {
  const q = dev.queues[index];
  const buf = new Uint8Array(BUF_SIZE); // the only packet buffer this queue ever uses
  while (!q.closed) {
    if (!(await q.waitReadable(POLL_TIMEOUT_MS))) continue;
    for (let n = q.read(buf); n > 0; n = q.read(buf)) {
      const replyLen = echoReply(buf, n, c);
      if (replyLen > 0) q.write(buf, replyLen);
    }
  }
}

function statsLine(dev: TunDevice, c: EchoCounters): string {
  const kv = Object.entries(c).map(([k, v]) => `${k}=${v}`);
  for (const q of dev.queues) {
    kv.push(`q${q.index}_rx=${q.counters.rxPackets}`, `q${q.index}_tx=${q.counters.txPackets}`);
    kv.push(`q${q.index}_tx_dropped=${q.counters.txDropped}`);
  }
  return kv.join(" ");
}

async function main(): Promise<number> {
  let opts: EchoOptions;
  try {
    opts = parseOptions(Deno.args);
  } catch (err) {
    console.error(`echo: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  let dev: TunDevice;
  try {
    dev = TunDevice.open({ name: opts.tun, queues: opts.queues });
  } catch (err) {
    console.error(`echo: ${err instanceof TunError ? err.message : String(err)}`);
    return 1;
  }
  const counters = newEchoCounters();
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => stop = resolve);
  const onSignal = () => stop();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    await linkUp(dev.name);
    for (const a of [...opts.addrs, ...opts.addrs6]) await addRoute(a, dev.name);
    const loops = dev.queues.map((_, i) => serveQueue(dev, i, counters));
    console.log("ready");
    console.error(
      `echo start tun=${dev.name} queues=${dev.queues.length} addrs=${
        [...opts.addrs, ...opts.addrs6].map((a) => a.text).join(",")
      }`,
    );
    await Promise.race([stopped, Promise.all(loops)]);
    await dev.close(); // wakes the loops; the kernel deletes the TUN and its routes
    await Promise.all(loops);
    console.error(`echo stop tun=${dev.name} ${statsLine(dev, counters)}`);
    return 0;
  } catch (err) {
    console.error(`echo: ${(err as Error).message}`);
    return 1;
  } finally {
    await dev.close();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) Deno.exit(await main());
