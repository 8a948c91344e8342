/**
 * The probes against real listeners on loopback: a TCP listener (success), a closed port (refused), an HTTP
 * server answering 200 then 503, one that accepts and never answers (timeout), one answering garbage, and
 * one resetting the connection.
 */
import assert from "node:assert/strict";
import { type IpAddress, parseIpAddress } from "../../base/addr.ts";
import { errorReason, httpProbe, parseStatusLine, tcpProbe } from "./probe.ts";

const LO: IpAddress = parseIpAddress("127.0.0.1")!;

/** A loopback listener whose connections `serve` handles; `close` ends it and waits for the handlers. */
function serve(handle: (c: Deno.Conn) => Promise<void>) {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const handlers: Promise<void>[] = [];
  const loop = (async () => {
    for await (const c of l) {
      handlers.push(
        handle(c).catch(() => {}).finally(() => {
          try {
            c.close();
          } catch { /* closed by the handler */ }
        }),
      );
    }
  })();
  return {
    port: (l.addr as Deno.NetAddr).port,
    async close() {
      l.close();
      await loop.catch(() => {});
      await Promise.all(handlers);
    },
  };
}

/** Reads one request head (up to the blank line) as text. */
async function readHead(c: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(4096);
  let text = "";
  while (!text.includes("\r\n\r\n")) {
    const n = await c.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

Deno.test("tcpProbe: a listener is success; a closed port is refused", async () => {
  const s = serve(async () => {});
  assert.deepEqual(await tcpProbe(LO, s.port, 1000), { ok: true });
  await s.close();
  // The port just closed: nothing listens there now.
  assert.deepEqual(await tcpProbe(LO, s.port, 1000), { ok: false, reason: "refused" });
});

Deno.test("httpProbe: sends GET path with Host; 200 is success, then 503 is `status 503`", async () => {
  const statuses = [200, 503];
  const heads: string[] = [];
  const s = serve(async (c) => {
    heads.push(await readHead(c));
    const st = statuses.shift()!;
    await c.write(new TextEncoder().encode(`HTTP/1.1 ${st} X\r\nContent-Length: 0\r\n\r\n`));
  });
  assert.deepEqual(await httpProbe(LO, s.port, "/healthz", 200, 1000), { ok: true });
  assert.deepEqual(await httpProbe(LO, s.port, "/healthz", 200, 1000), { ok: false, reason: "status 503" });
  await s.close();
  assert.match(heads[0], /^GET \/healthz HTTP\/1\.0\r\n/);
  assert.match(heads[0], new RegExp(`\r\nHost: 127\\.0\\.0\\.1:${s.port}\r\n`));
});

Deno.test("httpProbe: a server that accepts but never answers fails with timeout, on time", async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => release = r);
  const s = serve(async (c) => {
    await readHead(c);
    await held; // never answers while the probe waits
  });
  const t0 = performance.now();
  const r = await httpProbe(LO, s.port, "/", 200, 300);
  const took = performance.now() - t0;
  release();
  await s.close();
  assert.deepEqual(r, { ok: false, reason: "timeout" });
  assert.ok(took >= 290 && took < 2000, `took ${took} ms`);
});

Deno.test("httpProbe: an answer without an HTTP status line is a bad response", async () => {
  const s = serve(async (c) => {
    await readHead(c);
    await c.write(new TextEncoder().encode("SSH-2.0-OpenSSH\r\n"));
  });
  assert.deepEqual(await httpProbe(LO, s.port, "/", 200, 1000), { ok: false, reason: "bad response" });
  // A close before any answer is one too.
  await s.close();
  const t = serve(async (c) => {
    await readHead(c);
    c.closeWrite();
    await new Promise((r) => setTimeout(r, 50));
  });
  assert.deepEqual(await httpProbe(LO, t.port, "/", 200, 1000), { ok: false, reason: "bad response" });
  await t.close();
});

Deno.test("httpProbe: a server resetting the connection before answering fails (bad response)", async () => {
  // Closing a socket with unread data makes Linux send RST instead of FIN; Deno's read reports the reset
  // as the end of the stream, so the probe sees a connection that closed without a status line.
  const s = serve(async (c) => {
    await new Promise((r) => setTimeout(r, 100)); // the request arrives and stays unread
    c.close();
  });
  assert.deepEqual(await httpProbe(LO, s.port, "/", 200, 2000), { ok: false, reason: "bad response" });
  await s.close();
});

Deno.test("probes: an already-aborted signal checks nothing", async () => {
  const ac = new AbortController();
  ac.abort();
  assert.deepEqual(await tcpProbe(LO, 9, 1000, ac.signal), { ok: false, reason: "timeout" });
});

Deno.test("parseStatusLine and errorReason", () => {
  assert.equal(parseStatusLine("HTTP/1.1 200 OK"), 200);
  assert.equal(parseStatusLine("HTTP/1.0 503"), 503);
  assert.equal(parseStatusLine("HTTP/2 200"), -1);
  assert.equal(parseStatusLine("hello"), -1);
  assert.equal(errorReason(new Deno.errors.ConnectionRefused("x"), false), "refused");
  assert.equal(errorReason(new Deno.errors.ConnectionReset("x"), false), "reset");
  assert.equal(errorReason(new Deno.errors.TimedOut("x"), false), "timeout");
  assert.equal(errorReason(new Deno.errors.NetworkUnreachable("x"), false), "unreachable");
  assert.equal(errorReason(new Error("No route to host (os error 113)"), false), "unreachable");
  assert.equal(errorReason(new Deno.errors.BadResource("x"), true), "timeout");
  assert.equal(errorReason(new Deno.errors.PermissionDenied("x"), false), "error PermissionDenied");
});
