/**
 * Zero-copy wire formats: views over one `Uint8Array` per packet for IPv4, IPv6, TCP, UDP, ICMP and ICMPv6,
 * full and incremental checksums, NAT rewrites with their checksum policy (nat.ts), the replies a gateway
 * builds in place (reply.ts), and the validator that classifies every packet.
 *
 * @module
 */
export * from "./checksum.ts";
export * from "./fragment.ts";
export * from "./icmp.ts";
export * from "./icmpv6.ts";
export * from "./ipv4.ts";
export * from "./ipv6.ts";
export * from "./nat.ts";
export * from "./packet_info.ts";
export * from "./reply.ts";
export * from "./tcp.ts";
export * from "./transport_checksum.ts";
export * from "./udp.ts";
export * from "./validate.ts";
export * from "./virtio_net_hdr.ts";
export * from "./toa_option.ts";
