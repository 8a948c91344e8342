import assert from "node:assert/strict";
import { SP_AUTO_HOLD, SynproxyAuto } from "./synproxy_auto.ts";
import { COOKIE_SLOT_SECONDS } from "./syn_cookie.ts";

function auto(threshold: number): SynproxyAuto {
  const a = new SynproxyAuto();
  a.threshold = threshold;
  return a;
}

Deno.test("synproxy auto: on at the threshold of half-open entries, once", () => {
  const a = auto(10);
  assert.ok(!a.halfOpened(9, 100, 0, 0));
  assert.ok(a.halfOpened(10, 100, 0, 0));
  assert.ok(a.active);
  assert.ok(!a.halfOpened(11, 100, 0, 0), "already on");
});

Deno.test("synproxy auto: judged after a hold period; a flood's unanswered cookies keep it on", () => {
  const a = auto(10);
  a.halfOpened(10, 100, 1000, 0);
  assert.ok(!a.tick(100 + SP_AUTO_HOLD - 0.1, 0, 1000, 0), "not before the hold period");
  // 20 cookies sent, none answered: 20 ≥ 5.
  assert.ok(!a.tick(100 + SP_AUTO_HOLD, 0, 1020, 0));
  assert.ok(a.active);
  // The next period starts there: 4 sent, 4 answered, 4 half-open (< 5 each): off.
  assert.ok(!a.tick(100 + 2 * SP_AUTO_HOLD - 0.1, 4, 1024, 4));
  assert.ok(a.tick(100 + 2 * SP_AUTO_HOLD, 4, 1024, 4));
  assert.ok(!a.active);
});

Deno.test("synproxy auto: half-open entries alone keep it on; cookies stay good two slots after off", () => {
  const a = auto(10);
  a.halfOpened(10, 0, 0, 0);
  assert.ok(!a.tick(SP_AUTO_HOLD, 5, 0, 0), "5 half-open is not under 5");
  assert.ok(a.tick(2 * SP_AUTO_HOLD, 4, 0, 0));
  const off = 2 * SP_AUTO_HOLD;
  assert.ok(a.acceptsCookies(off + 2 * COOKIE_SLOT_SECONDS - 0.1));
  assert.ok(!a.acceptsCookies(off + 2 * COOKIE_SLOT_SECONDS));
  assert.ok(!new SynproxyAuto().acceptsCookies(0), "never on: no cookie was sent");
});
