import assert from "node:assert/strict";
import { formatResults, type PathResult, ratios } from "./report.ts";

function path(name: string, connPerSec: number, gbit: number, p50Ms: number, cpu: number): PathResult {
  return {
    name,
    bulk: { bitsPerSecond: gbit * 1e9, retransmits: 0 },
    cpuBulk: { proc: cpu, softirq: 50, host: 150 },
    conn: { perSecond: connPerSec, complete: connPerSec * 5, failed: 0, meanMs: 3 },
    cpuConn: { proc: cpu, softirq: 60, host: 200 },
    latency: { perSecond: 5000, complete: 5000, failed: 0, meanMs: p50Ms, p50Ms },
    notes: [],
    errors: [],
  };
}

Deno.test("ratios: the speed issue's targets, met and missed, against their reference paths", () => {
  const results = [
    path("direct", 17000, 12, 0.1, NaN),
    path("nft", 12000, 12, 0.12, NaN),
    path("haproxy", 8000, 4, 0.2, 80),
    path("gw1", 10000, 10, 0.14, 95),
  ];
  const byLabel = new Map(ratios(results).map((r) => [r.target, r]));
  assert.equal(byLabel.get("conn/s ≥ 1.2× HAProxy")?.met, true); // 1.25
  assert.equal(byLabel.get("conn/s ≥ 0.9× nftables")?.met, false); // 0.83
  assert.equal(byLabel.get("bulk ≥ 0.75× nftables")?.met, true); // 0.83
  assert.equal(byLabel.get("c1 latency ≤ 1.3× direct (ab p50)")?.met, false); // 1.4
  assert.ok(Math.abs((byLabel.get("conn/s ≥ 0.9× nftables")?.ratio ?? 0) - 10000 / 12000) < 1e-9);
  // Host CPU per connection: 200 % over 10,000/s against 200 % over 12,000/s.
  assert.ok(Math.abs((byLabel.get("(host CPU per connection vs nftables)")?.ratio ?? 0) - 1.2) < 1e-9);
  assert.equal(byLabel.get("(bulk vs HAProxy)")?.met, undefined);
});

Deno.test("formatResults: CPU per connection and per Gbit, the process's and the box's", () => {
  const table = formatResults([path("gw1", 10000, 10, 0.14, 95)]);
  const [head, , row] = table.split("\n").map((l) => l.split("|").map((c) => c.trim()));
  const cell = (name: string) => row[head.indexOf(name)];
  assert.equal(cell("CPU µs/conn"), "95.0"); // 0.95 core / 10,000 per s
  assert.equal(cell("host µs/conn"), "200.0");
  assert.equal(cell("CPU ms/Gbit"), "95.0"); // 0.95 core / 10 Gbit/s
  assert.equal(cell("host ms/Gbit"), "150.0");
});
