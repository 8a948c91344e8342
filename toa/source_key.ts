/**
 * The key `--max-per-source` counts a client under: an IPv4 address as it is, an IPv6 address by its /64.
 * One IPv6 host is usually given a whole /64 (SLAAC, RFC 6177) and can pick any address in it, so a limit
 * per /128 would be a limit on nobody; HAProxy users and nginx's `limit_conn` advice key IPv6 by /64 for the
 * same reason.
 *
 * @example
 * ```ts
 * import { sourceKey } from "./source_key.ts";
 * sourceKey({ family: 6, address: "fd00:1::2", port: 1 }); // "fd00:1::/64"
 * sourceKey({ family: 4, address: "198.18.1.2", port: 1 }); // "198.18.1.2"
 * ```
 *
 * @module
 */
import { formatIpv6, parseIpv6 } from "../base/packet/ipv6.ts";
import type { SocketAddress } from "./sockaddr.ts";

/** The per-source key of `client`: its IPv4 address, or its IPv6 /64 as `prefix::/64`. */
export function sourceKey(client: SocketAddress): string {
  if (client.family === 4) return client.address;
  const b = parseIpv6(client.address);
  if (b === null) return client.address; // not reached: addresses come from the kernel or our decoder
  b.fill(0, 8);
  return `${formatIpv6(b)}/64`;
}
