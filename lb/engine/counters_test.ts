// Counter codes and names: each set comes from one name → code table; these tests hold the constants, the
// names arrays and the tables to one another, so a new reason cannot get a code without a name (or the
// name of another), and stats never prints one counter under another's name.
import assert from "node:assert/strict";
import * as V from "../../base/packet/validate.ts";
import * as C from "./counters.ts";

const SNAKE_CASE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

/**
 * Checks one table against its names array and its exported constants: codes unique and dense from
 * `first`, names unique and snake_case, names[code] = name, and the constants with `prefix` are exactly
 * the table's entries, each named for its entry (PREFIX + NAME ↔ name).
 */
function checkTable(
  what: string,
  table: Readonly<Record<string, number>>,
  names: readonly string[],
  first: number,
  module: Record<string, unknown>,
  prefix: string,
): void {
  const entries = Object.entries(table);
  assert.ok(entries.length > 0, `${what}: empty table`);
  const codes = entries.map(([, code]) => code).sort((a, b) => a - b);
  assert.deepEqual(codes, entries.map((_, i) => first + i), `${what}: codes unique and dense from ${first}`);
  for (const [name, code] of entries) {
    assert.match(name, SNAKE_CASE, `${what}: ${name} is snake_case`);
    assert.equal(names[code], name, `${what}: name of code ${code}`);
    assert.equal(module[prefix + name.toUpperCase()], code, `${what}: ${prefix}${name.toUpperCase()}`);
  }
  const constants = Object.entries(module).filter(([k, v]) => k.startsWith(prefix) && typeof v === "number");
  assert.deepEqual(
    Object.fromEntries(constants),
    Object.fromEntries(entries.map(([name, code]) => [prefix + name.toUpperCase(), code])),
    `${what}: every ${prefix}* constant is in the table`,
  );
}

/** Checks a names array as a whole: no holes, unique, snake_case. */
function checkNames(what: string, names: readonly string[]): void {
  for (let i = 0; i < names.length; i++) {
    assert.equal(typeof names[i], "string", `${what}: no name for code ${i}`);
    assert.match(names[i], SNAKE_CASE, `${what}: ${names[i]} is snake_case`);
  }
  assert.equal(new Set(names).size, names.length, `${what}: names unique`);
}

Deno.test("validator reasons: PACKET_* constants, PACKET_REASONS and PACKET_REASON_NAMES line up", () => {
  checkTable("validator", V.PACKET_REASONS, V.PACKET_REASON_NAMES, 0, V, "PACKET_");
  checkNames("validator", V.PACKET_REASON_NAMES);
  assert.equal(V.PACKET_REASON_NAMES.length, Object.keys(V.PACKET_REASONS).length);
  assert.equal(V.PACKET_REASON_NAMES[V.PACKET_OK], "ok");
  assert.equal(V.PACKET_OK, 0, "0 is ok, so a drop counter at 0 is never counted");
});

Deno.test("drop reasons: the validator's codes first, then DROP_REASONS; DROP_* constants named for them", () => {
  // The engine's drop reasons start where the validator's end: one code space, one counter array.
  checkTable("drops", C.DROP_REASONS, C.DROP_NAMES, V.PACKET_REASON_NAMES.length, C, "DROP_");
  checkNames("drops", C.DROP_NAMES);
  assert.deepEqual(C.DROP_NAMES.slice(0, V.PACKET_REASON_NAMES.length), V.PACKET_REASON_NAMES);
  assert.equal(C.DROP_NAMES.length, V.PACKET_REASON_NAMES.length + Object.keys(C.DROP_REASONS).length);
  // Validator reasons are counted under their own codes.
  for (const [name, code] of Object.entries(V.PACKET_REASONS)) assert.equal(C.DROP_NAMES[code], name);
});

Deno.test("events: EV_* constants, EVENTS and EVENT_NAMES line up", () => {
  checkTable("events", C.EVENTS, C.EVENT_NAMES, 0, C, "EV_");
  checkNames("events", C.EVENT_NAMES);
  assert.equal(C.EVENT_NAMES.length, Object.keys(C.EVENTS).length);
});

Deno.test("codes keep their published values (logs and stats readers key on them)", () => {
  assert.deepEqual(
    [
      V.PACKET_OK,
      V.PACKET_TRUNCATED,
      V.PACKET_BAD_VERSION,
      V.PACKET_BAD_IHL,
      V.PACKET_LENGTH_MISMATCH,
      V.PACKET_FRAGMENT,
      V.PACKET_BAD_DATA_OFFSET,
      V.PACKET_OPTION_OVERFLOW,
      V.PACKET_UNSUPPORTED,
    ],
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
  );
  assert.deepEqual(
    [
      C.DROP_NOT_FOR_US,
      C.DROP_NO_SERVICE,
      C.DROP_NO_CONNECTION,
      C.DROP_NO_CONNECTION_REPLY,
      C.DROP_NO_REAL_SERVER,
      C.DROP_PORT_EXHAUSTED,
      C.DROP_TABLE_FULL,
      C.DROP_ICMP_NO_CONNECTION,
      C.DROP_ICMP_UNSUPPORTED,
      C.DROP_PROTOCOL,
      C.DROP_BAD_STATE,
      C.DROP_ECHO_RATE_LIMITED,
      C.DROP_BAD_CHECKSUM,
      C.DROP_MARTIAN_SOURCE,
      C.DROP_FRAG_MALFORMED,
      C.DROP_FRAG_OVERLAP,
      C.DROP_FRAG_DUPLICATE,
      C.DROP_FRAG_TINY,
      C.DROP_FRAG_TOO_BIG,
      C.DROP_FRAG_TOO_MANY,
      C.DROP_FRAG_DISCARDED,
    ],
    [9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29],
  );
  assert.deepEqual(
    [
      C.EV_TOA_INSERTED,
      C.EV_TOA_NO_SPACE,
      C.EV_TOA_STRIPPED,
      C.EV_TIMESTAMP_REMOVED,
      C.EV_MSS_CLAMPED,
      C.EV_ICMP_TRANSLATED,
      C.EV_RST_SENT,
      C.EV_ICMP_UNREACH_SENT,
      C.EV_ECHO_REPLIED,
      C.EV_EXPIRED,
      C.EV_REUSED,
      C.EV_REPLY_RATE_LIMITED,
      C.EV_CONNECTIONS,
      C.EV_FRAG_RECEIVED,
      C.EV_FRAG_HELD,
      C.EV_FRAG_REASSEMBLED,
      C.EV_FRAG_TIMEOUT,
      C.EV_FRAG_EVICTED,
      C.EV_FRAG_SENT,
    ],
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18],
  );
});

Deno.test("traffic fields: T_* unique and dense below TRAFFIC_FIELDS", () => {
  const fields = Object.entries(C).filter(([k, v]) => k.startsWith("T_") && typeof v === "number");
  assert.deepEqual(
    fields.map(([, v]) => v as number).sort((a, b) => a - b),
    Array.from({ length: C.TRAFFIC_FIELDS }, (_, i) => i),
  );
});

Deno.test("Counters: one slot per drop code and per event; traffic sized per entity", () => {
  const c = new C.Counters(3, 7);
  assert.equal(c.drops.length, C.DROP_NAMES.length);
  assert.equal(c.events.length, C.EVENT_NAMES.length);
  assert.equal(c.services.length, 3 * C.TRAFFIC_FIELDS);
  assert.equal(c.servers.length, 7 * C.TRAFFIC_FIELDS);
});
