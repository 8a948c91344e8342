import assert from "node:assert/strict";
import { ControlError, request } from "./client.ts";
import { serveControl } from "./server.ts";

Deno.test("control server: answers each request by its handler, errors as {error}", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/ctl.sock`;
  let reloads = 0;
  const listener = await serveControl(path, {
    stats: () => Promise.resolve({ activeConnections: 3 }),
    connections: (max) => Promise.resolve([{ max }]),
    reload: () => {
      reloads++;
      if (reloads > 1) throw new Error("services[0].port: expected an integer");
      return Promise.resolve({ ok: true, message: "reloaded" });
    },
  });
  try {
    assert.deepEqual(await request(path, { cmd: "stats" }), { activeConnections: 3 });
    assert.deepEqual(await request(path, { cmd: "connections", max: 5 }), [{ max: 5 }]);
    assert.deepEqual(await request(path, { cmd: "connections" }), [{ max: 10000 }]);
    assert.deepEqual(await request(path, { cmd: "reload" }), { ok: true, message: "reloaded" });
    await assert.rejects(
      () => request(path, { cmd: "reload" }),
      (e) => e instanceof ControlError && /services\[0\]\.port: expected an integer/.test(e.message),
    );
    await assert.rejects(
      () => request(path, { cmd: "nope" } as never),
      (e) => e instanceof ControlError && /unknown cmd "nope"/.test(e.message),
    );
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});
