/**
 * fnat-lb: a userspace LVS-style FULLNAT load balancer with TOA, on Deno.
 *
 * As a program: `deno run -A mod.ts lb --config FILE` on the gateway, `deno run -A mod.ts toa-proxy …` on a
 * real server (see README). As a library, what a user builds with:
 * - the gateway: {@link runGateway} over a validated config, its stats;
 * - the engine, pure (packet bytes in, packet bytes out, a clock passed in), and its schedulers;
 * - addresses parsed once ({@link parseIpAddress}); packet classification; the TOA option codec;
 * - the real-server side: the client address from a saved SYN, trust lists, PROXY protocol v1/v2, the relay;
 * - the TUN device.
 *
 * Per-field accessors and checksum arithmetic stay in `base/packet/` (docs/architecture.md): import them
 * from there when writing a codec of your own.
 *
 * @module
 */

// The gateway.
export { type GatewayOptions, runGateway } from "./lb/gateway.ts";
export { readStats } from "./lb/control/client.ts";
export {
  ConfigError,
  DEFAULT_TIMEOUTS,
  type GatewayConfig,
  loadConfig,
  type RealServerConfig,
  type ServiceConfig,
  type Timeouts,
  type ToaPlacement,
  validateConfig,
} from "./lb/config.ts";
export {
  type EngineCounters,
  type GatewayStats,
  type RealServerStats,
  type ServiceStats,
  snapshot,
  type TrafficStats,
} from "./lb/stats.ts";

// The engine.
export { Engine, type EngineOptions } from "./lb/engine/engine.ts";
export { DROP_NAMES, EVENT_NAMES } from "./lb/engine/counters.ts";
export {
  createScheduler,
  type Scheduler,
  SCHEDULER_NAMES,
  type SchedulerName,
  type SchedulerOptions,
  ServerSet,
} from "./lb/engine/scheduler/mod.ts";

// Addresses and packets.
export { hostPort, type IpAddress, ipAddressBytes, ipAddressFromBytes, parseIpAddress } from "./base/addr.ts";
export { PacketInfo } from "./base/packet/packet_info.ts";
export { classifyPacket, PACKET_OK, PACKET_REASON_NAMES } from "./base/packet/validate.ts";
export {
  decodeToa,
  DEFAULT_TOA_KINDS,
  readToaOption,
  TCPOPT_TOA,
  TCPOPT_TOA_ALT,
  TOA_V4_LEN,
  TOA_V6_LEN,
  type ToaAddress,
  type ToaKindSet,
  toaKindSet,
  writeToaV4,
  writeToaV6,
  writeToaWords,
} from "./base/packet/toa_option.ts";

// The real-server side.
export {
  type ClientAddress,
  clientAddressOf,
  type ClientAddressReason,
  localAddressOf,
  peerAddressOf,
  readSavedSyn,
  toaClientAddress,
} from "./toa/client_address.ts";
export { type Cidr, cidrContains, isTrusted, parseCidr, parseTrustList } from "./toa/trust.ts";
export { formatHostPort, parseHostPort, type SocketAddress } from "./toa/sockaddr.ts";
export { type Listener, type ListenerOptions, openListener, SocketError } from "./toa/listener.ts";
export {
  decodeProxyHeader,
  decodeProxyV1,
  decodeProxyV2,
  encodeProxyV1,
  encodeProxyV2,
  type ProxyDecodeResult,
  type ProxyEndpoint,
  type ProxyHeader,
  type ProxyTlv,
} from "./toa/proxy_protocol.ts";
export {
  proxyHeaderFor,
  type ProxyProtocolMode,
  ToaProxy,
  type ToaProxyCounters,
  type ToaProxyOptions,
} from "./toa/relay.ts";

// The TUN device.
export {
  TunDevice,
  TunError,
  TunNameInUseError,
  type TunOpenOptions,
  TunPermissionError,
  TunUnavailableError,
} from "./lb/tun/mod.ts";

if (import.meta.main) {
  const { main } = await import("./cli.ts");
  Deno.exit(await main(Deno.args));
}
