import assert from "node:assert/strict";
import { ConfigError, validateConfig } from "./config.ts";

const minimal = {
  localAddresses: ["198.18.2.1", "FD00:2:0::1"],
  services: [
    { vip: "198.18.0.100", port: 80, realServers: [{ address: "198.18.3.10" }] },
    { vip: "fd00::100", port: 80, realServers: [{ address: "fd00:3::10", port: 8080 }] },
  ],
};

function error(raw: unknown): ConfigError {
  try {
    validateConfig(raw);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `not a ConfigError: ${e}`);
    return e;
  }
  assert.fail("validateConfig accepted it");
}

Deno.test("config: addresses come out parsed (family, words, canonical text)", () => {
  const c = validateConfig(minimal);
  assert.deepEqual(c.localAddresses, [
    { family: 4, words: [0xc6120201, 0, 0, 0], text: "198.18.2.1" },
    { family: 6, words: [0xfd000002, 0, 0, 1], text: "fd00:2::1" },
  ]);
  assert.deepEqual(c.services[0].vip, { family: 4, words: [0xc6120064, 0, 0, 0], text: "198.18.0.100" });
  assert.equal(c.services[1].vip.family, 6);
  assert.deepEqual(c.services[1].realServers[0].address.words, [0xfd000003, 0, 0, 0x10]);
  assert.equal(c.services[1].realServers[0].port, 8080);
  assert.equal(c.services[0].realServers[0].port, 80, "port defaults to the service's");
});

Deno.test("config: the validated config survives structured clone (it is posted to workers)", () => {
  const c = validateConfig(minimal);
  assert.deepEqual(structuredClone(c), c);
});

Deno.test("config: address errors name the field", () => {
  assert.equal(error({ ...minimal, localAddresses: ["198.18.2.1", "nope"] }).field, "localAddresses[1]");
  assert.equal(error({ ...minimal, localAddresses: ["198.18.2.1", 7] }).field, "localAddresses[1]");
  const badVip = error({ ...minimal, services: [{ ...minimal.services[0], vip: "198.18.0.300" }] });
  assert.equal(badVip.field, "services[0].vip");
  assert.match(badVip.message, /expected an IPv4 or IPv6 address, got "198\.18\.0\.300"/);
  const mixed = error({
    ...minimal,
    services: [{ vip: "198.18.0.100", port: 80, realServers: [{ address: "fd00:3::10" }] }],
  });
  assert.equal(mixed.field, "services[0].realServers[0].address");
  assert.match(mixed.message, /must be IPv4 like the service's vip 198\.18\.0\.100/);
});

Deno.test("config: duplicates are found by address, not by spelling", () => {
  const twice = error({ ...minimal, localAddresses: ["fd00:2::1", "FD00:2:0:0::1", "198.18.2.1"] });
  assert.equal(twice.field, "localAddresses");
  const svc = error({
    ...minimal,
    services: [minimal.services[1], { ...minimal.services[1], vip: "fd00:0::100" }],
  });
  assert.equal(svc.field, "services[1].vip");
  assert.match(svc.message, /tcp \[fd00::100\]:80 is defined twice/);
});

Deno.test("config: a service needs a local address of its family", () => {
  const e = error({ ...minimal, localAddresses: ["198.18.2.1"] });
  assert.equal(e.field, "services[1].vip");
  assert.match(e.message, /no IPv6 address in localAddresses/);
});

Deno.test("config: replyRate, the generated replies per second, is a validated key (default 1000)", () => {
  assert.equal(validateConfig(minimal).replyRate, 1000);
  assert.equal(validateConfig({ ...minimal, replyRate: 0 }).replyRate, 0, "0: the gateway never answers");
  assert.equal(validateConfig({ ...minimal, replyRate: 50 }).replyRate, 50);
  for (const bad of [-1, 1.5, "100", 1_000_001]) {
    const e = error({ ...minimal, replyRate: bad });
    assert.equal(e.field, "replyRate");
    assert.match(e.message, /expected an integer from 0 to 1000000/);
  }
});

Deno.test("config: timeouts default to dpvs's FULLNAT ones; a key given replaces only its own", () => {
  assert.deepEqual(validateConfig(minimal).timeouts, {
    synSent: 3,
    synRecv: 30,
    established: 90,
    finWait: 7,
    timeWait: 7,
    close: 3,
    udp: 300,
  });
  const t = validateConfig({ ...minimal, timeouts: { established: 900 } }).timeouts;
  assert.equal(t.established, 900);
  assert.equal(t.synSent, 3);
});

Deno.test("config: healthCheck defaults to a TCP check (interval 2, timeout 1, rise 2, fall 2)", () => {
  const c = validateConfig(minimal);
  assert.deepEqual(c.services[0].healthCheck, {
    type: "tcp",
    interval: 2,
    timeout: 1,
    rise: 2,
    fall: 2,
    path: "/",
    expectStatus: 200,
  });
  assert.equal(c.services[0].onServerDown, "keep");
  assert.equal(c.metrics, undefined, "no metrics page unless asked");
  // A UDP service is not checked unless told how: a TCP connect says nothing of a UDP server.
  const u = validateConfig({ ...minimal, services: [{ ...minimal.services[0], protocol: "udp" }] });
  assert.equal(u.services[0].healthCheck.type, "none");
});

Deno.test("config: healthCheck keys are typed and validated", () => {
  const svc = (hc: unknown, extra = {}) => ({
    ...minimal,
    services: [{ ...minimal.services[0], healthCheck: hc, ...extra }],
  });
  const c = validateConfig(
    svc({ type: "http", path: "/healthz", expectStatus: 204, port: 8081, interval: 0.5, timeout: 0.25 }, {
      onServerDown: "reset",
    }),
  );
  assert.deepEqual(c.services[0].healthCheck, {
    type: "http",
    interval: 0.5,
    timeout: 0.25,
    rise: 2,
    fall: 2,
    path: "/healthz",
    expectStatus: 204,
    port: 8081,
  });
  assert.equal(c.services[0].onServerDown, "reset");
  assert.equal(validateConfig(svc({ type: "none" })).services[0].healthCheck.type, "none");
  const cases: [unknown, string, RegExp][] = [
    [{ type: "icmp" }, "services[0].healthCheck.type", /expected "tcp", "http" or "none", got "icmp"/],
    [{ interval: 0 }, "services[0].healthCheck.interval", /expected seconds from 0\.01 to 3600/],
    [{ interval: 1, timeout: 3 }, "services[0].healthCheck.timeout", /must not exceed interval \(1 s\)/],
    [{ rise: 0 }, "services[0].healthCheck.rise", /expected an integer from 1 to 100/],
    [{ fall: 1.5 }, "services[0].healthCheck.fall", /expected an integer from 1 to 100/],
    [{ path: "healthz" }, "services[0].healthCheck.path", /starting with "\/"/],
    [{ path: "/a b" }, "services[0].healthCheck.path", /starting with "\/"/],
    [{ expectStatus: 99 }, "services[0].healthCheck.expectStatus", /from 100 to 599/],
    [{ port: 0 }, "services[0].healthCheck.port", /from 1 to 65535/],
    ["tcp", "services[0].healthCheck", /expected an object/],
  ];
  for (const [hc, field, message] of cases) {
    const e = error(svc(hc));
    assert.equal(e.field, field, JSON.stringify(hc));
    assert.match(e.message, message);
  }
  const down = error(svc(undefined, { onServerDown: "drop" }));
  assert.equal(down.field, "services[0].onServerDown");
  assert.match(down.message, /expected "keep" or "reset", got "drop"/);
});

Deno.test("config: metrics is ADDR:PORT, parsed to an address and a port", () => {
  const v4 = validateConfig({ ...minimal, metrics: "127.0.0.1:9100" }).metrics;
  assert.deepEqual(v4, {
    address: { family: 4, words: [0x7f000001, 0, 0, 0], text: "127.0.0.1" },
    port: 9100,
  });
  const v6 = validateConfig({ ...minimal, metrics: "[::1]:9100" }).metrics;
  assert.deepEqual(v6?.address.words, [0, 0, 0, 1]);
  assert.equal(v6?.port, 9100);
  for (const bad of ["127.0.0.1", "::1:9100", "localhost:9100", "127.0.0.1:0", "127.0.0.1:70000", 9100]) {
    const e = error({ ...minimal, metrics: bad });
    assert.equal(e.field, "metrics");
    assert.match(e.message, /expected "ADDR:PORT" such as "127\.0\.0\.1:9100"/);
  }
});

Deno.test("config: unknown keys are rejected at every level, with the closest known key", () => {
  const s0 = minimal.services[0];
  const cases: [unknown, string, string][] = [
    [{ ...minimal, wrokers: 2 }, "wrokers", `unknown key (did you mean "workers"?)`],
    [
      { ...minimal, timeouts: { establised: 60 } },
      "timeouts.establised",
      `unknown key (did you mean "established"?)`,
    ],
    [
      { ...minimal, services: [{ ...s0, shceduler: "rr" }] },
      "services[0].shceduler",
      `unknown key (did you mean "scheduler"?)`,
    ],
    [
      { ...minimal, services: [{ ...s0, realServers: [{ address: "198.18.3.10", wieght: 2 }] }] },
      "services[0].realServers[0].wieght",
      `unknown key (did you mean "weight"?)`,
    ],
    [
      { ...minimal, services: [{ ...s0, healthCheck: { intreval: 3 } }] },
      "services[0].healthCheck.intreval",
      `unknown key (did you mean "interval"?)`,
    ],
  ];
  for (const [raw, field, message] of cases) {
    const e = error(raw);
    assert.equal(e.field, field);
    assert.equal(e.message, `config: ${field}: ${message}`);
  }
  const far = error({ ...minimal, services: [{ ...s0, colour: "blue" }] });
  assert.equal(far.field, "services[0].colour");
  assert.doesNotMatch(far.message, /did you mean/, "no suggestion when nothing is close");
  assert.match(far.message, /unknown key; known keys: vip, port, protocol/);
});

Deno.test("config: synproxy per service (default auto), synproxyThreshold, isnSecretFile, busyPollUs", () => {
  const c = validateConfig(minimal);
  assert.deepEqual(c.services.map((s) => s.synproxy), ["auto", "auto"]);
  assert.equal(c.synproxyThreshold, 1000);
  assert.equal(c.isnSecretFile, undefined);
  const svc = (synproxy: unknown, protocol = "tcp") => ({
    ...minimal,
    services: [{
      vip: "198.18.0.100",
      port: 80,
      protocol,
      synproxy,
      realServers: [{ address: "198.18.3.10" }],
    }],
  });
  assert.equal(validateConfig(svc("on")).services[0].synproxy, "on");
  assert.equal(validateConfig(svc("off")).services[0].synproxy, "off");
  let e = error(svc("yes"));
  assert.equal(e.field, "services[0].synproxy");
  assert.match(e.message, /expected "off", "on" or "auto"/);
  e = error(svc("on", "udp"));
  assert.match(e.message, /needs a TCP service/);
  assert.equal(validateConfig({ ...minimal, synproxyThreshold: 5 }).synproxyThreshold, 5);
  assert.equal(error({ ...minimal, synproxyThreshold: 0 }).field, "synproxyThreshold");
  assert.equal(c.busyPollUs, 0, "busy polling is off unless asked for");
  assert.equal(validateConfig({ ...minimal, busyPollUs: 100 }).busyPollUs, 100);
  assert.equal(error({ ...minimal, busyPollUs: -1 }).field, "busyPollUs");
  assert.equal(error({ ...minimal, busyPollUs: 10_001 }).field, "busyPollUs");
  assert.equal(error({ ...minimal, busyPollUs: 1.5 }).field, "busyPollUs");
  assert.equal(
    validateConfig({ ...minimal, isnSecretFile: "/etc/fnat-lb/isn" }).isnSecretFile,
    "/etc/fnat-lb/isn",
  );
  assert.equal(error({ ...minimal, isnSecretFile: "relative" }).field, "isnSecretFile");
});

Deno.test("config: toaPlacement per service (default syn+ack), validated, the error names the field", () => {
  assert.deepEqual(validateConfig(minimal).services.map((s) => s.toaPlacement), ["syn+ack", "syn+ack"]);
  const svc = (toaPlacement: unknown) => ({
    ...minimal,
    services: [{ vip: "198.18.0.100", port: 80, toaPlacement, realServers: [{ address: "198.18.3.10" }] }],
  });
  for (const p of ["syn+ack", "ack", "syn"]) assert.equal(validateConfig(svc(p)).services[0].toaPlacement, p);
  for (const bad of ["ack+syn", "SYN", "", true, 1]) {
    const e = error(svc(bad));
    assert.equal(e.field, "services[0].toaPlacement");
    assert.match(e.message, /expected "syn\+ack", "ack" or "syn"/);
  }
  assert.match(
    error({ ...minimal, services: [{ ...svc("ack").services[0], toaPlacment: "ack" }] }).message,
    /did you mean "toaPlacement"/,
  );
});
