import assert from "node:assert/strict";
import { ALIGNED_HUGE_MEMORY, alignedBuffer, CACHE_LINE } from "./aligned.ts";

Deno.test("aligned buffer: the offset leaves room for the bytes asked", () => {
  for (const n of [64, 4096, 1 << 20]) {
    const { buffer, byteOffset } = alignedBuffer(n);
    assert.equal(byteOffset % 16, 0);
    assert.ok(byteOffset < CACHE_LINE);
    assert.ok(buffer.byteLength >= byteOffset + n);
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") continue; // best effort without
    const p = Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)!);
    assert.equal((BigInt(p) + BigInt(byteOffset)) % BigInt(CACHE_LINE), 0n, "on a line boundary (-A: FFI)");
  }
});

Deno.test("aligned, huge-page memory: the engine's allocator gives zeroed buffers of the size asked", () => {
  const b = ALIGNED_HUGE_MEMORY.buffer(8 << 20);
  assert.equal(b.byteLength, 8 << 20);
  assert.ok(new Uint32Array(b).every((w) => w === 0));
  const { buffer, byteOffset } = ALIGNED_HUGE_MEMORY.aligned(1 << 20);
  assert.ok(buffer.byteLength >= byteOffset + (1 << 20));
});
