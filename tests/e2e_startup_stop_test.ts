/**
 * End-to-end: a stop that arrives while the gateway is still starting cuts the start-up short. runGateway
 * runs in the test's gateway namespace with an `opts.stop` that has already resolved: it must return
 * cleanly without ever installing a route (an `ip monitor route` in the namespace sees none), without
 * printing its ready line, without leaving its control socket or its TUN.
 *
 * @module
 */
import assert from "node:assert/strict";
import { nsExec } from "../netns-scripts/topology.ts";
import { uniqueTunName } from "./helpers/gateway.ts";
import { spawnIn, withLab } from "./helpers/mod.ts";

const VIP = "198.18.0.40";
const LOCAL = "198.18.2.1";

Deno.test("e2e: a stop during start-up installs no route, prints no ready line, tears down", async () => {
  await withLab({ rs: 1, nginx: false }, async (lab) => {
    const tun = uniqueTunName();
    const control = `${lab.dir}/${tun}.sock`;
    const config = {
      tun,
      control,
      localAddresses: [LOCAL],
      services: [{ vip: VIP, port: 80, realServers: [{ address: lab.t.rsIp4[0], port: 80 }] }],
    };
    const monitor = spawnIn(lab, lab.t.nsGw, ["ip", "-o", "monitor", "route"]);
    await new Promise((r) => setTimeout(r, 300)); // let the monitor subscribe before the gateway starts
    const url = (p: string) => new URL(p, import.meta.url).href;
    const code = `
      import { validateConfig } from ${JSON.stringify(url("../lb/config.ts"))};
      import { runGateway } from ${JSON.stringify(url("../lb/gateway.ts"))};
      const config = validateConfig(${JSON.stringify(config)});
      await runGateway(config, { stop: Promise.resolve(), signals: false, onReady: (l) => console.log(l) });
      console.log("returned");
    `;
    const r = await nsExec(lab.t.nsGw, [Deno.execPath(), "eval", code], 60_000);
    assert.equal(r.code, 0, `runGateway failed: ${r.stderr}`);
    assert.match(r.stdout, /^returned$/m);
    assert.doesNotMatch(r.stdout, /fnat-lb ready/, "the ready line was printed after the stop");
    await new Promise((res) => setTimeout(res, 300)); // route events of the run reach the monitor
    const seen = monitor.stdout();
    assert.ok(!seen.includes(VIP) && !seen.includes(LOCAL), `routes were installed:\n${seen}`);
    await assert.rejects(Deno.stat(control), Deno.errors.NotFound, "the control socket was left");
    const tuns = await nsExec(lab.t.nsGw, ["ip", "-o", "link", "show", "type", "tun"], 10_000);
    assert.ok(!tuns.stdout.includes(`: ${tun}:`), `the TUN ${tun} was left`);
  });
});
