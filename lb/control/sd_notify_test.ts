/**
 * sd_notify against a datagram socket the test owns (bound through the same libc binding: Deno's
 * `listenDatagram` for unix sockets is behind `--unstable-net`), at a path and in the abstract namespace.
 */
import assert from "node:assert/strict";
import { bindDatagram } from "./testing/notify_socket.ts";
import { libc, monotonicMicros } from "../../base/sys/libc.ts";
import {
  NotifyError,
  notifyReady,
  notifyReloading,
  notifyStatus,
  notifyStopping,
  sdNotify,
} from "./sd_notify.ts";

Deno.test("sd_notify: READY, RELOADING with MONOTONIC_USEC, STATUS, STOPPING arrive in order at NOTIFY_SOCKET", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fnat-notify-" });
  const path = `${dir}/notify`;
  const sock = bindDatagram(path);
  const before = Deno.env.get("NOTIFY_SOCKET");
  Deno.env.set("NOTIFY_SOCKET", path);
  try {
    const t0 = monotonicMicros();
    assert.equal(notifyReady("2 services, 3 servers"), true);
    assert.equal(notifyReloading(), true);
    assert.equal(notifyReady("reloaded:\nok"), true);
    assert.equal(notifyStatus("draining 1 server"), true);
    assert.equal(notifyStopping(), true);
    const t1 = monotonicMicros();
    const got = sock.drain();
    assert.equal(got.length, 5, JSON.stringify(got));
    assert.equal(got[0], "READY=1\nSTATUS=2 services, 3 servers");
    const m = /^RELOADING=1\nMONOTONIC_USEC=(\d+)$/.exec(got[1]);
    assert.ok(m, got[1]);
    assert.ok(BigInt(m[1]) >= t0 && BigInt(m[1]) <= t1, "MONOTONIC_USEC is CLOCK_MONOTONIC now");
    assert.equal(got[2], "READY=1\nSTATUS=reloaded: ok", "a status stays one line");
    assert.equal(got[3], "STATUS=draining 1 server");
    assert.equal(got[4], "STOPPING=1");
  } finally {
    if (before === undefined) Deno.env.delete("NOTIFY_SOCKET");
    else Deno.env.set("NOTIFY_SOCKET", before);
    libc().close(sock.fd);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sd_notify: an abstract-namespace socket (@name) works too", () => {
  const name = `@fnat-lb-test-${crypto.randomUUID()}`;
  const sock = bindDatagram(name);
  try {
    assert.equal(sdNotify("READY=1", name), true);
    assert.equal(notifyStopping("bye", name), true);
    assert.deepEqual(sock.drain(), ["READY=1", "STOPPING=1\nSTATUS=bye"]);
  } finally {
    libc().close(sock.fd);
  }
});

Deno.test("sd_notify: nothing to do without NOTIFY_SOCKET; a dead socket is a NotifyError", async () => {
  const before = Deno.env.get("NOTIFY_SOCKET");
  Deno.env.delete("NOTIFY_SOCKET");
  try {
    assert.equal(notifyReady(), false);
    assert.equal(sdNotify("READY=1"), false);
  } finally {
    if (before !== undefined) Deno.env.set("NOTIFY_SOCKET", before);
  }
  const dir = await Deno.makeTempDir();
  try {
    assert.throws(
      () => sdNotify("READY=1", `${dir}/nobody`),
      (e) => e instanceof NotifyError && /ENOENT/.test(e.message),
    );
    assert.throws(
      () => sdNotify("READY=1", `/${"x".repeat(120)}`),
      /NOTIFY_SOCKET: unix socket path of 121 bytes/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
