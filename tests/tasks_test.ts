/**
 * The `deno task` entry points the README and docs name exist and start: every `deno task NAME` they mention
 * is a task of deno.json, and the two that start the programs print their usage. (A task that said plain
 * `deno` ran the npm package's launcher script from Deno's own cache, which cannot find its binary there:
 * every task failed before its command began.)
 *
 * @module
 */
import assert from "node:assert/strict";
import { run } from "../netns-scripts/topology.ts";

const REPO = new URL("..", import.meta.url).pathname;

/** Runs `deno task ARGS` from the repository root with the Deno running this test. */
function task(args: string[]) {
  const quoted = args.map((a) => `'${a}'`).join(" ");
  return run(["sh", "-c", `cd "${REPO}" && "${Deno.execPath()}" task ${quoted}`], 60_000);
}

Deno.test("tasks: every `deno task NAME` the README and docs mention is in deno.json", async () => {
  const tasks = Object.keys(JSON.parse(await Deno.readTextFile(`${REPO}deno.json`)).tasks);
  const mentioned = new Set<string>();
  for (const f of ["README.md", ...[...Deno.readDirSync(`${REPO}docs`)].map((e) => `docs/${e.name}`)]) {
    for (const m of (await Deno.readTextFile(`${REPO}${f}`)).matchAll(/deno task ([\w:-]+)/g)) {
      mentioned.add(m[1]);
    }
  }
  assert.ok(mentioned.size >= 5, `found ${[...mentioned]}`);
  for (const name of mentioned) assert.ok(tasks.includes(name), `deno task ${name} is not in deno.json`);
});

for (
  const [name, usage] of [["lb", /^usage:\n {2}mod\.ts lb --config FILE/], [
    "toa-proxy",
    /^usage: mod\.ts toa-proxy/,
  ]]
) {
  Deno.test(`tasks: deno task ${name} --help prints the usage`, async () => {
    const r = await task([name as string, "--help"]);
    assert.equal(r.code, 0, `deno task ${name} --help exited ${r.code}:\n${r.stderr}`);
    assert.match(r.stdout, usage as RegExp);
  });
}
