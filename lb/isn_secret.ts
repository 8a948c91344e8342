/**
 * The ISN secret of a gateway, kept in a file beside its control socket (by default under /run, a tmpfs:
 * one secret per boot, as Linux keeps its own). Why keep it at all: ISN = clock + hash(tuple, secret) grows
 * for a given tuple only while the secret stays the same. With a new secret at every start, a restarted
 * gateway's SYNs would land below the real servers' TIME_WAIT state for tuples its predecessor just used,
 * about half of them would be answered with an old ACK, and each such connection would stall a second.
 *
 * @module
 */

/** Reads the secret at `path`, or creates it (mode 0600) with 16 random bytes; returns 4 words. */
export async function loadIsnSecret(path: string): Promise<Uint32Array> {
  try {
    const b = await Deno.readFile(path);
    if (b.length === 16) return new Uint32Array(b.buffer, b.byteOffset, 4).slice();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const secret = crypto.getRandomValues(new Uint32Array(4));
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(path, new Uint8Array(secret.buffer), { mode: 0o600 });
  return secret;
}

/** Where a gateway keeps its ISN secret: beside its control socket, named after its TUN device. */
export function isnSecretPath(control: string, tun: string): string {
  const dir = control.slice(0, control.lastIndexOf("/")) || "/";
  return `${dir}/${tun}.isn-secret`;
}
