import assert from "node:assert/strict";
import { parseToaProxyArgs } from "./cli.ts";

const base = ["--listen", "198.18.3.10:80", "--backend", "127.0.0.1:8080", "--proxy-protocol", "v1"];

Deno.test("toa-proxy flags parse into addresses, mode and trust list", () => {
  const a = parseToaProxyArgs([...base, "--trust", "198.18.2.0/24,fd00:2::/64"])!;
  assert.deepEqual(a.listen, { family: 4, address: "198.18.3.10", port: 80 });
  assert.equal(a.proxyProtocol, "v1");
  assert.deepEqual(a.trust.map((c) => c.text), ["198.18.2.0/24", "fd00:2::/64"]);
  assert.equal(a.connectTimeoutMs, 3000);
  assert.equal(a.idleTimeoutMs, 300_000);
  assert.equal(parseToaProxyArgs([...base, "--trust", "1.0.0.0/8", "--idle-timeout", "0"])!.idleTimeoutMs, 0);
  assert.equal(
    parseToaProxyArgs([...base, "--trust", "1.0.0.0/8", "--idle-timeout", "90"])!.idleTimeoutMs,
    90_000,
  );
  assert.equal(a.reusePort, false);
  assert.equal(parseToaProxyArgs([...base, "--trust", "1.0.0.0/8", "--reuse-port"])!.reusePort, true);
  assert.equal(a.maxConnections, 0);
  assert.equal(a.maxPerSource, 0);
  const l = parseToaProxyArgs([
    ...base,
    "--trust",
    "1.0.0.0/8",
    "--max-connections",
    "5000",
    "--max-per-source=64",
  ])!;
  assert.deepEqual([l.maxConnections, l.maxPerSource], [5000, 64]);
  assert.equal(parseToaProxyArgs(["--help"]), null);
});

Deno.test("toa-proxy --toa-kinds: default 253,254; narrows or adds; passed on as a kind set", () => {
  const withKinds = (...k: string[]) => parseToaProxyArgs([...base, "--trust", "1.0.0.0/8", ...k])!.toaKinds;
  assert.deepEqual(withKinds().kinds, [253, 254]);
  assert.deepEqual(withKinds("--toa-kinds", "254").kinds, [254]);
  assert.deepEqual(withKinds("--toa-kinds=254,253,252").kinds, [252, 253, 254]);
  assert.equal(withKinds("--toa-kinds", "254,253,252").has[252], 1);
  assert.equal(withKinds("--toa-kinds", "254").has[253], 0);
});

Deno.test("toa-proxy flag errors are one line naming the flag", () => {
  const cases: [string[], RegExp][] = [
    [base, /^--trust is required$/],
    [[...base.slice(2), "--trust", "198.18.2.0/24"], /^--listen is required$/],
    [["--listen", "1.2.3.4", ...base.slice(2), "--trust", "1.0.0.0/8"], /^--listen: expected ADDR:PORT/],
    [[...base.slice(0, 5), "v3", "--trust", "1.0.0.0/8"], /^--proxy-protocol: expected v1, v2 or none/],
    [[...base, "--trust", "198.18.2.0/40"], /^--trust: .*prefix length/],
    [[...base, "--trust", "1.0.0.0/8", "--connect-timeout", "soon"], /^--connect-timeout: /],
    [[...base, "--trust", "1.0.0.0/8", "--idle-timeout=-1"], /^--idle-timeout: expected seconds/],
    [[...base, "--trust", "1.0.0.0/8", "--idle-timeout", "1.5"], /^--idle-timeout: expected seconds/],
    [[...base, "--trust", "1.0.0.0/8", "--bogus"], /bogus/],
    [[...base, "--trust", "1.0.0.0/8", "--max-connections=-1"], /^--max-connections: expected a number/],
    [[...base, "--trust", "1.0.0.0/8", "--max-connections", "lots"], /^--max-connections: expected a number/],
    [[...base, "--trust", "1.0.0.0/8", "--max-per-source", "2.5"], /^--max-per-source: expected a number/],
    [[...base, "--trust", "1.0.0.0/8", "--toa-kinds", ""], /^--toa-kinds: expected option kinds/],
    [[...base, "--trust", "1.0.0.0/8", "--toa-kinds", "254,"], /^--toa-kinds: expected option kinds/],
    [[...base, "--trust", "1.0.0.0/8", "--toa-kinds", "0xfe"], /^--toa-kinds: expected option kinds/],
    [[...base, "--trust", "1.0.0.0/8", "--toa-kinds", "254,300"], /^--toa-kinds: 300 is no TCP option kind/],
    [[...base, "--trust", "1.0.0.0/8", "--toa-kinds", "254,8"], /^--toa-kinds: 8 is the timestamps option/],
    [[...base, "--trust", "1.0.0.0/8", "--toa-kinds", "254,254"], /^--toa-kinds: 254 given twice/],
    [
      ["--listen", "1.2.3.4:1", "--backend", "1.2.3.4:0", "--proxy-protocol", "v2", "--trust", "1.0.0.0/8"],
      /^--backend: port 0/,
    ],
  ];
  for (const [args, re] of cases) {
    assert.throws(
      () => parseToaProxyArgs(args),
      (e: Error) => re.test(e.message) && !e.message.includes("\n"),
    );
  }
});
