/**
 * Typed-array storage laid out for a big table's random accesses, which JavaScript cannot ask for:
 *
 * - cache-line alignment: a table of 64-byte records costs one cache miss per record only when each record
 *   starts on a line boundary. glibc serves a large ArrayBuffer (above its mmap threshold) from its own
 *   mapping, 16 bytes past a page boundary (its chunk header), so 64-byte records would straddle two lines.
 *   We allocate one line more and start at the first boundary inside the buffer.
 * - transparent huge pages: a packet of a cold connection in a 1 GB table misses the TLB on every array it
 *   touches with 4 KB pages (262,144 of them); with 2 MB pages the whole table is 512 TLB entries. Hosts
 *   (this one too) often set THP to `madvise`, and nothing advises V8's array buffers, so we do:
 *   `madvise(MADV_HUGEPAGE)` on the whole 2 MB pages inside the buffer, before its first touch.
 *
 * Both need the buffer's address, from Deno's FFI, so only when the process may use FFI (the gateway runs
 * with `-A`). Without that permission we assume glibc's 16-byte header and skip the advice: only speed is
 * lost, never correctness.
 *
 * @example
 * ```ts
 * const { buffer, byteOffset } = alignedBuffer(1024 * 64);
 * const words = new Uint32Array(buffer, byteOffset, 1024 * 16);
 * ```
 *
 * @module
 */

import { libc, MADV_HUGEPAGE } from "./libc.ts";

/** The cache line size of x86-64 and most aarch64 cores. */
export const CACHE_LINE = 64;

/** Where glibc's mmap'd chunks start after the page boundary (x86-64, aarch64: two size_t). */
const GLIBC_MMAP_HEADER = 16;

/** A transparent huge page on x86-64 and on aarch64 with 4 KB base pages. */
const HUGE_PAGE = 2 * 1024 * 1024;

/** A buffer and the offset inside it where `bytes` cache-line-aligned bytes start. */
export interface AlignedBuffer {
  /** The whole allocation (`bytes` + one cache line). */
  readonly buffer: ArrayBuffer;
  /** Byte offset of the first aligned byte (a multiple of 16, below {@link CACHE_LINE}). */
  readonly byteOffset: number;
}

/**
 * Allocates `bytes` zeroed bytes starting on a cache-line boundary, huge-page backed where large enough
 * (best effort without FFI permission, see the module doc).
 */
export function alignedBuffer(bytes: number): AlignedBuffer {
  const buffer = hugeBuffer(bytes + CACHE_LINE);
  const address = addressOf(buffer);
  const mis = address === undefined ? GLIBC_MMAP_HEADER : Number(address % BigInt(CACHE_LINE));
  return { buffer, byteOffset: (CACHE_LINE - mis) % CACHE_LINE };
}

/** Allocates `bytes` zeroed bytes, asking for transparent huge pages when they span at least one. */
export function hugeBuffer(bytes: number): ArrayBuffer {
  const buffer = new ArrayBuffer(bytes);
  if (bytes < 2 * HUGE_PAGE) return buffer;
  const address = addressOf(buffer);
  if (address === undefined) return buffer;
  const huge = BigInt(HUGE_PAGE);
  const start = (address + huge - 1n) / huge * huge;
  const end = (address + BigInt(bytes)) / huge * huge;
  // Advice only: a kernel without THP says EINVAL, and the buffer works the same with small pages.
  if (end > start) libc().madvise(Deno.UnsafePointer.create(start), Number(end - start), MADV_HUGEPAGE);
  return buffer;
}

/** The buffer's address when the process may use FFI, else undefined. */
function addressOf(buffer: ArrayBuffer): bigint | undefined {
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return undefined;
    const p = Deno.UnsafePointer.of(buffer);
    return p === null ? undefined : BigInt(Deno.UnsafePointer.value(p));
  } catch {
    // No permission API or no FFI (another runtime): plain buffers.
    return undefined;
  }
}

/**
 * Both allocators as one object: what the worker and the engine bench hand the engine for its tables
 * (lb/engine/table_memory.ts's TableMemory; the engine itself never calls the kernel).
 */
export const ALIGNED_HUGE_MEMORY = { buffer: hugeBuffer, aligned: alignedBuffer };
