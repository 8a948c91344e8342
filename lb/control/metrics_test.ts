import assert from "node:assert/strict";
import { fakeStats, idleStats } from "../../tests/helpers/fake_stats.ts";
import { renderMetrics } from "./metrics.ts";

/** One parsed sample. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Family {
  help?: string;
  type?: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * An independent reader of the text exposition format 0.0.4: every line must be a HELP, a TYPE, another
 * comment, blank, or a sample `name{label="value",…} value [timestamp]`; it throws on anything else and on
 * the rules around the lines (one HELP/TYPE per family, before its samples, samples of a family together,
 * no duplicate series).
 */
function parseExposition(text: string): Map<string, Family> {
  assert.ok(text.endsWith("\n"), "exposition ends with a line feed");
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  const seen = new Set<string>();
  let current = "";
  const family = (name: string) => {
    if (name !== current) {
      assert.ok(!closed.has(name), `family ${name} appears twice, not together`);
      if (current !== "") closed.add(current);
      current = name;
    }
    let f = families.get(name);
    if (f === undefined) families.set(name, f = { samples: [] });
    return f;
  };
  const lines = text.slice(0, -1).split("\n");
  for (const [i, line] of lines.entries()) {
    const at = `line ${i + 1}: ${JSON.stringify(line)}`;
    if (line.trim() === "") continue;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (m === null) continue; // a plain comment
      const [, kw, name, rest] = m;
      assert.match(name, METRIC_NAME, at);
      const f = family(name);
      assert.equal(f.samples.length, 0, `${at}: ${kw} after samples`);
      if (kw === "HELP") {
        assert.equal(f.help, undefined, `${at}: second HELP`);
        assert.doesNotMatch(rest, /\\[^\\n]/, `${at}: bad escape in HELP`);
        f.help = rest.replace(/\\(.)/g, (_, c) => c === "n" ? "\n" : c);
      } else {
        assert.equal(f.type, undefined, `${at}: second TYPE`);
        assert.match(rest, /^(counter|gauge|histogram|summary|untyped)$/, at);
        f.type = rest;
      }
      continue;
    }
    // A sample, read character by character.
    let p = 0;
    const nameEnd = line.search(/[{ ]/);
    assert.ok(nameEnd > 0, at);
    const name = line.slice(0, nameEnd);
    assert.match(name, METRIC_NAME, at);
    p = nameEnd;
    const labels: Record<string, string> = {};
    if (line[p] === "{") {
      p++;
      while (line[p] !== "}") {
        const eq = line.indexOf("=", p);
        assert.ok(eq > p, `${at}: label without =`);
        const ln = line.slice(p, eq);
        assert.match(ln, LABEL_NAME, at);
        assert.ok(!ln.startsWith("__"), `${at}: reserved label name`);
        assert.ok(!(ln in labels), `${at}: label ${ln} twice`);
        p = eq + 1;
        assert.equal(line[p], '"', `${at}: label value not quoted`);
        p++;
        let v = "";
        for (;;) {
          assert.ok(p < line.length, `${at}: unterminated label value`);
          const c = line[p++];
          if (c === '"') break;
          if (c === "\\") {
            const n = line[p++];
            assert.ok(n === "\\" || n === '"' || n === "n", `${at}: bad escape \\${n}`);
            v += n === "n" ? "\n" : n;
          } else v += c;
        }
        labels[ln] = v;
        if (line[p] === ",") p++;
        else assert.equal(line[p], "}", `${at}: expected , or }`);
      }
      p++;
    }
    assert.equal(line[p], " ", `${at}: expected a space before the value`);
    const parts = line.slice(p + 1).split(" ");
    assert.ok(parts.length === 1 || parts.length === 2, at);
    const [vs, ts] = parts;
    assert.ok(FLOAT.test(vs) || /^(NaN|[+-]Inf)$/.test(vs), `${at}: bad value`);
    if (ts !== undefined) assert.match(ts, /^-?\d+$/, `${at}: bad timestamp`);
    const value = vs === "+Inf" ? Infinity : vs === "-Inf" ? -Infinity : Number(vs);
    const f = family(name);
    assert.ok(f.type !== undefined && f.help !== undefined, `${at}: sample before HELP/TYPE`);
    const key = name + JSON.stringify(Object.entries(labels).sort());
    assert.ok(!seen.has(key), `${at}: duplicate series`);
    seen.add(key);
    f.samples.push({ name, labels, value });
  }
  return families;
}

/** The value of the one sample of `name` whose labels are exactly `labels`. */
function valueOf(fams: Map<string, Family>, name: string, labels: Record<string, string>): number {
  const f = fams.get(name);
  assert.ok(f, `no family ${name}`);
  const want = JSON.stringify(Object.entries(labels).sort());
  const hits = f.samples.filter((s) => JSON.stringify(Object.entries(s.labels).sort()) === want);
  assert.equal(hits.length, 1, `${name}${want}: ${hits.length} samples`);
  return hits[0].value;
}

const SVC4 = { local_address: "198.18.0.100", local_port: "80", proto: "TCP" };
const SVC6 = { local_address: "fd00::100", local_port: "53", proto: "UDP" };
const BE_UP = { ...SVC4, remote_address: "198.18.3.10", remote_port: "80" };
const BE_DOWN = { ...SVC4, remote_address: "198.18.3.11", remote_port: "80" };
const BE_V6 = { ...SVC4, remote_address: "fd00:3::10", remote_port: "8080" };
const BE_DRAIN = { ...SVC6, remote_address: "fd00:3::20", remote_port: "53" };
const BE_UNCHECKED = { ...SVC6, remote_address: "fd00:3::21", remote_port: "53" };

Deno.test("metrics: every line follows the exposition grammar; types and suffixes agree", () => {
  const fams = parseExposition(renderMetrics(fakeStats()));
  assert.ok(fams.size > 20);
  for (const [name, f] of fams) {
    assert.ok(name.startsWith("fnat_lb_"), name);
    assert.ok(f.help && f.help.length > 5, `${name}: HELP`);
    assert.ok(f.type === "counter" || f.type === "gauge", `${name}: TYPE`);
    assert.equal(
      f.type === "counter",
      name.endsWith("_total"),
      `${name}: counters and only counters end in _total`,
    );
    assert.ok(f.samples.length > 0, `${name}: no samples`);
    for (const s of f.samples) assert.ok(Number.isFinite(s.value), `${name}: ${s.value}`);
  }
});

Deno.test("metrics: per real server, node_exporter IPVS labels, exact values (IPv4, IPv6, down, draining)", () => {
  const f = parseExposition(renderMetrics(fakeStats()));
  assert.equal(valueOf(f, "fnat_lb_backend_connections_active", BE_UP), 4);
  assert.equal(valueOf(f, "fnat_lb_backend_connections_inactive", BE_UP), 1);
  assert.equal(valueOf(f, "fnat_lb_backend_weight", BE_UP), 3);
  assert.equal(valueOf(f, "fnat_lb_backend_effective_weight", BE_UP), 3);
  assert.equal(valueOf(f, "fnat_lb_backend_up", BE_UP), 1);
  assert.equal(valueOf(f, "fnat_lb_backend_connections_total", BE_UP), 30);
  assert.equal(valueOf(f, "fnat_lb_backend_incoming_packets_total", BE_UP), 300);
  assert.equal(valueOf(f, "fnat_lb_backend_outgoing_packets_total", BE_UP), 290);
  assert.equal(valueOf(f, "fnat_lb_backend_incoming_bytes_total", BE_UP), 18000);
  assert.equal(valueOf(f, "fnat_lb_backend_outgoing_bytes_total", BE_UP), 700000);

  // Down: configured weight kept, effective 0, up 0, the state set says down.
  assert.equal(valueOf(f, "fnat_lb_backend_weight", BE_DOWN), 2);
  assert.equal(valueOf(f, "fnat_lb_backend_effective_weight", BE_DOWN), 0);
  assert.equal(valueOf(f, "fnat_lb_backend_up", BE_DOWN), 0);
  assert.equal(valueOf(f, "fnat_lb_backend_health_state", { ...BE_DOWN, state: "down" }), 1);
  assert.equal(valueOf(f, "fnat_lb_backend_health_state", { ...BE_DOWN, state: "up" }), 0);
  assert.equal(valueOf(f, "fnat_lb_backend_health_state", { ...BE_DOWN, state: "unchecked" }), 0);
  assert.equal(valueOf(f, "fnat_lb_backend_outgoing_bytes_total", BE_DOWN), 120000);

  // IPv6 address bare, as node_exporter prints it.
  assert.equal(valueOf(f, "fnat_lb_backend_connections_active", BE_V6), 2);
  assert.equal(valueOf(f, "fnat_lb_backend_incoming_bytes_total", BE_V6), 2400);

  // Draining server of a draining service.
  assert.equal(valueOf(f, "fnat_lb_backend_draining", BE_DRAIN), 1);
  assert.equal(valueOf(f, "fnat_lb_backend_draining", BE_UP), 0);
  assert.equal(valueOf(f, "fnat_lb_backend_effective_weight", BE_DRAIN), 0);
  assert.equal(valueOf(f, "fnat_lb_backend_weight", BE_DRAIN), 1);
  assert.equal(valueOf(f, "fnat_lb_backend_up", BE_DRAIN), 1);
  assert.equal(valueOf(f, "fnat_lb_backend_connections_inactive", BE_DRAIN), 1);

  // Unchecked counts as up and says so.
  assert.equal(valueOf(f, "fnat_lb_backend_up", BE_UNCHECKED), 1);
  assert.equal(valueOf(f, "fnat_lb_backend_health_state", { ...BE_UNCHECKED, state: "unchecked" }), 1);
  assert.equal(valueOf(f, "fnat_lb_backend_health_state", { ...BE_UNCHECKED, state: "up" }), 0);

  // Five servers, one series each.
  assert.equal(f.get("fnat_lb_backend_weight")!.samples.length, 5);
  assert.equal(f.get("fnat_lb_backend_health_state")!.samples.length, 15);
});

Deno.test("metrics: per service, exact values", () => {
  const f = parseExposition(renderMetrics(fakeStats()));
  assert.equal(valueOf(f, "fnat_lb_service_connections_total", SVC4), 40);
  assert.equal(valueOf(f, "fnat_lb_service_incoming_packets_total", SVC4), 400);
  assert.equal(valueOf(f, "fnat_lb_service_outgoing_packets_total", SVC4), 380);
  assert.equal(valueOf(f, "fnat_lb_service_incoming_bytes_total", SVC4), 24000);
  assert.equal(valueOf(f, "fnat_lb_service_outgoing_bytes_total", SVC4), 910000);
  assert.equal(valueOf(f, "fnat_lb_service_draining", SVC4), 0);
  assert.equal(valueOf(f, "fnat_lb_service_draining", SVC6), 1);
  assert.equal(valueOf(f, "fnat_lb_service_connections_total", SVC6), 9);
  assert.equal(valueOf(f, "fnat_lb_service_info", { ...SVC4, scheduler: "wrr" }), 1);
  assert.equal(valueOf(f, "fnat_lb_service_info", { ...SVC6, scheduler: "rr" }), 1);
});

Deno.test("metrics: drops (escaped reason), events, workers, pools, table, reloads, uptime", () => {
  const text = renderMetrics(fakeStats());
  const f = parseExposition(text);
  assert.equal(valueOf(f, "fnat_lb_drops_total", { reason: "no_service" }), 12);
  assert.equal(valueOf(f, "fnat_lb_drops_total", { reason: "pool_exhausted" }), 3);
  // The parser unescapes; the raw text shows the escapes.
  assert.equal(valueOf(f, "fnat_lb_drops_total", { reason: 'odd "reason"\\x\n' }), 1);
  assert.ok(text.includes(String.raw`fnat_lb_drops_total{reason="odd \"reason\"\\x\n"} 1`));
  assert.equal(valueOf(f, "fnat_lb_events_total", { event: "conn_created" }), 40);
  assert.equal(valueOf(f, "fnat_lb_events_total", { event: "conn_expired" }), 33);

  assert.equal(valueOf(f, "fnat_lb_connection_table_entries", {}), 7);
  assert.equal(valueOf(f, "fnat_lb_worker_connection_table_entries", { worker: "0" }), 4);
  assert.equal(valueOf(f, "fnat_lb_worker_connection_table_entries", { worker: "1" }), 3);
  assert.equal(valueOf(f, "fnat_lb_worker_rx_packets_total", { worker: "0" }), 250);
  assert.equal(valueOf(f, "fnat_lb_worker_rx_packets_total", { worker: "1" }), 210);
  assert.equal(valueOf(f, "fnat_lb_worker_tx_packets_total", { worker: "1" }), 208);
  assert.equal(valueOf(f, "fnat_lb_worker_tx_dropped_total", { worker: "0" }), 2);
  assert.equal(valueOf(f, "fnat_lb_worker_handoff_packets_total", { worker: "0", direction: "out" }), 4);
  assert.equal(valueOf(f, "fnat_lb_worker_handoff_packets_total", { worker: "0", direction: "in" }), 6);
  assert.equal(valueOf(f, "fnat_lb_worker_tx_errors_total", { worker: "0", errno: "EAGAIN" }), 2);
  assert.equal(valueOf(f, "fnat_lb_worker_odd_key_total", { worker: "1" }), 1);
  assert.equal(valueOf(f, "fnat_lb_worker_rx_syn_packets_total", { worker: "0" }), 20);
  assert.equal(valueOf(f, "fnat_lb_worker_syn_budget_exhausted_total", { worker: "0" }), 1);
  assert.equal(valueOf(f, "fnat_lb_tun_tx_dropped_total", {}), 17);

  assert.equal(valueOf(f, "fnat_lb_local_pool_ports_used", { address: "198.18.2.1" }), 5);
  assert.equal(valueOf(f, "fnat_lb_local_pool_ports_free", { address: "198.18.2.1" }), 64506);
  assert.equal(valueOf(f, "fnat_lb_local_pool_misses_total", { address: "fd00:2::1" }), 3);

  assert.equal(valueOf(f, "fnat_lb_reloads_total", { result: "ok" }), 2);
  assert.equal(valueOf(f, "fnat_lb_reloads_total", { result: "failed" }), 1);
  assert.equal(valueOf(f, "fnat_lb_last_reload_success", {}), 0);
  assert.equal(valueOf(f, "fnat_lb_last_reload_timestamp_seconds", {}), Date.UTC(2026, 10, 29, 18) / 1000);
  assert.equal(valueOf(f, "fnat_lb_uptime_seconds", {}), 3600.5);
});

Deno.test("metrics: an idle gateway still exposes uptime, table size and reloads, and nothing undefined", () => {
  const text = renderMetrics(idleStats(1));
  const f = parseExposition(text);
  assert.deepEqual([...f.keys()].sort(), [
    "fnat_lb_connection_table_entries",
    "fnat_lb_reloads_total",
    "fnat_lb_uptime_seconds",
  ]);
  assert.equal(valueOf(f, "fnat_lb_reloads_total", { result: "failed" }), 0);
});

Deno.test("metrics: the test's parser rejects what the grammar forbids", () => {
  const ok = "# HELP a_total x\n# TYPE a_total counter\na_total 1\n";
  parseExposition(ok);
  for (
    const bad of [
      '# HELP a_total x\n# TYPE a_total counter\na_total{x="1} 1\n', // unterminated
      '# HELP a_total x\n# TYPE a_total counter\na_total{x="\\t"} 1\n', // bad escape
      "# HELP a_total x\n# TYPE a_total counter\na_total one\n", // bad value
      "a_total 1\n", // no HELP/TYPE
      "# HELP a_total x\n# TYPE a_total counter\na_total 1\na_total 2\n", // duplicate series
      '# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\na{l="2"} 1\n', // split family
      "# HELP 1a x\n# TYPE 1a gauge\n1a 1\n", // bad name
    ]
  ) {
    assert.throws(() => parseExposition(bad), `accepted: ${JSON.stringify(bad)}`);
  }
});
