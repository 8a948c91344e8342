/**
 * End-to-end: the status page of the real gateway in a real browser. Headless Chromium runs inside the
 * gateway's namespace (`ip netns exec`, its own profile directory) and loads `GET /` from the metrics
 * listener; its script fetches `stats.json` and re-renders. The DOM it dumps shows a real server marked
 * down (reason `refused`) once its nginx is killed, and up again after nginx is restarted. A 1200×800
 * screenshot of the real page, with traffic and the down server, is written to `FNAT_LB_SCREENSHOT` when set
 * (how `docs/status-page.png` is made), else to a temporary file.
 *
 * @module
 */
import assert from "node:assert/strict";
import { nsExec } from "../netns-scripts/topology.ts";
import { findChromium, headlessArgs, liveState, serverRow } from "./helpers/chromium.ts";
import { type Lab, spawnIn, startNginx, waitUntil, withLab } from "./helpers/mod.ts";

const VIP = "198.18.0.10";
const PORT = 9100;

const chromium = await findChromium();
if (chromium === undefined && Deno.env.get("CI")) {
  throw new Error("chromium not found (netns-scripts/setup-host.sh)");
}

/** Headless Chromium inside namespace `ns` on `url`; its stdout (the DOM with --dump-dom). */
async function chromiumIn(lab: Lab, ns: string, url: string, extra: string[]): Promise<string> {
  const profile = await Deno.makeTempDir({ dir: lab.dir, prefix: "chromium-" });
  const r = await nsExec(ns, [
    "env",
    `HOME=${profile}`,
    chromium!,
    ...headlessArgs(profile, extra, url),
  ], 60_000);
  assert.equal(r.code, 0, `chromium exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

Deno.test({
  name: "status page of the real gateway in Chromium in its namespace: a killed server down, then up",
  ignore: chromium === undefined,
  async fn() {
    await withLab({
      rs: 2,
      files: (i) => ({ "index.html": `rs${i + 1}\n`, "big.bin": new Uint8Array(32 * 1024 * 1024) }),
      gateway: (t) => ({
        localAddresses: ["198.18.2.1", "198.18.2.2", "fd00:2::1"],
        metrics: `${t.gwCliIp4}:${PORT}`,
        services: [
          {
            vip: VIP,
            port: 80,
            scheduler: "rr",
            realServers: t.rsIp4.map((address) => ({ address, port: 80 })),
            healthCheck: { type: "http", interval: 0.5, timeout: 0.3, rise: 2, fall: 2 },
          },
          {
            vip: "fd00::10",
            port: 80,
            scheduler: "wlc",
            realServers: t.rsIp6.map((address, i) => ({ address, port: 80, weight: i + 1 })),
            healthCheck: { type: "tcp", interval: 0.5, timeout: 0.3, rise: 2, fall: 2 },
          },
        ],
      }),
    }, async (lab) => {
      const t = lab.t;
      const url = `http://${t.gwCliIp4}:${PORT}/`;
      const rs2 = `${t.rsIp4[1]}:80`;
      // Some traffic, and two long downloads open while the page is looked at.
      const ab = await nsExec(t.nsCli, ["ab", "-s", "5", "-n", "300", "-c", "2", `http://${VIP}/`], 60_000);
      assert.match(ab.stdout, /Failed requests:\s+0\b/, ab.stdout);
      await nsExec(t.nsCli, ["ab", "-s", "5", "-n", "100", "-c", "2", `http://[fd00::10]/`], 60_000);
      for (let i = 0; i < 2; i++) {
        spawnIn(lab, t.nsCli, [
          "curl",
          "-sS",
          "-o",
          "/dev/null",
          "--limit-rate",
          "200k",
          `http://${VIP}/big.bin`,
        ]);
      }

      let dom = await chromiumIn(lab, t.nsGw, url, ["--dump-dom"]);
      assert.equal(liveState(dom), "ok", "the page's script fetched stats.json");
      assert.equal(serverRow(dom, rs2).health, "up");

      // nginx on rs2 killed: the page shows it down, with the reason.
      await lab.nginx[1].stop();
      await waitUntil(
        async () => {
          const s = (await lab.gw!.stats()).services[0].realServers[1];
          return s.health === "down" && s.effectiveWeight === 0;
        },
        "rs2 down",
        10_000,
      );
      dom = await chromiumIn(lab, t.nsGw, url, ["--dump-dom"]);
      assert.equal(liveState(dom), "ok");
      assert.equal(serverRow(dom, rs2).health, "down");
      assert.equal(serverRow(dom, rs2)["effective-weight"], "0");
      assert.equal(serverRow(dom, `${t.rsIp4[0]}:80`).health, "up");
      assert.match(dom, /<span class="health down">down<\/span> <span class="reason">refused<\/span>/);

      const shot = Deno.env.get("FNAT_LB_SCREENSHOT") ?? `${lab.dir}/status-page.png`;
      await Deno.remove(shot).catch(() => {});
      await chromiumIn(lab, t.nsGw, url, [`--screenshot=${shot}`, "--window-size=1200,800"]);
      const png = await Deno.readFile(shot);
      assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "a PNG");
      assert.ok(png.length > 20_000, "not a blank page");
      console.log(`screenshot ${shot} (${png.length} bytes)`);

      // nginx back: up again on the page.
      const again = await startNginx({
        ns: t.nsRs[1],
        dir: lab.nginx[1].dir,
        listen: [`${t.rsIp4[1]}:80`, `[${t.rsIp6[1]}]:80`],
      });
      lab.track(again.process);
      lab.defer(() => again.stop());
      await waitUntil(
        async () => (await lab.gw!.stats()).services[0].realServers[1].health === "up",
        "rs2 up",
        10_000,
      );
      dom = await chromiumIn(lab, t.nsGw, url, ["--dump-dom"]);
      assert.equal(serverRow(dom, rs2).health, "up");
      assert.equal(serverRow(dom, rs2)["effective-weight"], "1");
    });
  },
});
