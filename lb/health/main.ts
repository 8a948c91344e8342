/**
 * The health monitor on its own: checks the servers of a targets file exactly as the gateway would and
 * prints each transition, to try a check configuration against real servers (and for the end-to-end test,
 * which runs it inside the gateway's namespace). Prints `ready` on stdout once the checks are scheduled;
 * transition lines go to stderr; SIGINT/SIGTERM stop it cleanly, with a last line of every server's state.
 *
 * Usage: `deno run -A lb/health/main.ts --targets FILE`, FILE a JSON array of
 * `{ "service": "tcp 198.18.0.100:80", "address": "198.18.3.10", "port": 80, "check": { "type": "http" } }`
 * (check fields as `services[].healthCheck`, defaults as there).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { hostPort, parseIpAddress } from "../../base/addr.ts";
import { DEFAULT_HEALTH_CHECK, type HealthCheckConfig } from "../config.ts";
import { HealthMonitor, type HealthTarget } from "./monitor.ts";

const USAGE = "usage: main.ts --targets FILE";

/** Targets from the file's JSON text; errors name the entry and field. */
export function parseTargets(text: string): HealthTarget[] {
  const raw = JSON.parse(text);
  if (!Array.isArray(raw)) throw new Error("targets: expected a JSON array");
  return raw.map((e, i) => {
    const at = `targets[${i}]`;
    const address = parseIpAddress(String(e?.address));
    if (!address) throw new Error(`${at}.address: expected an IPv4 or IPv6 address`);
    const port = Number(e.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${at}.port: expected 1..65535`);
    if (typeof e.service !== "string") throw new Error(`${at}.service: expected a string`);
    const check = { ...DEFAULT_HEALTH_CHECK, ...(e.check ?? {}) } as HealthCheckConfig;
    if (!["tcp", "http", "none"].includes(check.type)) throw new Error(`${at}.check.type: tcp, http or none`);
    for (const k of ["interval", "timeout", "rise", "fall"] as const) {
      if (!(typeof check[k] === "number" && check[k] > 0)) throw new Error(`${at}.check.${k}: expected > 0`);
    }
    return { service: e.service, server: hostPort(address, port), address, port, check };
  });
}

async function main(): Promise<number> {
  let targets: HealthTarget[];
  try {
    const { values } = parseArgs({ args: Deno.args, options: { targets: { type: "string" } }, strict: true });
    if (!values.targets) throw new Error("--targets FILE is required");
    targets = parseTargets(await Deno.readTextFile(values.targets));
  } catch (e) {
    console.error(`fnat-lb health: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => stop = resolve);
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  const m = new HealthMonitor(targets);
  console.log("ready");
  await stopped;
  await m.stop();
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  const states = [...m.state()].map(([k, s]) => `${JSON.stringify(k)}=${s.state}`);
  console.error(`fnat-lb health stop ${states.join(" ")}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
