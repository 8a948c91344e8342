/**
 * `deno task fuzz -- --seed N --count M`: a long engine fuzz run. Prints the counts and every violation class
 * with its first reproducers (seed, index, engine, csumPartial, input hex); exits 1 when any was found.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { formatReport, runEngineFuzz } from "./engine_fuzz.ts";

const USAGE = "usage: deno task fuzz -- [--seed N] [--count M] [--keep K]";

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
