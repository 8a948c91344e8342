/**
 * The TCP option walker of the TOA eBPF programs: an instruction generator that emits, into a program under
 * construction (base/bpf/asm.ts), code that walks a TCP header's options and copies the first TOA of the
 * connection's family into a record on the stack. The sockops program (toa/bpf/sockops_toa.ts) runs it over
 * the ACK that completed the handshake and over the saved SYN; tests run it through a SCHED_CLS wrapper with
 * BPF_PROG_TEST_RUN (toa/bpf/toa_walker_test.ts).
 *
 * The walk is over a copy of the header on the stack ({@link emitCopyHeader}), not over packet memory, so the
 * same code reads the ACK (packet pointers) and the SYN (copied out by `bpf_getsockopt(TCP_BPF_SYN)`):
 *
 * ```
 *  stack (offsets from r10)
 *  buf   .. buf+60   the TCP header, zero beyond what was copied; +28 zero bytes of slack, so that a
 *                    variable-offset read of a 20-byte option starting at offset 59 stays inside what the
 *                    verifier sees as initialized (the walk itself never reads past the header's end)
 *  avail             u32: bytes actually copied (a header cut short is a broken option list)
 *  family            u32: 4 or 6, the connection's family (only its own TOA form is taken)
 *  out   .. out+24   the record: family u8 (0 = none), source u8 (set by the caller), port (2 bytes,
 *                    network order), malformed u8, 3 zero bytes, address (16 bytes; IPv4 in the first 4)
 * ```
 *
 * Rules (docs/toa.md, the same as `scanToa` in base/packet/toa_option.ts): EOL ends the walk, NOP is one
 * byte, every other option needs a length byte ≥ 2 that keeps it inside the header — otherwise the list is
 * broken: nothing is taken and one malformed option is counted. An option of a TOA kind with a length or
 * family not in the set is skipped and counted as malformed, never half-read; the first well-formed TOA of
 * the connection's family wins, later ones are skipped. The loop is bounded (the index only grows and stops
 * at 60), which the verifier of Linux ≥ 5.3 accepts.
 *
 * @module
 */
import { Alu, type BpfProgram, Jmp, R0, R1, R10, R2, R3, R4, R5 } from "../../base/bpf/asm.ts";

/** One TOA form the walker takes: option kind, its exact length, and the address family it carries. */
export interface ToaForm {
  /** Option kind (254 for dpvs and toa.ko; 253 for Alibaba/Huawei IPv6). */
  kind: number;
  /** Option length: 8 (IPv4) or 20 (IPv6). */
  len: 8 | 20;
  /** Family of the address in it. */
  family: 4 | 6;
}

/** IPv4 kind 254 len 8; IPv6 kind 254 len 20 (dpvs) and kind 253 len 20 (Alibaba/Huawei). */
export const DEFAULT_TOA_FORMS: readonly ToaForm[] = [
  { kind: 254, len: 8, family: 4 },
  { kind: 254, len: 20, family: 6 },
  { kind: 253, len: 20, family: 6 },
];

/**
 * The forms of a kind set (base/packet/toa_option.ts), as the userspace decoders read it: every kind in
 * its IPv4 form (8 bytes) and its IPv6 form (20 bytes).
 */
export function toaFormsOf(kinds: readonly number[]): ToaForm[] {
  return kinds.flatMap((kind): ToaForm[] => [{ kind, len: 8, family: 4 }, { kind, len: 20, family: 6 }]);
}

/** Where the walker's stack areas are, as offsets from r10 (negative). */
export interface WalkerStack {
  /** Start of the 88-byte header buffer (60 + 28 slack). */
  buf: number;
  /** u32: bytes of header copied. */
  avail: number;
  /** u32: the connection's family, 4 or 6. */
  family: number;
  /** Start of the 24-byte record. */
  out: number;
}

/** Size of the header buffer: a 60-byte TCP header and slack for the verifier (module doc). */
export const WALKER_BUF_SIZE = 88;
/** Size of the record. */
export const TOA_RECORD_SIZE = 24;
/** Record offsets. */
export const RECORD = { family: 0, source: 1, port: 2, malformed: 4, address: 8 } as const;

/** A layout that fits under 512 bytes of stack, leaving the top 64 bytes for the caller's own use. */
export const DEFAULT_WALKER_STACK: WalkerStack = {
  buf: -64 - WALKER_BUF_SIZE, // -152
  avail: -156,
  family: -160,
  out: -184,
};

/** Emits stores that zero `size` bytes (a multiple of 8) of stack from `at`. */
export function emitZeroStack(p: BpfProgram, at: number, size: number): void {
  for (let o = 0; o < size; o += 8) p.st(8, R10, at + o, 0);
}

/**
 * Emits code that zeroes the walker's stack areas (every byte the walker reads must be initialized for the
 * verifier). Call before {@link emitCopyHeader}.
 */
export function emitWalkerInit(p: BpfProgram, s: WalkerStack): void {
  emitZeroStack(p, s.buf, WALKER_BUF_SIZE);
  emitZeroStack(p, s.out, TOA_RECORD_SIZE);
  p.st(4, R10, s.avail, 0);
}

/**
 * Emits code that copies a TCP header from packet memory — `rData` (a packet pointer to the TCP header) up
 * to `rEnd` (the end pointer) — into the buffer, four bytes at a time (a header is a multiple of 4 long),
 * at most 60 bytes, and stores how many bytes it copied into `avail`. Clobbers r0.
 */
export function emitCopyHeader(p: BpfProgram, s: WalkerStack, rData: number, rEnd: number): void {
  const done = p.uniqueLabel("copy_done");
  for (let k = 0; k < 15; k++) {
    p.mov64(R0, rData).alu64Imm(Alu.ADD, R0, 4 * (k + 1)).jmpReg(Jmp.JGT, R0, rEnd, done);
    p.ldx(4, R0, rData, 4 * k).stx(4, R10, s.buf + 4 * k, R0).st(4, R10, s.avail, 4 * (k + 1));
  }
  p.label(done);
}

/**
 * Emits the walk over the buffer (module doc). The connection's family must be in `family` and the copied
 * length in `avail`. On exit r0 = 1 when a TOA was taken (the record's family is set), else 0; the record's
 * malformed byte counts skipped options. Clobbers r0–r5; r6–r9 are kept.
 */
export function emitToaWalker(
  p: BpfProgram,
  s: WalkerStack,
  forms: readonly ToaForm[] = DEFAULT_TOA_FORMS,
): void {
  const L = (n: string) => p.uniqueLabel(`walk_${n}`);
  const loop = L("loop"), opt = L("opt"), next = L("next"), bad = L("malformed"), broken = L("broken");
  const done = L("done"), none = L("none");
  // r2 = the header's length from its data offset, 0..60; a copy shorter than it is a broken list.
  p.ldx(1, R2, R10, s.buf + 12).aluImm(Alu.RSH, R2, 4).aluImm(Alu.LSH, R2, 2);
  p.jumpImm(Jmp.JLT, R2, 20, broken);
  p.ldx(4, R0, R10, s.avail).jumpReg(Jmp.JGT, R2, R0, broken);
  p.mov64Imm(R1, 20);
  p.label(loop);
  p.jmpReg(Jmp.JGE, R1, R2, done).jmpImm(Jmp.JGE, R1, 60, done);
  // r5 = &buf[r1]; r3 = kind.
  p.mov64(R5, R10).alu64Imm(Alu.ADD, R5, s.buf).alu64Reg(Alu.ADD, R5, R1).ldx(1, R3, R5, 0);
  p.jmpImm(Jmp.JEQ, R3, 0, done); // EOL
  p.jmpImm(Jmp.JNE, R3, 1, opt);
  p.alu64Imm(Alu.ADD, R1, 1).jump(loop); // NOP
  p.label(opt);
  // r0 = index of the option's end; the length byte and the whole option must be inside the header.
  p.mov64(R0, R1).alu64Imm(Alu.ADD, R0, 2).jmpReg(Jmp.JGT, R0, R2, broken);
  p.ldx(1, R4, R5, 1).jmpImm(Jmp.JLT, R4, 2, broken);
  p.mov64(R0, R1).alu64Reg(Alu.ADD, R0, R4).jmpReg(Jmp.JGT, R0, R2, broken);
  const kinds = [...new Set(forms.map((f) => f.kind))];
  const kindLabels = kinds.map((k) => L(`kind${k}`));
  kinds.forEach((k, i) => p.jmpImm(Jmp.JEQ, R3, k, kindLabels[i]));
  p.label(next).mov64(R1, R0).jump(loop);
  kinds.forEach((k, i) => {
    p.label(kindLabels[i]);
    for (const f of forms.filter((f) => f.kind === k)) {
      const take = L(`take${k}_${f.len}`), skip = L("skip");
      p.jmpImm(Jmp.JNE, R4, f.len, skip);
      // Right length: the other family's form is malformed here; a second TOA is skipped.
      p.ldx(4, R3, R10, s.family).jmpImm(Jmp.JNE, R3, f.family, bad);
      p.ldx(1, R3, R10, s.out + RECORD.family).jmpImm(Jmp.JNE, R3, 0, next);
      p.label(take);
      for (let b = 0; b < 2 + (f.family === 4 ? 4 : 16); b++) {
        p.ldx(1, R3, R5, 2 + b).stx(1, R10, s.out + (b < 2 ? RECORD.port + b : RECORD.address + b - 2), R3);
      }
      p.st(1, R10, s.out + RECORD.family, f.family).jump(next);
      p.label(skip);
    }
    p.jump(bad);
  });
  // A TOA kind with a length or family not in the set: counted, skipped.
  p.label(bad).ldx(1, R3, R10, s.out + RECORD.malformed).alu64Imm(Alu.ADD, R3, 1);
  p.stx(1, R10, s.out + RECORD.malformed, R3).jump(next);
  // A broken list: nothing in this header is believed.
  p.label(broken).ldx(1, R3, R10, s.out + RECORD.malformed).alu64Imm(Alu.ADD, R3, 1);
  p.stx(1, R10, s.out + RECORD.malformed, R3).st(1, R10, s.out + RECORD.family, 0).jump(none);
  p.label(done).ldx(1, R0, R10, s.out + RECORD.family).jmpImm(Jmp.JEQ, R0, 0, none);
  const end = L("end");
  p.mov64Imm(R0, 1).jump(end);
  p.label(none).mov64Imm(R0, 0);
  p.label(end);
}
