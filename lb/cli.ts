/**
 * The `lb` subcommand: `mod.ts lb --config F` runs the gateway; with `--check` it only validates the file
 * (as `nginx -t` and `haproxy -c` do); `--list`, `--stats`, `--reload` ask a running gateway over its control
 * socket (lb/control/client.ts) and print the answer, laid out as ipvsadm does (lb/control/list_format.ts) or
 * as JSON with `--json`. Errors at this edge are one line with the reason, and a non-zero exit status.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ConfigError, type GatewayConfig, loadConfig } from "./config.ts";
import { ControlError, type ControlRequest, reloadAnswer, request } from "./control/client.ts";
import {
  formatConnections,
  formatList,
  formatPools,
  formatRate,
  formatStats,
  type ListedConnection,
  type ListedStats,
  rates,
} from "./control/list_format.ts";
import { runGateway } from "./gateway.ts";
import { TunError } from "./tun/mod.ts";

/** Usage of `mod.ts lb`. */
export const LB_USAGE = `usage:
  mod.ts lb --config FILE            run the FULLNAT gateway (until SIGINT/SIGTERM; SIGUSR2 prints stats)
  mod.ts lb --config FILE --check    validate FILE and exit: 0 and "… ok" when it would start, 1 and the reason
  mod.ts lb --config FILE --list     a running gateway's services and real servers (ipvsadm -Ln)
        --list --stats               … with traffic since start (ipvsadm -Ln --stats)
        --list --rate                … per second, over 1 s (ipvsadm -Ln --rate)
        --list --connections         … its connections (ipvsadm -Lnc, with the local address column)
        --list --pools               … its local address pools (ports used, free, misses)
        --json                       any --list as JSON instead of text
  mod.ts lb --config FILE --stats    a running gateway's stats as JSON
  mod.ts lb --config FILE --reload   make a running gateway re-read FILE; prints its answer, exits 0 if applied`;

/** Seconds between the two samples of `--list --rate`. */
const RATE_SECONDS = 1;

/** `--check`'s line for a valid file: `fnat-lb: config F ok (N services, M servers)`. */
export function checkLine(path: string, config: GatewayConfig): string {
  const servers = config.services.reduce((n, s) => n + s.realServers.length, 0);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  return `fnat-lb: config ${path} ok (${plural(config.services.length, "service")}, ${
    plural(servers, "server")
  })`;
}

/** Runs the `lb` subcommand; returns the exit status. */
export async function lbMain(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: "string", short: "c" },
        check: { type: "boolean", default: false },
        list: { type: "boolean", short: "L", default: false },
        stats: { type: "boolean", default: false },
        rate: { type: "boolean", default: false },
        connections: { type: "boolean", default: false },
        pools: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        reload: { type: "boolean", default: false },
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
  const usage = (why: string) => {
    console.error(`fnat-lb: ${why}\n${LB_USAGE}`);
    return 2;
  };
  if (!values.config) return usage("--config FILE is required");
  const verbs = (["check", "list", "reload"] as const).filter((v) => values[v]);
  if (verbs.length > 1) return usage(`--${verbs[0]} and --${verbs[1]} do not go together`);
  const views = (["rate", "connections", "pools"] as const).filter((v) => values[v]);
  if (views.length > 0 && !values.list) return usage(`--${views[0]} goes with --list`);
  if (views.length + (values.list && values.stats ? 1 : 0) > 1) {
    return usage("pick one of --stats, --rate, --connections, --pools for --list");
  }
  if (values.json && !values.list) return usage("--json goes with --list (--stats is JSON already)");
  if (values.stats && (values.check || values.reload)) return usage("--stats goes alone or with --list");
  try {
    const config = await loadConfig(values.config);
    if (values.check) {
      console.log(checkLine(values.config, config));
      return 0;
    }
    const ask = (req: ControlRequest) => request(config.control, req);
    if (values.reload) {
      const answer = reloadAnswer(await ask({ cmd: "reload" }));
      // The gateway answers with its log line ("fnat-lb reload failed: …"); say it once, not twice.
      const message = answer.message.replace(/^fnat-lb (reload failed: )?/, "");
      (answer.ok ? console.log : console.error)(
        `fnat-lb: reload ${answer.ok ? "ok" : "failed"}: ${message}`,
      );
      return answer.ok ? 0 : 1;
    }
    if (values.list) {
      console.log(await list(ask, values).then((t) => t.trimEnd()));
      return 0;
    }
    if (values.stats) {
      console.log(JSON.stringify(await ask({ cmd: "stats" })));
      return 0;
    }
    await runGateway(config, { onReady: (line) => console.log(line), configPath: values.config });
    return 0;
  } catch (e) {
    const asking = values.list || values.stats || values.reload;
    if (e instanceof ConfigError || e instanceof TunError || e instanceof ControlError) {
      console.error(`fnat-lb: ${e.message}`);
    } else if ((e instanceof Deno.errors.NotFound || e instanceof Deno.errors.ConnectionRefused) && asking) {
      console.error(
        `fnat-lb: no gateway is running for ${values.config} (nothing listens on its control socket: ${e.message})`,
      );
    } else console.error(`fnat-lb: ${(e as Error).message}`);
    return 1;
  }
}

/** The text (or JSON) of one `--list` view. */
async function list(
  ask: (req: ControlRequest) => Promise<unknown>,
  v: { stats: boolean; rate: boolean; connections: boolean; pools: boolean; json: boolean },
): Promise<string> {
  if (v.connections) {
    const rows = await ask({ cmd: "connections" }) as ListedConnection[];
    return v.json ? JSON.stringify(rows) : formatConnections(rows);
  }
  const stats = await ask({ cmd: "stats" }) as ListedStats;
  if (v.rate) {
    await new Promise((r) => setTimeout(r, RATE_SECONDS * 1000));
    const r = rates(stats, await ask({ cmd: "stats" }) as ListedStats, RATE_SECONDS);
    return v.json ? JSON.stringify(r) : formatRate(r);
  }
  if (v.json) return JSON.stringify(v.pools ? stats.pools : stats);
  if (v.pools) return formatPools(stats);
  return v.stats ? formatStats(stats) : formatList(stats);
}
