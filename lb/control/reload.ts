/**
 * What a live reload changes: the difference between the running configuration and a newly read one, or the
 * reason it cannot be applied live. Pure: the gateway (lb/gateway.ts) applies a plan to the workers and the
 * health monitor, and prints its summary line.
 *
 * Matched services (protocol, VIP, port) and servers (address, port within their service) keep their
 * connections and counters; added ones start; removed ones drain — or, where the service says
 * `onServerDown: "reset"`, have their connections reset at once (RST both ways), as when a server dies.
 * What the running process cannot change without a restart — the device, the workers, the steering and
 * offload set-up, the table size, the port range, the control socket — and removing a local address that
 * still has connections are refused by name.
 *
 * @module
 */
import { hostPort } from "../../base/addr.ts";
import type { GatewayConfig, RealServerConfig, ServiceConfig } from "../config.ts";

/** A reload that can be applied: what it adds, removes and changes, by key. */
export interface ReloadPlan {
  /** Services in the new configuration. */
  services: number;
  /** Real servers in the new configuration. */
  servers: number;
  /** Services and servers added (`tcp 198.18.0.100:80`, `tcp 198.18.0.100:80 198.18.3.12:80`). */
  added: string[];
  /** Services and servers removed (they drain). */
  removed: string[];
  /** Services, servers and gateway settings whose values changed. */
  changed: string[];
  /** Removed servers whose service says `onServerDown: "reset"`: their connections are reset, not drained. */
  resetServers: { service: string; server: string }[];
  /** Removed services that say `onServerDown: "reset"`. */
  resetServices: string[];
}

/** The key of a service, as the stats name it: `tcp 198.18.0.100:80`, `udp [fd00::100]:53`. */
export function serviceKey(s: ServiceConfig): string {
  return `${s.protocol} ${hostPort(s.vip, s.port)}`;
}

/** The key of a real server within its service: `198.18.3.10:80`. */
export function serverKey(r: RealServerConfig): string {
  return hostPort(r.address, r.port);
}

/** Settings only a restart changes, by config key. */
const FIXED: readonly (keyof GatewayConfig)[] = [
  "tun",
  "workers",
  "steering",
  "offload",
  "maxConnections",
  "portRange",
  "control",
];

/** Settings a reload may change, compared as JSON. */
const LIVE: readonly (keyof GatewayConfig)[] = ["mtu", "timeouts", "replyRate", "metrics"];

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The plan from `cur` to `next`, or an error naming what cannot change live. `liveOn(address)` is how many
 * connections a local address holds now (its address text).
 */
export function planReload(
  cur: GatewayConfig,
  next: GatewayConfig,
  liveOn: (address: string) => number,
): ReloadPlan | { error: string } {
  for (const k of FIXED) {
    if (!same(cur[k], next[k])) {
      return {
        error: `${k} cannot change while the gateway runs (restart it): ${JSON.stringify(cur[k])} → ${
          JSON.stringify(next[k])
        }`,
      };
    }
  }
  const nextLocals = new Set(next.localAddresses.map((a) => a.text));
  for (const a of cur.localAddresses) {
    if (!nextLocals.has(a.text) && liveOn(a.text) > 0) {
      return {
        error: `localAddresses: ${a.text} cannot be removed while it has ${liveOn(a.text)} connections`,
      };
    }
  }
  const plan: ReloadPlan = {
    services: next.services.length,
    servers: next.services.reduce((n, s) => n + s.realServers.length, 0),
    added: [],
    removed: [],
    changed: [],
    resetServers: [],
    resetServices: [],
  };
  const curLocals = new Set(cur.localAddresses.map((a) => a.text));
  for (const a of next.localAddresses) if (!curLocals.has(a.text)) plan.added.push(`local ${a.text}`);
  for (const a of cur.localAddresses) if (!nextLocals.has(a.text)) plan.removed.push(`local ${a.text}`);
  for (const k of LIVE) if (!same(cur[k], next[k])) plan.changed.push(k);

  const before = new Map(cur.services.map((s) => [serviceKey(s), s]));
  const after = new Map(next.services.map((s) => [serviceKey(s), s]));
  for (const [key, s] of after) {
    const old = before.get(key);
    if (old === undefined) {
      plan.added.push(key);
      continue;
    }
    if (
      old.scheduler !== s.scheduler || old.toa !== s.toa || old.toaPlacement !== s.toaPlacement ||
      old.onServerDown !== s.onServerDown ||
      !same(old.healthCheck, s.healthCheck)
    ) {
      plan.changed.push(key);
    }
    const oldServers = new Map(old.realServers.map((r) => [serverKey(r), r]));
    const newServers = new Set(s.realServers.map(serverKey));
    for (const r of s.realServers) {
      const o = oldServers.get(serverKey(r));
      if (o === undefined) plan.added.push(`${key} ${serverKey(r)}`);
      else if (o.weight !== r.weight) plan.changed.push(`${key} ${serverKey(r)}`);
    }
    for (const r of old.realServers) {
      if (newServers.has(serverKey(r))) continue;
      plan.removed.push(`${key} ${serverKey(r)}`);
      if (s.onServerDown === "reset") plan.resetServers.push({ service: key, server: serverKey(r) });
    }
  }
  for (const [key, old] of before) {
    if (after.has(key)) continue;
    plan.removed.push(key);
    if (old.onServerDown === "reset") plan.resetServices.push(key);
  }
  return plan;
}

/** The one log line of an applied reload. */
export function reloadLine(p: ReloadPlan): string {
  const list = (a: string[]) => a.length === 0 ? "-" : JSON.stringify(a.join(","));
  return `fnat-lb reloaded services=${p.services} servers=${p.servers} added=${list(p.added)} ` +
    `removed=${list(p.removed)} changed=${list(p.changed)}`;
}
