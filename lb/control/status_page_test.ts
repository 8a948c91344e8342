import assert from "node:assert/strict";
import { fakeStats, idleStats } from "../../tests/helpers/fake_stats.ts";
import { computeRates, renderStatusPage } from "./status_page.ts";

/** Every `<tr data-server=…>` row's data attributes, in page order. */
function serverRows(html: string): Record<string, string>[] {
  const rows: Record<string, string>[] = [];
  for (const m of html.matchAll(/<tr (data-service="[^"]*" data-server="[^"]*"[^>]*)>/g)) {
    const attrs: Record<string, string> = {};
    for (const a of m[1].matchAll(/data-([a-z-]+)="([^"]*)"/g)) attrs[a[1]] = a[2];
    rows.push(attrs);
  }
  return rows;
}

/** The page without its script (the script holds the renderer's source, with attribute names in strings). */
function withoutScript(html: string): string {
  return html.replace(/<script>[\s\S]*?<\/script>/, "");
}

Deno.test("status page: one row per real server with stable health, draining and weight attributes", () => {
  const rows = serverRows(withoutScript(renderStatusPage(fakeStats())));
  assert.deepEqual(
    rows.map((r) => [r.service, r.server, r.health, r.draining, r.weight, r["effective-weight"]]),
    [
      ["tcp 198.18.0.100:80", "198.18.3.10:80", "up", "false", "3", "3"],
      ["tcp 198.18.0.100:80", "198.18.3.11:80", "down", "false", "2", "0"],
      ["tcp 198.18.0.100:80", "[fd00:3::10]:8080", "up", "false", "1", "1"],
      ["udp [fd00::100]:53", "[fd00:3::20]:53", "up", "true", "1", "0"],
      ["udp [fd00::100]:53", "[fd00:3::21]:53", "unchecked", "false", "5", "5"],
    ],
  );
  // Rendered on the server: no rates yet.
  assert.ok(rows.every((r) => !("conn-rate" in r)));
});

Deno.test("status page: the server render shows reasons, weights, drops, pools, workers and reloads", () => {
  const html = withoutScript(renderStatusPage(fakeStats()));
  assert.match(html, /data-server="198\.18\.3\.11:80" data-health="down"/);
  assert.match(html, /<span class="health down">down<\/span> <span class="reason">refused<\/span>/);
  assert.match(html, /<span class="bad">0<\/span> \/ 2/); // effective / configured weight of the down server
  assert.match(html, /<section class="service" data-service="udp \[fd00::100\]:53" data-draining="true">/);
  assert.match(html, /<tr data-drop="no_service"><td>no_service<\/td><td class="n">12<\/td>/);
  assert.match(
    html,
    /<tr data-pool="fd00:2::1"><td>fd00:2::1<\/td><td class="n">2<\/td><td class="n">64,509<\/td>/,
  );
  assert.match(html, /<tr data-worker="0"><td>0<\/td><td class="n">4<\/td>/);
  assert.match(html, /2 ok · 1 failed/);
  assert.match(html, /last failed at 2026-11-29T18:00:00\.000Z: services\[0\]: bad/);
  assert.match(html, /1h 0m 0s/);
  assert.match(html, /3 up<\/span> · <span class="bad">1 down<\/span> · 1 unchecked/);
});

Deno.test("status page: self-contained, refreshes without JS, script fetches stats.json", () => {
  const html = renderStatusPage(fakeStats());
  assert.ok(html.startsWith("<!doctype html>"));
  // No external assets of any kind.
  assert.doesNotMatch(html, /\s(src|href|action)=/i);
  assert.doesNotMatch(html, /url\(|@import/i);
  assert.equal(html.match(/<script>/g)?.length, 1);
  assert.match(html, /<noscript><meta http-equiv="refresh" content="5"><\/noscript>/);
  const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1];
  assert.match(script, /fetch\("stats\.json"/);
  assert.match(script, /setTimeout\(tick, 2000\)/);
  // The embedded renderer is valid JavaScript (parsed, not run: it needs a document).
  new Function(script);
});

Deno.test("status page: text from the stats is escaped", () => {
  const s = fakeStats();
  s.services[0].realServers[1].healthReason = '<script>alert("x")</script>';
  s.drops = { "<img onerror=x>": 1 };
  s.reloads.last = { at: "now", ok: false, message: "</script><b>" };
  const html = renderStatusPage(s);
  assert.equal(html.match(/<script>/g)?.length, 1);
  assert.ok(html.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
  assert.ok(html.includes('data-drop="&lt;img onerror=x&gt;"'));
  assert.ok(!html.includes("<img"));
  assert.ok(!html.includes("</script><b>"));
});

Deno.test("status page: an idle gateway renders empty sections", () => {
  const html = renderStatusPage(idleStats(59));
  assert.match(html, /No services configured\./);
  assert.match(html, /No drops\./);
  assert.match(html, /No local addresses\./);
  assert.match(html, />59s</);
  assert.deepEqual(serverRows(withoutScript(html)), []);
});

Deno.test("computeRates: per second between two samples; new keys and counters that went back give none", () => {
  const a = fakeStats();
  const b = fakeStats();
  b.services[0].connectionsTotal += 20;
  b.services[0].bytesOut += 4096;
  b.services[0].realServers[0].connectionsTotal += 10;
  b.services[0].realServers[0].packetsIn += 7;
  b.services[0].realServers[1].connectionsTotal = 0; // went backwards: a restart
  b.drops.no_service += 6;
  b.drops.new_reason = 4;
  b.workers[1].runtime.rx_packets += 1000;
  b.services.push({ ...b.services[0], service: "tcp 198.18.0.101:80" });
  const r = computeRates(a, b, 2);
  assert.equal(r["conn|tcp 198.18.0.100:80|"], 10);
  assert.equal(r["bout|tcp 198.18.0.100:80|"], 2048);
  assert.equal(r["conn|tcp 198.18.0.100:80|198.18.3.10:80"], 5);
  assert.equal(r["pin|tcp 198.18.0.100:80|198.18.3.10:80"], 3.5);
  assert.equal(r["pout|tcp 198.18.0.100:80|198.18.3.10:80"], 0);
  assert.equal(r["conn|tcp 198.18.0.100:80|198.18.3.11:80"], undefined);
  assert.equal(r["drop|no_service"], 3);
  assert.equal(r["drop|new_reason"], 2);
  assert.equal(r["rx|1"], 500);
  assert.equal(r["rx|0"], 0);
  assert.equal(r["conn|tcp 198.18.0.101:80|"], undefined);
  assert.deepEqual(computeRates(a, b, 0), {});
});

Deno.test("status page: rates, once known, appear in the rows", () => {
  // The page's own renderer, taken from the page's script, run with rates: what the browser shows.
  const html = renderStatusPage(fakeStats());
  const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1];
  const defs = script.slice(0, script.indexOf("(function () {"));
  const pageBody = new Function(`${defs}; return pageBody;`)() as (s: unknown, r: unknown) => string;
  const b = fakeStats();
  b.services[0].realServers[0].connectionsTotal += 30;
  b.services[0].realServers[0].bytesOut += 3 * 1024 * 1024;
  const body = pageBody(b, computeRates(fakeStats(), b, 2));
  assert.match(body, /data-server="198\.18\.3\.10:80"[^>]* data-conn-rate="15"/);
  assert.match(body, /<td class="n rate">15\.0\/s<\/td>/);
  assert.match(body, /<td class="n rate">1\.5 MiB\/s<\/td>/);
  // Same markup as the server's render apart from the rates.
  const strip = (s: string) =>
    s.replace(/ data-conn-rate="[^"]*"/g, "").replace(/<td class="n rate">[^<]*</g, "");
  const serverSide = /<main id="app">([\s\S]*)<\/main>/.exec(html)![1];
  assert.equal(strip(pageBody(fakeStats(), null)), strip(serverSide));
});
