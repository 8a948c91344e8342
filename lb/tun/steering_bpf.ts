/**
 * The TUN steering program: a socket-filter eBPF program attached with `TUNSETSTEERINGEBPF` whose return
 * value picks the queue — and so the worker — for every packet the kernel sends into the TUN device. The
 * device has two queues per worker: queue `2w` carries everything for worker `w`, queue `2w + 1` only its
 * connection attempts (TCP with SYN set and ACK clear, not a fragment), so that a SYN flood fills a ring of
 * its own and never the one established traffic waits in (the worker drains `2w` first). The owner `w` is
 * the ownership formula of `lb/engine/steering.ts`, so both directions of a connection reach the worker
 * that owns it without any hand-off:
 *
 * - TCP/UDP to a local address → local port % workers;
 * - TCP/UDP to anything else (a VIP) → hash(client address, client port) % workers;
 * - ICMP errors → the same, from the quoted packet (its source port toward a local address, its
 *   destination address and port toward a VIP).
 *
 * Packets it cannot read (IPv6 extension headers, truncated quotes) go to queue 0; the engine there finds
 * their owner and hands them over, counted. The queue is `owner * 2 + attempt`:
 *
 * ```
 * queue = (owner % workers) << 1 | (TCP && (flags & (SYN|ACK)) == SYN && not an IPv4 fragment)
 * ```
 *
 * Loaded with the `bpf()` syscall through FFI.
 *
 * @module
 */
import { STEER_MULTIPLIER } from "../engine/steering.ts";
import { Alu, BpfProgram, Jmp } from "../../base/bpf/asm.ts";
import { errno, libc } from "../../base/sys/libc.ts";
import { loadProgram, ProgType, testRun } from "../../base/bpf/syscall.ts";
import { errnoName } from "../../base/sys/errno.ts";
import { TCP_ACK, TCP_FLAGS, TCP_SYN } from "../../base/packet/tcp.ts";

/** `_IOR('T', 224, int)`: attach a steering eBPF program to a TUN device (linux/if_tun.h). */
export const TUNSETSTEERINGEBPF = 0x800454e0;

const R0 = 0, R1 = 1, R6 = 6, R7 = 7, R8 = 8, R9 = 9;

/** Queues per worker: its own (everything but connection attempts) and its SYN queue. */
export const QUEUES_PER_WORKER = 2;

/** The queue of worker `worker`'s packets (established traffic, replies, ICMP, UDP). */
export function normalQueueOf(worker: number): number {
  return worker * QUEUES_PER_WORKER;
}

/** The queue of worker `worker`'s connection attempts (TCP SYN without ACK). */
export function synQueueOf(worker: number): number {
  return worker * QUEUES_PER_WORKER + 1;
}

/**
 * Builds the steering program for `workers` workers (2 × `workers` queues, see the module doc) and the
 * gateway's local addresses.
 */
export function buildSteeringProgram(workers: number, local4: number[], local6: number[][]): Uint8Array {
  const p = new BpfProgram();
  p.mov64(R6, R1);
  p.loadAbs(1, 0).mov64(R7, R0).aluImm(Alu.AND, R7, 0x0f).aluImm(Alu.LSH, R7, 2);
  p.aluImm(Alu.RSH, R0, 4);
  p.jumpImm(Jmp.JEQ, R0, 6, "v6").jumpImm(Jmp.JNE, R0, 4, "zero");
  // IPv4: r9 = destination, r8 = protocol, r7 = header length.
  p.loadAbs(4, 16).mov64(R9, R0).loadAbs(1, 9).mov64(R8, R0);
  for (const a of local4) p.jumpImm(Jmp.JEQ, R9, a | 0, "v4_local");
  p.jumpImm(Jmp.JEQ, R8, 1, "v4_icmp_vip");
  p.jumpImm(Jmp.JEQ, R8, 6, "v4_client").jumpImm(Jmp.JEQ, R8, 17, "v4_client").jump("zero");
  p.label("v4_client").loadAbs(4, 12).mov64(R9, R0).loadInd(2, R7, 0).jump("hash");
  // The verifier refuses unreachable code: the local-address blocks exist only when some jump leads there.
  if (local4.length > 0) {
    p.label("v4_local").jumpImm(Jmp.JEQ, R8, 1, "v4_icmp_local").loadInd(2, R7, 2).jump("mod");
    p.label("v4_icmp_local");
    p.loadInd(1, R7, 8).aluImm(Alu.AND, R0, 0x0f).aluImm(Alu.LSH, R0, 2).aluReg(Alu.ADD, R7, R0);
    p.loadInd(2, R7, 8).jump("mod");
  }
  p.label("v4_icmp_vip").loadInd(4, R7, 8 + 16).mov64(R9, R0);
  p.loadInd(1, R7, 8).aluImm(Alu.AND, R0, 0x0f).aluImm(Alu.LSH, R0, 2).aluReg(Alu.ADD, R7, R0);
  p.loadInd(2, R7, 8 + 2).jump("hash");
  // IPv6 (no extension headers): r8 = next header.
  p.label("v6").loadAbs(1, 6).mov64(R8, R0);
  local6.forEach((w, i) => {
    const next = `v6_next_${i}`;
    for (let k = 0; k < 4; k++) p.loadAbs(4, 24 + 4 * k).jumpImm(Jmp.JNE, R0, w[k] | 0, next);
    p.jump("v6_local").label(next);
  });
  p.jumpImm(Jmp.JEQ, R8, 58, "v6_icmp_vip");
  p.jumpImm(Jmp.JEQ, R8, 6, "v6_client").jumpImm(Jmp.JEQ, R8, 17, "v6_client").jump("zero");
  const xorAddress = (at: number) => {
    p.loadAbs(4, at).mov64(R9, R0);
    for (let k = 1; k < 4; k++) p.loadAbs(4, at + 4 * k).aluReg(Alu.XOR, R9, R0);
  };
  p.label("v6_client");
  xorAddress(8);
  p.loadAbs(2, 40).jump("hash");
  if (local6.length > 0) {
    p.label("v6_local").jumpImm(Jmp.JEQ, R8, 58, "v6_icmp_local").loadAbs(2, 42).jump("mod");
    p.label("v6_icmp_local").loadAbs(2, 48 + 40).jump("mod");
  }
  p.label("v6_icmp_vip");
  xorAddress(48 + 24);
  p.loadAbs(2, 48 + 42).jump("hash");
  // r0 = port, r9 = address: ((addr ^ (port << 16 | port)) * M) >>> 16, then % workers: the owner.
  p.label("hash").mov64(R1, R0).aluImm(Alu.LSH, R1, 16).aluReg(Alu.OR, R0, R1).aluReg(Alu.XOR, R0, R9);
  p.aluImm(Alu.MUL, R0, STEER_MULTIPLIER).aluImm(Alu.RSH, R0, 16);
  p.label("mod").aluImm(Alu.MOD, R0, workers).aluImm(Alu.LSH, R0, 1).aluReg(Alu.MOV, R9, R0);
  // r9 = the owner's normal queue; +1 for a connection attempt. The header is read again (r7 and r8 may
  // hold an ICMP quote's by now): a TCP segment, not a fragment, with SYN set and ACK clear.
  p.loadAbs(1, 0).aluImm(Alu.RSH, R0, 4).jumpImm(Jmp.JEQ, R0, 6, "attempt_v6");
  p.loadAbs(1, 9).jumpImm(Jmp.JNE, R0, 6, "queue");
  p.loadAbs(2, 6).aluImm(Alu.AND, R0, 0x3fff).jumpImm(Jmp.JNE, R0, 0, "queue"); // MF or an offset
  p.loadAbs(1, 0).mov64(R7, R0).aluImm(Alu.AND, R7, 0x0f).aluImm(Alu.LSH, R7, 2);
  p.loadInd(1, R7, TCP_FLAGS).jump("attempt_flags");
  p.label("attempt_v6").loadAbs(1, 6).jumpImm(Jmp.JNE, R0, 6, "queue").loadAbs(1, 40 + TCP_FLAGS);
  p.label("attempt_flags").aluImm(Alu.AND, R0, TCP_SYN | TCP_ACK).jumpImm(Jmp.JNE, R0, TCP_SYN, "queue");
  p.aluImm(Alu.OR, R9, 1);
  p.label("queue").aluReg(Alu.MOV, R0, R9).exit();
  p.label("zero").aluImm(Alu.MOV, R0, 0).exit();
  return p.assemble();
}

/** Loads a socket-filter program; returns its fd, or throws with the verifier's log (base/bpf/syscall.ts). */
export function loadSocketFilter(insns: Uint8Array): number {
  try {
    return loadProgram({ type: ProgType.SOCKET_FILTER, insns, name: "fnat_steer" });
  } catch (e) {
    // One line: the reason ends up in a log line of the gateway (steering=handoff reason=…).
    throw new Error(
      (e as Error).message.split("\n").slice(0, 1).concat((e as Error).message.split("\n").slice(-3)).join(
        " | ",
      ),
    );
  }
}

/** Attaches a loaded program as the steering program of the TUN device that `tunFd` is a queue of. */
export function attachSteering(tunFd: number, progFd: number): void {
  const arg = new Uint8Array(4);
  new DataView(arg.buffer).setInt32(0, progFd, true);
  if (libc().ioctl(tunFd, TUNSETSTEERINGEBPF, arg) < 0) {
    throw new Error(`ioctl(TUNSETSTEERINGEBPF) failed (${errnoName(errno())})`);
  }
}

/** Closes a program fd (the device keeps its own reference once attached). */
export function closeProgram(progFd: number): void {
  libc().close(progFd);
}

/**
 * Runs a loaded socket-filter program once on `packet` (an IP packet) with `BPF_PROG_TEST_RUN` and returns
 * its return value: how tests check the program against the engine's own ownership formula.
 */
export function testRunProgram(progFd: number, packet: Uint8Array, family: 4 | 6): number {
  // The kernel builds the skb as an Ethernet frame and pulls the header, so the program sees the IP header.
  const frame = new Uint8Array(14 + packet.length);
  frame[12] = family === 4 ? 0x08 : 0x86;
  frame[13] = family === 4 ? 0x00 : 0xdd;
  frame.set(packet, 14);
  return testRun(progFd, frame).retval;
}
