import assert from "node:assert/strict";

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
