/** The targets file of `lb/health/main.ts`: defaults filled in, errors naming the entry and field. */
import assert from "node:assert/strict";
import { DEFAULT_HEALTH_CHECK } from "../config.ts";
import { parseTargets } from "./main.ts";

Deno.test("parseTargets: server keys as the stats spell them, check defaults filled in", () => {
  const t = parseTargets(JSON.stringify([
    { service: "tcp 198.18.0.100:80", address: "198.18.3.10", port: 80 },
    { service: "tcp [fd00::100]:80", address: "fd00:3::10", port: 80, check: { type: "http", path: "/h" } },
  ]));
  assert.equal(t[0].server, "198.18.3.10:80");
  assert.deepEqual(t[0].check, DEFAULT_HEALTH_CHECK);
  assert.equal(t[1].server, "[fd00:3::10]:80");
  assert.deepEqual(t[1].check, { ...DEFAULT_HEALTH_CHECK, type: "http", path: "/h" });
});

Deno.test("parseTargets: errors name the entry and field", () => {
  assert.throws(() => parseTargets("{}"), /expected a JSON array/);
  assert.throws(() => parseTargets('[{"service":"s","address":"x","port":80}]'), /targets\[0\]\.address/);
  assert.throws(() => parseTargets('[{"service":"s","address":"1.2.3.4","port":0}]'), /targets\[0\]\.port/);
  assert.throws(
    () => parseTargets('[{"service":"s","address":"1.2.3.4","port":1,"check":{"fall":0}}]'),
    /targets\[0\]\.check\.fall/,
  );
  assert.throws(
    () => parseTargets('[{"service":"s","address":"1.2.3.4","port":1,"check":{"type":"udp"}}]'),
    /check\.type/,
  );
});
