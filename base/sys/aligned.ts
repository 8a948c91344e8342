/**
 * Cache-line-aligned typed-array storage: a table of 64-byte records is worth one cache miss per record only
 * when each record starts on a line boundary, and JavaScript cannot ask for an aligned ArrayBuffer.
 *
 * glibc serves a large ArrayBuffer (above its mmap threshold) from its own mapping, 16 bytes past a page
 * boundary (its chunk header), so a buffer of 64-byte records would straddle two lines per record. We
 * allocate one line more and start the records at the first boundary inside the buffer. The address comes
 * from Deno's FFI pointer when the process may use FFI (the gateway runs with `-A`); without that permission
 * we assume glibc's 16-byte header, which only costs speed if wrong, never correctness.
 *
 * @example
 * ```ts
 * const { buffer, byteOffset } = alignedBuffer(1024 * 64);
 * const words = new Uint32Array(buffer, byteOffset, 1024 * 16);
 * ```
 *
 * @module
 */

/** The cache line size of x86-64 and most aarch64 cores. */
export const CACHE_LINE = 64;

/** Where glibc's mmap'd chunks start after the page boundary (x86-64, aarch64: two size_t). */
const GLIBC_MMAP_HEADER = 16;

/** A buffer and the offset inside it where `bytes` cache-line-aligned bytes start. */
export interface AlignedBuffer {
  /** The whole allocation (`bytes` + one cache line). */
  readonly buffer: ArrayBuffer;
  /** Byte offset of the first aligned byte (a multiple of 16, below {@link CACHE_LINE}). */
  readonly byteOffset: number;
}

/** Allocates `bytes` zeroed bytes starting on a cache-line boundary (best effort without FFI permission). */
export function alignedBuffer(bytes: number): AlignedBuffer {
  const buffer = new ArrayBuffer(bytes + CACHE_LINE);
  const mis = addressModLine(buffer);
  return { buffer, byteOffset: (CACHE_LINE - mis) % CACHE_LINE };
}

/** The buffer's address modulo the cache line, from FFI when allowed, else glibc's mmap header. */
function addressModLine(buffer: ArrayBuffer): number {
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state === "granted") {
      const p = Deno.UnsafePointer.of(buffer);
      if (p !== null) return Number(BigInt(Deno.UnsafePointer.value(p)) % BigInt(CACHE_LINE));
    }
  } catch {
    // No permission API or no FFI (another runtime): fall back to the usual glibc layout.
  }
  return GLIBC_MMAP_HEADER;
}
