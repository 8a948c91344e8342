/**
 * Run by toa/relay_test.ts in a process of its own: an eventfd that fails (EMFILE) is a SocketError at
 * ToaProxy setup, and the fds taken before it are closed again. A fresh process, because the check counts
 * free fds: in the test runner, fds that other tests' children release meanwhile would change the count.
 * Prints "ok" and exits 0 when every check held.
 */
import assert from "node:assert/strict";
import { ToaProxy } from "../relay.ts";
import { SocketError } from "../listener.ts";
import { cString, errno, libc, O_CLOEXEC, O_RDWR, RLIMIT_NOFILE, RLIMIT_SIZE } from "../../base/sys/libc.ts";
import { Errno } from "../../base/sys/errno.ts";

const OPTS = {
  listen: { family: 4, address: "127.0.0.1", port: 0 },
  backend: { family: 4, address: "127.0.0.1", port: 9 },
  proxyProtocol: "v2",
  trust: [],
  log: () => {},
} as const;

/** Opens /dev/null until the fd table is full (EMFILE); returns the fds opened. */
function fillFdTable(): number[] {
  const lib = libc();
  const path = cString("/dev/null");
  const fds: number[] = [];
  for (;;) {
    const fd = lib.open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
      assert.equal(errno(), Errno.EMFILE);
      return fds;
    }
    fds.push(fd);
  }
}

async function main(): Promise<void> {
  const lib = libc();
  // Normal limits: opens, and stop() ends run().
  const ok = ToaProxy.open({ ...OPTS, listen: { ...OPTS.listen } });
  ok.stop();
  await ok.run();

  const rl = new Uint8Array(RLIMIT_SIZE);
  assert.equal(lib.getrlimit(RLIMIT_NOFILE, rl), 0);
  const saved = rl.slice();
  const fds = Deno.readDirSync("/proc/self/fd").map((e) => Number(e.name)).toArray();
  // A soft limit just above the fds in use keeps the fill short; the hard limit stays as it was.
  new DataView(rl.buffer).setBigUint64(0, BigInt(Math.max(...fds) + 64), true);
  assert.equal(lib.setrlimit(RLIMIT_NOFILE, rl), 0);
  const filler = fillFdTable();
  try {
    assert.ok(filler.length >= 2);
    // Exactly two free fds: the listener's socket and the epoll fd get them, eventfd gets EMFILE.
    lib.close(filler.pop()!);
    lib.close(filler.pop()!);
    assert.throws(
      () => ToaProxy.open({ ...OPTS }),
      (e) =>
        e instanceof SocketError && e.errno === Errno.EMFILE &&
        e.message === "toa-proxy: eventfd failed (EMFILE)",
    );
    // Both were closed again: two fds free, not fewer.
    const again = fillFdTable();
    filler.push(...again);
    assert.equal(again.length, 2);
  } finally {
    for (const fd of filler) lib.close(fd);
    assert.equal(lib.setrlimit(RLIMIT_NOFILE, saved), 0);
  }
}

await main();
console.log("ok");
