/**
 * Long-running child processes for end-to-end tests (a gateway, nginx, tcpdump): started in the background,
 * their output collected, waited for with a time bound (for output, or until their namespace listens on
 * given addresses), and stopped — SIGTERM, then SIGKILL after a grace period — so that no test can leave
 * one running or wait forever.
 *
 * @example
 * ```ts
 * const p = spawnBackground(["ip", "netns", "exec", ns, "tcpdump", "-i", "eth0", "-w", "-"]);
 * await p.waitFor(() => p.stderr().includes("listening on"), "tcpdump listening", 5_000);
 * const { stdout } = await p.stop("SIGINT");
 * ```
 *
 * @module
 */
import { nsExec } from "../../netns-scripts/topology.ts";

/** What a stopped process left: its status and everything it printed. */
export interface Stopped {
  /** Exit code (128 + signal when killed by one). */
  code: number;
  /** The signal that ended it, if any. */
  signal: Deno.Signal | null;
  /** Everything written to stdout, as bytes. */
  stdout: Uint8Array;
  /** Everything written to stderr, decoded. */
  stderr: string;
}

/** A child process running in the background. */
export interface Background {
  /** Process id (of `ip netns exec …`, which execs the command, so also the command's id). */
  readonly pid: number;
  /** The command line, for messages. */
  readonly cmd: string[];
  /** Stdout so far, decoded. */
  stdout(): string;
  /** Stderr so far, decoded. */
  stderr(): string;
  /** True until the process has exited. */
  running(): boolean;
  /**
   * Resolves once `pred()` holds (checked on every output chunk and every `intervalMs`); rejects when the
   * process exits first or `timeoutMs` passes, with `what` and the process's stderr in the message.
   */
  waitFor(pred: () => boolean, what: string, timeoutMs: number, intervalMs?: number): Promise<void>;
  /** Sends `signal` (default SIGTERM), SIGKILL after `graceMs`, waits for exit and all output. Idempotent. */
  stop(signal?: Deno.Signal, graceMs?: number): Promise<Stopped>;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Starts `cmd` in the background with stdout and stderr collected. */
export function spawnBackground(cmd: string[]): Background {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const outChunks: Uint8Array[] = [];
  const errChunks: Uint8Array[] = [];
  let outText: string | undefined = "";
  let errText: string | undefined = "";
  const wakers = new Set<() => void>();
  const wake = () => wakers.forEach((w) => w());
  const drain = async (s: ReadableStream<Uint8Array>, into: Uint8Array[], which: "out" | "err") => {
    for await (const chunk of s) {
      into.push(chunk);
      if (which === "out") outText = undefined;
      else errText = undefined;
      wake();
    }
  };
  const drained = Promise.all([drain(child.stdout, outChunks, "out"), drain(child.stderr, errChunks, "err")]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    wake();
    return s;
  });
  const dec = (chunks: Uint8Array[]) => new TextDecoder().decode(concat(chunks));
  const stdout = () => (outText ??= dec(outChunks));
  const stderr = () => (errText ??= dec(errChunks));
  let stopping: Promise<Stopped> | undefined;

  const self: Background = {
    pid: child.pid,
    cmd,
    stdout,
    stderr,
    running: () => !exited,
    waitFor(pred, what, timeoutMs, intervalMs = 50) {
      return new Promise<void>((resolve, reject) => {
        let done = false;
        const finish = (err?: Error) => {
          if (done) return;
          done = true;
          wakers.delete(check);
          clearTimeout(timer);
          clearInterval(poll);
          if (err) reject(err);
          else resolve();
        };
        const check = () => {
          let ok = false;
          try {
            ok = pred();
          } catch (e) {
            return finish(e as Error);
          }
          if (ok) finish();
          else if (exited) {
            finish(new Error(`${what}: ${cmd.join(" ")} exited first; stderr:\n${stderr().trim()}`));
          }
        };
        const timer = setTimeout(
          () => finish(new Error(`${what}: not within ${timeoutMs} ms; stderr:\n${stderr().trim()}`)),
          timeoutMs,
        );
        const poll = setInterval(check, intervalMs);
        wakers.add(check);
        check();
      });
    },
    stop(signal: Deno.Signal = "SIGTERM", graceMs = 5_000) {
      stopping ??= (async () => {
        if (!exited) {
          try {
            child.kill(signal);
          } catch { /* exited meanwhile */ }
        }
        const timer = setTimeout(() => {
          try {
            if (!exited) child.kill("SIGKILL");
          } catch { /* exited meanwhile */ }
        }, graceMs);
        const s = await status;
        clearTimeout(timer);
        await drained;
        return { code: s.code, signal: s.signal, stdout: concat(outChunks), stderr: stderr() };
      })();
      return stopping;
    },
  };
  return self;
}

/** Polls `fn` every `intervalMs` until it returns true; throws naming `what` after `timeoutMs`. */
export async function waitUntil(
  fn: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs: number,
  intervalMs = 50,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (performance.now() >= deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** True while `/proc/PID` exists and the process is not a zombie. */
export async function processAlive(pid: number): Promise<boolean> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Listening TCP sockets (`addr:port`, as ss spells them) of namespace `ns`. */
export async function listeningSockets(ns: string): Promise<Set<string>> {
  const r = await nsExec(ns, ["ss", "-Hltn"], 5_000);
  return new Set(r.stdout.split("\n").map((l) => l.trim().split(/\s+/)[3]).filter(Boolean));
}

/** Waits (bounded) until `ns` listens on every address of `addrs`; throws if `p` (named `what`) exits first. */
export async function waitListening(
  ns: string,
  addrs: string[],
  p: Background,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  await waitUntil(
    async () => {
      if (!p.running()) throw new Error(`${what} exited: ${p.stderr().trim()}`);
      const l = await listeningSockets(ns);
      return addrs.every((a) => l.has(a));
    },
    `${what} listening on ${addrs.join(", ")}`,
    timeoutMs,
  );
}
