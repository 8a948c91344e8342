/**
 * The connection table of one worker, as flat typed arrays indexed by a connection handle (Katran's maps,
 * dpvs' pools): 1M connections cost memory, not garbage-collector time.
 *
 * Each connection's hot fields (everything a packet of an established connection, the hash-chain walk and
 * the timer wheel's per-packet refresh read or write) form one 64-byte record, one cache line, in a single
 * aligned buffer: a packet of a cold connection in a 10 M table costs one miss for its record instead of one
 * per field array (docs/performance.md, "Big tables"). The record, by byte offset (little-endian words):
 *
 * ```text
 *  0 ┌───────────────┬───────────────┬───────────────────────────────┐
 *    │ clientAddr[0] │ filed (i32)   │ deadline (f64)                │
 * 16 ├───────────────┼───────────────┼───────────────┬───────────────┤
 *    │ hashNext (i32)│ server        │ seqDelta      │ serverDelta   │
 * 32 ├───────────────┼───────────────┼───────────────┼───────────────┤
 *    │nextFromClient │nextFromServer │ clientMaxWin  │ serverMaxWin  │
 * 48 ├───────┬───────┼───────┬───────┼───┬───┬───┬───┼───┬───┬───┬───┤
 *    │ cport │service│ lidx  │ lport │fam│pro│sta│flg│cws│sws│syo│ - │
 * 64 └───────┴───────┴───────┴───────┴───┴───┴───┴───┴───┴───┴───┴───┘
 * ```
 *
 * (clientAddr[0]: the IPv4 client address, or an IPv6 one's first word; filed, deadline: the timer wheel's
 * fields ({@link ConnTable.timerFields}); cport: client port; lidx/lport: local address index and port; fam:
 * family; pro: protocol; sta: state; flg: flags; cws/sws: window scales; syo: synOptions; -: spare.)
 *
 * What is not in the record, and why:
 * - an IPv6 client address's four words, in a side array: only IPv6 connections read it (one line more for
 *   them), and an IPv4 one does not carry 12 zero bytes (room for the timer's fields instead);
 * - `clientMss`: only a SYN rebuilt for the server (takeover, SYN proxy handshake) reads it. `synOptions`
 *   is in the record because the SYN proxy's window rescaling reads it on every packet.
 *
 * @module
 */

import { PLAIN_MEMORY, type TableMemory } from "./table_memory.ts";
import type { TimerFields } from "./timer_wheel.ts";

/** Marks an empty slot or the end of a chain. */
export const NO_CONN = -1;

/** The bits of {@link ConnTable.clientWscale} and {@link ConnTable.serverWscale} that hold the shift (0–14). */
export const WSCALE_SHIFT = 0x0f;
/**
 * In {@link ConnTable.clientWscale} while SYN_SENT: the client's SYN offered window scaling (its shift in the
 * low bits). The server's SYN+ACK settles it: scaling is on only when both sides sent the option (RFC 7323).
 */
export const WSCALE_OFFERED = 0x10;

/** {@link ConnTable.synOptions}: the client's SYN offered SACK (SACK-permitted). */
export const SYN_SACK_PERMITTED = 0x01;
/** {@link ConnTable.synOptions}: the client's SYN carried data (TFO): its ISN is not `nextFromClient − 1`. */
export const SYN_DATA = 0x02;
/** {@link ConnTable.synOptions}: SYNs re-sent to take over a tuple the real server still held, in units of 4. */
export const SYN_TAKEOVERS = 0x0c;
/** One takeover, as counted in {@link SYN_TAKEOVERS}. */
export const SYN_TAKEOVER_ONE = 0x04;
/** {@link ConnTable.synOptions}, SYN proxy: the cookie says the client offered window scaling. */
export const SYN_PROXY_CLIENT_WSCALE = 0x10;
/** {@link ConnTable.synOptions}, SYN proxy: a client segment is kept for the connection. */
export const SYN_PROXY_KEPT = 0x20;
/** {@link ConnTable.synOptions}, SYN proxy: the server declined window scaling while the client uses it. */
export const SYN_PROXY_SERVER_NO_WSCALE = 0x40;
/** The SYN_PROXY_* bits. */
export const SYN_PROXY_BITS = 0x70;

/** Bytes per connection record: one cache line. */
const RECORD = 64;
// Word (32-bit) offsets in a record.
const W_CLIENT_ADDR = 0;
const W_FILED = 1;
/** The deadline's offset in Float64 elements (bytes 8–15). */
const D_DEADLINE = 1;
const W_HASH_NEXT = 4;
const W_SERVER = 5;
const W_SEQ_DELTA = 6;
const W_SERVER_DELTA = 7;
const W_NEXT_FROM_CLIENT = 8;
const W_NEXT_FROM_SERVER = 9;
const W_CLIENT_MAX_WIN = 10;
const W_SERVER_MAX_WIN = 11;
// Half-word (16-bit) offsets.
const H_CLIENT_PORT = 24;
const H_SERVICE = 25;
const H_LOCAL_INDEX = 26;
const H_LOCAL_PORT = 27;
// Byte offsets.
const B_FAMILY = 56;
const B_PROTO = 57;
const B_STATE = 58;
const B_FLAGS = 59;
const B_CLIENT_WSCALE = 60;
const B_SERVER_WSCALE = 61;
const B_SYN_OPTIONS = 62;

/**
 * Per-connection state in one 64-byte record per handle (see the module doc), read and written through
 * small accessors that V8 inlines, with the two lookups.
 */
export class ConnTable {
  /** Largest number of live connections. */
  readonly capacity: number;
  /** Live connections. */
  size = 0;
  // The records as 32-bit words (16 per connection), signed words (the chain link, the filed second),
  // half-words, bytes and Float64s (the deadline).
  private readonly rec32: Uint32Array;
  private readonly rec32s: Int32Array;
  private readonly rec64: Float64Array;
  /** IPv6 client addresses, four words per handle (untouched pages for IPv4-only tables). */
  private readonly addr6: Uint32Array;
  private readonly rec16: Uint16Array;
  private readonly rec8: Uint8Array;
  /**
   * The MSS the client's SYN announced, as clamped toward the server (0: none): with {@link synOptions}, what
   * a SYN re-sent to the server needs beyond the tuple, sequence numbers and window scale. Outside the
   * record: read only when such a SYN is built.
   */
  private readonly mss: Uint16Array;
  private readonly buckets: Int32Array;
  private readonly bucketMask: number;
  private byLocal: Int32Array;
  private freeHead = NO_CONN;
  private highWater = 0;

  /**
   * Allocates a table for `capacity` connections and `localAddresses` local addresses, from `memory` (plain
   * buffers unless the caller may give aligned, huge-page ones: table_memory.ts).
   */
  constructor(capacity: number, localAddresses: number, private readonly memory: TableMemory = PLAIN_MEMORY) {
    // id << 6 must stay a positive 32-bit integer.
    if (capacity > 1 << 25) throw new Error(`ConnTable: capacity ${capacity} above ${1 << 25}`);
    this.capacity = capacity;
    const { buffer, byteOffset } = memory.aligned(capacity * RECORD);
    this.rec32 = new Uint32Array(buffer, byteOffset, capacity * 16);
    this.rec32s = new Int32Array(buffer, byteOffset, capacity * 16);
    this.rec16 = new Uint16Array(buffer, byteOffset, capacity * 32);
    this.rec8 = new Uint8Array(buffer, byteOffset, capacity * RECORD);
    this.rec64 = new Float64Array(buffer, byteOffset, capacity * 8);
    this.addr6 = new Uint32Array(memory.buffer(capacity * 16));
    this.mss = new Uint16Array(capacity);
    let nb = 1024;
    while (nb < capacity) nb *= 2;
    // Huge pages (given the memory for it) for every array a packet reaches at random: no TLB miss per lookup.
    this.buckets = new Int32Array(memory.buffer(nb * 4)).fill(NO_CONN);
    this.bucketMask = nb - 1;
    this.byLocal = new Int32Array(memory.buffer(localAddresses * 65536 * 4)).fill(NO_CONN);
  }

  /** Address family (4 or 6); 0 marks a free handle. */
  family(id: number): number {
    return this.rec8[(id << 6) + B_FAMILY];
  }
  /** IP protocol (6 TCP, 17 UDP). */
  proto(id: number): number {
    return this.rec8[(id << 6) + B_PROTO];
  }
  /** Connection state (see tcp_state.ts). */
  state(id: number): number {
    return this.rec8[(id << 6) + B_STATE];
  }
  /** Sets the connection state. */
  setState(id: number, v: number): void {
    this.rec8[(id << 6) + B_STATE] = v;
  }
  /** Flag bits (see CONN_* in tcp_state.ts). */
  flags(id: number): number {
    return this.rec8[(id << 6) + B_FLAGS];
  }
  /** Sets the flag bits. */
  setFlags(id: number, v: number): void {
    this.rec8[(id << 6) + B_FLAGS] = v;
  }
  /** Service index. */
  service(id: number): number {
    return this.rec16[(id << 5) + H_SERVICE];
  }
  /** Real-server index within the engine's flat server list. */
  server(id: number): number {
    return this.rec32[(id << 4) + W_SERVER];
  }
  /** Sets the real-server index. */
  setServer(id: number, v: number): void {
    this.rec32[(id << 4) + W_SERVER] = v;
  }
  /**
   * The words holding the client address of `id`, for the codecs that take an address as (words, offset)
   * with the family: the record for IPv4 (one word), the IPv6 side array (four). With {@link addrAt}.
   */
  addrWords(id: number): Uint32Array {
    return this.rec8[(id << 6) + B_FAMILY] === 6 ? this.addr6 : this.rec32;
  }
  /** Index in {@link addrWords} of the client address's first word. */
  addrAt(id: number): number {
    return this.rec8[(id << 6) + B_FAMILY] === 6 ? id << 2 : (id << 4) + W_CLIENT_ADDR;
  }
  /** Where a {@link TimerWheel} over these handles keeps its per-handle fields: in the records. */
  timerFields(): TimerFields {
    return {
      deadlines: this.rec64,
      deadlineShift: 3,
      deadlineAt: D_DEADLINE,
      filed: this.rec32s,
      filedShift: 4,
      filedAt: W_FILED,
    };
  }
  /** Client port. */
  clientPort(id: number): number {
    return this.rec16[(id << 5) + H_CLIENT_PORT];
  }
  /** Local address index. */
  localIndex(id: number): number {
    return this.rec16[(id << 5) + H_LOCAL_INDEX];
  }
  /** Local port. */
  localPort(id: number): number {
    return this.rec16[(id << 5) + H_LOCAL_PORT];
  }
  /** Sequence offset added to client→server sequence numbers (mod 2^32). */
  seqDelta(id: number): number {
    return this.rec32[(id << 4) + W_SEQ_DELTA];
  }
  /** Sets the sequence offset (stored mod 2^32). */
  setSeqDelta(id: number, v: number): void {
    this.rec32[(id << 4) + W_SEQ_DELTA] = v;
  }
  /**
   * The sequence number after the client's highest segment (its own numbering, before the delta): what the
   * server will expect next once all it was sent has arrived. For the RSTs of a reset.
   */
  nextFromClient(id: number): number {
    return this.rec32[(id << 4) + W_NEXT_FROM_CLIENT];
  }
  /** Sets {@link nextFromClient} (stored mod 2^32). */
  setNextFromClient(id: number, v: number): void {
    this.rec32[(id << 4) + W_NEXT_FROM_CLIENT] = v;
  }
  /** The sequence number after the server's highest segment: what the client will expect next. */
  nextFromServer(id: number): number {
    return this.rec32[(id << 4) + W_NEXT_FROM_SERVER];
  }
  /** Sets {@link nextFromServer} (stored mod 2^32). */
  setNextFromServer(id: number, v: number): void {
    this.rec32[(id << 4) + W_NEXT_FROM_SERVER] = v;
  }
  /**
   * SYN proxy: offset subtracted from server→client sequence numbers (and added to client→server
   * acknowledgements, SACK blocks): the server's ISN minus the cookie the gateway gave the client. 0 otherwise.
   */
  serverDelta(id: number): number {
    return this.rec32[(id << 4) + W_SERVER_DELTA];
  }
  /** Sets {@link serverDelta} (stored mod 2^32). */
  setServerDelta(id: number, v: number): void {
    this.rec32[(id << 4) + W_SERVER_DELTA] = v;
  }
  /**
   * Window scale shift the client applies to its windows (0 when none was negotiated); while SYN_SENT, its
   * offer ({@link WSCALE_OFFERED}), so readers mask with {@link WSCALE_SHIFT}.
   */
  clientWscale(id: number): number {
    return this.rec8[(id << 6) + B_CLIENT_WSCALE];
  }
  /** Sets {@link clientWscale}. */
  setClientWscale(id: number, v: number): void {
    this.rec8[(id << 6) + B_CLIENT_WSCALE] = v;
  }
  /** Window scale shift the server applies to its windows (0 when none was negotiated). */
  serverWscale(id: number): number {
    return this.rec8[(id << 6) + B_SERVER_WSCALE];
  }
  /** Sets {@link serverWscale}. */
  setServerWscale(id: number, v: number): void {
    this.rec8[(id << 6) + B_SERVER_WSCALE] = v;
  }
  /** Largest window the client advertised, scaled: bounds what the server may send (blind-RST checks). */
  clientMaxWin(id: number): number {
    return this.rec32[(id << 4) + W_CLIENT_MAX_WIN];
  }
  /** Sets {@link clientMaxWin} (stored mod 2^32). */
  setClientMaxWin(id: number, v: number): void {
    this.rec32[(id << 4) + W_CLIENT_MAX_WIN] = v;
  }
  /** Largest window the server advertised, scaled: bounds what the client may send. */
  serverMaxWin(id: number): number {
    return this.rec32[(id << 4) + W_SERVER_MAX_WIN];
  }
  /** Sets {@link serverMaxWin} (stored mod 2^32). */
  setServerMaxWin(id: number, v: number): void {
    this.rec32[(id << 4) + W_SERVER_MAX_WIN] = v;
  }
  /** SYN_* bits: SACK permitted, data in the SYN, takeovers so far, the SYN proxy's SYN_PROXY_* bits. */
  synOptions(id: number): number {
    return this.rec8[(id << 6) + B_SYN_OPTIONS];
  }
  /** Sets the SYN_* bits (stored mod 2^8). */
  setSynOptions(id: number, v: number): void {
    this.rec8[(id << 6) + B_SYN_OPTIONS] = v;
  }
  /** The MSS the client's SYN announced, as clamped toward the server (0: none). */
  clientMss(id: number): number {
    return this.mss[id];
  }
  /** Sets {@link clientMss}. */
  setClientMss(id: number, v: number): void {
    this.mss[id] = v;
  }

  /** Makes room for `localAddresses` local addresses in the local-side index (control path; only grows). */
  growLocals(localAddresses: number): void {
    if (this.byLocal.length >= localAddresses * 65536) return;
    const b = new Int32Array(this.memory.buffer(localAddresses * 65536 * 4)).fill(NO_CONN);
    b.set(this.byLocal);
    this.byLocal = b;
  }

  /** Hash of the client-side key (a Murmur3-style mix of the words). */
  private hash(svc: number, a0: number, a1: number, a2: number, a3: number, port: number): number {
    let h = Math.imul(svc ^ 0x9e3779b9, 0x85ebca6b);
    h = Math.imul(h ^ a0, 0xcc9e2d51);
    h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64;
    h = Math.imul(h ^ a1, 0xcc9e2d51);
    h = Math.imul(h ^ a2, 0x1b873593);
    h = Math.imul(h ^ a3, 0xcc9e2d51);
    h = Math.imul(h ^ port, 0x1b873593);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    return (h >>> 0) & this.bucketMask;
  }

  /** Finds the connection of a client tuple on service `svc`, or NO_CONN. */
  findClient(svc: number, a0: number, a1: number, a2: number, a3: number, port: number): number {
    let id = this.buckets[this.hash(svc, a0, a1, a2, a3, port)];
    const r32 = this.rec32;
    const r16 = this.rec16;
    while (id !== NO_CONN) {
      // Every field compared for IPv4, and the link, are in the record: one line per chain step.
      const w = id << 4;
      const h = id << 5;
      if (
        r16[h + H_CLIENT_PORT] === port && r32[w + W_CLIENT_ADDR] === a0 && r16[h + H_SERVICE] === svc &&
        this.restOfAddress(id, a1, a2, a3)
      ) return id;
      id = this.rec32s[w + W_HASH_NEXT];
    }
    return NO_CONN;
  }

  /** True when words 1–3 of `id`'s client address are these (IPv4: zeros, as its key was inserted). */
  private restOfAddress(id: number, a1: number, a2: number, a3: number): boolean {
    if (this.rec8[(id << 6) + B_FAMILY] !== 6) return (a1 | a2 | a3) === 0;
    const a = this.addr6;
    const w = id << 2;
    return a[w + 1] === a1 && a[w + 2] === a2 && a[w + 3] === a3;
  }

  /** Finds the connection that owns a local address/port pair, or NO_CONN. */
  findLocal(localIndex: number, port: number): number {
    return this.byLocal[localIndex * 65536 + port];
  }

  /**
   * Adds a connection and links it into both lookups; returns its handle, or NO_CONN when the table is full.
   * The caller fills the remaining fields (server, state, seqDelta …).
   */
  insert(
    family: number,
    proto: number,
    svc: number,
    a0: number,
    a1: number,
    a2: number,
    a3: number,
    port: number,
    localIndex: number,
    localPort: number,
  ): number {
    let id: number;
    if (this.freeHead !== NO_CONN) {
      id = this.freeHead;
      this.freeHead = this.rec32s[(id << 4) + W_HASH_NEXT];
    } else if (this.highWater < this.capacity) {
      id = this.highWater++;
    } else {
      return NO_CONN;
    }
    const w = id << 4;
    const h = id << 5;
    const b = id << 6;
    const r32 = this.rec32;
    const r16 = this.rec16;
    const r8 = this.rec8;
    r8[b + B_FAMILY] = family;
    r8[b + B_PROTO] = proto;
    r16[h + H_SERVICE] = svc;
    r32[w + W_CLIENT_ADDR] = a0;
    if (family === 6) {
      const a = this.addr6;
      a[id << 2] = a0;
      a[(id << 2) + 1] = a1;
      a[(id << 2) + 2] = a2;
      a[(id << 2) + 3] = a3;
    }
    r16[h + H_CLIENT_PORT] = port;
    r16[h + H_LOCAL_INDEX] = localIndex;
    r16[h + H_LOCAL_PORT] = localPort;
    r8[b + B_STATE] = 0;
    r8[b + B_FLAGS] = 0;
    r32[w + W_SEQ_DELTA] = 0;
    r32[w + W_SERVER_DELTA] = 0;
    r8[b + B_CLIENT_WSCALE] = 0;
    r8[b + B_SERVER_WSCALE] = 0;
    r32[w + W_CLIENT_MAX_WIN] = 0;
    r32[w + W_SERVER_MAX_WIN] = 0;
    this.mss[id] = 0;
    r8[b + B_SYN_OPTIONS] = 0;
    const hb = this.hash(svc, a0, a1, a2, a3, port);
    this.rec32s[w + W_HASH_NEXT] = this.buckets[hb];
    this.buckets[hb] = id;
    this.byLocal[localIndex * 65536 + localPort] = id;
    this.size++;
    return id;
  }

  /** Unlinks and frees a connection handle. */
  remove(id: number): void {
    const b = id << 6;
    if (this.rec8[b + B_FAMILY] === 0) return;
    const w = id << 4;
    const next = this.rec32s;
    const aw = this.addrWords(id);
    const at = this.addrAt(id);
    const v6 = this.rec8[b + B_FAMILY] === 6;
    const h = this.hash(
      this.rec16[(id << 5) + H_SERVICE],
      aw[at],
      v6 ? aw[at + 1] : 0,
      v6 ? aw[at + 2] : 0,
      v6 ? aw[at + 3] : 0,
      this.rec16[(id << 5) + H_CLIENT_PORT],
    );
    let cur = this.buckets[h];
    let prev = NO_CONN;
    while (cur !== NO_CONN && cur !== id) {
      prev = cur;
      cur = next[(cur << 4) + W_HASH_NEXT];
    }
    if (cur === id) {
      if (prev === NO_CONN) this.buckets[h] = next[w + W_HASH_NEXT];
      else next[(prev << 4) + W_HASH_NEXT] = next[w + W_HASH_NEXT];
    }
    const li = this.rec16[(id << 5) + H_LOCAL_INDEX] * 65536 + this.rec16[(id << 5) + H_LOCAL_PORT];
    if (this.byLocal[li] === id) this.byLocal[li] = NO_CONN;
    this.rec8[b + B_FAMILY] = 0;
    // A free handle is in no chain: its link is the free list's.
    next[w + W_HASH_NEXT] = this.freeHead;
    this.freeHead = id;
    this.size--;
  }

  /** True when `id` is a live connection. */
  isLive(id: number): boolean {
    return id >= 0 && id < this.capacity && this.rec8[(id << 6) + B_FAMILY] !== 0;
  }
}
