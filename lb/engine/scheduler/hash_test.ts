import assert from "node:assert/strict";
import { hashKey, murmur3 } from "./hash.ts";

Deno.test("murmur3: matches the reference MurmurHash3_x86_32 test vectors", () => {
  const vectors: [string, number, number][] = [
    ["", 0, 0],
    ["", 1, 0x514e28b7],
    ["", 0xffffffff, 0x81f16f39],
    ["abc", 0, 0xb3dd93fa],
    ["aaaa", 0x9747b28c, 0x5a97808a],
    ["test", 0, 0xba6bd213],
    ["Hello, world!", 0, 0xc0363e43],
    ["Hello, world!", 1234, 0xfaf6cdb3],
    ["The quick brown fox jumps over the lazy dog", 0, 0x2e4ff723],
  ];
  for (const [text, seed, want] of vectors) assert.equal(hashKey(text, seed), want, `${text}/${seed}`);
  assert.equal(murmur3(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0), 0x76293b50);
});

Deno.test("murmur3: two seeds give unrelated hashes of the same key", () => {
  let equalLowBytes = 0;
  for (let i = 0; i < 1000; i++) {
    const key = `10.0.${i >> 8}.${i & 255}:80`;
    if ((hashKey(key, 0) & 0xff) === (hashKey(key, 0x9747b28c) & 0xff)) equalLowBytes++;
  }
  assert.ok(equalLowBytes < 15, `low bytes agreed ${equalLowBytes} times in 1000 (chance ≈ 4)`);
});
