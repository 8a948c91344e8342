/**
 * The TOA eBPF programs for a cgroup, and their maps. Attached to a cgroup (toa/bpf/cgroup.ts), they see the
 * TCP sockets of its processes:
 *
 * - **sockops** (`BPF_PROG_TYPE_SOCK_OPS`):
 *   - at `BPF_SOCK_OPS_TCP_LISTEN_CB` sets `TCP_SAVE_SYN` on the new listener, so the SYN is kept for the
 *     fallback below (a listener opened before the program was attached never gets it);
 *   - at `BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB`, when the peer (`remote_ip4`/`remote_ip6`) is in the trust
 *     map, walks the options of the ACK that completed the handshake (`skb_data`…`skb_data_end` is its
 *     TCP header; Linux ≥ 5.10) with toa/bpf/toa_walker.ts — dpvs ≥ 1.9.6 puts TOA only there, and it is
 *     all there is under SYN cookies — and, if it has no TOA, the saved SYN's (`bpf_getsockopt(SOL_TCP,
 *     TCP_BPF_SYN)`, which needs the listener's `TCP_SAVE_SYN`). A TOA found is stored under the socket's
 *     cookie, and the socket asks for state callbacks;
 *   - at `BPF_SOCK_OPS_STATE_CB` to `TCP_CLOSE` deletes the socket's entry.
 * - **getpeername4 / getpeername6** (`BPF_PROG_TYPE_CGROUP_SOCK_ADDR`, `BPF_CGROUP_INET{4,6}_GETPEERNAME`):
 *   rewrite the address `accept()` and `getpeername()` return to the stored client (transparent mode).
 *
 * Why a hash keyed by socket cookie and not `BPF_MAP_TYPE_SK_STORAGE` (which frees with the socket): socket
 * storage maps must be created with BTF for their key and value (the kernel refuses them with EINVAL
 * otherwise; base/bpf/syscall_test.ts shows it), and we load no BTF. The hash is allocated on demand
 * (`BPF_F_NO_PREALLOC`); entries go at `TCP_CLOSE` (a reset, or the end of FIN handshakes — a socket in
 * TIME_WAIT has already passed `TCP_CLOSE`), and a full table only means new connections are announced
 * as their peer, counted (`table_full`).
 *
 * Maps:
 *
 * ```
 * toa_conns  HASH      key u64 socket cookie (SO_COOKIE) → 24-byte record (toa_walker.ts RECORD):
 *                      family u8 (4|6), source u8 (1 ack, 2 syn), port (network order), malformed u8,
 *                      3 zero bytes, address (16 bytes, IPv4 in the first 4)
 * toa_trust  LPM_TRIE  key u32 prefix length + 16 bytes (IPv4 as ::ffff:a.b.c.d, prefix + 96) → u32 1
 * toa_stats  PERCPU_ARRAY u32 index → u64 count, indexes in STAT
 * ```
 *
 * @module
 */
import { Alu, BpfProgram, Jmp, R0, R1, R10, R2, R3, R4, R5, R6, R7, R8, R9 } from "../../base/bpf/asm.ts";
import {
  AttachType,
  BPF_F_NO_PREALLOC,
  closeFd,
  createMap,
  loadProgram,
  mapCount,
  mapLookup,
  MapType,
  mapUpdate,
  possibleCpus,
  ProgType,
} from "../../base/bpf/syscall.ts";
import { libc, SO_COOKIE, SOL_SOCKET } from "../../base/sys/libc.ts";
import type { Cidr } from "../trust.ts";
import {
  DEFAULT_TOA_FORMS,
  DEFAULT_WALKER_STACK as S,
  emitCopyHeader,
  emitToaWalker,
  emitWalkerInit,
  emitZeroStack,
  RECORD,
  TOA_RECORD_SIZE,
  type ToaForm,
} from "./toa_walker.ts";

/** Helper ids (enum bpf_func_id). */
const F = {
  lookup: 1,
  update: 2,
  delete: 3,
  cookie: 46,
  setsockopt: 49,
  getsockopt: 57,
  cbFlags: 59,
} as const;
/** struct bpf_sock_ops offsets (include/uapi/linux/bpf.h). */
const OPS = {
  op: 0,
  args: 4,
  family: 20,
  remoteIp4: 24,
  remoteIp6: 32,
  cbFlags: 84,
  data: 192,
  dataEnd: 200,
};
/** struct bpf_sock_addr offsets. */
const SA = { userIp4: 4, userIp6: 8, userPort: 24 };
const OP_PASSIVE_ESTABLISHED = 5, OP_STATE = 10, OP_LISTEN = 11;
const STATE_CB_FLAG = 4, TCP_CLOSE = 7, AF_INET = 2, AF_INET6 = 10;
const SOL_TCP = 6, TCP_SAVE_SYN = 27, TCP_BPF_SYN = 1005;

/** Indexes of the per-CPU counters. */
export const STAT = {
  /** TOA taken from the ACK. */
  ack: 0,
  /** TOA taken from the saved SYN. */
  syn: 1,
  /** Trusted peer, no TOA in either (or no SYN saved). */
  none: 2,
  /** Peer not in the trust map: nothing read. */
  untrusted: 3,
  /** Malformed TOA options skipped (wrong length or family, broken lists). */
  malformed: 4,
  /** The table refused an entry. */
  tableFull: 5,
} as const;
const STAT_COUNT = 8;

/** Source codes in the record. */
export const SOURCE = { ack: 1, syn: 2 } as const;

/** Capacity of the per-socket table (entries are allocated on demand). */
export const CONNS_MAX = 1 << 20;
/** Capacity of the trust map. */
export const TRUST_MAX = 16;

// Stack above the walker's areas (which start at -64).
const COOKIE = -8, SKEY = -12, ONE = -16, LPM = -40;

/** Emits `stats[index] += 1` (or += register `add`), clobbering r0–r3. */
function emitCount(p: BpfProgram, statsFd: number, index: number, add?: number): void {
  const skip = p.uniqueLabel("count_skip");
  if (add !== undefined) p.stx(8, R10, -56, add);
  p.st(4, R10, SKEY, index).ldMapFd(R1, statsFd).mov64(R2, R10).alu64Imm(Alu.ADD, R2, SKEY).call(F.lookup);
  p.jmpImm(Jmp.JEQ, R0, 0, skip).ldx(8, R1, R0, 0);
  if (add !== undefined) p.ldx(8, R2, R10, -56).alu64Reg(Alu.ADD, R1, R2);
  else p.alu64Imm(Alu.ADD, R1, 1);
  p.stx(8, R0, 0, R1).label(skip);
}

/** The sockops program (module doc). */
export function buildSockops(fds: ToaMaps, forms: readonly ToaForm[] = DEFAULT_TOA_FORMS): Uint8Array {
  const p = new BpfProgram();
  p.mov64(R6, R1);
  p.ldx(4, R2, R6, OPS.op);
  p.jumpImm(Jmp.JEQ, R2, OP_PASSIVE_ESTABLISHED, "established");
  p.jumpImm(Jmp.JEQ, R2, OP_STATE, "state");
  p.jumpImm(Jmp.JEQ, R2, OP_LISTEN, "listen");
  p.label("out").mov64Imm(R0, 1).exit();
  // Listener: keep SYNs, for the fallback.
  p.label("listen").st(4, R10, ONE, 1);
  p.mov64(R1, R6).mov64Imm(R2, SOL_TCP).mov64Imm(R3, TCP_SAVE_SYN).mov64(R4, R10).alu64Imm(Alu.ADD, R4, ONE);
  p.mov64Imm(R5, 4).call(F.setsockopt).jump("out");
  // State change: args[1] is the new state.
  p.label("state").ldx(4, R2, R6, OPS.args + 4).jumpImm(Jmp.JNE, R2, TCP_CLOSE, "out");
  p.mov64(R1, R6).call(F.cookie).stx(8, R10, COOKIE, R0);
  p.ldMapFd(R1, fds.conns).mov64(R2, R10).alu64Imm(Alu.ADD, R2, COOKIE).call(F.delete).jump("out");
  // Established: the trust check on the peer, as a ::ffff:a.b.c.d or IPv6 key of prefix 128.
  p.label("established");
  emitWalkerInit(p, S);
  p.st(8, R10, LPM, 0).st(8, R10, LPM + 8, 0).st(4, R10, LPM + 16, 0);
  p.st(4, R10, LPM, 128);
  p.ldx(4, R2, R6, OPS.family).jumpImm(Jmp.JEQ, R2, AF_INET6, "peer6").jumpImm(Jmp.JNE, R2, AF_INET, "out");
  p.st(4, R10, LPM + 4 + 8, 0xffff0000).ldx(4, R2, R6, OPS.remoteIp4).stx(4, R10, LPM + 4 + 12, R2);
  p.st(4, R10, S.family, 4).jump("trust");
  p.label("peer6");
  for (let k = 0; k < 4; k++) p.ldx(4, R2, R6, OPS.remoteIp6 + 4 * k).stx(4, R10, LPM + 4 + 4 * k, R2);
  // An IPv4 peer of a dual-stack listener (::ffff:a.b.c.d) sends IPv4 packets: the IPv4 form of TOA.
  p.st(4, R10, S.family, 6);
  p.ldx(4, R2, R10, LPM + 4).jumpImm(Jmp.JNE, R2, 0, "trust");
  p.ldx(4, R2, R10, LPM + 8).jumpImm(Jmp.JNE, R2, 0, "trust");
  p.ldx(4, R2, R10, LPM + 4 + 8).jumpImm(Jmp.JNE, R2, 0xffff0000, "trust");
  p.st(4, R10, S.family, 4);
  p.label("trust");
  p.ldMapFd(R1, fds.trust).mov64(R2, R10).alu64Imm(Alu.ADD, R2, LPM).call(F.lookup);
  p.jmpImm(Jmp.JNE, R0, 0, "trusted");
  emitCount(p, fds.stats, STAT.untrusted);
  p.jump("out");
  p.label("trusted");
  // The ACK's TCP header, then (if it has no TOA) the saved SYN's, through one copy of the walker: r9 says
  // which pass this is. (Two copies would have the verifier walk the second once per end state of the first.)
  p.ldx(8, R7, R6, OPS.data).ldx(8, R8, R6, OPS.dataEnd);
  emitCopyHeader(p, S, R7, R8);
  p.mov64Imm(R9, SOURCE.ack).mov64Imm(R7, 0);
  p.label("walk");
  emitToaWalker(p, S, forms);
  p.jmpImm(Jmp.JEQ, R0, 1, "found").jmpImm(Jmp.JEQ, R9, SOURCE.syn, "none");
  // The saved SYN's TCP header into the buffer (the helper zeroes the rest of its 60 bytes).
  p.mov64(R1, R6).mov64Imm(R2, SOL_TCP).mov64Imm(R3, TCP_BPF_SYN).mov64(R4, R10).alu64Imm(Alu.ADD, R4, S.buf);
  p.mov64Imm(R5, 60).call(F.getsockopt);
  // The first pass's malformed count moves to r7 and the record starts clean: the verifier then sees one
  // state here, not one per way the first pass ended (stack bytes written or still zero).
  p.ldx(1, R7, R10, S.out + RECORD.malformed);
  emitZeroStack(p, S.out, TOA_RECORD_SIZE);
  p.jmpImm(Jmp.JSLE, R0, 0, "none").stx(4, R10, S.avail, R0);
  p.mov64Imm(R9, SOURCE.syn).jump("walk");
  p.label("none");
  emitCount(p, fds.stats, STAT.none);
  p.jump("malformed");
  p.label("found").stx(1, R10, S.out + RECORD.source, R9);
  p.mov64(R1, R6).call(F.cookie).stx(8, R10, COOKIE, R0);
  p.ldMapFd(R1, fds.conns).mov64(R2, R10).alu64Imm(Alu.ADD, R2, COOKIE);
  p.mov64(R3, R10).alu64Imm(Alu.ADD, R3, S.out).mov64Imm(R4, 0).call(F.update);
  p.jmpImm(Jmp.JEQ, R0, 0, "stored");
  emitCount(p, fds.stats, STAT.tableFull);
  p.jump("malformed");
  p.label("stored");
  p.ldx(4, R2, R6, OPS.cbFlags).aluImm(Alu.OR, R2, STATE_CB_FLAG).mov64(R1, R6).call(F.cbFlags);
  p.jmpImm(Jmp.JEQ, R9, SOURCE.syn, "count_syn");
  emitCount(p, fds.stats, STAT.ack);
  p.jump("malformed");
  p.label("count_syn");
  emitCount(p, fds.stats, STAT.syn);
  // Added even when 0: a branch on the count would make the verifier tell states apart by it.
  p.label("malformed").ldx(1, R2, R10, S.out + RECORD.malformed).alu64Reg(Alu.ADD, R7, R2);
  emitCount(p, fds.stats, STAT.malformed, R7);
  p.jump("out");
  return p.assemble();
}

/** A getpeername program (module doc) for the IPv4 or the IPv6 hook. */
export function buildGetpeername(fds: ToaMaps, family: 4 | 6): Uint8Array {
  const p = new BpfProgram();
  p.mov64(R6, R1).call(F.cookie).stx(8, R10, COOKIE, R0);
  p.ldMapFd(R1, fds.conns).mov64(R2, R10).alu64Imm(Alu.ADD, R2, COOKIE).call(F.lookup);
  p.jmpImm(Jmp.JEQ, R0, 0, "out");
  p.ldx(1, R2, R0, RECORD.family).ldx(2, R3, R0, RECORD.port);
  if (family === 4) {
    p.jumpImm(Jmp.JNE, R2, 4, "out");
    p.ldx(4, R2, R0, RECORD.address).stx(4, R6, SA.userIp4, R2);
  } else {
    p.jumpImm(Jmp.JEQ, R2, 6, "v6");
    p.jumpImm(Jmp.JNE, R2, 4, "out");
    // An IPv4 client of an IPv6 socket (dual-stack listener): ::ffff:a.b.c.d.
    p.mov64Imm(R2, 0).stx(4, R6, SA.userIp6, R2).stx(4, R6, SA.userIp6 + 4, R2);
    p.mov64Imm(R2, 0xffff0000).stx(4, R6, SA.userIp6 + 8, R2);
    p.ldx(4, R2, R0, RECORD.address).stx(4, R6, SA.userIp6 + 12, R2).jump("port");
    p.label("v6");
    for (let k = 0; k < 4; k++) p.ldx(4, R2, R0, RECORD.address + 4 * k).stx(4, R6, SA.userIp6 + 4 * k, R2);
  }
  p.label("port").stx(4, R6, SA.userPort, R3);
  p.label("out").mov64Imm(R0, 1).exit();
  return p.assemble();
}

/** The map fds. */
export interface ToaMaps {
  /** toa_conns. */
  conns: number;
  /** toa_trust. */
  trust: number;
  /** toa_stats. */
  stats: number;
}

/** One connection's record, decoded. */
export interface ToaRecord {
  /** Family of the client address. */
  family: 4 | 6;
  /** Where the TOA was found. */
  source: "ack" | "syn";
  /** Client port. */
  port: number;
  /** Client address bytes (4 or 16). */
  address: Uint8Array;
  /** Malformed options skipped on the way. */
  malformed: number;
}

/** Decodes a 24-byte record; null when it holds no TOA. */
export function decodeRecord(rec: Uint8Array): ToaRecord | null {
  const family = rec[RECORD.family];
  if (family !== 4 && family !== 6) return null;
  return {
    family,
    source: rec[RECORD.source] === SOURCE.syn ? "syn" : "ack",
    port: (rec[RECORD.port] << 8) | rec[RECORD.port + 1],
    address: rec.slice(RECORD.address, RECORD.address + (family === 4 ? 4 : 16)),
    malformed: rec[RECORD.malformed],
  };
}

/** The trust map's key for one CIDR (IPv4 as ::ffff:a.b.c.d/96+len). */
export function trustKey(c: Cidr): Uint8Array {
  const key = new Uint8Array(20);
  const v4 = c.network.length === 4;
  new DataView(key.buffer).setUint32(0, v4 ? 96 + c.prefix : c.prefix, true);
  if (v4) {
    key[14] = 0xff;
    key[15] = 0xff;
    key.set(c.network, 16);
  } else {
    key.set(c.network, 4);
  }
  return key;
}

/** The loaded maps and programs; {@link ToaBpf.close} closes the fds (attachments and pins stay). */
export class ToaBpf {
  private constructor(
    /** The maps. */
    readonly maps: ToaMaps,
    /** The sockops program fd. */
    readonly sockops: number,
    /** The getpeername programs' fds (0 when not loaded). */
    readonly getpeername4: number,
    /** The IPv6 getpeername program's fd. */
    readonly getpeername6: number,
  ) {}

  /**
   * Creates the maps, fills the trust map from `trust` (at most {@link TRUST_MAX} CIDRs) and loads the
   * programs (the getpeername pair only with `getpeername`). Throws a BpfError (with the verifier's log
   * for a refused program) and closes what it opened.
   */
  static load(
    trust: readonly Cidr[],
    opts: { getpeername?: boolean; forms?: readonly ToaForm[] } = {},
  ): ToaBpf {
    if (trust.length > TRUST_MAX) throw new Error(`at most ${TRUST_MAX} trusted CIDRs, got ${trust.length}`);
    const opened: number[] = [];
    try {
      const keep = (fd: number) => (opened.push(fd), fd);
      const maps: ToaMaps = {
        conns: keep(createMap({
          type: MapType.HASH,
          keySize: 8,
          valueSize: TOA_RECORD_SIZE,
          maxEntries: CONNS_MAX,
          flags: BPF_F_NO_PREALLOC,
          name: "toa_conns",
        })),
        trust: keep(createMap({
          type: MapType.LPM_TRIE,
          keySize: 20,
          valueSize: 4,
          maxEntries: TRUST_MAX,
          flags: BPF_F_NO_PREALLOC,
          name: "toa_trust",
        })),
        stats: keep(createMap({
          type: MapType.PERCPU_ARRAY,
          keySize: 4,
          valueSize: 8,
          maxEntries: STAT_COUNT,
          name: "toa_stats",
        })),
      };
      const one = new Uint8Array([1, 0, 0, 0]);
      for (const c of trust) mapUpdate(maps.trust, trustKey(c), one);
      const sockops = keep(loadProgram({
        type: ProgType.SOCK_OPS,
        insns: buildSockops(maps, opts.forms),
        name: "toa_sockops",
      }));
      let g4 = 0, g6 = 0;
      if (opts.getpeername) {
        g4 = keep(loadProgram({
          type: ProgType.CGROUP_SOCK_ADDR,
          insns: buildGetpeername(maps, 4),
          expectedAttachType: AttachType.CGROUP_INET4_GETPEERNAME,
          name: "toa_peer4",
        }));
        g6 = keep(loadProgram({
          type: ProgType.CGROUP_SOCK_ADDR,
          insns: buildGetpeername(maps, 6),
          expectedAttachType: AttachType.CGROUP_INET6_GETPEERNAME,
          name: "toa_peer6",
        }));
      }
      return new ToaBpf(maps, sockops, g4, g6);
    } catch (e) {
      for (const fd of opened) closeFd(fd);
      throw e;
    }
  }

  /** The record of the socket with cookie `cookie`, or null. */
  lookup(cookie: bigint): ToaRecord | null {
    const key = new Uint8Array(8), value = new Uint8Array(TOA_RECORD_SIZE);
    new DataView(key.buffer).setBigUint64(0, cookie, true);
    return mapLookup(this.maps.conns, key, value) ? decodeRecord(value) : null;
  }

  /** The record of connected socket `fd` (its SO_COOKIE), or null. */
  lookupSocket(fd: number): ToaRecord | null {
    this.optLen.setUint32(0, 8, true);
    if (libc().getsockopt(fd, SOL_SOCKET, SO_COOKIE, this.cookieBuf, this.optLenBuf) !== 0) return null;
    return mapLookup(this.maps.conns, this.cookieBuf, this.valueBuf) ? decodeRecord(this.valueBuf) : null;
  }

  private readonly cookieBuf = new Uint8Array(8);
  private readonly valueBuf = new Uint8Array(TOA_RECORD_SIZE);
  private readonly optLenBuf = new Uint8Array(4);
  private readonly optLen = new DataView(this.optLenBuf.buffer);

  /** Entries in the per-socket table (walks it). */
  entries(): number {
    return mapCount(this.maps.conns, 8);
  }

  /** The counters, summed over CPUs. */
  stats(): Record<keyof typeof STAT, number> {
    return readStats(this.maps.stats);
  }

  /** Closes every fd. */
  close(): void {
    for (const fd of [this.maps.conns, this.maps.trust, this.maps.stats, this.sockops]) closeFd(fd);
    if (this.getpeername4) closeFd(this.getpeername4);
    if (this.getpeername6) closeFd(this.getpeername6);
  }
}

/** Reads the per-CPU counters of a stats map fd, summed. */
export function readStats(statsFd: number): Record<keyof typeof STAT, number> {
  const value = new Uint8Array(8 * possibleCpus());
  const key = new Uint8Array(4);
  const out = {} as Record<keyof typeof STAT, number>;
  for (const [name, index] of Object.entries(STAT) as [keyof typeof STAT, number][]) {
    new DataView(key.buffer).setUint32(0, index, true);
    value.fill(0);
    let sum = 0;
    if (mapLookup(statsFd, key, value)) {
      const dv = new DataView(value.buffer);
      for (let o = 0; o < value.length; o += 8) sum += Number(dv.getBigUint64(o, true));
    }
    out[name] = sum;
  }
  return out;
}
