import assert from "node:assert/strict";
import { ConnTable, NO_CONN } from "./conn_table.ts";
import { TimerWheel } from "./timer_wheel.ts";

Deno.test("conn table: each field of a record holds its own value, neighbours untouched", () => {
  const t = new ConnTable(4, 1);
  const ids = [0, 1, 2].map((i) =>
    t.insert(6, 6, 7 + i, 0xc0a80001 + i, 1, 2, 0xffffffff, 40000 + i, 0, 1000 + i)
  );
  assert.deepEqual(ids, [0, 1, 2]);
  // Every setter of the middle record with a value that fills its width, then every getter of all three.
  const id = 1;
  t.setState(id, 0xff);
  t.setFlags(id, 0xfe);
  t.setServer(id, 0xfffffffd);
  t.setSeqDelta(id, 0xfffffffc);
  t.setServerDelta(id, 0xfffffffb);
  t.setNextFromClient(id, 0xfffffffa);
  t.setNextFromServer(id, 0xfffffff9);
  t.setClientMaxWin(id, 0xfffffff8);
  t.setServerMaxWin(id, 0xfffffff7);
  t.setClientWscale(id, 0xf6);
  t.setServerWscale(id, 0xf5);
  t.setSynOptions(id, 0x1f4);
  t.setClientMss(id, 0xfff3);
  assert.deepEqual(
    [t.state(id), t.flags(id), t.server(id), t.seqDelta(id), t.serverDelta(id), t.nextFromClient(id)],
    [0xff, 0xfe, 0xfffffffd, 0xfffffffc, 0xfffffffb, 0xfffffffa],
  );
  assert.deepEqual(
    [t.nextFromServer(id), t.clientMaxWin(id), t.serverMaxWin(id), t.clientWscale(id), t.serverWscale(id)],
    [0xfffffff9, 0xfffffff8, 0xfffffff7, 0xf6, 0xf5],
  );
  assert.equal(t.synOptions(id), 0xf4, "a byte wraps as the Uint8Array it was");
  assert.equal(t.clientMss(id), 0xfff3);
  for (const i of [0, 1, 2]) {
    assert.deepEqual([t.family(i), t.proto(i), t.service(i)], [6, 6, 7 + i]);
    assert.deepEqual([t.clientPort(i), t.localIndex(i), t.localPort(i)], [40000 + i, 0, 1000 + i]);
    const a = t.addrAt(i);
    assert.deepEqual([...t.addrWords(i).subarray(a, a + 4)], [0xc0a80001 + i, 1, 2, 0xffffffff]);
    assert.equal(t.findClient(7 + i, 0xc0a80001 + i, 1, 2, 0xffffffff, 40000 + i), i);
    assert.equal(t.findLocal(0, 1000 + i), i);
  }
  for (const i of [0, 2]) {
    assert.deepEqual([t.state(i), t.flags(i), t.server(i), t.seqDelta(i), t.synOptions(i), t.clientMss(i)], [
      0,
      0,
      0,
      0,
      0,
      0,
    ]);
  }
});

Deno.test("conn table: chains, removal and the free list share one link", () => {
  // 2048 connections in 2048 buckets: some chains are longer than one.
  const t = new ConnTable(2048, 1);
  for (let i = 0; i < 2048; i++) assert.equal(t.insert(4, 17, 0, i >>> 3, 0, 0, 0, i & 7, 0, i), i);
  assert.equal(t.insert(4, 17, 0, 9999, 0, 0, 0, 0, 0, 3000), NO_CONN, "full");
  for (let i = 0; i < 2048; i += 2) t.remove(i);
  assert.equal(t.size, 1024);
  for (let i = 0; i < 2048; i++) {
    assert.equal(t.findClient(0, i >>> 3, 0, 0, 0, i & 7), i % 2 ? i : NO_CONN);
    assert.equal(t.isLive(i), i % 2 === 1);
  }
  // Freed handles come back last freed first.
  assert.equal(t.insert(6, 6, 1, 5, 6, 7, 8, 9, 0, 4000), 2046);
  assert.equal(t.findClient(1, 5, 6, 7, 8, 9), 2046);
  assert.equal(t.findLocal(0, 4000), 2046);
});

Deno.test("conn table: IPv4 keys in the record, IPv6 beside it; the timer wheel's fields in the record", () => {
  const t = new ConnTable(4, 1);
  const w = new TimerWheel(4, 1000, 16, t.timerFields());
  const v4 = t.insert(4, 6, 1, 0xc6120102, 0, 0, 0, 80, 0, 1);
  const v6 = t.insert(6, 6, 2, 0x20010db8, 0, 0, 1, 80, 0, 2);
  assert.equal(t.findClient(1, 0xc6120102, 0, 0, 0, 80), v4);
  assert.equal(t.findClient(1, 0xc6120102, 0, 0, 1, 80), NO_CONN, "IPv4 keys have zero words 1–3");
  assert.equal(t.findClient(2, 0x20010db8, 0, 0, 1, 80), v6);
  assert.equal(t.findClient(2, 0x20010db8, 0, 0, 0, 80), NO_CONN);
  assert.equal(t.addrWords(v4)[t.addrAt(v4)], 0xc6120102);
  assert.deepEqual([...t.addrWords(v6).subarray(t.addrAt(v6), t.addrAt(v6) + 4)], [0x20010db8, 0, 0, 1]);
  for (const id of [v4, v6]) {
    t.setSeqDelta(id, 0xffffffff);
    t.setServer(id, 7);
    w.setDeadline(id, 1002.25);
    assert.deepEqual([t.seqDelta(id), t.server(id), w.deadline(id), w.isScheduled(id)], [
      0xffffffff,
      7,
      1002.25,
      true,
    ]);
    assert.equal(t.findClient(t.service(id), t.addrWords(id)[t.addrAt(id)], 0, 0, id === v6 ? 1 : 0, 80), id);
  }
  const expired: number[] = [];
  w.advance(1003, (id) => {
    expired.push(id);
    t.remove(id);
  });
  assert.deepEqual(expired.sort(), [v4, v6]);
  // A handle reused after expiry starts unscheduled.
  const again = t.insert(4, 17, 1, 5, 0, 0, 0, 9, 0, 3);
  assert.ok(again === v4 || again === v6);
  assert.ok(!w.isScheduled(again));
});
