/**
 * The status page in a real browser: headless Chromium loads it from the metrics listener on loopback, its
 * inline script fetches `stats.json` and re-renders, and the DOM Chromium dumps must show what the latest
 * fetch said — a server going down, then coming back — with rates from two samples. (The render without
 * JavaScript is the HTTP body itself, checked in lb/control: headless Chromium's --dump-dom returns nothing
 * with scripts disabled.) A screenshot is taken too (to `FNAT_LB_SCREENSHOT_FAKE` if set, else to a
 * temporary file); `docs/status-page.png` is the real gateway's page, made by tests/e2e_status_page_test.ts.
 *
 * Chromium comes from `netns-scripts/setup-host.sh`. Where it is missing the test is skipped with the reason
 * printed — except under CI (`CI` set), where a missing browser fails the run.
 */
import assert from "node:assert/strict";
import { serveMetrics } from "../lb/control/http.ts";
import type { GatewayStats } from "../lb/stats.ts";
import { findChromium, headlessArgs, liveState, serverRow } from "./helpers/chromium.ts";
import { fakeStats } from "./helpers/fake_stats.ts";

const chromium = await findChromium();
const MISSING =
  "chromium not found (install it: netns-scripts/setup-host.sh, or set CHROMIUM=/path/to/chromium)";
if (chromium === undefined) {
  if (Deno.env.get("CI")) throw new Error(`status page browser test: ${MISSING}`);
  console.log(`status page browser test skipped: ${MISSING}`);
}

/** Runs headless Chromium on `url` with `extra` flags; its stdout (the DOM with --dump-dom). */
async function runChromium(url: string, extra: string[]): Promise<string> {
  const profile = await Deno.makeTempDir({ prefix: "fnat-lb-chromium-" });
  try {
    const out = await new Deno.Command(chromium!, {
      args: headlessArgs(profile, extra, url),
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `chromium exited ${out.code}: ${stderr.slice(-2000)}`);
    return new TextDecoder().decode(out.stdout);
  } finally {
    await Deno.remove(profile, { recursive: true });
  }
}

Deno.test({
  name: "status page in Chromium: the script shows a server going down, then up, with live rates",
  ignore: chromium === undefined,
  async fn(t) {
    // The first stats() of a browser run serves the page itself; later ones answer its script's fetches.
    // `first` and `later` set what 198.18.3.11:80 looks like in each; traffic grows by 20 connections a call.
    let calls = 0;
    let first: "up" | "down" = "up";
    let later: "up" | "down" = "up";
    const stats = (): Promise<GatewayStats> => {
      calls++;
      const s = fakeStats();
      const health = calls === 1 ? first : later;
      const r = s.services[0].realServers[1];
      r.health = health;
      r.effectiveWeight = health === "down" ? 0 : r.weight;
      r.healthReason = health === "down" ? "timeout" : "2 checks passed";
      s.services[0].connectionsTotal += 20 * calls;
      s.services[0].realServers[0].connectionsTotal += 20 * calls;
      return Promise.resolve(s);
    };
    const srv = serveMetrics({ hostname: "127.0.0.1", port: 0, stats });
    const url = `http://127.0.0.1:${srv.addr.port}/`;
    try {
      await t.step("up on the server's render, down after the script's fetches", async () => {
        [calls, first, later] = [0, "up", "down"];
        const dom = await runChromium(url, ["--dump-dom"]);
        assert.ok(calls >= 3, `the script fetched stats.json (${calls - 1} times)`);
        assert.equal(liveState(dom), "ok");
        const down = serverRow(dom, "198.18.3.11:80");
        assert.equal(down.health, "down");
        assert.equal(down["effective-weight"], "0");
        assert.match(dom, /<span class="health down">down<\/span> <span class="reason">timeout<\/span>/);
        // Two samples seen: the busy server has a positive connection rate.
        assert.ok(
          Number(serverRow(dom, "198.18.3.10:80")["conn-rate"]) > 0,
          "a connection rate from two samples",
        );
        assert.equal(serverRow(dom, "[fd00:3::10]:8080").health, "up");
      });

      await t.step("down on the server's render, up again after the script's fetches", async () => {
        [calls, first, later] = [0, "down", "up"];
        const dom = await runChromium(url, ["--dump-dom"]);
        assert.ok(calls >= 3, `the script fetched stats.json (${calls - 1} times)`);
        assert.equal(liveState(dom), "ok");
        const up = serverRow(dom, "198.18.3.11:80");
        assert.equal(up.health, "up");
        assert.equal(up["effective-weight"], "2");
      });

      await t.step("a 1200x800 screenshot", async () => {
        [calls, first, later] = [0, "down", "down"];
        const out = Deno.env.get("FNAT_LB_SCREENSHOT_FAKE") ?? await Deno.makeTempFile({ suffix: ".png" });
        await Deno.remove(out).catch(() => {});
        await runChromium(url, [`--screenshot=${out}`, "--window-size=1200,800"]);
        const png = await Deno.readFile(out);
        assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "a PNG");
        const ihdr = new DataView(png.buffer, png.byteOffset + 16, 8);
        assert.deepEqual([ihdr.getUint32(0), ihdr.getUint32(4)], [1200, 800]);
        assert.ok(png.length > 20_000, "not a blank page");
        if (!Deno.env.get("FNAT_LB_SCREENSHOT_FAKE")) await Deno.remove(out);
      });
    } finally {
      await srv.shutdown();
    }
  },
});
