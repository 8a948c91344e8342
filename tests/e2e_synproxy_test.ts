/**
 * End-to-end SYN proxy with real peers: the client's kernel completes its handshake with the gateway's SYN
 * cookie, the real server's kernel its own with the gateway's SYN (TOA in it and in the handshake ACK), and
 * every byte between them crosses two sequence spaces and two window scales. The peers' kernels judge
 * checksums (up.sh); downloads and uploads are compared byte for byte, also with loss (retransmissions and
 * SACK blocks through the bridged numbering).
 *
 * @module
 */
import assert from "node:assert/strict";
import { nsExec, type Topology } from "../netns-scripts/topology.ts";
import {
  checksumErrors,
  httpUrl,
  kernelCounters,
  type Lab,
  randomBytes,
  sha256Hex,
  startCapture,
  toaOptions,
  withLab,
} from "./helpers/mod.ts";

const VIP4 = "198.18.0.10";
const VIP6 = "fd00::10";
/** A service whose real server has nothing listening on the port: it refuses the gateway's SYN. */
const VIP4_CLOSED = "198.18.0.12";
const LOCAL4 = "198.18.2.1";
const LOCAL6 = "fd00:2::1";
const BIG = 8 * 1024 * 1024;

function gatewayConfig(t: Topology): Record<string, unknown> {
  const service = (vip: string, servers: string[], port = 80) => ({
    vip,
    port: 80,
    scheduler: "rr",
    synproxy: "on",
    realServers: servers.map((address) => ({ address, port })),
    healthCheck: { type: "none" },
  });
  return {
    localAddresses: [LOCAL4, LOCAL6],
    services: [
      service(VIP4, [t.rsIp4[0]]),
      service(VIP6, [t.rsIp6[0]]),
      service(VIP4_CLOSED, [t.rsIp4[0]], 81),
    ],
  };
}

const big = randomBytes(BIG);

async function curl(lab: Lab, args: string[], timeoutMs = 30_000) {
  return await nsExec(
    lab.t.nsCli,
    ["curl", "-sS", "-g", "--max-time", String(timeoutMs / 1000 - 1), ...args],
    timeoutMs,
  );
}

async function download(lab: Lab, vip: string, name: string): Promise<void> {
  const out = `${lab.dir}/${name}`;
  const r = await curl(lab, ["--fail", "-o", out, httpUrl(vip, 80, "/big.bin")]);
  assert.ok(r.success, `download ${name}: ${r.stderr}`);
  assert.equal(await sha256Hex(await Deno.readFile(out)), await sha256Hex(big), `${name} differs`);
  await Deno.remove(out);
}

const LOSSY = `table inet lossy {
  chain forwarding {
    type filter hook forward priority 0; policy accept;
    numgen random mod 100 < 3 counter drop
  }
}
`;

Deno.test("e2e synproxy: requests and 8 MB transfers through cookies, clean and with loss; TOA reaches the server", async () => {
  const files = (i: number) => ({ "index.html": `rs${i + 1}\n`, "big.bin": big });
  await withLab({ rs: 1, gateway: gatewayConfig, files }, async (lab) => {
    const cap = await startCapture({
      ns: lab.t.nsRs[0],
      filter: "tcp port 80 and tcp[tcpflags] & tcp-syn != 0",
    });
    lab.defer(() => cap.abort());
    const r4 = await curl(lab, ["--fail", "--local-port", "40555", httpUrl(VIP4)]);
    assert.ok(r4.success, `curl ${VIP4}: ${r4.stderr}`);
    assert.equal(r4.stdout, "rs1\n");
    const r6 = await curl(lab, ["--fail", httpUrl(VIP6)]);
    assert.ok(r6.success, `curl ${VIP6}: ${r6.stderr}`);
    const segs = await cap.stop(`${lab.dir}/syn.pcap`);
    const syn = segs.find((s) => s.flags === "S" && s.src === LOCAL4);
    assert.ok(syn, "no SYN from the gateway at the real server");
    assert.deepEqual(
      toaOptions(syn),
      [{ port: 40555, address: lab.t.cliIp4, len: 8 }],
      "TOA in the proxy's SYN",
    );
    assert.ok(syn.options.some((o) => o.kind === 3), "the client's window scale passed on");

    const ab = await nsExec(lab.t.nsCli, ["ab", "-n", "300", "-c", "20", "-s", "10", httpUrl(VIP4)], 60_000);
    assert.match(ab.stdout, /Complete requests:\s+300\n/, ab.stdout + ab.stderr);
    assert.match(ab.stdout, /Failed requests:\s+0\n/);

    await download(lab, VIP4, "down4");
    await download(lab, VIP6, "down6");
    // Loss on the gateway: retransmissions and SACK blocks in both numberings, both ways.
    await Deno.writeTextFile(`${lab.dir}/lossy.nft`, LOSSY);
    assert.ok((await nsExec(lab.t.nsGw, ["nft", "-f", `${lab.dir}/lossy.nft`])).success);
    const before = await kernelCounters(lab.t.nsCli);
    const rsBefore = await kernelCounters(lab.t.nsRs[0]);
    await download(lab, VIP4, "lossy4");
    const after = await kernelCounters(lab.t.nsCli);
    const nft = await nsExec(lab.t.nsGw, ["nft", "list", "chain", "inet", "lossy", "forwarding"]);
    const dropped = Number(/counter packets (\d+)/.exec(nft.stdout)?.[1] ?? 0);
    assert.ok(dropped > 0, "the lossy rule dropped nothing");
    const rsAfter = await kernelCounters(lab.t.nsRs[0]);
    const retrans = (rsAfter.get("TcpRetransSegs") ?? 0) - (rsBefore.get("TcpRetransSegs") ?? 0);
    assert.ok(retrans > 0, "the server retransmitted nothing");
    assert.equal(
      (after.get("TcpExtTCPSACKDiscard") ?? 0) - (before.get("TcpExtTCPSACKDiscard") ?? 0),
      0,
      "the client discarded SACK blocks",
    );

    const stats = await lab.gw!.stats();
    const ev = stats.events;
    console.log(
      `synproxy: cookies sent ${ev.syncookie_sent}, valid ${ev.syncookie_valid}, bad ${
        ev.syncookie_bad ?? 0
      }, ` +
        `kept ${ev.synproxy_kept ?? 0}, syn retransmits ${ev.synproxy_syn_retransmit ?? 0}`,
    );
    assert.ok((ev.syncookie_valid ?? 0) >= 305, `syncookie_valid ${ev.syncookie_valid}`);
    assert.ok((ev.syncookie_sent ?? 0) >= ev.syncookie_valid!, "every valid cookie was sent first");
    for (const ns of [lab.t.nsCli, lab.t.nsRs[0]]) {
      assert.deepEqual(await checksumErrors(ns), [], `${ns}: the kernel saw bad checksums`);
    }
  });
});

Deno.test("e2e synproxy: a server that refuses makes the connected client fail at once (RST), not hang", async () => {
  await withLab({ rs: 1, nginx: true, gateway: gatewayConfig }, async (lab) => {
    const t0 = performance.now();
    const r = await curl(lab, [httpUrl(VIP4_CLOSED)], 10_000);
    const secs = (performance.now() - t0) / 1000;
    assert.ok(!r.success, "curl to a closed port succeeded");
    // The gateway's RST may land before curl has seen its connect complete (it then says "Couldn't
    // connect"): either way a reset, and the gateway counted it as the refusal below.
    assert.match(r.stderr, /reset|Recv failure|Empty reply|Couldn't connect/i, r.stderr);
    assert.ok(secs < 3, `the client learnt it after ${secs.toFixed(1)} s`);
    console.log(`synproxy: refused connection failed after ${secs.toFixed(2)} s: ${r.stderr.trim()}`);
    const stats = await lab.gw!.stats();
    assert.ok((stats.events.synproxy_refused ?? 0) >= 1);
    assert.equal(stats.activeConnections ?? 0, 0);
  });
});
