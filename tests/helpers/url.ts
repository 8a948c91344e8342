/**
 * URLs of lab addresses, built from the parsed address (base/addr.ts) rather than by looking for a colon.
 *
 * @module
 */
import { hostPort, parseIpAddress } from "../../base/addr.ts";

/** `http://ADDR[:PORT]PATH` for an IPv4 or IPv6 address text (IPv6 in brackets); throws on non-addresses. */
export function httpUrl(address: string, port = 80, path = "/"): string {
  const a = parseIpAddress(address);
  if (a === null) throw new TypeError(`not an address: ${JSON.stringify(address)}`);
  const hp = hostPort(a, port);
  return `http://${port === 80 ? hp.slice(0, hp.lastIndexOf(":")) : hp}${path}`;
}
