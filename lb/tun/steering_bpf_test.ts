// The steering program against the engine: for packets of every kind the gateway steers (TCP and UDP to a
// VIP or a local address, ICMP errors quoting either, IPv4 and IPv6), the queue the kernel would pick with
// the program (run by BPF_PROG_TEST_RUN) is the worker whose engine owns the packet. Needs root (bpf()).
import assert from "node:assert/strict";
import { validateConfig } from "../config.ts";
import { Engine } from "../engine/engine.ts";
import { icmp, tcp, udp } from "../engine/testing/packets.ts";
import { parseIpv4 } from "../../base/packet/ipv4.ts";
import { buildSteeringProgram, closeProgram, loadSocketFilter, testRunProgram } from "./steering_bpf.ts";

const LOCAL4 = ["198.18.2.1", "198.18.2.2"];
const LOCAL6 = ["fd00:2::1"];

function config(workers: number) {
  return validateConfig({
    workers,
    localAddresses: [...LOCAL4, ...LOCAL6],
    portRange: [1025, 65535],
    maxConnections: 1000,
    services: [
      { vip: "198.18.0.100", port: 80, realServers: [{ address: "198.18.3.10", port: 80 }] },
      { vip: "198.18.0.100", port: 53, protocol: "udp", realServers: [{ address: "198.18.3.10", port: 53 }] },
      { vip: "fd00::100", port: 80, realServers: [{ address: "fd00:3::10", port: 80 }] },
    ],
  });
}

function words6(a: string): number[] {
  const parts = a.split("::");
  const head = parts[0] ? parts[0].split(":") : [];
  const tail = parts[1] ? parts[1].split(":") : [];
  const all = [...head, ...Array(8 - head.length - tail.length).fill("0"), ...tail].map((x) =>
    parseInt(x, 16)
  );
  return [0, 1, 2, 3].map((i) => ((all[2 * i] << 16) | all[2 * i + 1]) >>> 0);
}

Deno.test("steering program picks the owning worker's queue for every packet kind", () => {
  let rng = 12345;
  const rand = (n: number) => {
    rng = (Math.imul(rng, 1103515245) + 12345) >>> 0;
    return (rng >>> 8) % n;
  };
  for (const workers of [2, 3, 4]) {
    const prog = buildSteeringProgram(workers, LOCAL4.map(parseIpv4), LOCAL6.map(words6));
    const fd = loadSocketFilter(prog);
    try {
      const engines = Array.from(
        { length: workers },
        (_, w) => new Engine(config(workers), { worker: w, now: 0 }),
      );
      const seen = new Set<number>();
      for (let i = 0; i < 300; i++) {
        const c4 = `198.18.${1 + rand(2)}.${1 + rand(250)}`;
        const cport = 1024 + rand(60000);
        const lport = 1025 + rand(64000);
        const kind = i % 8;
        let p: { b: Uint8Array; len: number };
        let family: 4 | 6 = 4;
        if (kind === 0) p = tcp({ src: c4, dst: "198.18.0.100", sport: cport, dport: 80, flags: 2 });
        else if (kind === 1) p = udp(c4, "198.18.0.100", cport, 53, new Uint8Array(5));
        else if (kind === 2) {
          p = tcp({ src: "198.18.3.10", dst: LOCAL4[rand(2)], sport: 80, dport: lport, flags: 0x10 });
        } else if (kind === 3) {
          const q = tcp({ src: LOCAL4[0], dst: "198.18.3.10", sport: lport, dport: 80, flags: 0x10 });
          p = icmp("198.18.3.1", LOCAL4[0], 3, 4, 1400, q.b.slice(0, 28));
        } else if (kind === 4) {
          const q = tcp({ src: "198.18.0.100", dst: c4, sport: 80, dport: cport, flags: 0x10 });
          p = icmp("198.18.1.1", "198.18.0.100", 11, 0, 0, q.b.slice(0, 28));
        } else if (kind === 5) {
          family = 6;
          p = tcp({
            src: `fd00:1::${(1 + rand(999)).toString(16)}`,
            dst: "fd00::100",
            sport: cport,
            dport: 80,
            flags: 2,
          });
        } else if (kind === 6) {
          family = 6;
          p = tcp({ src: "fd00:3::10", dst: "fd00:2::1", sport: 80, dport: lport, flags: 0x10 });
        } else {
          family = 6;
          const q = tcp({ src: "fd00:2::1", dst: "fd00:3::10", sport: lport, dport: 80, flags: 0x10 });
          p = icmp("fd00:3::1", "fd00:2::1", 2, 0, 1280, q.b.slice(0, 48));
        }
        const queue = testRunProgram(fd, p.b.subarray(0, p.len), family);
        assert.ok(queue < workers, `queue ${queue} < ${workers}`);
        seen.add(queue);
        // Every other worker's engine hands the packet to `queue`; the owner's keeps it.
        for (let w = 0; w < workers; w++) {
          const r = engines[w].process(p.b.slice(), p.len, 0);
          if (w === queue) assert.ok(r >= 0, `kind ${kind}: worker ${w} owns it (got ${r})`);
          else assert.equal(r, -queue - 1, `kind ${kind}: worker ${w} hands it to ${queue}`);
        }
      }
      assert.equal(seen.size, workers, "every queue is used");
    } finally {
      closeProgram(fd);
    }
  }
});

Deno.test("steering program loads with only IPv4 or only IPv6 local addresses (no unreachable code)", () => {
  for (const [v4, v6] of [[[parseIpv4("198.18.2.1")], []], [[], [words6("fd00:2::1")]], [[], []]] as const) {
    for (const workers of [2, 5]) {
      const fd = loadSocketFilter(buildSteeringProgram(workers, [...v4], [...v6]));
      const p = tcp({ src: "198.18.1.2", dst: "198.18.0.100", sport: 1234, dport: 80, flags: 2 });
      assert.ok(testRunProgram(fd, p.b.subarray(0, p.len), 4) < workers);
      closeProgram(fd);
    }
  }
});
