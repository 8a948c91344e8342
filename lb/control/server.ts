/**
 * The gateway's side of the control socket (lb/control/client.ts is the other): each connection sends one
 * JSON request line, gets one JSON document back, then EOF. The gateway passes the handlers; a handler that
 * throws answers `{"error": …}`, so a bad request never stops the listener.
 *
 * @module
 */
import { type ControlRequest, parseRequest } from "./client.ts";

/** What the gateway answers, per request. */
export interface ControlHandlers {
  /** `stats`: the GatewayStats snapshot. */
  stats(): Promise<unknown>;
  /** `connections`: up to `max` connection rows. */
  connections(max: number): Promise<unknown>;
  /** `reload`: re-read the config file and apply it; `{ok, message}`. */
  reload(): Promise<{ ok: boolean; message: string }>;
}

/** Longest wait for a client's request line. */
const REQUEST_TIMEOUT_MS = 5_000;
/** Longest request line taken. */
const MAX_REQUEST = 4096;

/** Listens on the unix socket `path` (its directory made, a stale socket replaced) and serves requests. */
export async function serveControl(path: string, handlers: ControlHandlers): Promise<Deno.Listener> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")) || "/", { recursive: true });
  await Deno.remove(path).catch(() => {});
  const listener = Deno.listen({ transport: "unix", path });
  (async () => {
    for await (const conn of listener) {
      serve(conn, handlers).catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch { /* closed already (a silent client timed out) */ }
      });
    }
  })().catch(() => {});
  return listener;
}

async function serve(conn: Deno.Conn, handlers: ControlHandlers): Promise<void> {
  const line = await readLine(conn);
  if (line === null) return;
  const req = parseRequest(line);
  let answer: unknown;
  try {
    answer = "error" in req ? req : await answerFor(req, handlers);
  } catch (e) {
    answer = { error: (e as Error).message };
  }
  const bytes = new TextEncoder().encode(JSON.stringify(answer) + "\n");
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

function answerFor(req: ControlRequest, h: ControlHandlers): Promise<unknown> {
  switch (req.cmd) {
    case "stats":
      return h.stats();
    case "connections":
      return h.connections(req.max ?? 10_000);
    case "reload":
      return h.reload();
  }
}

/** The first line the client sends (without its newline; "" at EOF), or null when none came in time. */
async function readLine(conn: Deno.Conn): Promise<string | null> {
  const buf = new Uint8Array(MAX_REQUEST);
  let len = 0;
  let timedOut = false;
  // A client that connects and says nothing must not hold a connection open forever.
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, REQUEST_TIMEOUT_MS);
  try {
    while (len < MAX_REQUEST) {
      const n = await conn.read(buf.subarray(len));
      if (n === null) break;
      len += n;
      if (buf.subarray(0, len).includes(10)) break;
    }
  } catch (e) {
    if (!timedOut) throw e;
  } finally {
    clearTimeout(timer);
  }
  if (timedOut) return null;
  const text = new TextDecoder().decode(buf.subarray(0, len));
  const nl = text.indexOf("\n");
  return nl >= 0 ? text.slice(0, nl) : text;
}
