/**
 * The TOA side of fnat-lb, for real servers: the TOA option codec, reading a connection's client address
 * from its saved SYN or from the kernel's sockops program (toa/bpf/), PROXY protocol v1/v2, and the
 * `toa-proxy` relay that combines them.
 *
 * @module
 */
export {
  decodeToa,
  DEFAULT_TOA_KINDS,
  readToaOption,
  scanToa,
  TCPOPT_TOA,
  TCPOPT_TOA_ALT,
  TOA_V4_LEN,
  TOA_V6_LEN,
  type ToaAddress,
  type ToaKindSet,
  toaKindSet,
  type ToaScan,
  writeToaV4,
  writeToaV6,
} from "../base/packet/toa_option.ts";
export {
  type ClientAddress,
  clientAddressOf,
  type ClientAddressReason,
  localAddressOf,
  peerAddressOf,
  readSavedSyn,
  recordedClientAddress,
  type RecordedToa,
  type RecordedToaTable,
  toaClientAddress,
} from "./client_address.ts";
export { decodeRecord, ToaBpf, type ToaMaps, type ToaRecord } from "./bpf/sockops_toa.ts";
export { DEFAULT_TOA_FORMS, type ToaForm } from "./bpf/toa_walker.ts";
export { attachedPrograms, CgroupAttachment, checkCgroupDir } from "./bpf/cgroup.ts";
export { SelfCgroup } from "./bpf/self_cgroup.ts";
export { type Cidr, cidrContains, isTrusted, parseCidr, parseTrustList } from "./trust.ts";
export { formatHostPort, parseHostPort, type SocketAddress } from "./sockaddr.ts";
export { type Listener, type ListenerOptions, openListener, SocketError } from "./listener.ts";
export {
  decodeProxyHeader,
  decodeProxyV1,
  decodeProxyV2,
  encodeProxyV1,
  encodeProxyV2,
  PROXY_V1_MAX_LEN,
  PROXY_V2_HEADER_LEN,
  PROXY_V2_SIGNATURE,
  type ProxyDecodeResult,
  type ProxyEndpoint,
  type ProxyHeader,
  type ProxyTlv,
  proxyV1Line,
} from "./proxy_protocol.ts";
export {
  ACCEPT_PAUSE_MS,
  proxyHeaderFor,
  type ProxyProtocolMode,
  ToaProxy,
  type ToaProxyCounters,
  type ToaProxyOptions,
} from "./relay.ts";
export { type FdLimit, fdLimit, type FdLimitRaise, raiseFdLimit } from "./fd_limit.ts";
export { type IdleEntry, IdleWheel } from "./idle_wheel.ts";
export { RateLimitedLog } from "./rate_log.ts";
export { sourceKey } from "./source_key.ts";
