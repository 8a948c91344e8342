import assert from "node:assert/strict";
import { prng } from "../../tests/helpers/prng.ts";
import {
  COOKIE_MSS_V4,
  COOKIE_NO_WSCALE,
  COOKIE_SLOT_SECONDS,
  cookieData,
  cookieMssIndex,
  cookieMssIndexFor,
  cookieSack,
  cookieWscale,
  SynCookies,
} from "./syn_cookie.ts";

const SRC = 0xc6120102;
const DST = 0xc6120064;
const PORTS = ((40000 << 16) | 80) >>> 0;

Deno.test("syn cookie: good in its slot and the next, carries its data, refused when anything differs", () => {
  const rnd = prng(7);
  const word = () => rnd();
  let accepted = 0;
  for (let i = 0; i < 20000; i++) {
    const c = new SynCookies(Uint32Array.of(word(), word(), word(), word()), word() / 4);
    const isn = word();
    const data = cookieData(i & 3, i % 16 === 15 ? COOKIE_NO_WSCALE : i % 15, (i & 1) === 1);
    const k = c.make(1000, SRC, DST, PORTS, isn, data);
    assert.equal(c.check(1000, SRC, DST, PORTS, isn, k), data);
    assert.equal(c.check(1000 + COOKIE_SLOT_SECONDS, SRC, DST, PORTS, isn, k), data, "next slot");
    assert.equal(c.check(1000 + 3 * COOKIE_SLOT_SECONDS, SRC, DST, PORTS, isn, k), -1, "three slots on");
    // One bit off anywhere in the tuple or the ISN (the ISN next to it, as isn ± 1 is the classic slip).
    const bit = 1 << (i % 32);
    if (c.check(1000, SRC ^ bit, DST, PORTS, isn, k) >= 0) accepted++;
    if (c.check(1000, SRC, DST ^ bit, PORTS, isn, k) >= 0) accepted++;
    if (c.check(1000, SRC, DST, PORTS ^ bit, isn, k) >= 0) accepted++;
    if (c.check(1000, SRC, DST, PORTS, (isn + 1) >>> 0, k) >= 0) accepted++;
    if (c.check(1000, SRC, DST, PORTS, isn, (k ^ (bit | 0x80)) >>> 0) >= 0) accepted++;
  }
  // 25 hash bits: 100,000 wrong guesses pass about 0.003 times.
  assert.equal(accepted, 0);
});

Deno.test("syn cookie data: MSS index, window scale or none, SACK", () => {
  const d = cookieData(2, 9, true);
  assert.deepEqual([cookieMssIndex(d), cookieWscale(d), cookieSack(d)], [2, 9, true]);
  const n = cookieData(0, COOKIE_NO_WSCALE, false);
  assert.deepEqual([cookieMssIndex(n), cookieWscale(n), cookieSack(n)], [0, COOKIE_NO_WSCALE, false]);
  assert.deepEqual([1460, 1459, 1300, 600, 100, 9000].map((m) => cookieMssIndexFor(COOKIE_MSS_V4, m)), [
    3,
    2,
    1,
    0,
    0,
    3,
  ]);
});
