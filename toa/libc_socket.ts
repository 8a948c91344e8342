/**
 * The libc socket and epoll calls the TOA proxy needs, bound once through Deno FFI.
 *
 * Why FFI and not `Deno.listen`: reading the client's SYN back (`TCP_SAVE_SYN`/`TCP_SAVED_SYN`) needs
 * `setsockopt`/`getsockopt` on the listening and accepted sockets, and Deno's net API exposes neither the
 * fds nor socket options. Once the listener is ours, its accepted fds cannot be handed to `Deno.Conn`, so
 * the relay is FFI too (see toa/relay.ts and docs/toa-proxy.md).
 *
 * Same conventions as lb/tun/libc.ts, for the same reasons:
 * - `ssize_t` results are declared `i32`, so a call returns a Number, not an allocated BigInt; socket
 *   reads and writes are bounded by our 64 KiB buffers, so the low 32 bits hold the whole value.
 * - buffers are `"buffer"` parameters: V8 hands the Uint8Array's memory to C without a copy.
 * - errno is thread-local and meaningful only right after a synchronous call on the JS thread; the one
 *   call declared `nonblocking` (`epoll_wait`) runs on another thread, and its errno is never read.
 *
 * @module
 */

/** Address family IPv4. */
export const AF_INET = 2;
/** Address family IPv6. */
export const AF_INET6 = 10;
/** Socket type: TCP stream. */
export const SOCK_STREAM = 1;
/** socket(2)/accept4(2) flag: calls return EAGAIN instead of blocking the JS thread. */
export const SOCK_NONBLOCK = 0o4000;
/** socket(2)/accept4(2) flag: children (nginx, ip …) spawned later must not inherit proxy sockets. */
export const SOCK_CLOEXEC = 0o2000000;
/** setsockopt level: socket. */
export const SOL_SOCKET = 1;
/** SOL_SOCKET option: rebind a port whose old connections are in TIME_WAIT. */
export const SO_REUSEADDR = 2;
/** SOL_SOCKET option: the pending error of a socket (result of a nonblocking connect). */
export const SO_ERROR = 4;
/** SOL_SOCKET option: several sockets bind the same port; the kernel spreads new connections over them. */
export const SO_REUSEPORT = 15;
/** setsockopt level: TCP. */
export const IPPROTO_TCP = 6;
/** TCP option: send small segments at once (a relay must not add Nagle delay to its peers'). */
export const TCP_NODELAY = 1;
/** TCP option (Linux 4.2): keep the SYN of each connection accepted from this listener. */
export const TCP_SAVE_SYN = 27;
/** TCP option (Linux 4.2): read (once) the saved SYN's IP and TCP headers. */
export const TCP_SAVED_SYN = 28;
/** shutdown(2): no more sends (our FIN). */
export const SHUT_WR = 1;
/** send(2) flag: report EPIPE instead of raising SIGPIPE when the peer is gone. */
export const MSG_NOSIGNAL = 0x4000;

/** getrlimit(2)/setrlimit(2) resource: the highest fd number + 1 the process may open. */
export const RLIMIT_NOFILE = 7;
/** Size of `struct rlimit`: two u64 (`rlim_cur`, the soft limit, then `rlim_max`, the hard one). */
export const RLIMIT_SIZE = 16;

/** epoll_ctl(2) operation: add. */
export const EPOLL_CTL_ADD = 1;
/** epoll_ctl(2) operation: delete. */
export const EPOLL_CTL_DEL = 2;
/** epoll_ctl(2) operation: modify. */
export const EPOLL_CTL_MOD = 3;
/** epoll event: readable. */
export const EPOLLIN = 0x001;
/** epoll event: writable. */
export const EPOLLOUT = 0x004;
/** epoll event: error (always reported). */
export const EPOLLERR = 0x008;
/** epoll event: hang-up (always reported). */
export const EPOLLHUP = 0x010;
/** epoll_create1(2)/eventfd(2) flag: close on exec. */
export const EPOLL_CLOEXEC = 0o2000000;
/** eventfd(2) flag: nonblocking. */
export const EFD_NONBLOCK = 0o4000;

/**
 * Size of `struct epoll_event`: x86-64 packs it (u32 events + u64 data = 12 bytes), other 64-bit ABIs
 * align the data to 8 (16 bytes).
 */
export const EPOLL_EVENT_SIZE = Deno.build.arch === "x86_64" ? 12 : 16;
/** Offset of the `data` field in `struct epoll_event`. */
export const EPOLL_DATA_OFFSET = Deno.build.arch === "x86_64" ? 4 : 8;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // Runs on a worker thread, so a wait of up to its timeout leaves the JS event loop (timers, signals) free.
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
  // The same call on the JS thread, used with timeout 0: no thread hop when events are already waiting.
  epoll_wait_sync: { name: "epoll_wait", parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound symbols, typed by hand so `usize` lengths take a Number (see lb/tun/libc.ts). */
export interface SocketLibc {
  /** socket(2). */
  socket(domain: number, type: number, protocol: number): number;
  /** setsockopt(2). */
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, len: number): number;
  /** getsockopt(2); `len` is a 4-byte socklen_t in and out. */
  getsockopt(fd: number, level: number, name: number, value: Uint8Array, len: Uint8Array): number;
  /** bind(2). */
  bind(fd: number, addr: Uint8Array, len: number): number;
  /** listen(2). */
  listen(fd: number, backlog: number): number;
  /** accept4(2). */
  accept4(fd: number, addr: Uint8Array, len: Uint8Array, flags: number): number;
  /** connect(2). */
  connect(fd: number, addr: Uint8Array, len: number): number;
  /** getpeername(2). */
  getpeername(fd: number, addr: Uint8Array, len: Uint8Array): number;
  /** getsockname(2). */
  getsockname(fd: number, addr: Uint8Array, len: Uint8Array): number;
  /** recv(2); result truncated to 32 bits (see module doc). */
  recv(fd: number, buf: Uint8Array, len: number, flags: number): number;
  /** send(2); result truncated to 32 bits (see module doc). */
  send(fd: number, buf: Uint8Array, len: number, flags: number): number;
  /** shutdown(2). */
  shutdown(fd: number, how: number): number;
  /** close(2). */
  close(fd: number): number;
  /** epoll_create1(2). */
  epoll_create1(flags: number): number;
  /** epoll_ctl(2); `event` is one `struct epoll_event`. */
  epoll_ctl(epfd: number, op: number, fd: number, event: Uint8Array): number;
  /** epoll_wait(2) on a worker thread. */
  epoll_wait(epfd: number, events: Uint8Array, max: number, timeoutMs: number): Promise<number>;
  /** epoll_wait(2) on the JS thread (timeout 0 only). */
  epoll_wait_sync(epfd: number, events: Uint8Array, max: number, timeoutMs: number): number;
  /** eventfd(2). */
  eventfd(initval: number, flags: number): number;
  /** write(2) (to the eventfd that wakes the loop). */
  write(fd: number, buf: Uint8Array, len: number): number;
  /** getrlimit(2); `rlim` is one `struct rlimit` ({@link RLIMIT_SIZE} bytes), filled in. */
  getrlimit(resource: number, rlim: Uint8Array): number;
  /** setrlimit(2); `rlim` is one `struct rlimit`. */
  setrlimit(resource: number, rlim: Uint8Array): number;
  /** Address of the calling thread's errno. */
  __errno_location(): Deno.PointerValue;
}

let symbols: SocketLibc | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

/** Loads libc on first use, so importing the TOA codecs costs nothing for code that never opens a socket. */
export function socketLibc(): SocketLibc {
  if (symbols === undefined) {
    const lib = Deno.dlopen("libc.so.6", SYMBOLS);
    symbols = lib.symbols as unknown as SocketLibc;
    // The JS thread's errno address never changes, so one view serves every later read.
    errnoView = new Deno.UnsafePointerView(symbols.__errno_location()!);
  }
  return symbols;
}

/** errno of the last failed synchronous libc call on the JS thread (names: base/sys/errno.ts). */
export function errno(): number {
  socketLibc();
  return errnoView!.getInt32(0);
}

/** An `int` option value, for setsockopt. */
export function intOption(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return b;
}
