/**
 * Where the engine's big tables (connection records, hash buckets, the local-port index, the timer wheel's
 * links) get their memory. The engine never calls the kernel (docs/architecture.md), yet a 10 M-connection
 * table wants records on cache-line boundaries and transparent huge pages, which take the buffer's address
 * and `madvise(2)`. So the caller that may call the kernel — the worker, the engine bench — passes
 * base/sys/aligned.ts's `ALIGNED_HUGE_MEMORY`; the default here is plain buffers: the same tables, only
 * slower once they are far larger than the caches.
 *
 * @module
 */

/** An allocator of zeroed table memory. */
export interface TableMemory {
  /** `bytes` zeroed bytes, read at random (huge pages where the host gives them). */
  buffer(bytes: number): ArrayBuffer;
  /** `bytes` zeroed bytes from a cache-line boundary: the buffer, and the offset where they start. */
  aligned(bytes: number): { buffer: ArrayBuffer; byteOffset: number };
}

/** Plain ArrayBuffers: no address is known, so the records start at offset 0, wherever that falls. */
export const PLAIN_MEMORY: TableMemory = {
  buffer: (bytes) => new ArrayBuffer(bytes),
  aligned: (bytes) => ({ buffer: new ArrayBuffer(bytes), byteOffset: 0 }),
};
