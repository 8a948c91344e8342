/**
 * Errors thrown at the TUN layer's edge (opening a device, a dead fd). Each carries a stable `reason` so
 * callers can branch without parsing messages, and a one-line message that names the fix.
 *
 * @module
 */

import { errnoName } from "../../base/sys/errno.ts";

/** Why a TUN operation failed; stable strings for logs and tests. */
export type TunErrorReason =
  | "permission"
  | "unavailable"
  | "name-in-use"
  | "invalid-argument"
  | "io"
  | "closed";

/** Base class of every TUN error; `errno` is 0 when the failure was detected before any syscall. */
export class TunError extends Error {
  /** Stable machine-readable cause. */
  readonly reason: TunErrorReason;
  /** errno of the failing syscall, or 0. */
  readonly errno: number;

  /** Builds the one-line message `tun NAME: DETAIL (ERRNO)`. */
  constructor(reason: TunErrorReason, name: string, detail: string, errno = 0) {
    super(`tun ${JSON.stringify(name)}: ${detail}${errno ? ` (${errnoName(errno)})` : ""}`);
    this.name = new.target.name;
    this.reason = reason;
    this.errno = errno;
  }
}

/** Not root / no CAP_NET_ADMIN in this network namespace (EPERM/EACCES on open or TUNSETIFF). */
export class TunPermissionError extends TunError {
  /** See {@link TunError}. */
  constructor(name: string, detail: string, errno: number) {
    super("permission", name, detail, errno);
  }
}

/** The TUN driver is not reachable: no `/dev/net/tun` node (ENOENT) or no driver behind it (ENODEV/ENXIO). */
export class TunUnavailableError extends TunError {
  /** See {@link TunError}. */
  constructor(name: string, detail: string, errno: number) {
    super("unavailable", name, detail, errno);
  }
}

/** The interface name is held by another open TUN (EBUSY) or by a device with other flags/type (EINVAL). */
export class TunNameInUseError extends TunError {
  /** See {@link TunError}. */
  constructor(name: string, detail: string, errno: number) {
    super("name-in-use", name, detail, errno);
  }
}
