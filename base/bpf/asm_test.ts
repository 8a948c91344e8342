import assert from "node:assert/strict";
import { Alu, BpfProgram, Jmp, R0, R1, R10, R2 } from "./asm.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

// Expected encodings as `llvm-objdump -d` prints them for clang-built BPF objects (independent encoder).
Deno.test("asm: encodings of each instruction class", () => {
  const rows: [string, (p: BpfProgram) => void, string][] = [
    ["r1 = 42", (p) => p.mov64Imm(R1, 42), "b70100002a000000"],
    ["w0 = 0", (p) => p.aluImm(Alu.MOV, R0, 0), "b400000000000000"],
    ["r1 = r10", (p) => p.mov64(R1, R10), "bfa1000000000000"],
    ["r1 += -8", (p) => p.alu64Imm(Alu.ADD, R1, -8), "07010000f8ffffff"],
    ["r0 = *(u32 *)(r1 + 76)", (p) => p.ldx(4, R0, R1, 76), "61104c0000000000"],
    ["r2 = *(u64 *)(r1 + 192)", (p) => p.ldx(8, R2, R1, 192), "7912c00000000000"],
    ["*(u8 *)(r10 - 1) = r0", (p) => p.stx(1, R10, -1, R0), "730affff00000000"],
    ["*(u64 *)(r10 - 8) = 0", (p) => p.st(8, R10, -8, 0), "7a0af8ff00000000"],
    ["call 1", (p) => p.call(1), "8500000001000000"],
    ["exit", (p) => p.exit(), "9500000000000000"],
  ];
  for (const [name, emit, want] of rows) {
    const p = new BpfProgram();
    emit(p);
    assert.equal(hex(p.assemble()), want, name);
  }
});

Deno.test("asm: LD_IMM64 takes two slots and jumps count them", () => {
  const p = new BpfProgram();
  p.jmpImm(Jmp.JEQ, R1, 0, "end").ldMapFd(R1, 7).ldImm64(R2, 0x1_0000_0002n).label("end").exit();
  const b = p.assemble();
  assert.equal(b.length, 6 * 8);
  assert.equal(hex(b.subarray(0, 8)), "1501040000000000"); // skips 4 slots
  assert.equal(hex(b.subarray(8, 24)), "1811000007000000" + "0000000000000000");
  assert.equal(hex(b.subarray(24, 40)), "1802000002000000" + "0000000001000000");
});

Deno.test("asm: labels must exist and be placed once", () => {
  assert.throws(() => new BpfProgram().jump("nowhere").assemble(), /undefined label nowhere/);
  assert.throws(() => new BpfProgram().label("a").label("a"), /placed twice/);
  const p = new BpfProgram();
  assert.notEqual(p.uniqueLabel("x"), p.uniqueLabel("x"));
});
