/**
 * A small eBPF assembler, encoding the kernel's `struct bpf_insn` (8 bytes: opcode, dst/src registers in one
 * byte, a signed 16-bit offset, a signed 32-bit immediate; little-endian, as on every host we run on). Jumps
 * take symbolic labels resolved by {@link BpfProgram.assemble}; `LD_IMM64` (a 64-bit constant or a map fd)
 * takes two slots, and labels count slots, so jump offsets come out right across it.
 *
 * ```
 *  byte 0     1         2..3        4..7
 * +--------+---------+-----------+-----------------+
 * | opcode | src|dst | offset    | immediate       |
 * +--------+---------+-----------+-----------------+
 * opcode = operation | source (K: immediate, X: register) | class (ALU, ALU64, JMP, JMP32, LDX, STX, ST, LD)
 * ```
 *
 * Used by the gateway's TUN steering program (lb/tun/steering_bpf.ts) and the TOA side's sockops programs
 * (toa/bpf/). Reference: Documentation/bpf/standardization/instruction-set.rst in the Linux tree.
 *
 * @example
 * ```ts
 * import { Alu, BpfProgram, Jmp } from "./asm.ts";
 * const p = new BpfProgram();
 * p.mov64Imm(0, 0).jmpImm(Jmp.JEQ, 1, 0, "out").mov64Imm(0, 1).label("out").exit();
 * const bytes = p.assemble(); // 4 instructions, 32 bytes
 * ```
 *
 * @module
 */

const BPF_LD = 0x00;
const BPF_LDX = 0x01;
const BPF_ST = 0x02;
const BPF_STX = 0x03;
const BPF_ALU = 0x04;
const BPF_JMP = 0x05;
const BPF_JMP32 = 0x06;
const BPF_ALU64 = 0x07;
const BPF_W = 0x00;
const BPF_H = 0x08;
const BPF_B = 0x10;
const BPF_DW = 0x18;
const BPF_IMM = 0x00;
const BPF_ABS = 0x20;
const BPF_IND = 0x40;
const BPF_MEM = 0x60;
const BPF_K = 0x00;
const BPF_X = 0x08;
const BPF_CALL = 0x80;
const BPF_EXIT = 0x90;

/** `src` of an `LD_IMM64` whose immediate is a map fd the kernel turns into the map's address. */
export const BPF_PSEUDO_MAP_FD = 1;

/** ALU operations (32-bit with `alu*`, 64-bit with `alu64*`). */
export const Alu = {
  ADD: 0x00,
  SUB: 0x10,
  MUL: 0x20,
  DIV: 0x30,
  OR: 0x40,
  AND: 0x50,
  LSH: 0x60,
  RSH: 0x70,
  NEG: 0x80,
  MOD: 0x90,
  XOR: 0xa0,
  MOV: 0xb0,
  ARSH: 0xc0,
} as const;

/** Jump operations; comparisons are unsigned unless named S (signed). */
export const Jmp = {
  JA: 0x00,
  JEQ: 0x10,
  JGT: 0x20,
  JGE: 0x30,
  JSET: 0x40,
  JNE: 0x50,
  JSGT: 0x60,
  JSGE: 0x70,
  JLT: 0xa0,
  JLE: 0xb0,
  JSLT: 0xc0,
  JSLE: 0xd0,
} as const;

/** Load sizes for legacy packet loads: 1, 2 or 4 bytes (network order, converted like ntohs/ntohl). */
export type LoadSize = 1 | 2 | 4;
/** Memory access sizes for LDX/STX/ST: 1, 2, 4 or 8 bytes, host order. */
export type MemSize = 1 | 2 | 4 | 8;

const SIZE_BITS: Record<MemSize, number> = { 1: BPF_B, 2: BPF_H, 4: BPF_W, 8: BPF_DW };

/** Register numbers: r0 result, r1–r5 arguments (clobbered by calls), r6–r9 callee-saved, r10 frame pointer. */
export const R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5, R6 = 6, R7 = 7, R8 = 8, R9 = 9, R10 = 10;

interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number | string;
  imm: number;
}

/** A program under construction: append instructions, place labels, then assemble. */
export class BpfProgram {
  private readonly insns: Insn[] = [];
  private readonly labels = new Map<string, number>();
  private fresh = 0;

  /** Places `name` at the next instruction. */
  label(name: string): this {
    if (this.labels.has(name)) throw new Error(`bpf: label ${name} placed twice`);
    this.labels.set(name, this.insns.length);
    return this;
  }

  /** A label name not used before (for generators that emit the same block more than once). */
  uniqueLabel(stem: string): string {
    return `${stem}.${this.fresh++}`;
  }

  private push(code: number, dst: number, src: number, off: number | string, imm: number): this {
    this.insns.push({ code, dst, src, off, imm: imm | 0 });
    return this;
  }

  /** dst = dst OP imm (32-bit; the upper half is zeroed). */
  aluImm(op: number, dst: number, imm: number): this {
    return this.push(BPF_ALU | op | BPF_K, dst, 0, 0, imm);
  }

  /** dst = dst OP src (32-bit; the upper half is zeroed). */
  aluReg(op: number, dst: number, src: number): this {
    return this.push(BPF_ALU | op | BPF_X, dst, src, 0, 0);
  }

  /** dst = dst OP imm (64-bit; imm is sign-extended). */
  alu64Imm(op: number, dst: number, imm: number): this {
    return this.push(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm);
  }

  /** dst = dst OP src (64-bit). */
  alu64Reg(op: number, dst: number, src: number): this {
    return this.push(BPF_ALU64 | op | BPF_X, dst, src, 0, 0);
  }

  /** dst = src (64-bit move: pointers keep their type). */
  mov64(dst: number, src: number): this {
    return this.alu64Reg(Alu.MOV, dst, src);
  }

  /** dst = imm (64-bit, sign-extended). */
  mov64Imm(dst: number, imm: number): this {
    return this.alu64Imm(Alu.MOV, dst, imm);
  }

  /** r0 = packet[off] (legacy packet load; needs the context in r6; clobbers r1–r5). */
  loadAbs(size: LoadSize, off: number): this {
    return this.push(BPF_LD | SIZE_BITS[size] | BPF_ABS, 0, 0, 0, off);
  }

  /** r0 = packet[src + off]. */
  loadInd(size: LoadSize, src: number, off: number): this {
    return this.push(BPF_LD | SIZE_BITS[size] | BPF_IND, 0, src, 0, off);
  }

  /** dst = *(size *)(src + off). */
  ldx(size: MemSize, dst: number, src: number, off: number): this {
    return this.push(BPF_LDX | SIZE_BITS[size] | BPF_MEM, dst, src, off, 0);
  }

  /** *(size *)(dst + off) = src. */
  stx(size: MemSize, dst: number, off: number, src: number): this {
    return this.push(BPF_STX | SIZE_BITS[size] | BPF_MEM, dst, src, off, 0);
  }

  /** *(size *)(dst + off) = imm. */
  st(size: MemSize, dst: number, off: number, imm: number): this {
    return this.push(BPF_ST | SIZE_BITS[size] | BPF_MEM, dst, 0, off, imm);
  }

  /** dst = a 64-bit constant (two slots). */
  ldImm64(dst: number, value: bigint): this {
    const v = BigInt.asUintN(64, value);
    this.push(BPF_LD | BPF_DW | BPF_IMM, dst, 0, 0, Number(BigInt.asIntN(32, v)));
    return this.push(0, 0, 0, 0, Number(BigInt.asIntN(32, v >> 32n)));
  }

  /** dst = the map whose fd is `mapFd` (LD_IMM64 with BPF_PSEUDO_MAP_FD; two slots). */
  ldMapFd(dst: number, mapFd: number): this {
    this.push(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, mapFd);
    return this.push(0, 0, 0, 0, 0);
  }

  /**
   * if (dst OP imm) goto label, comparing the low 32 bits (JMP32): a 64-bit compare would sign-extend an
   * immediate such as an address 198.18.x.x (top bit set) and never match the zero-extended register.
   */
  jumpImm(op: number, dst: number, imm: number, label: string): this {
    return this.push(BPF_JMP32 | op | BPF_K, dst, 0, label, imm);
  }

  /** if (dst OP src) goto label, low 32 bits (JMP32). */
  jumpReg(op: number, dst: number, src: number, label: string): this {
    return this.push(BPF_JMP32 | op | BPF_X, dst, src, label, 0);
  }

  /** if (dst OP imm) goto label, 64-bit (imm sign-extended): pointers against 0, small scalars. */
  jmpImm(op: number, dst: number, imm: number, label: string): this {
    return this.push(BPF_JMP | op | BPF_K, dst, 0, label, imm);
  }

  /** if (dst OP src) goto label, 64-bit: packet pointers against the end pointer. */
  jmpReg(op: number, dst: number, src: number, label: string): this {
    return this.push(BPF_JMP | op | BPF_X, dst, src, label, 0);
  }

  /** goto label. */
  jump(label: string): this {
    return this.push(BPF_JMP | Jmp.JA, 0, 0, label, 0);
  }

  /** r0 = helper(r1, …, r5); clobbers r1–r5. */
  call(helper: number): this {
    return this.push(BPF_JMP | BPF_CALL, 0, 0, 0, helper);
  }

  /** return r0. */
  exit(): this {
    return this.push(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  }

  /** Number of instruction slots so far. */
  get length(): number {
    return this.insns.length;
  }

  /** Encodes the program, resolving labels to relative jump offsets. */
  assemble(): Uint8Array {
    const out = new Uint8Array(this.insns.length * 8);
    const dv = new DataView(out.buffer);
    this.insns.forEach((ins, i) => {
      let off = 0;
      if (typeof ins.off === "string") {
        const target = this.labels.get(ins.off);
        if (target === undefined) throw new Error(`bpf: undefined label ${ins.off}`);
        off = target - i - 1;
        if (off < -32768 || off > 32767) throw new Error(`bpf: jump to ${ins.off} out of range`);
      } else {
        off = ins.off;
      }
      out[i * 8] = ins.code;
      out[i * 8 + 1] = (ins.src << 4) | ins.dst;
      dv.setInt16(i * 8 + 2, off, true);
      dv.setInt32(i * 8 + 4, ins.imm, true);
    });
    return out;
  }
}
