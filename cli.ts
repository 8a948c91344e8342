/**
 * The program: `mod.ts SUBCOMMAND …` dispatches to the gateway (`lb`, lb/cli.ts) or the real servers' TOA
 * proxy (`toa-proxy`, toa/cli.ts) and transparent mode (`toa-transparent`, toa/transparent_cli.ts). The one place that knows both halves, so neither imports the other.
 *
 * @module
 */
import { LB_USAGE, lbMain } from "./lb/cli.ts";

const USAGE = `${LB_USAGE}
  mod.ts toa-proxy …                 the TOA-decoding proxy on a real server (mod.ts toa-proxy --help)
  mod.ts toa-transparent …           the client from TOA in accept()/getpeername() of a cgroup's servers`;

/** Dispatches the subcommands; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  switch (cmd) {
    case "lb":
      return await lbMain(rest);
    case "toa-proxy": {
      // Loaded on demand: a gateway never loads the proxy's modules, nor a proxy the gateway's.
      const { toaProxyMain } = await import("./toa/cli.ts");
      return await toaProxyMain(rest);
    }
    case "toa-transparent": {
      const { toaTransparentMain } = await import("./toa/transparent_cli.ts");
      return await toaTransparentMain(rest);
    }
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      console.error(`fnat-lb: unknown command ${JSON.stringify(cmd)}\n${USAGE}`);
      return 2;
  }
}
