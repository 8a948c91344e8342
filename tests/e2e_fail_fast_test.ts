/**
 * End-to-end: after a restart, a client's connection the new gateway does not know fails at once. The client
 * opens a connection through the first gateway; a second one (same device, routes, addresses) replaces it;
 * the client's next data segment matches no connection and is answered with a RST (`no_connection`,
 * `rst_sent`), so its `recv` fails with ECONNRESET in milliseconds instead of retransmitting into silence.
 * Needs root, nginx, python3.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Topology } from "../netns-scripts/topology.ts";
import { rs1HttpService, spawnIn, startGateway, withLab } from "./helpers/mod.ts";

const VIP = "198.18.0.32";

/** Connects, prints "open", waits for `go` to exist, sends a request, prints how the read ended and when. */
const CLIENT = `
import json, os, socket, sys, time
host, go = sys.argv[1], sys.argv[2]
s = socket.create_connection((host, 80), timeout=5)
print("open", flush=True)
while not os.path.exists(go):
    time.sleep(0.02)
t = time.time()
try:
    s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    data = s.recv(4096)
    r = {"end": "data" if data else "eof"}
except ConnectionResetError:
    r = {"end": "reset"}
except socket.timeout:
    r = {"end": "timeout"}
r["ms"] = (time.time() - t) * 1000
print(json.dumps(r), flush=True)
`;

Deno.test("fail fast: after a restart, a client's data of a connection gone is answered with a RST at once", async () => {
  let cfg: Record<string, unknown> = {};
  await withLab({
    rs: 1,
    gateway: (t: Topology) =>
      cfg = {
        localAddresses: ["198.18.2.1"],
        services: [rs1HttpService(t, VIP)],
      },
  }, async (lab) => {
    const file = `${lab.dir}/client.py`;
    const go = `${lab.dir}/go`;
    await Deno.writeTextFile(file, CLIENT);
    const client = spawnIn(lab, lab.t.nsCli, ["python3", file, VIP, go]);
    await client.waitFor(() => client.stdout().includes("open"), "connection open", 15_000);
    const first = lab.gw!;
    assert.equal((await first.stop()).code, 0);
    const second = await startGateway({
      ns: lab.t.nsGw,
      dir: `${lab.dir}/gw`,
      config: { ...cfg, tun: first.tun, control: first.control },
    });
    lab.defer(() => second.stop());
    await Deno.writeTextFile(go, "");
    await client.waitFor(() => client.stdout().includes("end"), "the request's end", 15_000);
    const r = JSON.parse(client.stdout().trim().split("\n").pop()!) as { end: string; ms: number };
    assert.equal(r.end, "reset", JSON.stringify(r));
    assert.ok(r.ms < 1000, `reset after ${r.ms.toFixed(0)} ms`);
    const s = await second.stats();
    assert.ok((s.drops.no_connection ?? 0) >= 1, JSON.stringify(s.drops));
    assert.ok((s.events.rst_sent ?? 0) >= 1, JSON.stringify(s.events));
  });
});
