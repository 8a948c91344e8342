/**
 * The `toa-proxy` subcommand. The proxy itself (TCP_SAVED_SYN listener, PROXY protocol relay) is not in
 * this build yet: the command says so plainly and exits non-zero rather than pretending to run.
 *
 * @module
 */

/** Runs the `toa-proxy` subcommand; returns the exit status. */
export function toaProxyMain(_args: string[]): Promise<number> {
  console.error("toa-proxy: not available in this build yet (the TOA decoder is: see decodeToa in mod.ts)");
  return Promise.resolve(2);
}
