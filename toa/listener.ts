/**
 * A TCP listener that saves each connection's SYN (`TCP_SAVE_SYN`), so the TOA option the gateway put there
 * can be read back per accepted socket (toa/client_address.ts). Nonblocking, close-on-exec, SO_REUSEADDR so
 * a restart does not wait out TIME_WAIT.
 *
 * @module
 */
import {
  AF_INET,
  AF_INET6,
  errno,
  intOption,
  IPPROTO_TCP,
  libc,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  TCP_NODELAY,
  TCP_SAVE_SYN,
} from "../base/sys/libc.ts";
import { errnoName } from "../base/sys/errno.ts";
import { encodeSockaddr, formatHostPort, type SocketAddress } from "./sockaddr.ts";
import { localAddressOf } from "./client_address.ts";

/** A socket call failed at the edge (listen, bind): one line naming the address, the call and the errno. */
export class SocketError extends Error {
  /** errno of the failing call. */
  readonly errno: number;
  /** Builds `WHAT: CALL failed (ERRNO)`. */
  constructor(what: string, call: string, err: number) {
    super(`${what}: ${call} failed (${errnoName(err)})`);
    this.name = "SocketError";
    this.errno = err;
  }
}

/** Options for {@link openListener}. */
export interface ListenerOptions {
  /** listen(2) backlog (the kernel caps it at net.core.somaxconn). Default 4096. */
  backlog?: number;
  /** Set TCP_SAVE_SYN (default true). */
  saveSyn?: boolean;
  /** Set SO_REUSEPORT, so that several processes can listen on the same address (default false). */
  reusePort?: boolean;
  /** Set TCP_NODELAY, which Linux copies to every accepted socket: one call, not one per connection (false). */
  noDelay?: boolean;
}

/** An open listening socket. */
export interface Listener {
  /** The listening fd (nonblocking). */
  fd: number;
  /** The bound address (the real port when 0 was asked for). */
  address: SocketAddress;
}

/** Opens a nonblocking listening socket on `addr` with TCP_SAVE_SYN; throws {@link SocketError}. */
export function openListener(addr: SocketAddress, opts: ListenerOptions = {}): Listener {
  const lib = libc();
  const what = `listen ${formatHostPort(addr)}`;
  const fd = lib.socket(
    addr.family === 4 ? AF_INET : AF_INET6,
    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
    0,
  );
  if (fd < 0) throw new SocketError(what, "socket", errno());
  const fail = (call: string): never => {
    const e = errno();
    lib.close(fd);
    throw new SocketError(what, call, e);
  };
  const one = intOption(1);
  if (lib.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) !== 0) fail("setsockopt(SO_REUSEADDR)");
  if (opts.reusePort && lib.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, one, 4) !== 0) {
    fail("setsockopt(SO_REUSEPORT)");
  }
  if ((opts.saveSyn ?? true) && lib.setsockopt(fd, IPPROTO_TCP, TCP_SAVE_SYN, one, 4) !== 0) {
    fail("setsockopt(TCP_SAVE_SYN)");
  }
  if (opts.noDelay && lib.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, one, 4) !== 0) {
    fail("setsockopt(TCP_NODELAY)");
  }
  const sa = encodeSockaddr(addr);
  if (lib.bind(fd, sa, sa.length) !== 0) fail("bind");
  if (lib.listen(fd, opts.backlog ?? 4096) !== 0) fail("listen");
  return { fd, address: localAddressOf(fd) };
}
