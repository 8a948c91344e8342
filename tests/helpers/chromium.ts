/**
 * Headless Chromium for the status-page tests: finding the binary, the flags that work on this machine, and
 * reading the server rows of the DOM it dumps.
 *
 * @module
 */
import assert from "node:assert/strict";

/** The Chromium binary: `$CHROMIUM`, else the first of the usual names on PATH; undefined when none is. */
export async function findChromium(): Promise<string | undefined> {
  const env = Deno.env.get("CHROMIUM");
  if (env) return env;
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    const out = await new Deno.Command("sh", {
      args: ["-c", `command -v ${name}`],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    if (out.success) return new TextDecoder().decode(out.stdout).trim();
  }
  return undefined;
}

/** Headless flags for a run with its own profile directory, `extra` flags, then the URL. */
export function headlessArgs(profile: string, extra: readonly string[], url: string): string[] {
  return [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-extensions",
    "--hide-scrollbars",
    `--user-data-dir=${profile}`,
    // Long enough for the page script's first fetches (at 0, 2 and 4 s of virtual time) to land.
    "--virtual-time-budget=5000",
    ...extra,
    url,
  ];
}

/** The data attributes of the DOM's row for `server` (`data-health`, `data-effective-weight`, …). */
export function serverRow(dom: string, server: string): Record<string, string> {
  const m = new RegExp(`<tr ([^>]*data-server="${server.replace(/[.[\]]/g, "\\$&")}"[^>]*)>`).exec(dom);
  assert.ok(m, `no row for ${server} in the DOM`);
  const attrs: Record<string, string> = {};
  for (const a of m[1].matchAll(/data-([a-z-]+)="([^"]*)"/g)) attrs[a[1]] = a[2];
  return attrs;
}

/** The page's `#live` element state: "static" (server render), "ok" (the script fetched), "error". */
export function liveState(dom: string): string {
  const m = /<span id="live" data-live="([a-z]+)"/.exec(dom);
  assert.ok(m, "no #live in the DOM");
  return m[1];
}
