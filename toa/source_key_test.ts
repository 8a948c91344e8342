import assert from "node:assert/strict";
import { sourceKey } from "./source_key.ts";

Deno.test("sourceKey: IPv4 as it is, IPv6 by its /64", () => {
  assert.equal(sourceKey({ family: 4, address: "198.18.3.201", port: 5 }), "198.18.3.201");
  const a = sourceKey({ family: 6, address: "fd00:1:2:3:aaaa:bbbb:cccc:dddd", port: 5 });
  const b = sourceKey({ family: 6, address: "fd00:1:2:3::1", port: 6 });
  assert.equal(a, "fd00:1:2:3::/64");
  assert.equal(a, b); // one host's many addresses count as one source
  assert.notEqual(sourceKey({ family: 6, address: "fd00:1:2:4::1", port: 6 }), a);
  assert.equal(sourceKey({ family: 6, address: "::1", port: 6 }), "::/64");
});
