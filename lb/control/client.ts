/**
 * The client side of the gateway's control socket (a unix stream socket at `config.control`): one request
 * line, one JSON document back, then the gateway closes.
 *
 * ```
 * → {"cmd":"stats"}\n                      ← GatewayStats (lb/stats.ts) as JSON
 * → {"cmd":"connections","max":10000}\n    ← ConnectionRow[] as JSON
 * → {"cmd":"reload"}\n                     ← {"ok":true,"message":"reloaded: 2 services, 5 servers"}
 * any request the gateway refuses          ← {"error":"unknown cmd \"x\""}
 * ```
 *
 * The answer ends at EOF or at the first newline after a complete document, whichever comes first. The
 * gateway reads request lines with {@link parseRequest}, so both sides agree on the protocol in one place.
 *
 * @module
 */
import type { GatewayStats } from "../stats.ts";

/** A request to the running gateway. */
export type ControlRequest =
  | { cmd: "stats" }
  | { cmd: "connections"; max?: number }
  | { cmd: "reload" };

/** What `reload` answers: whether the new configuration is in force, and one line saying what happened. */
export interface ReloadAnswer {
  /** True when the gateway runs the new configuration. */
  ok: boolean;
  /** One line for the operator: what changed, or why nothing did. */
  message: string;
}

/** The gateway refused a request or answered something that is not JSON; the message says which. */
export class ControlError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "ControlError";
  }
}

/** Options of {@link request}. */
export interface RequestOptions {
  /** Give up after this long (default 10 s: a reload may wait for every worker). */
  timeoutMs?: number;
}

/**
 * Sends `req` as one JSON line to the control socket at `path` and returns the parsed JSON answer. Throws
 * `Deno.errors.NotFound`/`ConnectionRefused` when no gateway listens there, {@link ControlError} when the
 * answer is an `{"error": …}` document, not JSON, or late.
 */
export async function request(
  path: string,
  req: ControlRequest,
  opts: RequestOptions = {},
): Promise<unknown> {
  const conn = await Deno.connect({ transport: "unix", path });
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, timeoutMs);
  const decoder = new TextDecoder();
  let text = "";
  try {
    const line = new TextEncoder().encode(JSON.stringify(req) + "\n");
    // A gateway that answers before reading (the first control protocol did) may close first: read anyway.
    try {
      for (let off = 0; off < line.length;) off += await conn.write(line.subarray(off));
    } catch { /* the answer, if any, is still readable */ }
    const buf = new Uint8Array(65536);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (e) {
        if (timedOut) throw new ControlError(`no answer from the gateway at ${path} within ${timeoutMs} ms`);
        throw e;
      }
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
      const nl = text.indexOf("\n");
      if (nl >= 0 && complete(text.slice(0, nl))) {
        text = text.slice(0, nl);
        break;
      }
    }
  } finally {
    clearTimeout(timer);
    if (!timedOut) conn.close();
  }
  text += decoder.decode();
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new ControlError(
      text.trim() === ""
        ? `the gateway at ${path} closed without an answer`
        : `the gateway at ${path} answered something that is not JSON: ${JSON.stringify(text.slice(0, 80))}`,
    );
  }
  if (typeof answer === "object" && answer !== null && !Array.isArray(answer) && "error" in answer) {
    throw new ControlError(`the gateway refused ${req.cmd}: ${String((answer as { error: unknown }).error)}`);
  }
  return answer;
}

/** True when `line` parses as one JSON document (a pretty-printed answer keeps reading to EOF). */
function complete(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

/** Checks a `reload` answer's shape; throws {@link ControlError} naming what is missing. */
export function reloadAnswer(v: unknown): ReloadAnswer {
  const o = v as Partial<ReloadAnswer> | null;
  if (typeof o !== "object" || o === null || typeof o.ok !== "boolean") {
    throw new ControlError(`reload: expected {"ok": true|false, "message": "…"}, got ${JSON.stringify(v)}`);
  }
  return { ok: o.ok, message: typeof o.message === "string" ? o.message : "" };
}

/**
 * The server side's reading of one request line (for the gateway): the request, or an `{error}` answer to
 * send back as is. An empty line is a stats request, as the first protocol (connect, read to EOF) meant.
 */
export function parseRequest(line: string): ControlRequest | { error: string } {
  if (line.trim() === "") return { cmd: "stats" };
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return {
      error: `expected one JSON line such as {"cmd":"stats"}, got ${JSON.stringify(line.slice(0, 80))}`,
    };
  }
  const o = v as { cmd?: unknown; max?: unknown } | null;
  if (typeof o !== "object" || o === null) {
    return { error: `expected an object with "cmd", got ${line.slice(0, 80)}` };
  }
  switch (o.cmd) {
    case "stats":
    case "reload":
      return { cmd: o.cmd };
    case "connections":
      if (o.max === undefined) return { cmd: "connections" };
      if (typeof o.max === "number" && Number.isInteger(o.max) && o.max >= 0) {
        return { cmd: "connections", max: o.max };
      }
      return { error: `connections: "max" must be a non-negative integer, got ${JSON.stringify(o.max)}` };
    default:
      return { error: `unknown cmd ${JSON.stringify(o.cmd)}; known: stats, connections, reload` };
  }
}

/** The stats of the gateway whose control socket is `path` (GatewayStats v2, lb/stats.ts). */
export async function readStats(path: string, opts: RequestOptions = {}): Promise<GatewayStats> {
  return await request(path, { cmd: "stats" }, opts) as GatewayStats;
}
