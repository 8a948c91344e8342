/**
 * A tiny eBPF assembler: just the instructions the TUN steering program needs, encoded as the kernel's
 * `struct bpf_insn` (8 bytes: opcode, dst/src registers, 16-bit offset, 32-bit immediate; little-endian,
 * as on every host we run on). Jumps take symbolic labels resolved by {@link BpfProgram.assemble}.
 *
 * Reference: Documentation/bpf/standardization/instruction-set.rst in the Linux tree.
 *
 * @module
 */

const BPF_LD = 0x00;
const BPF_ALU = 0x04;
const BPF_JMP = 0x05;
const BPF_JMP32 = 0x06;
const BPF_ALU64 = 0x07;
const BPF_W = 0x00;
const BPF_H = 0x08;
const BPF_B = 0x10;
const BPF_ABS = 0x20;
const BPF_IND = 0x40;
const BPF_K = 0x00;
const BPF_X = 0x08;
const BPF_EXIT = 0x90;

/** 32-bit ALU operations used by the steering program. */
export const Alu = {
  ADD: 0x00,
  MUL: 0x20,
  OR: 0x40,
  AND: 0x50,
  LSH: 0x60,
  RSH: 0x70,
  MOD: 0x90,
  XOR: 0xa0,
  MOV: 0xb0,
} as const;

/** Conditional jump operations used by the steering program. */
export const Jmp = { JA: 0x00, JEQ: 0x10, JNE: 0x50 } as const;

/** Load sizes for packet loads: 1, 2 or 4 bytes (network order, converted like ntohs/ntohl). */
export type LoadSize = 1 | 2 | 4;

const SIZE_BITS: Record<LoadSize, number> = { 1: BPF_B, 2: BPF_H, 4: BPF_W };

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

  /** Places `name` at the next instruction. */
  label(name: string): this {
    if (this.labels.has(name)) throw new Error(`bpf: label ${name} placed twice`);
    this.labels.set(name, this.insns.length);
    return this;
  }

  /** dst = dst OP imm (32-bit). */
  aluImm(op: number, dst: number, imm: number): this {
    this.insns.push({ code: BPF_ALU | op | BPF_K, dst, src: 0, off: 0, imm: imm | 0 });
    return this;
  }

  /** dst = dst OP src (32-bit). */
  aluReg(op: number, dst: number, src: number): this {
    this.insns.push({ code: BPF_ALU | op | BPF_X, dst, src, off: 0, imm: 0 });
    return this;
  }

  /** dst = src (64-bit move, for the context pointer). */
  mov64(dst: number, src: number): this {
    this.insns.push({ code: BPF_ALU64 | Alu.MOV | BPF_X, dst, src, off: 0, imm: 0 });
    return this;
  }

  /** r0 = packet[off] (legacy packet load; needs the context in r6; clobbers r1–r5). */
  loadAbs(size: LoadSize, off: number): this {
    this.insns.push({ code: BPF_LD | SIZE_BITS[size] | BPF_ABS, dst: 0, src: 0, off: 0, imm: off });
    return this;
  }

  /** r0 = packet[src + off]. */
  loadInd(size: LoadSize, src: number, off: number): this {
    this.insns.push({ code: BPF_LD | SIZE_BITS[size] | BPF_IND, dst: 0, src, off: 0, imm: off });
    return this;
  }

  /**
   * if (dst OP imm) goto label, comparing the low 32 bits (JMP32): a 64-bit compare would sign-extend an
   * immediate such as an address 198.18.x.x (top bit set) and never match the zero-extended register.
   */
  jumpImm(op: number, dst: number, imm: number, label: string): this {
    this.insns.push({ code: BPF_JMP32 | op | BPF_K, dst, src: 0, off: label, imm: imm | 0 });
    return this;
  }

  /** goto label. */
  jump(label: string): this {
    this.insns.push({ code: BPF_JMP | Jmp.JA, dst: 0, src: 0, off: label, imm: 0 });
    return this;
  }

  /** return r0. */
  exit(): this {
    this.insns.push({ code: BPF_JMP | BPF_EXIT, dst: 0, src: 0, off: 0, imm: 0 });
    return this;
  }

  /** Number of instructions so far. */
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
