/**
 * `deno task fuzz -- --seed N --count M`: a long engine fuzz run. Prints the counts and every violation class
 * with its first reproducers (seed, index, engine, csumPartial, input hex); exits 1 when any was found.
 * `--hex H [--partial] [--engine NAME]` runs one packet on a fresh engine instead (a reproducer that needs
 * no connection state; otherwise replay the run with its seed and a count past the index).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { checkPacket, formatReport, fromHex, fuzzEngine, runEngineFuzz, SETUPS } from "./engine_fuzz.ts";

const USAGE = "usage: deno task fuzz -- [--seed N] [--count M] [--keep K]\n" +
  "       deno task fuzz -- --hex PACKET [--partial] [--engine one-worker|two-workers]";

/** Runs one packet on a fresh engine and prints its verdict; returns the exit code. */
function replay(hex: string, partial: boolean, engine: string): number {
  const setup = SETUPS.find((s) => s.name === engine);
  if (setup === undefined || !/^([0-9a-fA-F]{2})+$/.test(hex.replace(/\s+/g, ""))) {
    console.error(`--hex takes an even number of hex digits, --engine one of ${SETUPS.map((s) => s.name)}`);
    return 2;
  }
  const p = fromHex(hex);
  const { ret, violations } = checkPacket(fuzzEngine(setup), p.b, p.len, 1000, partial);
  console.log(`process returned ${ret}`);
  for (const v of violations) console.log(`[${v.cls}] ${v.detail}`);
  if (violations.length === 0) console.log("no violations");
  return violations.length === 0 ? 0 : 1;
}

/** Parses the flags, runs the fuzzer and returns the exit code. */
export function main(argv: string[]): number {
  const args = argv[0] === "--" ? argv.slice(1) : argv;
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        seed: { type: "string", default: String(Date.now() % 1_000_000) },
        count: { type: "string", default: "1000000" },
        keep: { type: "string", default: "3" },
        hex: { type: "string" },
        partial: { type: "boolean", default: false },
        engine: { type: "string", default: SETUPS[0].name },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.hex !== undefined) return replay(values.hex, values.partial, values.engine);
  const seed = Number(values.seed);
  const count = Number(values.count);
  const keep = Number(values.keep);
  if (!Number.isInteger(seed) || !Number.isInteger(count) || count < 0 || !Number.isInteger(keep)) {
    console.error(`--seed, --count and --keep take integers\n${USAGE}`);
    return 2;
  }
  const t0 = performance.now();
  const rep = runEngineFuzz({ seed, count, keep });
  const ms = performance.now() - t0;
  console.log(`seed ${seed}, ${count} packets in ${(ms / 1000).toFixed(1)} s`);
  console.log(formatReport(rep));
  return rep.classes.size === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(main(Deno.args));
