/**
 * Linux errno values, by name, for the code that reads `errno` (base/sys/libc.ts) after a failed libc call:
 * the TUN device, the steering program's loader and the TOA proxy's sockets. One table, so a number is
 * named the same everywhere (logs, stats keys such as `tx_error_EAGAIN`).
 *
 * @example
 * ```ts
 * if (e === Errno.EAGAIN) return 0;
 * throw new Error(`read failed (${errnoName(e)})`);
 * ```
 *
 * @module
 */

/** errno values we branch on or name in logs (Linux generic numbering, same on x86-64 and aarch64). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  ENODEV: 19,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  EPIPE: 32,
  ERANGE: 34,
  EMSGSIZE: 90,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETUNREACH: 101,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  ENOBUFS: 105,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EHOSTUNREACH: 113,
  EINPROGRESS: 115,
} as const;

const ERRNO_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Errno).map(([name, value]) => [value, name]),
);

/** Symbolic name of an errno value, e.g. `EBUSY`, or `errno N` for ones not in {@link Errno}. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}
