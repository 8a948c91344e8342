// The steering program against the engine: for packets of every kind the gateway steers (TCP and UDP to a
// VIP or a local address, ICMP errors quoting either, IPv4 and IPv6), the queue the kernel would pick with
// the program (run by BPF_PROG_TEST_RUN) is one of the two of the worker whose engine owns the packet:
// its SYN queue (2w + 1) for a connection attempt, its normal queue (2w) for everything else. Needs root
// (bpf()).
import assert from "node:assert/strict";
import { validateConfig } from "../config.ts";
import { Engine } from "../engine/engine.ts";
import { icmp, tcp, udp } from "../engine/testing/packets.ts";
import { ipv4FillChecksum, parseIpv4 } from "../../base/packet/ipv4.ts";
import { steerClient, steerLocalPort } from "../engine/steering.ts";
import {
  buildSteeringProgram,
  closeProgram,
  loadSocketFilter,
  normalQueueOf,
  synQueueOf,
  testRunProgram,
} from "./steering_bpf.ts";

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
  for (const workers of [1, 2, 3, 4]) {
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
        assert.ok(queue < 2 * workers, `queue ${queue} < ${2 * workers}`);
        // Kinds 0 and 5 are SYNs toward a VIP: connection attempts, on the owner's SYN queue.
        assert.equal(queue & 1, kind === 0 || kind === 5 ? 1 : 0, `kind ${kind}: queue ${queue}`);
        const owner = queue >> 1;
        seen.add(owner);
        // Every other worker's engine hands the packet to `owner`; the owner's keeps it.
        for (let w = 0; w < workers; w++) {
          const r = engines[w].process(p.b.slice(), p.len, 0);
          if (w === owner) assert.ok(r >= 0, `kind ${kind}: worker ${w} owns it (got ${r})`);
          else assert.equal(r, -owner - 1, `kind ${kind}: worker ${w} hands it to ${owner}`);
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
      assert.equal(
        testRunProgram(fd, p.b.subarray(0, p.len), 4),
        synQueueOf(steerClient(0xc6120102, 1234, workers)),
      );
      closeProgram(fd);
    }
  }
});

/** The xor of an IPv6 address's four words: what the ownership hash takes for a client address. */
function xor6(a: string): number {
  return words6(a).reduce((x, w) => (x ^ w) >>> 0, 0);
}

Deno.test("steering program: connection attempts to the owner's SYN queue (2w+1), the rest to 2w", () => {
  const SYN = 0x02, ACK = 0x10, RST = 0x04, FIN = 0x01, PSH = 0x08, ECE = 0x40, CWR = 0x80;
  const data = new Uint8Array(100).fill(0x12); // SYN|ACK-looking bytes where a fragment's flags would be
  for (const workers of [1, 2]) {
    const fd = loadSocketFilter(buildSteeringProgram(workers, LOCAL4.map(parseIpv4), LOCAL6.map(words6)));
    try {
      for (let i = 0; i < 40; i++) {
        const cport = 1024 + i * 1543;
        const lport = 1025 + i * 977;
        const c4 = `198.18.1.${2 + i}`;
        const c6 = `fd00:1::${(2 + i).toString(16)}`;
        const own4 = steerClient(parseIpv4(c4), cport, workers);
        const own6 = steerClient(xor6(c6), cport, workers);
        const local = steerLocalPort(lport, workers);
        const toVip4 = (flags: number, payload?: Uint8Array) =>
          tcp({ src: c4, dst: "198.18.0.100", sport: cport, dport: 80, flags, payload });
        const toVip6 = (flags: number) => tcp({ src: c6, dst: "fd00::100", sport: cport, dport: 80, flags });
        const fromServer4 = (flags: number) =>
          tcp({ src: "198.18.3.10", dst: LOCAL4[i % 2], sport: 80, dport: lport, flags });
        const fromServer6 = (flags: number) =>
          tcp({ src: "fd00:3::10", dst: LOCAL6[0], sport: 80, dport: lport, flags });
        const rows: [string, { b: Uint8Array; len: number }, 4 | 6, number][] = [
          ["SYN to a VIP", toVip4(SYN), 4, synQueueOf(own4)],
          ["SYN with ECE|CWR to a VIP", toVip4(SYN | ECE | CWR), 4, synQueueOf(own4)],
          ["SYN to an IPv6 VIP", toVip6(SYN), 6, synQueueOf(own6)],
          ["SYN+ACK to a VIP", toVip4(SYN | ACK), 4, normalQueueOf(own4)],
          ["ACK to a VIP", toVip4(ACK), 4, normalQueueOf(own4)],
          ["data to a VIP", toVip4(PSH | ACK, data), 4, normalQueueOf(own4)],
          ["RST to a VIP", toVip4(RST), 4, normalQueueOf(own4)],
          ["FIN+ACK to a VIP", toVip4(FIN | ACK), 4, normalQueueOf(own4)],
          ["ACK to an IPv6 VIP", toVip6(ACK), 6, normalQueueOf(own6)],
          ["RST+ACK to an IPv6 VIP", toVip6(RST | ACK), 6, normalQueueOf(own6)],
          ["SYN+ACK from a real server", fromServer4(SYN | ACK), 4, normalQueueOf(local)],
          ["ACK from a real server", fromServer4(ACK), 4, normalQueueOf(local)],
          ["RST from a real server", fromServer4(RST), 4, normalQueueOf(local)],
          ["SYN+ACK from an IPv6 real server", fromServer6(SYN | ACK), 6, normalQueueOf(local)],
          // A SYN toward a local address is a connection attempt too (none is expected; a flood may be).
          ["SYN to a local address", fromServer4(SYN), 4, synQueueOf(local)],
          ["UDP to a VIP", udp(c4, "198.18.0.100", cport, 53, data), 4, normalQueueOf(own4)],
        ];
        // IPv4 fragments are never attempts: a first fragment of a SYN (MF), a later one whose payload
        // reads like SYN flags where a header would be. Owners as without the SYN bit.
        const first = toVip4(SYN);
        first.b[6] = 0x20; // MF
        ipv4FillChecksum(first.b, 0);
        rows.push(["first fragment of a SYN", first, 4, normalQueueOf(own4)]);
        const later = toVip4(SYN);
        later.b[6] = 0x00;
        later.b[7] = 0x10; // offset 128 bytes, last fragment
        ipv4FillChecksum(later.b, 0);
        rows.push(["later fragment reading like a SYN", later, 4, normalQueueOf(own4)]);
        for (const [what, p, family, want] of rows) {
          const got = testRunProgram(fd, p.b.subarray(0, p.len), family);
          assert.equal(got, want, `workers ${workers}, ${what} (${c4}:${cport}, local port ${lport})`);
        }
      }
    } finally {
      closeProgram(fd);
    }
  }
});
