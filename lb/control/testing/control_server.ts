/**
 * A stand-in for the gateway's control socket in tests: a unix stream listener that reads one request line
 * per connection, records it, and writes back what `answer` returns (a string is written as is, anything
 * else as one JSON line), then closes.
 *
 * @module
 */

/** A running stand-in; `requests` holds every parsed request line in arrival order. */
export interface ControlServer {
  /** The socket path. */
  path: string;
  /** Requests received, parsed. */
  requests: unknown[];
  /** Stops listening and removes the socket and its directory. */
  close(): Promise<void>;
}

/** Starts a stand-in control socket in a fresh temporary directory. */
export async function startControlServer(answer: (req: unknown) => unknown): Promise<ControlServer> {
  const dir = await Deno.makeTempDir({ prefix: "fnat-ctl-" });
  const path = `${dir}/control.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const requests: unknown[] = [];
  const serve = async (conn: Deno.Conn) => {
    try {
      const buf = new Uint8Array(4096);
      let text = "";
      while (!text.includes("\n")) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      const req = JSON.parse(text.slice(0, text.indexOf("\n")));
      requests.push(req);
      const out = answer(req);
      const bytes = new TextEncoder().encode(typeof out === "string" ? out : JSON.stringify(out) + "\n");
      for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
    } catch {
      /* a test client that hung up */
    } finally {
      conn.close();
    }
  };
  const done = (async () => {
    for await (const conn of listener) serve(conn);
  })().catch(() => {});
  return {
    path,
    requests,
    async close() {
      listener.close();
      await done;
      await Deno.remove(dir, { recursive: true });
    },
  };
}
