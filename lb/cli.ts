/**
 * The `lb` subcommand: `mod.ts lb …` runs the gateway, `mod.ts lb --stats …` reads a running one's counters.
 * Errors at this edge are one line with the reason, and a non-zero exit status.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "./config.ts";
import { readStats, runGateway } from "./gateway.ts";
import { TunError } from "./tun/mod.ts";

/** Usage of `mod.ts lb`. */
export const LB_USAGE = `usage:
  mod.ts lb --config FILE            run the FULLNAT gateway (until SIGINT/SIGTERM; SIGUSR2 prints stats)
  mod.ts lb --config FILE --stats    print a running gateway's stats as JSON (from its control socket)`;

/** Runs the `lb` subcommand; returns the exit status. */
export async function lbMain(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: "string", short: "c" },
        stats: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }));
  } catch (e) {
    console.error(`fnat-lb: ${(e as Error).message}\n${LB_USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(LB_USAGE);
    return 0;
  }
  if (!values.config) {
    console.error(`fnat-lb: --config FILE is required\n${LB_USAGE}`);
    return 2;
  }
  try {
    const config = await loadConfig(values.config);
    if (values.stats) {
      console.log((await readStats(config.control)).trimEnd());
      return 0;
    }
    await runGateway(config, { onReady: (line) => console.log(line) });
    return 0;
  } catch (e) {
    if (e instanceof ConfigError || e instanceof TunError) console.error(`fnat-lb: ${e.message}`);
    else if (e instanceof Deno.errors.NotFound && values.stats) {
      console.error(`fnat-lb: no gateway is running for ${values.config} (no control socket)`);
    } else console.error(`fnat-lb: ${(e as Error).message}`);
    return 1;
  }
}
