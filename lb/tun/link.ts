/**
 * Interface configuration (link up, MTU, addresses, routes) through the `ip` command of iproute2.
 *
 * rtnetlink over a raw socket would avoid the fork, but these calls happen a handful of times at start-up
 * and shutdown, never per packet; `ip` is simpler, and its error text is what operators already know.
 *
 * @module
 */
import { hostPrefix, type IpAddress, parseIpAddress } from "../../base/addr.ts";

/** A failed `ip` invocation; the message is one line: the command and ip's own complaint. */
export class IpCommandError extends Error {
  /** Arguments passed to `ip`. */
  readonly args: readonly string[];
  /** Exit code of `ip`. */
  readonly code: number;

  /** Builds the one-line message from the command and ip's stderr. */
  constructor(args: readonly string[], code: number, stderr: string) {
    const why = stderr.trim().split("\n").join("; ") || `exit code ${code}`;
    super(`ip ${args.join(" ")}: ${why}`);
    this.name = "IpCommandError";
    this.args = args;
    this.code = code;
  }
}

/** Runs `ip ARGS...` (with a timeout, so a wedged netlink call cannot hang start-up) and returns stdout. */
export async function ip(args: readonly string[], timeoutMs = 10_000): Promise<string> {
  const out = await new Deno.Command("ip", {
    args: [...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const dec = new TextDecoder();
  if (!out.success) throw new IpCommandError(args, out.code, dec.decode(out.stderr));
  return dec.decode(out.stdout);
}

/** `-4` or `-6` for `ip`, from the address of `cidr` (parsed, not guessed from its text); throws if it is none. */
function familyFlag(cidr: string): "-4" | "-6" {
  const a = parseIpAddress(cidr.split("/")[0]);
  if (a === null) throw new TypeError(`not an address prefix: ${JSON.stringify(cidr)}`);
  return a.family === 6 ? "-6" : "-4";
}

/** Sets the interface administratively up. */
export async function linkUp(dev: string): Promise<void> {
  await ip(["link", "set", "dev", dev, "up"]);
}

/** Sets the interface MTU. */
export async function setMtu(dev: string, mtu: number): Promise<void> {
  await ip(["link", "set", "dev", dev, "mtu", String(mtu)]);
}

/**
 * Adds `cidr` (e.g. `198.18.2.1/32`, `fd00:2::1/128`) to `dev`. IPv6 addresses get `nodad`: a TUN has no
 * neighbours to collide with, and DAD would keep the address unusable ("tentative") for about a second.
 */
export async function addAddress(dev: string, cidr: string): Promise<void> {
  const v6 = familyFlag(cidr) === "-6";
  await ip([v6 ? "-6" : "-4", "addr", "add", cidr, "dev", dev, ...(v6 ? ["nodad"] : [])]);
}

/** Routes `addr` (a host route, /32 or /128) into `dev`; `replace` makes a restart idempotent. */
export async function addRoute(addr: IpAddress, dev: string): Promise<void> {
  await ip([addr.family === 6 ? "-6" : "-4", "route", "replace", hostPrefix(addr), "dev", dev]);
}

/** Removes the host route of `addr` via `dev`. */
export async function deleteRoute(addr: IpAddress, dev: string): Promise<void> {
  await ip([addr.family === 6 ? "-6" : "-4", "route", "del", hostPrefix(addr), "dev", dev]);
}

/** True if an interface named `dev` exists in the current network namespace. */
export async function linkExists(dev: string): Promise<boolean> {
  try {
    await ip(["link", "show", "dev", dev]);
    return true;
  } catch (err) {
    if (err instanceof IpCommandError) return false;
    throw err;
  }
}
