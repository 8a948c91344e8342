import assert from "node:assert/strict";
import { ControlError, parseRequest, reloadAnswer, request } from "./client.ts";
import { startControlServer } from "./testing/control_server.ts";

Deno.test("control client: sends one JSON line, returns the parsed answer", async () => {
  const srv = await startControlServer((req) => {
    const r = req as { cmd: string; max?: number };
    if (r.cmd === "stats") return { activeConnections: 3, services: [] };
    if (r.cmd === "connections") return [{ proto: "tcp", state: "ESTABLISHED" }].slice(0, r.max);
    if (r.cmd === "reload") return { ok: false, message: "config: services[0].port: expected an integer" };
    return { error: `unknown cmd ${JSON.stringify(r.cmd)}` };
  });
  try {
    assert.deepEqual(await request(srv.path, { cmd: "stats" }), { activeConnections: 3, services: [] });
    assert.deepEqual(await request(srv.path, { cmd: "connections", max: 0 }), []);
    const reload = reloadAnswer(await request(srv.path, { cmd: "reload" }));
    assert.deepEqual(reload, { ok: false, message: "config: services[0].port: expected an integer" });
    assert.deepEqual(srv.requests, [{ cmd: "stats" }, { cmd: "connections", max: 0 }, { cmd: "reload" }]);
    await assert.rejects(
      request(srv.path, { cmd: "bogus" } as never),
      (e) => e instanceof ControlError && /the gateway refused bogus: unknown cmd "bogus"/.test(e.message),
    );
  } finally {
    await srv.close();
  }
});

Deno.test("control client: an answer split over writes, pretty-printed, or read to EOF", async () => {
  const big = { services: Array.from({ length: 2000 }, (_, i) => ({ service: `tcp 198.18.0.1:${i}` })) };
  const pretty = JSON.stringify({ a: 1 }, null, 2); // newlines inside the document, no final one: EOF ends it
  let n = 0;
  const srv = await startControlServer(() => (n++ === 0 ? big : pretty));
  try {
    assert.deepEqual(await request(srv.path, { cmd: "stats" }), big);
    assert.deepEqual(await request(srv.path, { cmd: "stats" }), { a: 1 });
  } finally {
    await srv.close();
  }
});

Deno.test("control client: errors say what went wrong", async () => {
  const srv = await startControlServer(() => "not json\n");
  try {
    await assert.rejects(
      request(srv.path, { cmd: "stats" }),
      /answered something that is not JSON: "not json/,
    );
  } finally {
    await srv.close();
  }
  await assert.rejects(request(srv.path, { cmd: "stats" }), Deno.errors.NotFound);
  assert.throws(() => reloadAnswer({ message: "x" }), /reload: expected \{"ok": true\|false/);
});

Deno.test("control client: a gateway that never answers times out", async () => {
  const dir = await Deno.makeTempDir();
  const listener = Deno.listen({ transport: "unix", path: `${dir}/s` });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of listener) held.push(c);
  })().catch(() => {});
  try {
    await assert.rejects(
      request(`${dir}/s`, { cmd: "stats" }, { timeoutMs: 200 }),
      /no answer from the gateway at .* within 200 ms/,
    );
  } finally {
    listener.close();
    await accepting;
    held.forEach((c) => c.close());
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("control protocol: parseRequest reads what request sends, and refuses the rest with a reason", () => {
  assert.deepEqual(parseRequest(`{"cmd":"stats"}`), { cmd: "stats" });
  assert.deepEqual(parseRequest(""), { cmd: "stats" }, "a client that sends nothing gets the stats");
  assert.deepEqual(parseRequest(`{"cmd":"connections","max":5}`), { cmd: "connections", max: 5 });
  assert.deepEqual(parseRequest(`{"cmd":"reload","extra":1}`), { cmd: "reload" });
  assert.match((parseRequest(`{"cmd":"connections","max":-1}`) as { error: string }).error, /non-negative/);
  assert.match(
    (parseRequest(`{"cmd":"flush"}`) as { error: string }).error,
    /unknown cmd "flush"; known: stats/,
  );
  assert.match((parseRequest(`stats`) as { error: string }).error, /expected one JSON line/);
  assert.match((parseRequest(`[1]`) as { error: string }).error, /unknown cmd undefined/);
});
