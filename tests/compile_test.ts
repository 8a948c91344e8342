/**
 * `deno task compile` builds the single-binary gateway `dist/fnat-lb`, and that binary runs: `lb --help`
 * prints the usage, and a bad configuration stops it with a one-line `config:` error naming the field.
 *
 * `deno compile` needs the `denort` runtime, which it otherwise downloads from dl.deno.land — unreachable
 * here. So the test runs only when `DENORT_BIN` names a denort binary of this Deno's version (deno compile
 * reads that variable itself), and is reported as ignored otherwise; it is never faked.
 *
 * @module
 */

import assert from "node:assert/strict";
import { run } from "../netns-scripts/topology.ts";

const REPO = new URL("..", import.meta.url).pathname;
const BIN = `${REPO}dist/fnat-lb`;

Deno.test({
  name: "compile: deno task compile builds dist/fnat-lb, which prints usage and rejects a bad config",
  ignore: !Deno.env.get("DENORT_BIN"),
  async fn() {
    const denort = Deno.env.get("DENORT_BIN")!;
    assert.ok((await Deno.stat(denort)).isFile, `DENORT_BIN=${denort} is not a file`);
    const compile = await run(["sh", "-c", `cd "${REPO}" && "${Deno.execPath()}" task compile`], 180_000);
    assert.ok(compile.success, `deno task compile failed:\n${compile.stderr}`);
    const st = await Deno.stat(BIN);
    assert.ok(st.isFile && (st.mode ?? 0) & 0o111, `${BIN} is not an executable file`);

    const help = await run([BIN, "lb", "--help"], 30_000);
    assert.equal(help.code, 0, `fnat-lb lb --help exited ${help.code}: ${help.stderr}`);
    assert.match(help.stdout, /^usage:/);
    assert.match(help.stdout, /lb --config FILE/);

    const dir = await Deno.makeTempDir({ prefix: "fnat-compile-" });
    try {
      const bad = `${dir}/bad.json`;
      await Deno.writeTextFile(
        bad,
        JSON.stringify({ tun: "fnatc0", localAddresses: [], services: [], control: `${dir}/c.sock` }),
      );
      const r = await run([BIN, "lb", "--config", bad], 30_000);
      assert.equal(r.code, 1, `a bad config exited ${r.code}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /^fnat-lb: config: localAddresses: expected a non-empty array/);
      assert.equal(r.stderr.trim().split("\n").length, 1, "the config error is more than one line");

      const missing = await run([BIN, "lb", "--config", `${dir}/none.json`], 30_000);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^fnat-lb: config: \(file\): cannot read /);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
