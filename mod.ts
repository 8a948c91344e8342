/**
 * fnat-lb: a userspace LVS-style FULLNAT load balancer with TOA, on Deno.
 *
 * As a program: `deno run -A mod.ts lb --config FILE` (see README). As a library: the packet codecs, the
 * TOA codec, the engine and the TUN layer below.
 *
 * @module
 */
export * from "./base/packet/mod.ts";
export * from "./toa/mod.ts";
export { ConfigError, type GatewayConfig, loadConfig, validateConfig } from "./lb/config.ts";
export { Engine, type EngineOptions } from "./lb/engine/engine.ts";
export { readStats, runGateway } from "./lb/gateway.ts";
export { type GatewayStats, snapshot } from "./lb/stats.ts";
export { TunDevice, TunError } from "./lb/tun/mod.ts";

if (import.meta.main) {
  const { main } = await import("./cli.ts");
  Deno.exit(await main(Deno.args));
}
