/**
 * A stand-in for systemd's notify socket, for tests: an AF_UNIX datagram socket bound through the project's
 * libc binding (Deno's `listenDatagram` for unix sockets is behind `--unstable-net`).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  AF_UNIX,
  errno,
  libc,
  MSG_DONTWAIT,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  sockaddrUn,
} from "../../../base/sys/libc.ts";

/** A bound AF_UNIX datagram socket at `path` (`@name`: abstract); `drain` takes the datagrams that arrived. */
export function bindDatagram(path: string): { fd: number; drain(): string[] } {
  const c = libc();
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert.ok(fd >= 0, `socket: errno ${errno()}`);
  const { addr, len } = sockaddrUn(path);
  assert.equal(c.bind(fd, addr, len), 0, `bind ${path}: errno ${errno()}`);
  return {
    fd,
    drain() {
      const out: string[] = [];
      const buf = new Uint8Array(4096);
      for (
        let n = c.recv(fd, buf, buf.length, MSG_DONTWAIT);
        n >= 0;
        n = c.recv(fd, buf, buf.length, MSG_DONTWAIT)
      ) {
        out.push(new TextDecoder().decode(buf.subarray(0, n)));
      }
      return out;
    },
  };
}
