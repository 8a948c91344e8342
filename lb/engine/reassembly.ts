/**
 * IP reassembly for one worker, as the kernel's nf_defrag does in front of IPVS and dpvs does in its own
 * datapath: fragments toward a VIP or local address are held until their datagram is whole, which then goes
 * on through the engine as one unfragmented packet.
 *
 * ```
 * fragment ──► find (src, dst, id[, protocol]) among the slots ── none: take a free slot (or evict the oldest)
 *          ──► checks: offsets and lengths, overlap, duplicate, tiny first fragment, size, count
 *          ──► copy its data to  slot buffer [HDR_ROOM + offset]   (the first fragment's IP header is
 *                                                                  copied to end exactly at HDR_ROOM)
 *          ──► all bytes present: header + data copied to the caller's buffer at 0, lengths fixed, slot freed
 * ```
 *
 * Defences, with the RFCs they follow:
 * - **overlap** (RFC 5722 for IPv6; for IPv4 too, the safe modern choice Linux also makes): any fragment
 *   overlapping another discards the whole datagram, and later fragments of it are discarded until its
 *   timeout. An exact duplicate (same offset, length and bytes) is dropped alone (RFC 8200 §4.5).
 * - **tiny first fragment** (RFC 1858/3128 for IPv4, RFC 7112 for IPv6): the first fragment must hold the
 *   whole header chain and the whole transport header (TCP with its options), or the datagram is discarded.
 * - **size**: a datagram past 65535 bytes (IPv4 Total Length, IPv6 Payload Length) is discarded.
 * - **bounds**: at most `maxDatagrams` in progress and `maxBytes` of data held (the oldest datagram is
 *   evicted to make room), at most `maxFragments` per datagram, and each datagram lives at most its
 *   family's timeout from its first fragment (RFC 791 suggests 15 s or more, RFC 8200 says 60 s).
 *
 * IPv6 atomic fragments (offset 0, M = 0) never get here: the validator reads them as whole packets
 * (RFC 6946). State is flat typed arrays; a slot's 64 KiB buffer is allocated the first time the slot is
 * used and kept, so memory is bounded by `maxDatagrams × 64 KiB` and steady traffic allocates nothing.
 * Every fragment is counted: received, then held, reassembled, or dropped by reason.
 *
 * @module
 */
import { read16, read32, write16 } from "../../base/packet/checksum.ts";
import {
  IP_MAX_LENGTH,
  IPV4_DF,
  IPV4_MF,
  IPV4_OFFSET_MASK,
  IPV6_FRAGMENT_HEADER_LEN,
  ipv6FragmentId,
} from "../../base/packet/fragment.ts";
import {
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_FRAGMENT,
  IPV4_ID,
  IPV4_PROTOCOL,
  ipv4FillChecksum,
  ipv4SetTotalLength,
} from "../../base/packet/ipv4.ts";
import {
  IPV6_EXT_AH,
  IPV6_EXT_DEST_OPTS,
  IPV6_EXT_FRAGMENT,
  IPV6_EXT_HOP_BY_HOP,
  IPV6_EXT_ROUTING,
  IPV6_HEADER_LEN,
  IPV6_NEXT_HEADER,
  IPV6_PAYLOAD_LENGTH,
} from "../../base/packet/ipv6.ts";
import type { PacketInfo } from "../../base/packet/packet_info.ts";
import * as C from "./counters.ts";

/** Limits of a {@link Reassembler}. */
export interface ReassemblyOptions {
  /** Datagrams in progress at once (each may hold up to 64 KiB). Default 64. */
  maxDatagrams?: number;
  /** Bytes of fragment data held over all datagrams; at least 65535. Default 2 MiB. */
  maxBytes?: number;
  /** Fragments per datagram. Default 64 (65535 bytes in fragments of ≥ 1024 bytes; IPv6's 1280 MTU fits). */
  maxFragments?: number;
  /** Seconds an IPv4 datagram may take to arrive whole, from its first fragment. Default 30 (Linux's). */
  timeout4?: number;
  /** Seconds an IPv6 datagram may take (RFC 8200 §4.5: 60). Default 60. */
  timeout6?: number;
}

/** Room for the first fragment's IP header (IPv4 with options: ≤ 60; IPv6 plus its unfragmentable part). */
export const REASSEMBLY_HEADER_ROOM = 256;

const FREE = 0;
const ACTIVE = 1;
/** Discarded (overlap, too big …): kept until its timeout so that later fragments are discarded too. */
const DEAD = 2;
/** Extension headers walked in a first fragment before giving up (as the validator). */
const MAX_EXTENSIONS = 8;

/** Holds fragments per datagram until each is whole; bounded in datagrams, bytes, fragments and time. */
export class Reassembler {
  /** Datagram slots. */
  readonly maxDatagrams: number;
  /** Bytes of data held at most. */
  readonly maxBytes: number;
  /** Fragments per datagram at most. */
  readonly maxFragments: number;
  private readonly timeout4: number;
  private readonly timeout6: number;
  private readonly counters: C.Counters;
  private readonly state: Uint8Array;
  private readonly family: Uint8Array;
  private readonly proto: Uint8Array;
  /** Per slot: source words 0–3, destination words 4–7, identification 8. */
  private readonly key: Uint32Array;
  private readonly created: Float64Array;
  private readonly deadline: Float64Array;
  /** Length of the fragmentable part, known once the last fragment (MF/M = 0) arrived; −1 before. */
  private readonly total: Int32Array;
  private readonly held: Int32Array;
  /** Length of the first fragment's header copy (IPv6: the unfragmentable part); 0 before it arrived. */
  private readonly hdrLen: Int32Array;
  /** IPv6: offset, in the header copy, of the Next Header byte naming the Fragment header. */
  private readonly nhAt: Int32Array;
  /** IPv6: the first fragment's Fragment header Next Header (what the fragmentable part starts with). */
  private readonly next: Uint8Array;
  private readonly count: Int32Array;
  /** Per slot, `maxFragments` [start, end) pairs of the data held. */
  private readonly ranges: Int32Array;
  private readonly bufs: (Uint8Array | undefined)[];
  /** Bytes of data held over all slots. */
  bytesHeld = 0;
  /** Datagrams in progress (not counting discarded ones kept for their timeout). */
  inProgress = 0;

  /** A reassembler counting into `counters` (drops and events, the engine's own). */
  constructor(counters: C.Counters, opts: ReassemblyOptions = {}) {
    this.counters = counters;
    const n = this.maxDatagrams = Math.max(1, opts.maxDatagrams ?? 64);
    this.maxBytes = Math.max(IP_MAX_LENGTH, opts.maxBytes ?? 2 << 20);
    this.maxFragments = Math.max(2, opts.maxFragments ?? 64);
    this.timeout4 = opts.timeout4 ?? 30;
    this.timeout6 = opts.timeout6 ?? 60;
    this.state = new Uint8Array(n);
    this.family = new Uint8Array(n);
    this.proto = new Uint8Array(n);
    this.key = new Uint32Array(n * 9);
    this.created = new Float64Array(n);
    this.deadline = new Float64Array(n);
    this.total = new Int32Array(n);
    this.held = new Int32Array(n);
    this.hdrLen = new Int32Array(n);
    this.nhAt = new Int32Array(n);
    this.next = new Uint8Array(n);
    this.count = new Int32Array(n);
    this.ranges = new Int32Array(n * this.maxFragments * 2);
    this.bufs = new Array(n).fill(undefined);
  }

  /**
   * Takes the fragment in `b` (classified PACKET_FRAGMENT into `info`, IP header at `info.ipOff`) at time
   * `now`. Returns the length of the whole datagram when this fragment completed it — written to `b` at 0
   * as an unfragmented packet — or 0 when the fragment was held or dropped (both counted).
   */
  add(b: Uint8Array, info: PacketInfo, now: number): number {
    const c = this.counters;
    c.events[C.EV_FRAG_RECEIVED]++;
    const fam = info.family;
    const ip = info.ipOff;
    const data = info.l4Off;
    const dlen = info.end - data;
    let off: number, more: boolean, id: number, proto: number;
    if (fam === 4) {
      const fw = read16(b, ip + IPV4_FRAGMENT);
      off = (fw & IPV4_OFFSET_MASK) << 3;
      more = (fw & IPV4_MF) !== 0;
      id = read16(b, ip + IPV4_ID);
      proto = b[ip + IPV4_PROTOCOL];
    } else {
      const f = data - IPV6_FRAGMENT_HEADER_LEN;
      off = read16(b, f + 2) & 0xfff8;
      more = (b[f + 3] & 1) !== 0;
      id = ipv6FragmentId(b, f);
      proto = 0; // IPv6 keys on (src, dst, id) only
    }
    const end = off + dlen;
    // Every fragment but the last carries a multiple of 8 bytes (RFC 791, RFC 8200), and some.
    if (more && (dlen === 0 || (dlen & 7) !== 0)) return this.drop(C.DROP_FRAG_MALFORMED);
    const s = this.find(b, fam, ip, id, proto, now);
    if (s >= 0 && this.state[s] === DEAD) return this.drop(C.DROP_FRAG_DISCARDED);
    // A new datagram gets its slot even when this fragment is refused: its later fragments are refused too.
    const slot = s >= 0 ? s : this.allocate(b, fam, ip, id, proto, now);
    // The data may not run past the largest datagram (header included: ours is at least 20 or 40 bytes).
    if (end > IP_MAX_LENGTH - (fam === 4 ? 20 : 0)) return this.discard(slot, C.DROP_FRAG_TOO_BIG);
    const total = this.total[slot];
    if (!more) {
      if ((total >= 0 && total !== end) || this.maxEnd(slot) > end) {
        return this.discard(slot, C.DROP_FRAG_MALFORMED);
      }
    } else if (total >= 0 && end > total) {
      return this.discard(slot, C.DROP_FRAG_MALFORMED);
    }
    const buf = this.bufs[slot]!;
    const r = this.ranges;
    const rb = slot * this.maxFragments * 2;
    const n = this.count[slot];
    for (let i = 0; i < n; i++) {
      const rs = r[rb + 2 * i];
      const re = r[rb + 2 * i + 1];
      if (off >= re || end <= rs) continue;
      if (off === rs && end === re && sameBytes(b, data, buf, REASSEMBLY_HEADER_ROOM + off, dlen)) {
        return this.drop(C.DROP_FRAG_DUPLICATE);
      }
      return this.discard(slot, C.DROP_FRAG_OVERLAP);
    }
    if (n >= this.maxFragments) return this.discard(slot, C.DROP_FRAG_TOO_MANY);
    if (off === 0) {
      const h = fam === 4 ? this.firstHeader4(b, info, proto, slot) : this.firstHeader6(b, info, slot);
      if (h !== 0) return this.discard(slot, h);
    }
    // Make room: the oldest other datagrams go first (as the kernel's ipfrag_high_thresh eviction).
    while (this.bytesHeld + dlen > this.maxBytes && this.evictOldest(slot) >= 0);
    buf.set(b.subarray(data, data + dlen), REASSEMBLY_HEADER_ROOM + off);
    r[rb + 2 * n] = off;
    r[rb + 2 * n + 1] = end;
    this.count[slot] = n + 1;
    this.held[slot] += dlen;
    this.bytesHeld += dlen;
    if (!more) this.total[slot] = end;
    const t = this.total[slot];
    if (t < 0 || this.held[slot] !== t || this.hdrLen[slot] === 0) {
      c.events[C.EV_FRAG_HELD]++;
      return 0;
    }
    return this.complete(b, slot);
  }

  /** Frees the datagrams whose time ran out (counted as timeouts unless already discarded). */
  expire(now: number): number {
    let n = 0;
    for (let s = 0; s < this.maxDatagrams; s++) {
      if (this.state[s] !== FREE && this.deadline[s] <= now) {
        if (this.state[s] === ACTIVE) {
          this.counters.events[C.EV_FRAG_TIMEOUT]++;
          n++;
        }
        this.free(s);
      }
    }
    return n;
  }

  private drop(reason: number): number {
    this.counters.drops[reason]++;
    return 0;
  }

  /** Drops this fragment and discards its datagram (slot `s`), keeping the slot so later fragments follow. */
  private discard(s: number, reason: number): number {
    if (this.state[s] === ACTIVE) {
      this.inProgress--;
      this.bytesHeld -= this.held[s];
      this.held[s] = 0;
      this.state[s] = DEAD;
    }
    return this.drop(reason);
  }

  /** The slot of datagram (src, dst, id, proto) or −1; a slot past its deadline is expired on the way. */
  private find(b: Uint8Array, fam: number, ip: number, id: number, proto: number, now: number): number {
    const k = this.key;
    const srcAt = ip + (fam === 4 ? 12 : 8);
    const dstAt = ip + (fam === 4 ? 16 : 24);
    const s0 = read32(b, srcAt);
    const d0 = read32(b, dstAt);
    for (let s = 0; s < this.maxDatagrams; s++) {
      if (this.state[s] === FREE || this.family[s] !== fam || this.proto[s] !== proto) continue;
      const o = s * 9;
      if (k[o + 8] !== id || k[o] !== s0 || k[o + 4] !== d0) continue;
      if (
        fam === 6 && (k[o + 1] !== read32(b, srcAt + 4) || k[o + 2] !== read32(b, srcAt + 8) ||
          k[o + 3] !== read32(b, srcAt + 12) || k[o + 5] !== read32(b, dstAt + 4) ||
          k[o + 6] !== read32(b, dstAt + 8) || k[o + 7] !== read32(b, dstAt + 12))
      ) continue;
      if (this.deadline[s] <= now) {
        if (this.state[s] === ACTIVE) this.counters.events[C.EV_FRAG_TIMEOUT]++;
        this.free(s);
        return -1;
      }
      return s;
    }
    return -1;
  }

  /** Takes a slot for a new datagram: a free one, else the oldest is evicted. */
  private allocate(b: Uint8Array, fam: number, ip: number, id: number, proto: number, now: number): number {
    let s = this.state.indexOf(FREE);
    if (s < 0) s = this.evictOldest(-1);
    this.state[s] = ACTIVE;
    this.inProgress++;
    this.family[s] = fam;
    this.proto[s] = proto;
    const o = s * 9;
    const srcAt = ip + (fam === 4 ? 12 : 8);
    const dstAt = ip + (fam === 4 ? 16 : 24);
    const words = fam === 4 ? 1 : 4;
    for (let i = 0; i < 4; i++) {
      this.key[o + i] = i < words ? read32(b, srcAt + 4 * i) : 0;
      this.key[o + 4 + i] = i < words ? read32(b, dstAt + 4 * i) : 0;
    }
    this.key[o + 8] = id;
    this.created[s] = now;
    this.deadline[s] = now + (fam === 4 ? this.timeout4 : this.timeout6);
    this.total[s] = -1;
    this.held[s] = 0;
    this.hdrLen[s] = 0;
    this.count[s] = 0;
    // Rare path: a slot's buffer is made once, on first use, and kept.
    this.bufs[s] ??= new Uint8Array(REASSEMBLY_HEADER_ROOM + IP_MAX_LENGTH);
    return s;
  }

  /** Evicts the oldest slot other than `keep`; returns it (now free). */
  private evictOldest(keep: number): number {
    let best = -1;
    for (let s = 0; s < this.maxDatagrams; s++) {
      if (s === keep || this.state[s] === FREE) continue;
      if (best < 0 || this.created[s] < this.created[best]) best = s;
    }
    if (best < 0) return -1;
    if (this.state[best] === ACTIVE) this.counters.events[C.EV_FRAG_EVICTED]++;
    this.free(best);
    return best;
  }

  private free(s: number): void {
    if (this.state[s] === ACTIVE) {
      this.inProgress--;
      this.bytesHeld -= this.held[s];
    }
    this.held[s] = 0;
    this.state[s] = FREE;
  }

  /** The furthest data end held in slot `s`. */
  private maxEnd(s: number): number {
    let m = 0;
    const rb = s * this.maxFragments * 2;
    for (let i = 0; i < this.count[s]; i++) m = Math.max(m, this.ranges[rb + 2 * i + 1]);
    return m;
  }

  /** IPv4 first fragment: the whole transport header present (RFC 1858)? Copies the IP header; 0 or a drop reason. */
  private firstHeader4(b: Uint8Array, info: PacketInfo, proto: number, s: number): number {
    const data = info.l4Off;
    const avail = info.end - data;
    if (proto === IPPROTO_TCP) {
      if (avail < 20 || avail < (b[data + 12] >>> 4) << 2) return C.DROP_FRAG_TINY;
    } else if (proto === IPPROTO_UDP || proto === IPPROTO_ICMP) {
      if (avail < 8) return C.DROP_FRAG_TINY;
    }
    const hl = data - info.ipOff;
    this.bufs[s]!.set(b.subarray(info.ipOff, data), REASSEMBLY_HEADER_ROOM - hl);
    this.hdrLen[s] = hl;
    return 0;
  }

  /**
   * IPv6 first fragment: the whole header chain and transport header present (RFC 7112)? Copies the
   * unfragmentable part (the headers before the Fragment header); 0 or a drop reason.
   */
  private firstHeader6(b: Uint8Array, info: PacketInfo, s: number): number {
    const ip = info.ipOff;
    const end = info.end;
    let p = info.l4Off;
    let nh = info.l4Proto;
    for (let i = 0; i <= MAX_EXTENSIONS; i++) {
      if (nh === IPV6_EXT_ROUTING || nh === IPV6_EXT_DEST_OPTS || nh === IPV6_EXT_AH) {
        if (p + 2 > end) return C.DROP_FRAG_TINY;
        const hl = nh === IPV6_EXT_AH ? (b[p + 1] + 2) << 2 : (b[p + 1] + 1) << 3;
        nh = b[p];
        p += hl;
        if (p > end) return C.DROP_FRAG_TINY;
        continue;
      }
      if (nh === IPV6_EXT_HOP_BY_HOP || nh === IPV6_EXT_FRAGMENT) return C.DROP_FRAG_MALFORMED;
      if (nh === IPPROTO_TCP) {
        if (p + 20 > end || p + ((b[p + 12] >>> 4) << 2) > end) return C.DROP_FRAG_TINY;
      } else if (nh === IPPROTO_UDP || nh === IPPROTO_ICMPV6) {
        if (p + 8 > end) return C.DROP_FRAG_TINY;
      }
      // Another upper layer's header is not ours to judge: the engine drops what it does not serve.
      const f = info.l4Off - IPV6_FRAGMENT_HEADER_LEN;
      const hl = f - ip;
      if (hl > REASSEMBLY_HEADER_ROOM) return C.DROP_FRAG_MALFORMED;
      // Where the Next Header naming the Fragment header sits: the fixed header's, or the last extension's.
      let at = IPV6_NEXT_HEADER;
      for (let q = ip + IPV6_HEADER_LEN, x = b[ip + IPV6_NEXT_HEADER]; q < f;) {
        at = q - ip;
        const len = x === IPV6_EXT_AH ? (b[q + 1] + 2) << 2 : (b[q + 1] + 1) << 3;
        x = b[q];
        q += len;
      }
      this.bufs[s]!.set(b.subarray(ip, f), REASSEMBLY_HEADER_ROOM - hl);
      this.hdrLen[s] = hl;
      this.nhAt[s] = at;
      this.next[s] = info.l4Proto;
      return 0;
    }
    return C.DROP_FRAG_MALFORMED;
  }

  /** Writes slot `s`'s whole datagram to `b` at 0 as an unfragmented packet; frees the slot. */
  private complete(b: Uint8Array, s: number): number {
    const hl = this.hdrLen[s];
    const t = this.total[s];
    const fam = this.family[s];
    const len = hl + t;
    // IPv6's Payload Length counts the unfragmentable extension headers too.
    const fieldLen = fam === 4 ? len : len - IPV6_HEADER_LEN;
    if (fieldLen > IP_MAX_LENGTH || len > b.length) {
      this.discard(s, C.DROP_FRAG_TOO_BIG);
      return 0;
    }
    const buf = this.bufs[s]!;
    b.set(buf.subarray(REASSEMBLY_HEADER_ROOM - hl, REASSEMBLY_HEADER_ROOM + t), 0);
    if (fam === 4) {
      // No longer a fragment: offset 0, MF clear; DF as the first fragment had it.
      write16(b, IPV4_FRAGMENT, read16(b, IPV4_FRAGMENT) & IPV4_DF);
      ipv4SetTotalLength(b, 0, len);
      ipv4FillChecksum(b, 0);
    } else {
      // The Fragment header is gone: the header that named it now names what it carried.
      b[this.nhAt[s]] = this.next[s];
      write16(b, IPV6_PAYLOAD_LENGTH, fieldLen);
    }
    this.free(s);
    this.counters.events[C.EV_FRAG_REASSEMBLED]++;
    return len;
  }
}

/** True when `n` bytes at `a[ao]` equal those at `b[bo]`. */
function sameBytes(a: Uint8Array, ao: number, b: Uint8Array, bo: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}
