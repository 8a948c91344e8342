/**
 * The few libc calls the TUN device needs, bound once through Deno FFI.
 *
 * Why libc and not a Rust/C helper: `open`, `ioctl`, `poll`, `read` and `write` are all a TUN fd needs,
 * and libc is on every Linux host, so the device layer stays a single TypeScript file with no build step.
 *
 * Two deliberate choices keep the per-packet path allocation-free:
 * - `read`/`write` return `ssize_t`, but are declared with an `i32` result. FFI turns 64-bit results into
 *   a BigInt (an allocation per call); the low 32 bits of the return register hold the same value for
 *   anything a TUN fd can return (-1 or a length below 64 KiB) on x86-64 and aarch64.
 * - buffers are passed as `"buffer"` parameters, so V8 hands the Uint8Array's memory to C without a copy.
 *
 * `errno` is thread-local: it is only meaningful right after a synchronous call on the JS thread. Calls
 * declared `nonblocking` run on another thread, so their errno cannot be read here (see `pollWait`).
 *
 * @module
 */

/** open(2) flag: read and write. */
export const O_RDWR = 0o2;
/** open(2) flag: reads return EAGAIN instead of blocking the JS thread. */
export const O_NONBLOCK = 0o4000;
/** open(2) flag: children spawned for `ip` commands must not inherit the device fd. */
export const O_CLOEXEC = 0o2000000;

/** eventfd(2) flags: same reasons as for the device fd. */
export const EFD_NONBLOCK = 0o4000;
/** eventfd(2) flag: close on exec. */
export const EFD_CLOEXEC = 0o2000000;

/** poll(2) event: data to read. */
export const POLLIN = 0x001;
/** poll(2) event: error condition (device gone). */
export const POLLERR = 0x008;
/** poll(2) event: hang up. */
export const POLLHUP = 0x010;
/** poll(2) event: fd not open. */
export const POLLNVAL = 0x020;

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  // ioctl is variadic; on the 64-bit ABIs we target a pointer third argument is passed like a fixed one.
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  // The same for requests that take their argument by value (TUNSETOFFLOAD).
  ioctlValue: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  // Synchronous poll: used with timeout 0, where errno is readable.
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  // Same symbol run on a worker thread so a blocking wait leaves the event loop free.
  pollWait: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
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
  /** poll(2) on the JS thread. */
  poll(fds: Uint8Array, nfds: number, timeoutMs: number): number;
  /** poll(2) on a worker thread. */
  pollWait(fds: Uint8Array, nfds: number, timeoutMs: number): Promise<number>;
  /** Address of the calling thread's errno. */
  __errno_location(): Deno.PointerValue;
}

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;
let symbols: Libc | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

/** Loads libc on first use, so importing this module costs nothing for code that never opens a TUN. */
export function libc(): Libc {
  if (symbols === undefined) {
    lib = Deno.dlopen("libc.so.6", SYMBOLS);
    // The JS thread's errno address never changes, so one view serves every later read.
    symbols = lib.symbols as unknown as Libc;
    errnoView = new Deno.UnsafePointerView(symbols.__errno_location()!);
  }
  return symbols!;
}

/** errno of the last failed synchronous libc call on the JS thread (names: base/sys/errno.ts). */
export function errno(): number {
  libc();
  return errnoView!.getInt32(0);
}

/** NUL-terminated C string for `open(2)` (control path only, so the allocation does not matter). */
export function cString(s: string): Uint8Array {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}
