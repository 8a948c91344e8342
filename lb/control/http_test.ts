import assert from "node:assert/strict";
import { fakeStats } from "../../tests/helpers/fake_stats.ts";
import type { GatewayStats } from "../stats.ts";
import { serveMetrics } from "./http.ts";

/** A listener on a free loopback port with a stats function that counts its calls. */
function start(stats?: () => Promise<GatewayStats>) {
  let calls = 0;
  const srv = serveMetrics({
    hostname: "127.0.0.1",
    port: 0,
    stats: stats ?? (() => {
      calls++;
      return Promise.resolve(fakeStats());
    }),
  });
  const url = (path: string) => `http://127.0.0.1:${srv.addr.port}${path}`;
  return { srv, url, calls: () => calls };
}

Deno.test("http: /metrics, / and /stats.json answer with their content types", async () => {
  const { srv, url, calls } = start();
  try {
    const m = await fetch(url("/metrics"));
    assert.equal(m.status, 200);
    assert.equal(m.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    const text = await m.text();
    assert.match(text, /^# HELP fnat_lb_/);
    assert.ok(
      text.includes(
        'fnat_lb_backend_up{local_address="198.18.0.100",local_port="80",proto="TCP",remote_address="198.18.3.11",remote_port="80"} 0\n',
      ),
    );

    const page = await fetch(url("/"));
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'none'/);
    assert.match(await page.text(), /data-server="198\.18\.3\.11:80" data-health="down"/);

    const js = await fetch(url("/stats.json"));
    assert.equal(js.status, 200);
    assert.equal(js.headers.get("content-type"), "application/json");
    assert.equal(js.headers.get("cache-control"), "no-store");
    assert.deepEqual(await js.json(), fakeStats());

    const head = await fetch(url("/metrics"), { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    assert.equal(await head.text(), "");
    assert.equal(calls(), 4, "stats asked once per request");
  } finally {
    await srv.shutdown();
  }
});

Deno.test("http: other paths 404; other methods 405 on every path, without asking for stats", async () => {
  const { srv, url, calls } = start();
  try {
    for (const p of ["/metricsx", "/stats", "/index.html", "/metrics/", "/../etc/passwd"]) {
      const r = await fetch(url(p));
      assert.equal(r.status, 404, p);
      await r.body?.cancel();
    }
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
      for (const p of ["/", "/metrics", "/stats.json", "/reload"]) {
        const r = await fetch(url(p), { method, body: method === "POST" ? "x" : undefined });
        assert.equal(r.status, 405, `${method} ${p}`);
        assert.equal(r.headers.get("allow"), "GET, HEAD");
        await r.body?.cancel();
      }
    }
    assert.equal(calls(), 0);
  } finally {
    await srv.shutdown();
  }
});

Deno.test("http: a failing stats function answers 503 and the listener keeps serving", async () => {
  let fail = true;
  const { srv, url } = start(() =>
    fail ? Promise.reject(new Error("workers busy")) : Promise.resolve(fakeStats())
  );
  try {
    const r = await fetch(url("/metrics"));
    assert.equal(r.status, 503);
    assert.equal(await r.text(), "stats unavailable: workers busy\n");
    fail = false;
    const ok = await fetch(url("/metrics"));
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  } finally {
    await srv.shutdown();
  }
});

Deno.test("http: the signal shuts the listener down, finished settles, the port closes", async () => {
  const ac = new AbortController();
  const srv = serveMetrics({
    hostname: "127.0.0.1",
    port: 0,
    stats: () => Promise.resolve(fakeStats()),
    signal: ac.signal,
  });
  assert.equal(srv.addr.hostname, "127.0.0.1");
  assert.ok(srv.addr.port > 0);
  const r = await fetch(`http://127.0.0.1:${srv.addr.port}/`);
  await r.body?.cancel();
  ac.abort();
  await srv.finished;
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: srv.addr.port }));
});
