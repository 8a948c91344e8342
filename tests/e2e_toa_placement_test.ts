/**
 * End-to-end TOA placement, in network namespaces: each `toaPlacement` of the gateway (`syn+ack`, `ack`,
 * `syn`), with the SYN proxy off and on, against toa-proxy's decoder on the real server, which reads the
 * client's address from the saved SYN (`TCP_SAVED_SYN`) and hands it to nginx in a PROXY v1 header:
 *
 *   client 198.18.1.2 ─▶ VIP .110–.115 ══ gateway (TOA: placement × synproxy) ══ 198.18.2.1
 *        ─▶ rs1 toa-proxy :80 (saved-SYN decoder) ─▶ nginx (`$proxy_protocol_addr`)
 *   IPv6: fd00:1::2 ─▶ fd00::110–115 ══ fd00:2::1 ─▶ [rs1]:80 toa-proxy ─▶ nginx
 *
 * What the field sees, one line per cell (`toa placement: <placement> synproxy=<x>: server saw <addr>`): the
 * saved-SYN decoder gets the client where the SYN carries TOA (`syn+ack`, `syn`), and the gateway's local
 * address where only the ACK does (`ack`, as dpvs ≥ 1.9.6 places it) — a decoder reading the ACK (toa.ko, a
 * sockops program) is what that placement needs. A capture on rs1, dissected by scapy, confirms where the
 * gateway put TOA in each handshake, and that it put it nowhere else.
 *
 * Needs root, nginx, curl, tcpdump and python3-scapy.
 *
 * @module
 */
import assert from "node:assert/strict";
import { nsExec } from "../netns-scripts/topology.ts";
import { type Lab, startCapture, startNginx, type TcpSegment, toaOptions, withLab } from "./helpers/mod.ts";
import { startPpNginx, startToaProxy, startToaTransparent } from "../toa/testing/servers.ts";
import { createCgroup, removeCgroup } from "../toa/bpf/cgroup.ts";

const LOCAL4 = "198.18.2.1";
const LOCAL6 = "fd00:2::1";
const TRUST = "198.18.2.0/24,fd00:2::/64";

/**
 * toa-proxy on rs1 at `listen` → the PROXY-v1 nginx at 127.0.0.1:8080, trusting the gateway's local
 * addresses, owned by the lab; `nsenter` lets it see the cgroup tree (its sockops decoder), `extra` adds flags.
 */
async function labToaProxy(lab: Lab, listen: string, extra: string[] = [], nsenter = false) {
  const args = [
    "--listen",
    listen,
    "--backend",
    "127.0.0.1:8080",
    "--proxy-protocol",
    "v1",
    "--trust",
    TRUST,
  ];
  const p = await startToaProxy(lab.t.nsRs[0], [...args, ...extra], 20_000, [], nsenter);
  lab.defer(() => p.stop());
  lab.track(p.process);
  return p;
}

/** One cell: a placement, the SYN proxy off or on, a family, its own VIP and client port. */
interface Cell {
  placement: "syn+ack" | "ack" | "syn";
  synproxy: "off" | "on";
  family: 4 | 6;
  vip: string;
  cport: number;
}

const CELLS: Cell[] = ([4, 6] as const).flatMap((family) =>
  (["syn+ack", "ack", "syn"] as const).flatMap((placement, i) =>
    (["off", "on"] as const).map((synproxy, j) => ({
      placement,
      synproxy,
      family,
      vip: family === 4 ? `198.18.0.${110 + i * 2 + j}` : `fd00::${110 + i * 2 + j}`,
      cport: 41000 + (family === 6 ? 100 : 0) + i * 2 + j,
    }))
  )
);

function gatewayConfig(rs1v4: string, rs1v6: string): Record<string, unknown> {
  return {
    localAddresses: [LOCAL4, LOCAL6],
    services: CELLS.map((c) => ({
      vip: c.vip,
      port: 80,
      scheduler: "rr",
      toa: true,
      toaPlacement: c.placement,
      synproxy: c.synproxy,
      realServers: [{ address: c.family === 4 ? rs1v4 : rs1v6, port: 80 }],
      // toa-proxy's counters are judged connection by connection: no health-check connections among them.
      healthCheck: { type: "none" },
    })),
  };
}

/** Where TOA sat in one handshake toward the real server, as the capture shows it. */
interface Seen {
  /** The gateway's local address and port of the flow. */
  local: string;
  lport: number;
  /** TOA in the SYN, in the ACK completing the handshake. */
  syn: boolean;
  ack: boolean;
}

/**
 * Finds the flow toward rs1 whose SYN or handshake ACK carries TOA naming `client:cport` (or, for a flow with
 * none, the one whose local port `lport` nginx reported) and reads where TOA sat; checks every TOA names the
 * client and none rides on a later segment.
 */
function placementOf(segs: TcpSegment[], client: string, cport: number, lport: number, family: 4 | 6): Seen {
  const names = (s: TcpSegment) => toaOptions(s).some((t) => t.port === cport && t.address === client);
  const marked = segs.find((s) => s.dport === 80 && names(s));
  const src = marked?.src ?? (family === 4 ? LOCAL4 : LOCAL6);
  const sport = marked?.sport ?? lport;
  const flow = segs.filter((s) => s.src === src && s.sport === sport && s.dport === 80);
  const syns = flow.filter((s) => s.flags === "S");
  assert.ok(syns.length >= 1, `no SYN from ${src}:${sport} at rs1`);
  const firstSyn = syns[0];
  const ack = flow.find((s) => !s.flags.includes("S") && s.flags.includes("A"));
  assert.ok(ack, `no handshake ACK from ${src}:${sport}`);
  for (const s of flow) {
    for (const t of toaOptions(s)) {
      const len = family === 4 ? 8 : 20;
      assert.deepEqual(t, { port: cport, address: client, len }, `TOA in ${s.flags} names the client`);
    }
    assert.ok(toaOptions(s).length <= 1, `one TOA at most in ${s.flags}`);
    assert.notEqual(s.checksum, "bad", `${s.flags} checksum`);
  }
  // Every SYN of the flow (a retransmission too) carries TOA alike.
  const synToa = syns.map((s) => toaOptions(s).length > 0);
  assert.ok(synToa.every((x) => x === synToa[0]), `SYNs alike: ${synToa}`);
  const later = flow.filter((s) => s !== ack && !s.flags.includes("S"));
  for (const s of later) assert.deepEqual(toaOptions(s), [], `no TOA after the handshake (${s.flags})`);
  return { local: src, lport: sport, syn: toaOptions(firstSyn).length > 0, ack: toaOptions(ack).length > 0 };
}

Deno.test("e2e: TOA placement × SYN proxy against a saved-SYN decoder (toa-proxy → nginx), captured on rs1", async () => {
  await withLab({ nginx: false, gateway: (t) => gatewayConfig(t.rsIp4[0], t.rsIp6[0]) }, async (lab) => {
    const t = lab.t;
    const rs1 = t.nsRs[0];
    const nginx = await startPpNginx(rs1, `${lab.dir}/nginx`, ["127.0.0.1:8080"], {});
    lab.defer(() => nginx.stop());
    lab.track(nginx.process);
    const proxies = {
      4: await labToaProxy(lab, `${t.rsIp4[0]}:80`),
      6: await labToaProxy(lab, `[${t.rsIp6[0]}]:80`),
    };
    const cap = await startCapture({ ns: rs1, filter: "tcp port 80" });
    lab.defer(() => cap.abort());

    const saw = new Map<Cell, { address: string; port: number }>();
    for (const c of CELLS) {
      const r = await nsExec(t.nsCli, [
        "curl",
        "-sS",
        "--max-time",
        "10",
        "--local-port",
        String(c.cport),
        c.family === 4 ? `http://${c.vip}/ip` : `http://[${c.vip}]/ip`,
      ], 20_000);
      assert.ok(r.success, `curl ${c.vip} (${c.placement}, synproxy ${c.synproxy}): ${r.stderr}`);
      const [address, port] = r.stdout.trim().split(/:(?=\d+$)/);
      saw.set(c, { address, port: Number(port) });
      const v6 = c.family === 6 ? " ipv6" : "";
      console.log(`toa placement: ${c.placement} synproxy=${c.synproxy}${v6}: server saw ${address}`);
    }
    const segs = await cap.stop(`${lab.dir}/rs1.pcap`);

    for (const c of CELLS) {
      const label = `${c.placement} synproxy=${c.synproxy} IPv${c.family}`;
      const s = saw.get(c)!;
      const client = c.family === 4 ? t.cliIp4 : t.cliIp6;
      const where = placementOf(segs, client, c.cport, s.port, c.family);
      // The capture: TOA exactly where the placement says, in forwarded and proxied handshakes alike.
      assert.deepEqual(
        { syn: where.syn, ack: where.ack },
        { syn: c.placement !== "ack", ack: c.placement !== "syn" },
        `${label}: where TOA sat`,
      );
      if (c.placement === "ack") {
        // The saved SYN holds no TOA: the decoder announces its peer, the gateway's local address and port.
        const local = c.family === 4 ? LOCAL4 : LOCAL6;
        assert.deepEqual(s, { address: local, port: where.lport }, `${label}: the gateway's local address`);
        assert.equal(where.local, local);
      } else {
        assert.deepEqual(s, { address: client, port: c.cport }, `${label}: the client`);
      }
    }

    const stats = await lab.gw!.stats();
    // syn+ack: 2 per connection, ack and syn: 1; both SYN proxy modes, both families.
    assert.equal(stats.events.toa_inserted ?? 0, 2 * 2 * (2 + 1 + 1), "toa_inserted");
    assert.equal(stats.events.toa_no_space ?? 0, 0);
    for (const f of [4, 6] as const) {
      const { counters } = await proxies[f].stop();
      assert.equal(counters.toa_trusted, 4, `IPv${f}: syn+ack and syn, proxy off and on`);
      assert.equal(counters.no_toa, 2, `IPv${f}: ack, proxy off and on: nothing in the saved SYN`);
      assert.equal(counters.toa_malformed, 0);
    }
    // The gateway's SYN cookies answered the proxied cells' clients.
    assert.equal(stats.events.syncookie_valid ?? 0, 6, "syncookie_valid");
  });
});

Deno.test("e2e: TOA placement × SYN proxy × SYN cookies against the ACK-reading decoders (toa-proxy's sockops, toa-transparent)", async () => {
  // Port 80 of each cell's VIP → rs1:80, toa-proxy with its sockops decoder → nginx (PROXY v1);
  // port 81 → rs1:81, an unmodified nginx (plain listen, $remote_addr) in a cgroup under toa-transparent;
  // port 82 → rs1:82, toa-proxy with the saved-SYN decoder alone (--decoder saved_syn) → nginx.
  const config = (rs1v4: string, rs1v6: string) => {
    const c = gatewayConfig(rs1v4, rs1v6);
    const services = c.services as Record<string, unknown>[];
    return {
      ...c,
      services: [
        ...services,
        ...[81, 82].flatMap((port) =>
          services.map((s) => ({
            ...s,
            port,
            realServers: (s.realServers as Record<string, unknown>[]).map((r) => ({ ...r, port })),
          }))
        ),
      ],
    };
  };
  await withLab({ nginx: false, gateway: (t) => config(t.rsIp4[0], t.rsIp6[0]) }, async (lab) => {
    const t = lab.t;
    const rs1 = t.nsRs[0];
    const pp = await startPpNginx(rs1, `${lab.dir}/nginx-pp`, ["127.0.0.1:8080"], {});
    lab.defer(() => pp.stop());
    lab.track(pp.process);
    // nsenter, not `ip netns exec`: the proxy must see /sys/fs/cgroup to make its own cgroup.
    const proxies = await Promise.all(
      [`${t.rsIp4[0]}:80`, `[${t.rsIp6[0]}]:80`].map(async (listen) => {
        const p = await labToaProxy(lab, listen, [], true);
        assert.match(p.process.stderr(), /toa-proxy decoder=sockops\+saved_syn /);
        return p;
      }),
    );
    const savedSyn = await Promise.all(
      [`${t.rsIp4[0]}:82`, `[${t.rsIp6[0]}]:82`].map((listen) =>
        labToaProxy(lab, listen, ["--decoder", "saved_syn"])
      ),
    );
    const cg = createCgroup(`${t.prefix}-placement`);
    lab.defer(() => removeCgroup(cg));
    const tt = await startToaTransparent(cg, TRUST);
    lab.track(tt);
    lab.defer(() => tt.stop("SIGKILL", 1_000));
    const plain = await startNginx({
      ns: rs1,
      dir: `${lab.dir}/nginx-plain`,
      listen: [`${t.rsIp4[0]}:81`, `[${t.rsIp6[0]}]:81`],
      files: { "ip": "plain\n" },
      wrapper: ["sh", "-c", `echo $$ > ${cg}/cgroup.procs && exec "$@"`, "sh"],
    });
    lab.defer(() => plain.stop());
    lab.track(plain.process);

    let requests = 0;
    for (const cookies of [1, 2]) {
      // 2: the real server answers every SYN with a cookie and saves none: only the ACK can carry TOA.
      const s = await nsExec(rs1, ["sysctl", "-qw", `net.ipv4.tcp_syncookies=${cookies}`]);
      assert.ok(s.success, s.stderr);
      for (const c of CELLS) {
        const url = (port: number) =>
          c.family === 4 ? `http://${c.vip}:${port}/ip` : `http://[${c.vip}]:${port}/ip`;
        const client = c.family === 4 ? t.cliIp4 : t.cliIp6;
        const label = `${c.placement} synproxy=${c.synproxy} IPv${c.family} syncookies=${cookies}`;
        const viaProxy = await nsExec(t.nsCli, ["curl", "-sS", "--max-time", "10", url(80)], 20_000);
        assert.ok(viaProxy.success, `${label}: ${viaProxy.stderr}`);
        const proxied = viaProxy.stdout.trim().split(/:(?=\d+$)/)[0];
        const viaPlain = await nsExec(t.nsCli, ["curl", "-sS", "--max-time", "10", url(81)], 20_000);
        assert.ok(viaPlain.success, `${label}: ${viaPlain.stderr}`);
        const seen = (await plain.waitForRequests(++requests)).at(-1)!.peerAddr;
        const viaSaved = await nsExec(t.nsCli, ["curl", "-sS", "--max-time", "10", url(82)], 20_000);
        assert.ok(viaSaved.success, `${label}: ${viaSaved.stderr}`);
        const saved = viaSaved.stdout.trim().split(/:(?=\d+$)/)[0];
        console.log(
          `toa placement: ${label}: toa-proxy (sockops) saw ${proxied}, toa-transparent nginx saw ${seen}, ` +
            `toa-proxy (saved_syn) saw ${saved}`,
        );
        // TOA in the SYN is lost to a cookie-answering server (it keeps no SYN); then only the ACK counts.
        const reachable = c.placement !== "syn" || cookies === 1;
        const local = c.family === 4 ? LOCAL4 : LOCAL6;
        assert.equal(proxied, reachable ? client : local, `${label}: toa-proxy (sockops)`);
        assert.equal(seen, reachable ? client : local, `${label}: toa-transparent`);
        // The saved SYN: only where the SYN carries TOA and the server saved it (no cookies).
        assert.equal(saved, c.placement !== "ack" && cookies === 1 ? client : local, `${label}: saved_syn`);
      }
    }
    await nsExec(rs1, ["sysctl", "-qw", "net.ipv4.tcp_syncookies=1"]);
    for (const p of savedSyn) {
      const { counters } = await p.stop();
      // Per family, 12 requests: TOA in 4 (syn+ack and syn, cookies off), no TOA in the 2 ack cells' saved
      // SYNs, no saved SYN at all in the 6 under cookies.
      assert.deepEqual(
        [counters.toa_trusted, counters.no_saved_syn, counters.no_toa, counters.toa_from_ack ?? 0],
        [4, 6, 2, 0],
        JSON.stringify(counters),
      );
    }
    for (const p of proxies) {
      const { counters } = await p.stop();
      // Per family: 12 requests; the ACK read in the kernel for syn+ack and ack (8), the SYN for syn (2).
      assert.equal(counters.toa_from_ack, 8, JSON.stringify(counters));
      assert.equal(counters.toa_from_syn + counters.toa_from_saved_syn, 2, JSON.stringify(counters));
    }
  });
});
