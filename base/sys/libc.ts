/**
 * The one libc binding of the project, bound once through Deno FFI: what the TUN device (`open`, `ioctl`,
 * `read`, `write`, `poll`, `eventfd`), the gateway's steering program (`syscall(SYS_bpf)`), its systemd
 * notifications (`socket`, `sendto` on an AF_UNIX datagram socket, `clock_gettime`) and the TOA proxy's
 * sockets (`socket` … `epoll_wait`, `getrlimit`) call. This file is the only one that `dlopen`s.
 *
 * Why libc and not a Rust/C helper: these calls are all a TUN fd and a relay need, and libc is on every
 * Linux host, so the kernel edge stays TypeScript with no build step. Why FFI sockets and not `Deno.listen`:
 * reading the client's SYN back (`TCP_SAVE_SYN`/`TCP_SAVED_SYN`) needs socket options on fds Deno's net
 * API does not expose (docs/toa-proxy.md).
 *
 * Conventions that keep the per-packet path allocation-free:
 * - `ssize_t` results (`read`, `write`, `recv`, `send`) are declared `i32`. FFI turns 64-bit results into a
 *   BigInt (an allocation per call); the low 32 bits of the return register hold the same value for
 *   anything our 64 KiB buffers can return (-1 or a length below 2^31) on x86-64 and aarch64.
 * - buffers are `"buffer"` parameters, so V8 hands the Uint8Array's memory to C without a copy.
 * - `size_t`/`nfds_t` counts on the packet and relay paths (`read`, `write`, `poll`; `recv`, `send`,
 *   `sendto`) are declared `u32`: a Number passed for a 64-bit parameter sends every call down FFI's slow
 *   path (argument conversion, a malloc and a free per call: 41% of a tight read loop's CPU, against 4%
 *   with `u32`, docs/performance.md). Our counts are buffer lengths below 2^31: TUN frames, the TOA relay's
 *   per-direction buffers (`bufferSize`, 64 KiB by default), an sd_notify line. The u32 reaches C
 *   zero-extended: Deno's fast-call trampoline passes V8's 32-bit register on as it is, and a 32-bit write
 *   clears the upper half on x86-64 and aarch64; the slow path widens it in libffi. The TUN read buffers
 *   also hold the largest frame, so there not even a wider count could write past them.
 *   The other relay calls (`accept4`, `epoll_wait`, `setsockopt`, `epoll_ctl`) take only `int`/`socklen_t`.
 * - errno is thread-local and meaningful only right after a synchronous call on the calling JS thread.
 *   The calls declared `nonblocking` (`pollWait`, `epoll_wait`) run on another thread, so their errno is
 *   never read. Each Deno Worker is its own isolate on its own thread, so it binds its own copy.
 *
 * @module
 */

// ---- open(2) -------------------------------------------------------------------------------------------

/** open(2) flag: read only. */
export const O_RDONLY = 0;
/** open(2) flag: read and write. */
export const O_RDWR = 0o2;
/** open(2) flag: reads return EAGAIN instead of blocking the JS thread. */
export const O_NONBLOCK = 0o4000;
/** open(2) flag: children spawned later (`ip`, nginx …) must not inherit the fd. */
export const O_CLOEXEC = 0o2000000;

// ---- eventfd(2) ----------------------------------------------------------------------------------------

/** eventfd(2) flag: reads of a zero counter return EAGAIN instead of blocking. */
export const EFD_NONBLOCK = 0o4000;
/** eventfd(2) flag: close on exec. */
export const EFD_CLOEXEC = 0o2000000;

// ---- poll(2) -------------------------------------------------------------------------------------------

/** poll(2) event: data to read. */
export const POLLIN = 0x001;
/** poll(2) event: error condition (device gone). */
export const POLLERR = 0x008;
/** poll(2) event: hang up. */
export const POLLHUP = 0x010;
/** poll(2) event: fd not open. */
export const POLLNVAL = 0x020;
/** Size of `struct pollfd { int fd; short events; short revents; }`. */
export const POLLFD_SIZE = 8;

// ---- sockets -------------------------------------------------------------------------------------------

/** Address family IPv4. */
export const AF_INET = 2;
/** Address family IPv6. */
export const AF_INET6 = 10;
/** Address family of local (unix-domain) sockets: systemd's notify socket. */
export const AF_UNIX = 1;
/** Socket type: TCP stream. */
export const SOCK_STREAM = 1;
/** Socket type: datagrams (UDP, or unix-domain messages such as sd_notify's). */
export const SOCK_DGRAM = 2;
/** Socket type: raw IP datagrams (the test flooder's spoofed segments). */
export const SOCK_RAW = 3;
/** Raw-socket protocol: the caller writes the whole IPv4 header (IP_HDRINCL implied). */
export const IPPROTO_RAW = 255;
/** SOL_SOCKET option: the send buffer's size in bytes. */
export const SO_SNDBUF = 7;
/** SOL_SOCKET option: as SO_SNDBUF, past net.core.wmem_max (needs CAP_NET_ADMIN). */
export const SO_SNDBUFFORCE = 32;
/** Size of `struct sockaddr_in`: family, port, address, 8 bytes of zero. */
export const SOCKADDR_IN_SIZE = 16;
/** Size of `struct iovec` on 64-bit ABIs: base pointer and length. */
export const IOVEC_SIZE = 16;
/** Size of `struct mmsghdr` on 64-bit ABIs: a 56-byte `struct msghdr`, the u32 msg_len, padding. */
export const MMSGHDR_SIZE = 64;
/** Size of `struct sockaddr_un`: sa_family_t, then `sun_path` of 108 bytes. */
export const SOCKADDR_UN_SIZE = 110;
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
/** SOL_SOCKET option (asm-generic/socket.h): with l_onoff 1 and l_linger 0, close() sends a reset. */
export const SO_LINGER = 13;
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
/** recv(2)/send(2) flag: this call only does not block (EAGAIN instead). */
export const MSG_DONTWAIT = 0x40;
/** send(2) flag: report EPIPE instead of raising SIGPIPE when the peer is gone. */
export const MSG_NOSIGNAL = 0x4000;

// ---- epoll(7) ------------------------------------------------------------------------------------------

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
/** epoll event: the peer shut down its writing half (EOF is pending). */
export const EPOLLRDHUP = 0x2000;
/** epoll_ctl(2) flag: edge-triggered, report a change of readiness once. */
export const EPOLLET = 0x80000000;
/** epoll_create1(2) flag: close on exec. */
export const EPOLL_CLOEXEC = 0o2000000;
/**
 * Size of `struct epoll_event`: x86-64 packs it (u32 events + u64 data = 12 bytes), other 64-bit ABIs
 * align the data to 8 (16 bytes).
 */
export const EPOLL_EVENT_SIZE = Deno.build.arch === "x86_64" ? 12 : 16;
/** Offset of the `data` field in `struct epoll_event`. */
export const EPOLL_DATA_OFFSET = Deno.build.arch === "x86_64" ? 4 : 8;

// ---- clocks -------------------------------------------------------------------------------------------

/** clock_gettime(2) clock: time since boot, never set back (what systemd's MONOTONIC_USEC counts). */
export const CLOCK_MONOTONIC = 1;

/** CLOCK_MONOTONIC in microseconds, as systemd's `now(CLOCK_MONOTONIC)` reads it (control path only). */
export function monotonicMicros(): bigint {
  const ts = new Uint8Array(16);
  if (libc().clock_gettime(CLOCK_MONOTONIC, ts) !== 0) throw new Error(`clock_gettime: errno ${errno()}`);
  const v = new DataView(ts.buffer);
  return v.getBigInt64(0, true) * 1_000_000n + v.getBigInt64(8, true) / 1000n;
}

// ---- resource limits -----------------------------------------------------------------------------------

/** madvise(2) advice: back the range with transparent huge pages (when THP is `madvise` or `always`). */
export const MADV_HUGEPAGE = 14;

/** getrlimit(2)/setrlimit(2) resource: the highest fd number + 1 the process may open. */
export const RLIMIT_NOFILE = 7;
/** Size of `struct rlimit`: two u64 (`rlim_cur`, the soft limit, then `rlim_max`, the hard one). */
export const RLIMIT_SIZE = 16;

// ---- bpf(2) --------------------------------------------------------------------------------------------

/** bpf(2) command: create a map. */
export const BPF_MAP_CREATE = 0;
/** bpf(2) command: read a map element. */
export const BPF_MAP_LOOKUP_ELEM = 1;
/** bpf(2) command: write a map element. */
export const BPF_MAP_UPDATE_ELEM = 2;
/** bpf(2) command: delete a map element. */
export const BPF_MAP_DELETE_ELEM = 3;
/** bpf(2) command: the key after a key (iteration). */
export const BPF_MAP_GET_NEXT_KEY = 4;
/** bpf(2) command: load a program (attr: `union bpf_attr`, the prog-load member). */
export const BPF_PROG_LOAD = 5;
/** bpf(2) command: pin a program or map in bpffs. */
export const BPF_OBJ_PIN = 6;
/** bpf(2) command: open a pinned object. */
export const BPF_OBJ_GET = 7;
/** bpf(2) command: attach a program to a cgroup. */
export const BPF_PROG_ATTACH = 8;
/** bpf(2) command: detach a program from a cgroup. */
export const BPF_PROG_DETACH = 9;
/** bpf(2) command: run a loaded program once on test input. */
export const BPF_PROG_TEST_RUN = 10;
/** bpf(2) command: the ids of the programs attached to a cgroup. */
export const BPF_PROG_QUERY = 16;
/** bpf(2) command: attach a program as a link (an fd whose life is the attachment's). */
export const BPF_LINK_CREATE = 28;
/** SOL_SOCKET option (Linux 4.12): the socket's 64-bit cookie, the key eBPF programs use for it. */
export const SO_COOKIE = 57;
/** The bpf syscall's number: glibc has no wrapper, so it goes through syscall(2). */
const SYS_BPF = Deno.build.arch === "x86_64" ? 321 : 280; // aarch64: the generic table

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  // ioctl is variadic; on the 64-bit ABIs we target a pointer third argument is passed like a fixed one.
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  // The same for requests that take their argument by value (TUNSETOFFLOAD).
  ioctlValue: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  read: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  // poll on the calling JS thread: errno is readable, and a Worker's loop blocks in it on purpose.
  poll: { parameters: ["buffer", "u32", "i32"], result: "i32" },
  // Same symbol run on a worker thread so a blocking wait leaves the event loop free.
  pollWait: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  recv: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "u32", "i32", "buffer", "u32"], result: "i32" },
  // Many datagrams per call (the flooder's batches); the mmsghdr array holds raw pointers into one arena.
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // Runs on a worker thread, so a wait of up to its timeout leaves the JS event loop (timers, signals) free.
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
  // The same call on the JS thread, used with timeout 0: no thread hop when events are already waiting.
  epoll_wait_sync: { name: "epoll_wait", parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  // Control path only (a table's allocation): a Number for the usize length costs nothing that matters.
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  // Control path only (loading a program), so the BigInt of an i64 result costs nothing that matters.
  syscall: { parameters: ["i64", "i64", "buffer", "i64"], result: "i64" },
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * The bound libc symbols, typed by hand: Deno's declarations admit only `bigint` for 64-bit integer
 * parameters, but the runtime also takes a Number, and a per-packet `BigInt(len)` would allocate.
 */
export interface Libc {
  /** open(2). */
  open(path: Uint8Array, flags: number, mode: number): number;
  /** close(2). */
  close(fd: number): number;
  /** ioctl(2) with a pointer argument. */
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  /** ioctl(2) with an integer argument. */
  ioctlValue(fd: number, request: number, arg: number): number;
  /** read(2); result truncated to 32 bits (see module doc). */
  read(fd: number, buf: ArrayBufferView, len: number): number;
  /** write(2); result truncated to 32 bits (see module doc). */
  write(fd: number, buf: ArrayBufferView, len: number): number;
  /** eventfd(2). */
  eventfd(initval: number, flags: number): number;
  /** poll(2) on the calling JS thread (blocks it for up to `timeoutMs`). */
  poll(fds: Uint8Array, nfds: number, timeoutMs: number): number;
  /** poll(2) on a worker thread. */
  pollWait(fds: Uint8Array, nfds: number, timeoutMs: number): Promise<number>;
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
  /** clock_gettime(2); `ts` is one `struct timespec` (two i64: seconds, nanoseconds), filled in. */
  clock_gettime(clock: number, ts: Uint8Array): number;
  /** sendto(2) with a destination address; result truncated to 32 bits (see module doc). */
  sendto(fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array, addrLen: number): number;
  /** sendmmsg(2): `msgs` is `vlen` {@link MMSGHDR_SIZE}-byte `struct mmsghdr`; returns how many were sent. */
  sendmmsg(fd: number, msgs: Uint8Array, vlen: number, flags: number): number;
  /** shutdown(2). */
  shutdown(fd: number, how: number): number;
  /** epoll_create1(2). */
  epoll_create1(flags: number): number;
  /** epoll_ctl(2); `event` is one `struct epoll_event`. */
  epoll_ctl(epfd: number, op: number, fd: number, event: Uint8Array): number;
  /** epoll_wait(2) on a worker thread. */
  epoll_wait(epfd: number, events: Uint8Array, max: number, timeoutMs: number): Promise<number>;
  /** epoll_wait(2) on the JS thread (timeout 0 only). */
  epoll_wait_sync(epfd: number, events: Uint8Array, max: number, timeoutMs: number): number;
  /** getrlimit(2); `rlim` is one `struct rlimit` ({@link RLIMIT_SIZE} bytes), filled in. */
  getrlimit(resource: number, rlim: Uint8Array): number;
  /** madvise(2) on `len` bytes at `addr` (page-aligned). */
  madvise(addr: Deno.PointerValue, len: number, advice: number): number;
  /** setrlimit(2); `rlim` is one `struct rlimit`. */
  setrlimit(resource: number, rlim: Uint8Array): number;
  /** syscall(2) with one pointer argument (how bpf(2) is reached); use {@link bpf}. */
  syscall(nr: bigint, a: bigint, b: Uint8Array, c: bigint): bigint;
  /** Address of the calling thread's errno. */
  __errno_location(): Deno.PointerValue;
}

let symbols: Libc | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

/** Loads libc on first use, so importing this module costs nothing for code that never makes a call. */
export function libc(): Libc {
  if (symbols === undefined) {
    symbols = Deno.dlopen("libc.so.6", SYMBOLS).symbols as unknown as Libc;
    // The JS thread's errno address never changes, so one view serves every later read.
    errnoView = new Deno.UnsafePointerView(symbols.__errno_location()!);
  }
  return symbols;
}

/** errno of the last failed synchronous libc call on this JS thread (names: base/sys/errno.ts). */
export function errno(): number {
  libc();
  return errnoView!.getInt32(0);
}

/** bpf(2) with `attr` (a `union bpf_attr`); returns the syscall's result (an fd, 0, or -1 with errno). */
export function bpf(cmd: number, attr: Uint8Array): number {
  return Number(libc().syscall(BigInt(SYS_BPF), BigInt(cmd), attr, BigInt(attr.length)));
}

// eventfd counters are u64: one preallocated value to add, one to read into, so waking allocates nothing.
const EVENT_ONE = new BigUint64Array([1n]);
const EVENT_SINK = new BigUint64Array(1);

/** Adds 1 to eventfd `fd`, waking whoever polls it; returns write(2)'s result. */
export function eventfdSignal(fd: number): number {
  return libc().write(fd, EVENT_ONE, 8);
}

/** Resets nonblocking eventfd `fd` to 0 (so the next poll blocks again); returns read(2)'s result. */
export function eventfdDrain(fd: number): number {
  return libc().read(fd, EVENT_SINK, 8);
}

/** NUL-terminated C string for `open(2)` (control path only, so the allocation does not matter). */
export function cString(s: string): Uint8Array {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/**
 * A `struct sockaddr_un` for `path` and its length for bind/connect/sendto. A path starting with `@` is in
 * the abstract namespace (`sun_path[0]` is NUL, the length counts only the name's bytes); throws a
 * RangeError when the path does not fit `sun_path` (107 bytes and a NUL).
 */
export function sockaddrUn(path: string): { addr: Uint8Array; len: number } {
  const name = new TextEncoder().encode(path);
  const abstract = name[0] === 0x40; // '@'
  if (name.length === 0 || name.length > (abstract ? 108 : 107)) {
    throw new RangeError(
      `unix socket path of ${name.length} bytes: expected 1 to 107 (${JSON.stringify(path)})`,
    );
  }
  const addr = new Uint8Array(SOCKADDR_UN_SIZE);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(name, 2);
  if (abstract) addr[2] = 0;
  // Abstract names are length-delimited; filesystem paths carry their NUL.
  return { addr, len: 2 + name.length + (abstract ? 0 : 1) };
}

/** An `int` option value, for setsockopt. */
export function intOption(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return b;
}
