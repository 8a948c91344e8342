import assert from "node:assert/strict";
import { BpfProgram, R0 } from "./asm.ts";
import {
  BpfError,
  closeFd,
  createMap,
  loadProgram,
  mapCount,
  mapDelete,
  mapLookup,
  MapType,
  mapUpdate,
  possibleCpus,
  ProgType,
  testRun,
} from "./syscall.ts";

const root = Deno.uid() === 0;

Deno.test({ name: "bpf: a hash map: update, lookup, count, delete", ignore: !root }, () => {
  const fd = createMap({ type: MapType.HASH, keySize: 8, valueSize: 4, maxEntries: 16, name: "t_hash" });
  try {
    const key = new Uint8Array(8), v = new Uint8Array([1, 2, 3, 4]), out = new Uint8Array(4);
    assert.equal(mapLookup(fd, key, out), false);
    mapUpdate(fd, key, v);
    key[0] = 1;
    mapUpdate(fd, key, v);
    assert.equal(mapCount(fd, 8), 2);
    assert.equal(mapLookup(fd, key, out), true);
    assert.deepEqual(out, v);
    assert.equal(mapDelete(fd, key), true);
    assert.equal(mapDelete(fd, key), false);
    assert.equal(mapCount(fd, 8), 1);
  } finally {
    closeFd(fd);
  }
});

Deno.test({
  name: "bpf: socket storage needs BTF: refused without it (why the table is a hash)",
  ignore: !root,
}, () => {
  assert.throws(
    () => createMap({ type: MapType.SK_STORAGE, keySize: 4, valueSize: 24, maxEntries: 0, flags: 1 }),
    (e) => e instanceof BpfError && e.message.includes("EINVAL"),
  );
});

Deno.test({ name: "bpf: a refused program's error carries the verifier log", ignore: !root }, () => {
  const p = new BpfProgram().exit(); // r0 never written
  assert.throws(
    () => loadProgram({ type: ProgType.SCHED_CLS, insns: p.assemble(), name: "t_bad" }),
    (e) => e instanceof BpfError && /R0 !read_ok/.test(e.message) && /verifier log/.test(e.message),
  );
});

Deno.test({ name: "bpf: TEST_RUN returns the program's value", ignore: !root }, () => {
  const p = new BpfProgram().mov64Imm(R0, 7).exit();
  const fd = loadProgram({ type: ProgType.SCHED_CLS, insns: p.assemble(), name: "t_seven" });
  try {
    assert.equal(testRun(fd, new Uint8Array(64)).retval, 7);
  } finally {
    closeFd(fd);
  }
});

Deno.test("bpf: possible CPUs read from sysfs cover the online ones", () => {
  assert.ok(possibleCpus() >= navigator.hardwareConcurrency);
});
