/**
 * The layout's rules (docs/architecture.md), checked on the sources: `base/` imports nothing above it, the
 * gateway (`lb/`) and the TOA side (`toa/`) never import each other, the engine stays pure, and one file
 * binds libc.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const SKIP = new Set(["node_modules", "dist", ".git"]);

/** Every .ts file under `dir` (relative to the repo root). */
function sources(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of Deno.readDirSync(new URL(rel, ROOT))) {
      if (SKIP.has(e.name)) continue;
      const p = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory) walk(p);
      else if (e.name.endsWith(".ts")) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

/** The repo-relative paths a file imports (static, dynamic and `new URL` worker specifiers). */
function importsOf(file: string): string[] {
  const text = Deno.readTextFileSync(new URL(file, ROOT));
  const dir = file.slice(0, file.lastIndexOf("/") + 1);
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|new URL\(\s*)["'](\.{1,2}\/[^"']+)["']/g;
  for (const m of text.matchAll(re)) {
    const url = new URL(m[1], new URL(dir, ROOT));
    out.push(url.pathname.slice(ROOT.pathname.length));
  }
  return out;
}

function violations(from: string, forbidden: readonly string[]): string[] {
  const bad: string[] = [];
  for (const f of sources(from)) {
    for (const i of importsOf(f)) {
      if (forbidden.some((p) => i.startsWith(p))) bad.push(`${f} → ${i}`);
    }
  }
  return bad;
}

Deno.test("layout: base/ imports nothing from lb/ or toa/", () => {
  assert.deepEqual(violations("base", ["lb/", "toa/", "mod.ts", "cli.ts"]), []);
});

Deno.test("layout: lb/ and toa/ never import each other", () => {
  assert.deepEqual(violations("lb", ["toa/"]), []);
  assert.deepEqual(violations("toa", ["lb/"]), []);
});

Deno.test("layout: the engine is pure (no device, worker, gateway or libc)", () => {
  assert.deepEqual(
    violations("lb/engine", ["lb/tun/", "lb/worker/", "lb/gateway.ts", "lb/cli.ts", "base/sys/"]),
    [],
  );
  assert.deepEqual(violations("base/packet", ["base/sys/"]), []);
});

Deno.test("layout: one file binds libc", () => {
  // Spelled in two pieces so that a grep for the call finds only the binding itself, not this test.
  const needle = `Deno.${"dl"}open(`;
  const binders = [...sources("base"), ...sources("lb"), ...sources("toa"), ...sources("bench")]
    .filter((f) => Deno.readTextFileSync(new URL(f, ROOT)).includes(needle));
  assert.deepEqual(binders, ["base/sys/libc.ts"]);
});

Deno.test("layout: the import scanner sees real imports", () => {
  // Guards the checks above against a scanner that silently finds nothing.
  assert.ok(importsOf("lb/engine/engine.ts").some((i) => i.startsWith("base/packet/")));
  assert.ok(importsOf("toa/mod.ts").length > 3);
});
