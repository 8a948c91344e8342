/**
 * The status page: one self-contained HTML document (inline CSS and JS, no external assets) that `GET /`
 * serves. Read-only: it shows services, real servers with health and weights, drops by reason, pools and
 * workers; it changes nothing.
 *
 * Rendering happens twice from the same code. The server renders the current figures into the page, so it
 * is complete without JavaScript (a `<noscript>` meta refresh then reloads it every few seconds). With
 * JavaScript, an inline script fetches `stats.json` every 2 s and re-renders with the very functions used
 * on the server (their source is embedded with `Function.prototype.toString`), adding rates computed from
 * two consecutive samples.
 *
 * Every real server row carries stable attributes for tests and scripts:
 * `<tr data-service="tcp 198.18.0.100:80" data-server="198.18.3.10:80" data-health="down" data-draining="false">`.
 *
 * @module
 */
import type { GatewayStats } from "../stats.ts";

/** How often the page's script fetches `stats.json`, in milliseconds. */
export const STATUS_REFRESH_MS = 2000;
/** How often the page reloads itself without JavaScript, in seconds. */
export const STATUS_NOSCRIPT_REFRESH_S = 5;

/** Per-second rates by key (see {@link computeRates}); missing key: no rate known. */
export type Rates = Record<string, number>;

// ---- Shared with the browser: these functions are embedded in the page's script by their source, so each
// ---- must be self-contained (no imports, no module-level names other than the functions listed in SHARED).

/** Text made safe for HTML content and attribute values. */
function esc(s: string): string {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** A count with thousands separators. */
function fmtCount(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Bytes in binary units. */
function fmtBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? String(Math.round(n)) : n.toFixed(1)) + " " + units[i];
}

/** A rate cell's text: an em dash while no rate is known. */
function fmtRate(v: number | undefined, bytes: boolean): string {
  if (v === undefined) return "\u2014";
  if (bytes) return fmtBytes(v) + "/s";
  return (v >= 100 ? String(Math.round(v)) : v.toFixed(1)) + "/s";
}

/** Seconds as "3d 4h 5m 6s", leading zero parts left out. */
function fmtDuration(s: number): string {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  const parts = [];
  if (d) parts.push(d + "d");
  if (d || h) parts.push(h + "h");
  if (d || h || m) parts.push(m + "m");
  parts.push((s % 60) + "s");
  return parts.join(" ");
}

/**
 * Per-second rates between two samples taken `seconds` apart: connections, packets and bytes per service
 * (`<field>|<service>|`) and real server (`<field>|<service>|<server>`), drops by reason (`drop|<reason>`),
 * worker packets (`rx|<worker>`, `tx|<worker>`). A counter that went backwards (restart) gives no rate.
 */
export function computeRates(prev: GatewayStats, cur: GatewayStats, seconds: number): Rates {
  const out: Rates = {};
  if (!(seconds > 0)) return out;
  const put = (key: string, a: number | undefined, b: number | undefined) => {
    if (typeof a === "number" && typeof b === "number" && b >= a) out[key] = (b - a) / seconds;
  };
  const fields = [["conn", "connectionsTotal"], ["pin", "packetsIn"], ["pout", "packetsOut"], [
    "bin",
    "bytesIn",
  ], ["bout", "bytesOut"]] as const;
  const before = new Map<string, GatewayStats["services"][number]>();
  for (const s of prev.services) before.set(s.service, s);
  for (const s of cur.services) {
    const p = before.get(s.service);
    if (p === undefined) continue;
    for (const [k, f] of fields) put(k + "|" + s.service + "|", p[f], s[f]);
    const servers = new Map<string, GatewayStats["services"][number]["realServers"][number]>();
    for (const r of p.realServers) servers.set(r.server, r);
    for (const r of s.realServers) {
      const q = servers.get(r.server);
      if (q === undefined) continue;
      for (const [k, f] of fields) put(k + "|" + s.service + "|" + r.server, q[f], r[f]);
    }
  }
  for (const reason of Object.keys(cur.drops)) {
    put("drop|" + reason, prev.drops[reason] ?? 0, cur.drops[reason]);
  }
  for (const w of cur.workers) {
    const p = prev.workers.find((x) => x.worker === w.worker);
    if (p === undefined) continue;
    put("rx|" + w.worker, p.runtime.rx_packets, w.runtime.rx_packets);
    put("tx|" + w.worker, p.runtime.tx_packets, w.runtime.tx_packets);
  }
  return out;
}

/** The page's content (everything inside `<main>`) for `stats`, with `rates` when two samples are known. */
function pageBody(stats: GatewayStats, rates: Rates | null): string {
  const r = rates ?? {};
  const h: string[] = [];
  let up = 0, down = 0, unchecked = 0;
  for (const s of stats.services) {
    for (const x of s.realServers) {
      if (x.health === "up") up++;
      else if (x.health === "down") down++;
      else unchecked++;
    }
  }
  const lastReload = stats.reloads.last;
  const card = (label: string, value: string, cls = "") =>
    '<div class="card ' + cls + '"><div class="label">' + esc(label) + '</div><div class="value">' + value +
    "</div></div>";
  h.push('<section class="cards">');
  h.push(card("Uptime", esc(fmtDuration(stats.uptimeSeconds))));
  h.push(card("Live connections", esc(fmtCount(stats.activeConnections))));
  h.push(card("Services", esc(String(stats.services.length))));
  h.push(
    card(
      "Real servers",
      '<span class="ok">' + up + " up</span> \u00b7 " + '<span class="bad">' + down + " down</span>" +
        (unchecked ? " \u00b7 " + unchecked + " unchecked" : ""),
      down ? "warn" : "",
    ),
  );
  h.push(
    card(
      "Reloads",
      esc(stats.reloads.ok + " ok \u00b7 " + stats.reloads.failed + " failed") +
        (lastReload
          ? '<div class="sub ' + (lastReload.ok ? "ok" : "bad") + '" title="' + esc(lastReload.message) +
            '">last ' + esc(lastReload.ok ? "ok" : "failed") + " at " + esc(lastReload.at) +
            (lastReload.ok ? "" : ": " + esc(lastReload.message)) + "</div>"
          : ""),
      lastReload && !lastReload.ok ? "warn" : "",
    ),
  );
  h.push("</section>");

  for (const s of stats.services) {
    const sk = s.service;
    h.push(
      '<section class="service" data-service="' + esc(sk) + '" data-draining="' + s.draining + '"><h2>' +
        esc(sk) + ' <span class="tag">' + esc(s.scheduler) + "</span>" +
        (s.draining ? ' <span class="tag drain">draining</span>' : "") + "</h2>",
    );
    h.push(
      '<table><thead><tr><th>Real server</th><th>Health</th><th class="n">Weight</th><th class="n">Active</th>' +
        '<th class="n">Inactive</th><th class="n">Conns</th><th class="n">Conn/s</th><th class="n">Pkt in/s</th>' +
        '<th class="n">Pkt out/s</th><th class="n">In/s</th><th class="n">Out/s</th><th class="n">Bytes in</th>' +
        '<th class="n">Bytes out</th></tr></thead><tbody>',
    );
    for (const x of s.realServers) {
      const k = "|" + sk + "|" + x.server;
      const conn = r["conn" + k];
      h.push(
        '<tr data-service="' + esc(sk) + '" data-server="' + esc(x.server) + '" data-health="' +
          esc(x.health) +
          '" data-draining="' + x.draining + '" data-weight="' + x.weight + '" data-effective-weight="' +
          x.effectiveWeight + '"' + (conn === undefined ? "" : ' data-conn-rate="' + conn + '"') + ">" +
          "<td>" + esc(x.server) + (x.draining ? ' <span class="tag drain">draining</span>' : "") + "</td>" +
          '<td><span class="health ' + esc(x.health) + '">' + esc(x.health) + "</span>" +
          (x.healthReason ? ' <span class="reason">' + esc(x.healthReason) + "</span>" : "") + "</td>" +
          '<td class="n">' +
          (x.effectiveWeight === x.weight
            ? esc(String(x.weight))
            : '<span class="bad">' + esc(String(x.effectiveWeight)) + "</span> / " + esc(String(x.weight))) +
          "</td>" +
          '<td class="n">' + fmtCount(x.active) + "</td>" +
          '<td class="n">' + fmtCount(x.inactive) + "</td>" +
          '<td class="n">' + fmtCount(x.connectionsTotal) + "</td>" +
          '<td class="n rate">' + esc(fmtRate(conn, false)) + "</td>" +
          '<td class="n rate">' + esc(fmtRate(r["pin" + k], false)) + "</td>" +
          '<td class="n rate">' + esc(fmtRate(r["pout" + k], false)) + "</td>" +
          '<td class="n rate">' + esc(fmtRate(r["bin" + k], true)) + "</td>" +
          '<td class="n rate">' + esc(fmtRate(r["bout" + k], true)) + "</td>" +
          '<td class="n">' + esc(fmtBytes(x.bytesIn)) + "</td>" +
          '<td class="n">' + esc(fmtBytes(x.bytesOut)) + "</td></tr>",
      );
    }
    const k = "|" + sk + "|";
    h.push(
      '</tbody><tfoot><tr class="total"><td>service</td><td></td><td></td><td class="n">' +
        fmtCount(s.realServers.reduce((a, x) => a + x.active, 0)) + '</td><td class="n">' +
        fmtCount(s.realServers.reduce((a, x) => a + x.inactive, 0)) + '</td><td class="n">' +
        fmtCount(s.connectionsTotal) + '</td><td class="n rate">' + esc(fmtRate(r["conn" + k], false)) +
        '</td><td class="n rate">' + esc(fmtRate(r["pin" + k], false)) + '</td><td class="n rate">' +
        esc(fmtRate(r["pout" + k], false)) + '</td><td class="n rate">' + esc(fmtRate(r["bin" + k], true)) +
        '</td><td class="n rate">' + esc(fmtRate(r["bout" + k], true)) + '</td><td class="n">' +
        esc(fmtBytes(s.bytesIn)) + '</td><td class="n">' + esc(fmtBytes(s.bytesOut)) +
        "</td></tr></tfoot></table></section>",
    );
  }
  if (stats.services.length === 0) h.push('<p class="empty">No services configured.</p>');

  h.push('<div class="grid"><section><h2>Drops by reason</h2>');
  const reasons = Object.keys(stats.drops).sort((a, b) => stats.drops[b] - stats.drops[a]);
  if (reasons.length === 0) h.push('<p class="empty">No drops.</p>');
  else {
    h.push(
      '<table><thead><tr><th>Reason</th><th class="n">Packets</th><th class="n">Rate</th></tr></thead><tbody>',
    );
    for (const reason of reasons) {
      h.push(
        '<tr data-drop="' + esc(reason) + '"><td>' + esc(reason) + '</td><td class="n">' +
          fmtCount(stats.drops[reason]) + '</td><td class="n rate">' +
          esc(fmtRate(r["drop|" + reason], false)) +
          "</td></tr>",
      );
    }
    h.push("</tbody></table>");
  }
  h.push("</section><section><h2>Local address pools</h2>");
  if (stats.pools.length === 0) h.push('<p class="empty">No local addresses.</p>');
  else {
    h.push(
      '<table><thead><tr><th>Local address</th><th class="n">Used</th><th class="n">Free</th>' +
        '<th class="n">Misses</th><th>Use</th></tr></thead><tbody>',
    );
    for (const p of stats.pools) {
      const total = p.used + p.free;
      const pct = total > 0 ? (100 * p.used) / total : 0;
      h.push(
        '<tr data-pool="' + esc(p.address) + '"><td>' + esc(p.address) + '</td><td class="n">' +
          fmtCount(p.used) +
          '</td><td class="n">' + fmtCount(p.free) + '</td><td class="n' + (p.misses ? " bad" : "") + '">' +
          fmtCount(p.misses) + '</td><td><div class="bar"><div style="width:' + pct.toFixed(1) +
          '%"></div></div></td></tr>',
      );
    }
    h.push("</tbody></table>");
  }
  h.push("</section><section><h2>Workers</h2>");
  h.push(
    '<table><thead><tr><th>Worker</th><th class="n">Connections</th><th class="n">Rx/s</th>' +
      '<th class="n">Tx/s</th><th class="n">Hand-off out</th><th class="n">Hand-off in</th>' +
      '<th class="n">Tx errors</th></tr></thead><tbody>',
  );
  for (const w of stats.workers) {
    let txErr = 0;
    for (const key of Object.keys(w.runtime)) if (key.indexOf("tx_error_") === 0) txErr += w.runtime[key];
    h.push(
      '<tr data-worker="' + w.worker + '"><td>' + w.worker + '</td><td class="n">' +
        fmtCount(w.activeConnections) + '</td><td class="n rate">' +
        esc(fmtRate(r["rx|" + w.worker], false)) +
        '</td><td class="n rate">' + esc(fmtRate(r["tx|" + w.worker], false)) + '</td><td class="n">' +
        fmtCount(w.runtime.handoff_out ?? 0) + '</td><td class="n">' + fmtCount(w.runtime.handoff_in ?? 0) +
        '</td><td class="n' + (txErr ? " bad" : "") + '">' + fmtCount(txErr) + "</td></tr>",
    );
  }
  h.push("</tbody></table></section><section><h2>Events</h2>");
  const events = Object.keys(stats.events).sort();
  if (events.length === 0) h.push('<p class="empty">No events.</p>');
  else {
    h.push('<table><thead><tr><th>Event</th><th class="n">Count</th></tr></thead><tbody>');
    for (const ev of events) {
      h.push("<tr><td>" + esc(ev) + '</td><td class="n">' + fmtCount(stats.events[ev]) + "</td></tr>");
    }
    h.push("</tbody></table>");
  }
  h.push("</section></div>");
  return h.join("");
}

/** The shared functions, in the order the page's script defines them. */
const SHARED = [esc, fmtCount, fmtBytes, fmtRate, fmtDuration, computeRates, pageBody];

/** The page's script: fetch `stats.json` every 2 s, re-render, compute rates from the last two samples. */
function clientScript(): string {
  return `"use strict";
${SHARED.map((f) => f.toString()).join("\n")}
(function () {
  const app = document.getElementById("app");
  const live = document.getElementById("live");
  let prev = null, prevAt = 0;
  async function tick() {
    try {
      const res = await fetch("stats.json", { cache: "no-store" });
      if (!res.ok) throw new Error("HTTP " + res.status);
      const cur = await res.json();
      const now = performance.now();
      const rates = prev === null ? null : computeRates(prev, cur, (now - prevAt) / 1000);
      prev = cur;
      prevAt = now;
      app.innerHTML = pageBody(cur, rates);
      live.dataset.live = "ok";
      live.textContent = "live \\u00b7 updated " + new Date().toLocaleTimeString();
    } catch (e) {
      live.dataset.live = "error";
      live.textContent = "stale \\u00b7 " + (e && e.message ? e.message : String(e));
    } finally {
      setTimeout(tick, ${STATUS_REFRESH_MS});
    }
  }
  tick();
})();`;
}

const CSS = `
:root{--fg:#1d2330;--muted:#6b7385;--line:#e3e6ec;--bg:#f6f7f9;--ok:#17803d;--bad:#c62828;--warn:#b26a00}
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:baseline;gap:16px;padding:12px 24px;background:#1d2330;color:#fff}
header h1{font-size:18px;margin:0}
#live{font-size:12px;color:#b8c0d0}
#live[data-live=error]{color:#ff8a80}
main{padding:16px 24px}
h2{font-size:15px;margin:0 0 8px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:16px}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:150px}
.card.warn{border-color:var(--warn)}
.card .label{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.card .value{font-size:18px;font-weight:600}
.card .sub{font-size:11px;font-weight:400;max-width:360px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
section{background:#fff;border:1px solid var(--line);border-radius:6px;padding:12px 14px;margin-bottom:16px}
.cards{background:none;border:0;padding:0}
table{border-collapse:collapse;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
th{font-size:11px;text-transform:uppercase;letter-spacing:.03em;color:var(--muted);font-weight:600}
.n{text-align:right;font-variant-numeric:tabular-nums}
tfoot td{font-weight:600;border-bottom:0}
.rate{color:#2451a6}
.tag{font-size:11px;font-weight:500;background:#eef1f6;border-radius:3px;padding:1px 6px;color:var(--muted)}
.tag.drain{background:#fff3e0;color:var(--warn)}
.health{display:inline-block;min-width:72px;text-align:center;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;color:#fff}
.health.up{background:var(--ok)}.health.down{background:var(--bad)}.health.unchecked{background:#8a93a6}
.reason{font-size:12px;color:var(--bad)}
.ok{color:var(--ok)}.bad{color:var(--bad)}
tr[data-health=down] td{background:#fff5f5}
tr[data-draining=true] td{color:var(--muted)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:0 16px}
.bar{background:#eef1f6;border-radius:3px;height:8px;min-width:80px}
.bar div{background:#2451a6;height:8px;border-radius:3px}
.empty{color:var(--muted);margin:0}
`;

/**
 * The status page for `stats`: complete figures rendered on the server, live rates from its inline script.
 *
 * @example
 * ```ts
 * const html = renderStatusPage(await stats());
 * // html.includes('data-server="198.18.3.10:80" data-health="up"')
 * ```
 */
export function renderStatusPage(stats: GatewayStats): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fnat-lb status</title>
<noscript><meta http-equiv="refresh" content="${STATUS_NOSCRIPT_REFRESH_S}"></noscript>
<style>${CSS}</style>
</head>
<body>
<header><h1>fnat-lb</h1><span id="live" data-live="static">as of page load \u00b7 reloads every ${STATUS_NOSCRIPT_REFRESH_S} s without JavaScript</span></header>
<main id="app">${pageBody(stats, null)}</main>
<script>${clientScript().replace(/<\/script/gi, "<\\/script")}</script>
</body>
</html>
`;
}
