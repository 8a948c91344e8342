/**
 * The metrics listener: a read-only HTTP server on the `metrics` address of the config.
 *
 * | request            | answer                                                        |
 * | ------------------ | ------------------------------------------------------------- |
 * | `GET /metrics`     | Prometheus text, `text/plain; version=0.0.4` (metrics.ts)     |
 * | `GET /`            | the status page (status_page.ts)                              |
 * | `GET /stats.json`  | the stats as JSON (what the page's script fetches)            |
 * | `HEAD` of those    | the same headers, no body                                     |
 * | another method     | 405 with `Allow: GET, HEAD`, on any path: nothing here changes any state |
 * | another path       | 404                                                           |
 *
 * Each request asks `stats()` afresh; a failing `stats()` answers 503 and the listener keeps serving.
 *
 * @module
 */
import { METRICS_CONTENT_TYPE, renderMetrics } from "./metrics.ts";
import { renderStatusPage } from "./status_page.ts";
import type { GatewayStats } from "../stats.ts";

/** What {@link serveMetrics} takes. */
export interface ServeMetricsOptions {
  /** Address to listen on ("127.0.0.1", "::", …). */
  hostname: string;
  /** Port to listen on; 0 picks a free one (see `addr`). */
  port: number;
  /** The current stats, asked once per request. */
  stats: () => Promise<GatewayStats>;
  /** Aborting it shuts the listener down. */
  signal?: AbortSignal;
}

/** A running metrics listener. */
export interface MetricsServer {
  /** The address it listens on (the real port when 0 was asked). */
  addr: Deno.NetAddr;
  /** Settles when the listener has closed. */
  finished: Promise<void>;
  /** Stops accepting, lets running requests finish, closes. */
  shutdown(): Promise<void>;
}

const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
  // The page is self-contained: its inline style and script, and fetches of stats.json from itself.
  "content-security-policy":
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

/** The answer to one request. */
async function answer(req: Request, stats: () => Promise<GatewayStats>): Promise<Response> {
  const path = new URL(req.url).pathname;
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed: this listener is read-only\n", {
      status: 405,
      headers: { ...SECURITY_HEADERS, "content-type": "text/plain; charset=utf-8", allow: "GET, HEAD" },
    });
  }
  if (path !== "/metrics" && path !== "/" && path !== "/stats.json") return text(404, "not found\n");
  let s: GatewayStats;
  try {
    s = await stats();
  } catch (e) {
    return text(503, `stats unavailable: ${e instanceof Error ? e.message : String(e)}\n`);
  }
  let body: string, type: string;
  if (path === "/metrics") [body, type] = [renderMetrics(s), METRICS_CONTENT_TYPE];
  else if (path === "/") [body, type] = [renderStatusPage(s), "text/html; charset=utf-8"];
  else [body, type] = [JSON.stringify(s), "application/json"];
  return new Response(req.method === "HEAD" ? null : body, {
    status: 200,
    headers: { ...SECURITY_HEADERS, "content-type": type },
  });
}

function text(status: number, body: string): Response {
  return new Response(body, {
    status,
    headers: { ...SECURITY_HEADERS, "content-type": "text/plain; charset=utf-8" },
  });
}

/**
 * Serves `/metrics`, the status page and `/stats.json` on `hostname:port` until `shutdown()` or `signal`.
 *
 * @example
 * ```ts
 * const srv = serveMetrics({ hostname: "127.0.0.1", port: 9100, stats: () => pool.stats() });
 * // … curl http://127.0.0.1:9100/metrics
 * await srv.shutdown();
 * ```
 */
export function serveMetrics(opts: ServeMetricsOptions): MetricsServer {
  const server = Deno.serve({
    hostname: opts.hostname,
    port: opts.port,
    signal: opts.signal,
    onListen: () => {},
    onError: (e) => text(500, `internal error: ${e instanceof Error ? e.message : String(e)}\n`),
  }, (req) => answer(req, opts.stats));
  return {
    addr: server.addr,
    finished: server.finished,
    shutdown: () => server.shutdown(),
  };
}
