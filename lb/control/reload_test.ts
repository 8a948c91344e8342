import assert from "node:assert/strict";
import { validateConfig } from "../config.ts";
import { planReload, reloadLine, serviceKey } from "./reload.ts";

const BASE = {
  tun: "fnat9",
  localAddresses: ["198.18.2.1", "fd00:2::1", "198.18.2.9"],
  services: [
    {
      vip: "198.18.0.100",
      port: 80,
      scheduler: "rr",
      realServers: [{ address: "198.18.3.10", port: 80 }, { address: "198.18.3.11", port: 80 }],
    },
    { vip: "fd00::100", port: 53, protocol: "udp", realServers: [{ address: "fd00:3::10", port: 53 }] },
  ],
};
const cfg = (patch: (c: typeof BASE & Record<string, unknown>) => void = () => {}) => {
  const c = structuredClone(BASE) as typeof BASE & Record<string, unknown>;
  patch(c);
  return validateConfig(c);
};
const none = () => 0;

Deno.test("reload plan: nothing changed is an empty plan", () => {
  const p = planReload(cfg(), cfg(), none);
  assert.deepEqual(p, {
    services: 2,
    servers: 3,
    added: [],
    removed: [],
    changed: [],
    resetServers: [],
    resetServices: [],
  });
  assert.equal(reloadLine(p as never), "fnat-lb reloaded services=2 servers=3 added=- removed=- changed=-");
});

Deno.test("reload plan: servers and services added, removed, changed, by key", () => {
  const next = cfg((c) => {
    c.services[0].realServers = [{ address: "198.18.3.10", port: 80, weight: 3 } as never, {
      address: "198.18.3.12",
      port: 80,
    }];
    c.services[0].scheduler = "wrr";
    c.services.pop();
    c.services.push(
      { vip: "198.18.0.101", port: 443, realServers: [{ address: "198.18.3.10", port: 443 }] } as never,
    );
    c.localAddresses.push("198.18.2.2");
    c.mtu = 1400;
  });
  const p = planReload(cfg(), next, none);
  assert.ok(!("error" in p));
  assert.deepEqual(p.added.sort(), [
    "local 198.18.2.2",
    "tcp 198.18.0.100:80 198.18.3.12:80",
    "tcp 198.18.0.101:443",
  ]);
  assert.deepEqual(p.removed.sort(), ["tcp 198.18.0.100:80 198.18.3.11:80", "udp [fd00::100]:53"]);
  assert.deepEqual(p.changed.sort(), ["mtu", "tcp 198.18.0.100:80", "tcp 198.18.0.100:80 198.18.3.10:80"]);
  assert.match(
    reloadLine(p),
    /^fnat-lb reloaded services=2 servers=3 added="[^"]+" removed="[^"]+" changed="/,
  );
  assert.equal(serviceKey(next.services[1]), "tcp 198.18.0.101:443");
});

Deno.test("reload plan: a service's toaPlacement changed is a changed service (new connections take it)", () => {
  const next = cfg((c) => {
    (c.services[0] as Record<string, unknown>).toaPlacement = "ack";
  });
  const p = planReload(cfg(), next, none);
  assert.ok(!("error" in p));
  assert.deepEqual(p.changed, ["tcp 198.18.0.100:80"]);
});

Deno.test("reload plan: what only a restart changes is refused by name", () => {
  for (
    const [key, patch] of [
      ["tun", (c: Record<string, unknown>) => (c.tun = "fnat8")],
      ["workers", (c: Record<string, unknown>) => (c.workers = 2)],
      ["maxConnections", (c: Record<string, unknown>) => (c.maxConnections = 10)],
      ["portRange", (c: Record<string, unknown>) => (c.portRange = [2000, 3000])],
    ] as const
  ) {
    const p = planReload(cfg(), cfg(patch), none);
    assert.ok("error" in p, key);
    assert.match(p.error, new RegExp(`^${key} cannot change while the gateway runs`));
  }
});

Deno.test("reload plan: a local address with live connections stays; an idle one may go", () => {
  const next = cfg((c) => c.localAddresses.pop());
  const busy = planReload(cfg(), next, (a) => (a === "198.18.2.9" ? 7 : 0));
  assert.ok("error" in busy);
  assert.equal(busy.error, "localAddresses: 198.18.2.9 cannot be removed while it has 7 connections");
  const idle = planReload(cfg(), next, none);
  assert.ok(!("error" in idle));
  assert.deepEqual(idle.removed, ["local 198.18.2.9"]);
});

Deno.test("reload plan: removed servers and services of a service that resets are listed for a reset", () => {
  const withReset = (c: Record<string, unknown>) => {
    for (const s of c.services as Record<string, unknown>[]) s.onServerDown = "reset";
  };
  const next = cfg((c) => {
    withReset(c);
    c.services[0].realServers.pop();
    c.services.pop();
  });
  const p = planReload(cfg(withReset), next, none);
  assert.ok(!("error" in p));
  assert.deepEqual(p.resetServers, [{ service: "tcp 198.18.0.100:80", server: "198.18.3.11:80" }]);
  assert.deepEqual(p.resetServices, ["udp [fd00::100]:53"]);
  // The default, keep: they drain.
  const keep = planReload(cfg(), cfg((c) => c.services.pop()), none);
  assert.ok(!("error" in keep));
  assert.deepEqual([keep.resetServers, keep.resetServices], [[], []]);
});
