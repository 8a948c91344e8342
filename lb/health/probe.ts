/**
 * Health probes, as keepalived's TCP_CHECK and HTTP_GET: one connection from the gateway's own stack to a
 * real server, bounded by a timeout, answered as success or a short failure reason for the transition log
 * (`refused`, `timeout`, `reset`, `unreachable`, `status 503`, `bad response`).
 *
 * A probe never throws: every failure, including our own timeout, becomes a reason, so the monitor's loop
 * has one path. Timeouts abort the socket (connect or read) rather than leave it pending, so a stopped
 * monitor leaves no socket behind.
 *
 * @module
 */
import { hostPort, type IpAddress } from "../../base/addr.ts";

/** What one check found: success, or the reason it failed. */
export type ProbeResult = { ok: true } | { ok: false; reason: string };

/** Largest status line we read; a real server's is far shorter, and a stream without one is a bad response. */
const MAX_STATUS_LINE = 1024;

const OK: ProbeResult = { ok: true };

/** A failure result with `reason`. */
function fail(reason: string): ProbeResult {
  return { ok: false, reason };
}

/** Maps a socket error to a reason; `timedOut` wins because an abort surfaces as whatever error the op saw. */
export function errorReason(e: unknown, timedOut: boolean): string {
  if (timedOut) return "timeout";
  if (e instanceof Deno.errors.ConnectionRefused) return "refused";
  if (
    e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.ConnectionAborted ||
    e instanceof Deno.errors.BrokenPipe
  ) return "reset";
  if (e instanceof Deno.errors.TimedOut) return "timeout";
  if (e instanceof Deno.errors.NetworkUnreachable || e instanceof Deno.errors.AddrNotAvailable) {
    return "unreachable";
  }
  const msg = e instanceof Error ? e.message : String(e);
  // EHOSTUNREACH (113) and ENETUNREACH (101) reach us as plain errors on some Deno versions.
  if (/os error (113|101)\b|unreachable|no route/i.test(msg)) return "unreachable";
  return `error ${e instanceof Error ? e.name : "unknown"}`;
}

/**
 * Runs `body` on a connection to `addr:port`, aborting connect or I/O after `timeoutMs` or when `signal`
 * fires; the connection is always closed. Errors become reasons (see {@link errorReason}).
 */
async function withConnection(
  addr: IpAddress,
  port: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  body: (conn: Deno.TcpConn) => Promise<ProbeResult>,
): Promise<ProbeResult> {
  if (signal?.aborted) return fail("timeout");
  const ac = new AbortController();
  let timedOut = false;
  let conn: Deno.TcpConn | undefined;
  const abort = () => {
    timedOut = true;
    ac.abort();
    // A read in flight only returns when its socket closes.
    try {
      conn?.close();
    } catch { /* already closed */ }
    conn = undefined;
  };
  const timer = setTimeout(abort, timeoutMs);
  signal?.addEventListener("abort", abort);
  try {
    const c = await Deno.connect({ hostname: addr.text, port, transport: "tcp", signal: ac.signal });
    if (timedOut) {
      try {
        c.close();
      } catch { /* closed by the abort */ }
      return fail("timeout");
    }
    conn = c;
    return await body(c);
  } catch (e) {
    return fail(errorReason(e, timedOut));
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", abort);
    try {
      conn?.close();
    } catch { /* closed by the peer's reset or the abort */ }
  }
}

/**
 * TCP check: connect to `addr:port` within `timeoutMs`, then close; a completed handshake is success.
 *
 * @example
 * ```ts
 * const r = await tcpProbe(parseIpAddress("198.18.3.10")!, 80, 1000);
 * if (!r.ok) console.log(r.reason); // "refused", "timeout", "unreachable", …
 * ```
 */
export function tcpProbe(
  addr: IpAddress,
  port: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ProbeResult> {
  return withConnection(addr, port, timeoutMs, signal, () => Promise.resolve(OK));
}

/** The status code of an HTTP/1.x status line, or -1 when it is not one. */
export function parseStatusLine(line: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(line);
  return m ? Number(m[1]) : -1;
}

/**
 * HTTP check: `GET path HTTP/1.0` with a Host header to `addr:port`; success when the status line arrives
 * within `timeoutMs` with `expectStatus`, else `status N`, `bad response` (no HTTP status line, or the
 * connection ended first — Deno reports a reset during a read as that end), or the connection's reason. HTTP/1.0 so the server closes after the answer and never keeps us waiting.
 *
 * @example
 * ```ts
 * const r = await httpProbe(parseIpAddress("198.18.3.10")!, 80, "/health", 200, 1000);
 * ```
 */
export function httpProbe(
  addr: IpAddress,
  port: number,
  path: string,
  expectStatus: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ProbeResult> {
  return withConnection(addr, port, timeoutMs, signal, async (conn) => {
    const req = `GET ${path} HTTP/1.0\r\nHost: ${hostPort(addr, port)}\r\n` +
      "User-Agent: fnat-lb-health\r\nAccept: */*\r\nConnection: close\r\n\r\n";
    const bytes = new TextEncoder().encode(req);
    for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
    const buf = new Uint8Array(MAX_STATUS_LINE);
    let len = 0;
    for (;;) {
      const eol = buf.subarray(0, len).indexOf(10);
      if (eol >= 0) {
        const line = new TextDecoder().decode(buf.subarray(0, eol)).replace(/\r$/, "");
        const status = parseStatusLine(line);
        if (status < 0) return fail("bad response");
        return status === expectStatus ? OK : fail(`status ${status}`);
      }
      if (len === buf.length) return fail("bad response");
      const n = await conn.read(buf.subarray(len));
      if (n === null) return fail("bad response");
      len += n;
    }
  });
}
