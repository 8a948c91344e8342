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
