/**
 * systemd's readiness protocol (sd_notify(3)): when the service manager started us with `NOTIFY_SOCKET` set,
 * each state change is one datagram of newline-separated `KEY=VALUE` lines sent to that AF_UNIX socket
 * (a filesystem path, or `@name` in the abstract namespace). Without `NOTIFY_SOCKET` every call does nothing.
 *
 * ```
 * READY=1\nSTATUS=2 services, 5 servers        start-up done (Type=notify: systemctl start returns now)
 * RELOADING=1\nMONOTONIC_USEC=123456789         a reload began (Type=notify-reload wants the timestamp)
 * READY=1\nSTATUS=reloaded: …                   … and ended
 * STOPPING=1                                    shutdown began
 * STATUS=…                                      free text for `systemctl status`
 * ```
 *
 * Sent through the one libc binding (base/sys/libc.ts): Deno's own datagram sockets for unix paths need
 * `--unstable-net`, and cannot reach abstract names.
 *
 * @module
 */
import { errnoName } from "../../base/sys/errno.ts";
import {
  AF_UNIX,
  errno,
  libc,
  monotonicMicros,
  MSG_NOSIGNAL,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  sockaddrUn,
} from "../../base/sys/libc.ts";

/** A notification could not be sent; the message names the socket and the errno. */
export class NotifyError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "NotifyError";
  }
}

/** The notify socket from the environment, or undefined when we were not started by systemd with one. */
export function notifySocket(): string | undefined {
  const s = Deno.env.get("NOTIFY_SOCKET");
  return s === undefined || s === "" ? undefined : s;
}

/**
 * Sends `state` (newline-separated `KEY=VALUE` lines) as one datagram to `socket` (default `NOTIFY_SOCKET`).
 * Returns false when there is no socket to notify; throws {@link NotifyError} when the send fails.
 */
export function sdNotify(state: string, socket: string | undefined = notifySocket()): boolean {
  if (socket === undefined) return false;
  let to;
  try {
    to = sockaddrUn(socket);
  } catch (e) {
    throw new NotifyError(`NOTIFY_SOCKET: ${(e as Error).message}`);
  }
  const c = libc();
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new NotifyError(`sd_notify: socket(AF_UNIX, SOCK_DGRAM): ${errnoName(errno())}`);
  try {
    const msg = new TextEncoder().encode(state);
    if (c.sendto(fd, msg, msg.length, MSG_NOSIGNAL, to.addr, to.len) !== msg.length) {
      throw new NotifyError(`sd_notify to ${socket}: ${errnoName(errno())}`);
    }
    return true;
  } finally {
    c.close(fd);
  }
}

/** One-line status text: newlines would start new assignments, so they become spaces. */
function statusLine(text: string): string {
  return `STATUS=${text.replace(/[\r\n]+/g, " ")}`;
}

/** `READY=1` (with a status line if given): start-up or a reload is done. */
export function notifyReady(status?: string, socket?: string): boolean {
  return sdNotify(
    status === undefined ? "READY=1" : `READY=1\n${statusLine(status)}`,
    socket ?? notifySocket(),
  );
}

/** `RELOADING=1` with `MONOTONIC_USEC=` now, as Type=notify-reload (systemd 253) requires; READY=1 ends it. */
export function notifyReloading(status?: string, socket?: string): boolean {
  const lines = ["RELOADING=1", `MONOTONIC_USEC=${monotonicMicros()}`];
  if (status !== undefined) lines.push(statusLine(status));
  return sdNotify(lines.join("\n"), socket ?? notifySocket());
}

/** `STOPPING=1`: shutdown began. */
export function notifyStopping(status?: string, socket?: string): boolean {
  return sdNotify(
    status === undefined ? "STOPPING=1" : `STOPPING=1\n${statusLine(status)}`,
    socket ?? notifySocket(),
  );
}

/** `STATUS=…`: free text shown by `systemctl status`. */
export function notifyStatus(status: string, socket?: string): boolean {
  return sdNotify(statusLine(status), socket ?? notifySocket());
}
