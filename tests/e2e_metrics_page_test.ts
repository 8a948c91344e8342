/**
 * End-to-end: the real gateway's metrics listener on a gateway-namespace address, scraped with curl from the
 * client namespace. The Prometheus text is parsed here (a small independent parser, not the renderer's
 * code) and its values are held against the traffic the test sent: connections per service and per real
 * server, the connections open now, a killed server's health, drops by reason. The listener is read-only:
 * a POST gets 405.
 *
 * @module
 */
import assert from "node:assert/strict";
import { nsExec } from "../netns-scripts/topology.ts";
import { kernelCounters, type Lab, spawnIn, waitUntil, withLab } from "./helpers/mod.ts";

const VIP = "198.18.0.10";
const PORT = 9100;

/** One sample: name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition 0.0.4: `# HELP`/`# TYPE` checked for form, samples returned. */
export function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      assert.match(line, /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/, line);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    const body = m[2] ?? "";
    let lm: RegExpExecArray | null;
    let end = 0;
    while ((lm = re.exec(body)) !== null) {
      labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
      end = re.lastIndex;
    }
    assert.equal(end, body.length, `bad labels: ${line}`);
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample named `name` whose labels include `want`; throws when not exactly one. */
function value(samples: Sample[], name: string, want: Record<string, string> = {}): number {
  const hits = samples.filter((s) =>
    s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v)
  );
  assert.equal(hits.length, 1, `${name} ${JSON.stringify(want)}: ${hits.length} samples`);
  return hits[0].value;
}

/** curl from the client namespace; returns status, headers and body. */
async function scrape(lab: Lab, path: string, extra: string[] = []) {
  const r = await nsExec(lab.t.nsCli, [
    "curl",
    "-sS",
    "--max-time",
    "10",
    "-D",
    "-",
    ...extra,
    `http://${lab.t.gwCliIp4}:${PORT}${path}`,
  ], 15_000);
  assert.equal(r.code, 0, r.stderr);
  const [head, ...rest] = r.stdout.split("\r\n\r\n");
  return { status: Number(head.split(" ")[1]), head, body: rest.join("\r\n\r\n") };
}

Deno.test("metrics: GET /metrics from the client namespace matches the traffic sent; POST is 405", async () => {
  await withLab({
    rs: 2,
    files: (i) => ({ "index.html": `rs${i + 1}\n`, "big.bin": new Uint8Array(32 * 1024 * 1024) }),
    gateway: (t) => ({
      localAddresses: ["198.18.2.1"],
      metrics: `${t.gwCliIp4}:${PORT}`,
      services: [{
        vip: VIP,
        port: 80,
        scheduler: "rr",
        realServers: t.rsIp4.map((address) => ({ address, port: 80 })),
        healthCheck: { type: "tcp", interval: 0.5, timeout: 0.3, rise: 2, fall: 2 },
      }],
    }),
  }, async (lab) => {
    const t = lab.t;
    assert.match(lab.gw!.readyLine, new RegExp(` metrics=${t.gwCliIp4}:${PORT}$`));
    const svc = { local_address: VIP, local_port: "80", proto: "TCP" };
    const be = (i: number) => ({ ...svc, remote_address: t.rsIp4[i], remote_port: "80" });

    const first = await scrape(lab, "/metrics");
    assert.equal(first.status, 200);
    assert.match(first.head, /content-type: text\/plain; version=0\.0\.4/i);
    let m = parseProm(first.body);
    assert.equal(value(m, "fnat_lb_service_connections_total", svc), 0);
    assert.equal(value(m, "fnat_lb_backend_up", be(1)), 1);

    // 200 requests with ab (a connection each; ab may open one more than it needs), then two slow downloads
    // that stay open. What was sent is counted by the client's own kernel (TcpActiveOpens), not by us.
    const opens = async () => (await kernelCounters(t.nsCli)).get("TcpActiveOpens")!;
    const opens0 = await opens();
    const ab = await nsExec(t.nsCli, ["ab", "-s", "5", "-n", "200", "-c", "2", `http://${VIP}/`], 60_000);
    assert.match(ab.stdout, /Failed requests:\s+0\b/, ab.stdout + ab.stderr);
    for (let i = 0; i < 2; i++) {
      spawnIn(lab, t.nsCli, [
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "--limit-rate",
        "50k",
        `http://${VIP}/big.bin`,
      ]);
    }
    // Waiting on the control socket: a scrape from the client namespace would be an active open too.
    await waitUntil(
      async () => {
        const rs = (await lab.gw!.stats()).services[0].realServers;
        return rs[0].active === 1 && rs[1].active === 1;
      },
      "one open download per server",
      10_000,
    );
    const sent = (await opens()) - opens0;
    assert.ok(sent >= 202 && sent <= 204, `${sent} connections opened`);
    m = parseProm((await scrape(lab, "/metrics")).body);
    assert.equal(value(m, "fnat_lb_backend_connections_active", be(0)), 1);
    assert.equal(value(m, "fnat_lb_backend_connections_active", be(1)), 1);
    assert.equal(value(m, "fnat_lb_service_connections_total", svc), sent);
    const [c0, c1] = [0, 1].map((i) => value(m, "fnat_lb_backend_connections_total", be(i)));
    assert.equal(c0 + c1, sent);
    assert.ok(Math.abs(c0 - c1) <= 1, `rr: ${c0} and ${c1}`);
    assert.ok(value(m, "fnat_lb_service_incoming_packets_total", svc) >= 200 * 3);
    assert.ok(value(m, "fnat_lb_service_outgoing_bytes_total", svc) >= 200 * 4);
    // And what the control socket says agrees.
    const st = await lab.gw!.stats();
    assert.equal(st.services[0].connectionsTotal, sent);

    // Drops: SYNs to a VIP port with no service are answered (RST) and counted by reason.
    const noService = () => value(m, "fnat_lb_drops_total", { reason: "no_service" });
    let before = 0;
    try {
      before = noService();
    } catch { /* no such drop yet: no sample */ }
    for (let i = 0; i < 3; i++) {
      const r = await nsExec(t.nsCli, ["curl", "-sS", "--max-time", "5", `http://${VIP}:81/`], 10_000);
      assert.equal(r.code, 7, r.stderr); // refused at once
    }
    m = parseProm((await scrape(lab, "/metrics")).body);
    assert.equal(noService() - before, 3);

    // A killed server: health 0, the state series say down, its effective weight 0.
    await lab.nginx[1].stop();
    await waitUntil(
      async () => {
        m = parseProm((await scrape(lab, "/metrics")).body);
        // The health state is the monitor's; the effective weight the workers', set a moment after it.
        return value(m, "fnat_lb_backend_up", be(1)) === 0 &&
          value(m, "fnat_lb_backend_effective_weight", be(1)) === 0;
      },
      "rs2 down in the metrics",
      10_000,
    );
    assert.equal(value(m, "fnat_lb_backend_health_state", { ...be(1), state: "down" }), 1);
    assert.equal(value(m, "fnat_lb_backend_health_state", { ...be(1), state: "up" }), 0);
    assert.equal(value(m, "fnat_lb_backend_effective_weight", be(1)), 0);
    assert.equal(value(m, "fnat_lb_backend_up", be(0)), 1);
    console.log(
      `metrics: ${m.length} samples; service connections ${
        value(m, "fnat_lb_service_connections_total", svc)
      }, ` +
        `rs1 ${value(m, "fnat_lb_backend_connections_total", be(0))}, rs2 ` +
        `${value(m, "fnat_lb_backend_connections_total", be(1))}, rs2 up ${
          value(m, "fnat_lb_backend_up", be(1))
        }`,
    );

    // Read-only: other methods are refused, nothing changes.
    const post = await scrape(lab, "/metrics", ["-X", "POST", "-d", "x"]);
    assert.equal(post.status, 405);
    assert.match(post.head, /allow: GET, HEAD/i);
    assert.equal((await scrape(lab, "/nope")).status, 404);
    const json = await scrape(lab, "/stats.json");
    assert.equal(json.status, 200);
    assert.equal(JSON.parse(json.body).services[0].connectionsTotal, sent);
  });
});
