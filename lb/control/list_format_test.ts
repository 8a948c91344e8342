/**
 * Golden text of the listings. The reference is ipvsadm 1.31's output (its printf formats in `ipvsadm.c`);
 * each expected block quotes the real ipvsadm lines it follows, so a column that moves shows here.
 */
import assert from "node:assert/strict";
import {
  formatConnections,
  formatList,
  formatPools,
  formatRate,
  formatStats,
  largeNum,
  type ListedServer,
  type ListedStats,
  rates,
} from "./list_format.ts";

const zero = { connectionsTotal: 0, packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0 };

function server(server: string, extra: Partial<ListedServer> = {}): ListedServer {
  return {
    server,
    weight: 1,
    effectiveWeight: 1,
    health: "up",
    draining: false,
    active: 0,
    inactive: 0,
    ...zero,
    ...extra,
  };
}

const stats: ListedStats = {
  activeConnections: 7,
  services: [
    {
      service: "tcp 198.18.0.100:80",
      protocol: "tcp",
      vip: "198.18.0.100",
      port: 80,
      scheduler: "wlc",
      draining: false,
      connectionsTotal: 3,
      packetsIn: 15,
      packetsOut: 12,
      bytesIn: 1012,
      bytesOut: 2170,
      realServers: [
        server("198.18.3.10:80", {
          weight: 2,
          effectiveWeight: 2,
          active: 4,
          inactive: 1,
          connectionsTotal: 2,
          packetsIn: 10,
          packetsOut: 8,
          bytesIn: 700,
          bytesOut: 1500,
        }),
        server("198.18.3.11:80", {
          effectiveWeight: 0,
          health: "down",
          healthReason: "refused",
          inactive: 2,
          connectionsTotal: 1,
          packetsIn: 5,
          packetsOut: 4,
          bytesIn: 312,
          bytesOut: 670,
        }),
      ],
    },
    {
      service: "udp [fd00::100]:53",
      protocol: "udp",
      vip: "fd00::100",
      port: 53,
      scheduler: "mh",
      draining: true,
      ...zero,
      connectionsTotal: 123_456_789,
      bytesIn: 98_765_432_100,
      bytesOut: 1_234_567_890_123,
      realServers: [
        server("[fd00:3::10]:53", { health: "unchecked", draining: true, effectiveWeight: 0, weight: 5 }),
      ],
    },
  ],
  pools: [
    { address: "198.18.2.1", used: 3, free: 64508, misses: 0 },
    { address: "fd00:2::1", used: 0, free: 64511, misses: 12 },
  ],
};

Deno.test("list format: largeNum prints as ipvsadm's print_largenum (9 wide, K/M/G/T past 100 million)", () => {
  assert.equal(largeNum(0), "        0");
  assert.equal(largeNum(99_999_999), " 99999999");
  assert.equal(largeNum(100_000_000), "  100000K");
  assert.equal(largeNum(999_999_999), "  999999K");
  assert.equal(largeNum(1_000_000_000), "    1000M");
  assert.equal(largeNum(99_999_999_999), "   99999M");
  assert.equal(largeNum(100_000_000_000), "     100G");
  assert.equal(largeNum(123_456_789_012_345), "     123T");
});

Deno.test("list format: --list follows ipvsadm -Ln, Forward FullNat, with a Health column", () => {
  // ipvsadm -Ln:
  //   Prot LocalAddress:Port Scheduler Flags
  //     -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
  //   TCP  10.0.0.1:80 rr
  //     -> 192.168.1.2:80               Masq    1      0          0
  //   ("  -> %-28s %-7s %-6d %-10u %-10u")
  assert.equal(
    formatList(stats),
    [
      "fnat-lb FULLNAT (connections=7)",
      "Prot LocalAddress:Port Scheduler Flags",
      "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn Health",
      "TCP  198.18.0.100:80 wlc",
      "  -> 198.18.3.10:80               FullNat 2      4          1          up",
      "  -> 198.18.3.11:80               FullNat 0      0          2          down(refused)",
      "UDP  [fd00::100]:53 mh draining",
      "  -> [fd00:3::10]:53              FullNat 0      0          0          unchecked draining",
      "",
    ].join("\n"),
  );
});

Deno.test("list format: --list --stats follows ipvsadm -Ln --stats", () => {
  // ipvsadm -Ln --stats:
  //   Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  //     -> RemoteAddress:Port
  //   TCP  10.0.0.1:80                         3       15       12     1012     2170
  //     -> 192.168.1.2:80                      2       10        8      700     1500
  //   ("%-33s" then print_largenum ×5; "  -> %-28s" then print_largenum ×5)
  assert.equal(
    formatStats(stats),
    [
      "fnat-lb FULLNAT (connections=7)",
      "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
      "  -> RemoteAddress:Port",
      "TCP  198.18.0.100:80                     3       15       12     1012     2170",
      "  -> 198.18.3.10:80                      2       10        8      700     1500",
      "  -> 198.18.3.11:80                      1        5        4      312      670",
      "UDP  [fd00::100]:53                123456K        0        0   98765M    1234G",
      "  -> [fd00:3::10]:53                     0        0        0        0        0",
      "",
    ].join("\n"),
  );
});

Deno.test("list format: rates between two snapshots, and --list --rate as ipvsadm -Ln --rate", () => {
  const later: ListedStats = structuredClone(stats);
  const s0 = later.services[0];
  Object.assign(s0, {
    connectionsTotal: 23,
    packetsIn: 215,
    packetsOut: 112,
    bytesIn: 21012,
    bytesOut: 402170,
  });
  Object.assign(s0.realServers[0], {
    connectionsTotal: 22,
    packetsIn: 210,
    packetsOut: 108,
    bytesIn: 20700,
    bytesOut: 401500,
  });
  // A server new in the later snapshot counts from zero; a counter that went backwards too.
  s0.realServers.push(server("198.18.3.12:80", { connectionsTotal: 4, packetsIn: 8 }));
  later.services[1].connectionsTotal = 10;
  const r = rates(stats, later, 2);
  assert.deepEqual(r.services[0].realServers[2], {
    server: "198.18.3.12:80",
    cps: 2,
    inPps: 4,
    outPps: 0,
    inBps: 0,
    outBps: 0,
  });
  assert.equal(r.services[1].cps, 5, "restarted counter: 10 over 2 s");
  assert.throws(() => rates(stats, later, 0), RangeError);
  // ipvsadm -Ln --rate:
  //   Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  //     -> RemoteAddress:Port
  //   TCP  10.0.0.1:80                        10      100       50    10000   200000
  //   ("%-33s %8u %8u %8u" then print_largenum ×2)
  assert.equal(
    formatRate(r),
    [
      "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS",
      "  -> RemoteAddress:Port",
      "TCP  198.18.0.100:80                    10      100       50    10000   200000",
      "  -> 198.18.3.10:80                     10      100       50    10000   200000",
      "  -> 198.18.3.11:80                      0        0        0        0        0",
      "  -> 198.18.3.12:80                      2        4        0        0        0",
      "UDP  [fd00::100]:53                      5        0        0        0        0",
      "  -> [fd00:3::10]:53                     0        0        0        0        0",
      "",
    ].join("\n"),
  );
});

Deno.test("list format: --list --connections follows ipvsadm -Lnc, with dpvs's local column", () => {
  // ipvsadm -Lnc:
  //   pro expire state       source             virtual            destination
  //   TCP 14:58  ESTABLISHED 10.0.0.5:51234     10.0.0.1:80        192.168.1.2:80
  //   ("%-3s %02d:%02d  %-11s %-18s %-18s %-18s")
  const v4 = [
    {
      proto: "tcp" as const,
      state: "ESTABLISHED",
      expiresIn: 898,
      source: "198.18.1.5:51234",
      virtual: "198.18.0.100:80",
      local: "198.18.2.1:1030",
      destination: "198.18.3.10:80",
    },
    {
      proto: "udp" as const,
      state: "UDP",
      expiresIn: 299.2,
      source: "198.18.1.5:5353",
      virtual: "198.18.0.100:53",
      local: "198.18.2.2:40000",
      destination: "198.18.3.11:53",
    },
  ];
  assert.equal(
    formatConnections(v4),
    [
      "fnat-lb connection entries",
      "pro expire state       source             virtual            local              destination",
      "TCP 14:58  ESTABLISHED 198.18.1.5:51234   198.18.0.100:80    198.18.2.1:1030    198.18.3.10:80",
      "UDP 05:00  UDP         198.18.1.5:5353    198.18.0.100:53    198.18.2.2:40000   198.18.3.11:53",
      "",
    ].join("\n"),
  );
  // IPv6: the columns widen to the longest entry instead of overflowing.
  const v6 = formatConnections([{
    proto: "tcp",
    state: "SYN_SENT",
    expiresIn: 120,
    source: "[fd00:1::5]:40001",
    virtual: "[fd00::100]:80",
    local: "[fd00:2::1]:1025",
    destination: "[fd00:3:0:0:0:0:0:10]:80",
  }]);
  assert.equal(
    v6,
    [
      "fnat-lb connection entries",
      "pro expire state       source             virtual            local              destination",
      "TCP 02:00  SYN_SENT    [fd00:1::5]:40001  [fd00::100]:80     [fd00:2::1]:1025   [fd00:3:0:0:0:0:0:10]:80",
      "",
    ].join("\n"),
  );
  assert.equal(formatConnections([]).split("\n").length, 3, "title and header only");
});

Deno.test("list format: pools per local address, used/free/misses", () => {
  assert.equal(
    formatPools(stats),
    [
      "LocalAddress      Used      Free    Misses",
      "198.18.2.1           3     64508         0",
      "fd00:2::1            0     64511        12",
      "",
    ].join("\n"),
  );
});
