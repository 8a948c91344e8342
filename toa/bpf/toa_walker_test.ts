/**
 * The option walker run by the kernel: each scapy-built packet of toa/testdata/walker_cases.json goes through
 * a SCHED_CLS wrapper of the walker with BPF_PROG_TEST_RUN, which writes the walker's record over the start
 * of the frame and returns whether a TOA was taken. Needs root (loading programs).
 */
import assert from "node:assert/strict";
import { Alu, BpfProgram, Jmp, R0, R1, R10, R2, R3, R6, R7, R8, R9 } from "../../base/bpf/asm.ts";
import { closeFd, loadProgram, ProgType, testRun } from "../../base/bpf/syscall.ts";
import { formatAddress } from "../sockaddr.ts";
import {
  DEFAULT_TOA_FORMS,
  DEFAULT_WALKER_STACK as S,
  emitCopyHeader,
  emitToaWalker,
  emitWalkerInit,
  RECORD,
  TOA_RECORD_SIZE,
  type ToaForm,
} from "./toa_walker.ts";

interface Case {
  hex: string;
  toa: { family: number; address: string; port: number } | null;
  malformed: number;
}
const CASES: Record<string, Case> = JSON.parse(
  Deno.readTextFileSync(new URL("../testdata/walker_cases.json", import.meta.url)),
);
const root = Deno.uid() === 0;

/** SCHED_CLS: frame → (IPv4 or IPv6) → TCP header → walker; the record over frame[0..24], r0 = found. */
function wrapper(forms: readonly ToaForm[]): Uint8Array {
  const p = new BpfProgram();
  p.mov64(R6, R1);
  emitWalkerInit(p, S);
  p.ldx(4, R7, R6, 76).ldx(4, R8, R6, 80); // __sk_buff data, data_end
  p.mov64(R0, R7).alu64Imm(Alu.ADD, R0, 14 + 40).jmpReg(Jmp.JGT, R0, R8, "short");
  p.ldx(1, R2, R7, 14).aluImm(Alu.RSH, R2, 4).jumpImm(Jmp.JEQ, R2, 6, "v6");
  p.st(4, R10, S.family, 4).ldx(1, R3, R7, 14).aluImm(Alu.AND, R3, 0x0f).aluImm(Alu.LSH, R3, 2);
  p.alu64Imm(Alu.ADD, R3, 14).alu64Reg(Alu.ADD, R7, R3).jump("copy");
  p.label("v6").st(4, R10, S.family, 6).alu64Imm(Alu.ADD, R7, 14 + 40);
  p.label("copy");
  emitCopyHeader(p, S, R7, R8);
  emitToaWalker(p, S, forms);
  p.mov64(R9, R0);
  p.ldx(4, R7, R6, 76).ldx(4, R8, R6, 80);
  p.mov64(R0, R7).alu64Imm(Alu.ADD, R0, TOA_RECORD_SIZE).jmpReg(Jmp.JGT, R0, R8, "short");
  for (let o = 0; o < TOA_RECORD_SIZE; o += 4) p.ldx(4, R0, R10, S.out + o).stx(4, R7, o, R0);
  p.mov64(R0, R9).exit();
  p.label("short").mov64Imm(R0, 2).exit();
  return p.assemble();
}

function runCase(fd: number, hex: string) {
  const ip = Uint8Array.from(hex.match(/../g)!.map((b) => parseInt(b, 16)));
  const frame = new Uint8Array(14 + ip.length);
  frame[12] = ip[0] >> 4 === 6 ? 0x86 : 0x08;
  frame[13] = ip[0] >> 4 === 6 ? 0xdd : 0x00;
  frame.set(ip, 14);
  const { retval, dataOut } = testRun(fd, frame);
  const rec = dataOut.subarray(0, TOA_RECORD_SIZE);
  const family = rec[RECORD.family];
  const toa = family === 0 ? null : {
    family,
    address: formatAddress(rec, RECORD.address, family === 4 ? 4 : 16).address,
    port: (rec[RECORD.port] << 8) | rec[RECORD.port + 1],
  };
  return { retval, toa, malformed: rec[RECORD.malformed] };
}

Deno.test({
  name: "toa walker: the verifier accepts it, and every case reads as scapy wrote it",
  ignore: !root,
}, () => {
  assert.ok(Object.keys(CASES).length >= 20);
  const fd = loadProgram({ type: ProgType.SCHED_CLS, insns: wrapper(DEFAULT_TOA_FORMS), name: "toa_walk_t" });
  try {
    for (const [name, c] of Object.entries(CASES)) {
      const got = runCase(fd, c.hex);
      assert.deepEqual(
        { toa: got.toa, malformed: got.malformed },
        { toa: c.toa, malformed: c.malformed },
        name,
      );
      assert.equal(got.retval, c.toa === null ? 0 : 1, name);
    }
  } finally {
    closeFd(fd);
  }
});

Deno.test({ name: "toa walker: a form added to the set (kind 252) is taken", ignore: !root }, () => {
  const forms = [...DEFAULT_TOA_FORMS, { kind: 252, len: 8, family: 4 } as const];
  const fd = loadProgram({ type: ProgType.SCHED_CLS, insns: wrapper(forms), name: "toa_walk_252" });
  try {
    const got = runCase(fd, CASES["v4 kind 252 (a form the default set lacks)"].hex);
    assert.deepEqual(got.toa, { family: 4, address: "198.18.1.2", port: 40000 });
  } finally {
    closeFd(fd);
  }
});
