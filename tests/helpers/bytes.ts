/**
 * Test payloads and their fingerprints: random files for transfers that must arrive byte-identical.
 *
 * @module
 */

/** `n` random bytes (filled 64 KiB at a time: getRandomValues takes at most 65536 per call). */
export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(b.subarray(off, off + 65536));
  return b;
}

/** The SHA-256 of `b`, as lowercase hex. */
export async function sha256Hex(b: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}
