import assert from "node:assert/strict";
import { ToaProxy } from "./relay.ts";

Deno.test("ToaProxy.open: a failed eventfd is a SocketError at setup, and leaks no fd", async () => {
  // The checks run in a process of their own (see the script): they count free fds.
  const script = new URL("./testdata/eventfd_fail.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-lock", script],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const dec = new TextDecoder();
  assert.equal(out.code, 0, dec.decode(out.stderr));
  assert.equal(dec.decode(out.stdout).trim(), "ok");
});

Deno.test("ToaProxy.open: a bufferSize too small for a PROXY header or too large for a 32-bit count is refused before any fd", () => {
  const addr = { family: 4 as const, address: "198.18.0.1", port: 1 };
  for (const bufferSize of [0, 255, 2 ** 31, 1.5]) {
    assert.throws(
      () => ToaProxy.open({ listen: addr, backend: addr, proxyProtocol: "v1", trust: [], bufferSize }),
      /RangeError: toa-proxy: bufferSize must be an integer from 256 to 2\^30/,
    );
  }
});
