/**
 * The connection table of one worker, as flat typed arrays indexed by a connection handle (Katran's maps,
 * dpvs' pools): 1M connections cost memory, not garbage-collector time.
 *
 * Found from both directions:
 * - client side: (service, client address, client port) through a chained hash table;
 * - real-server side: (local address index, local port) through a direct index — the pool hands each pair
 *   out once per worker, so the pair alone names the connection; the caller checks the real server.
 *
 * @module
 */

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

/** Per-connection state in parallel typed arrays, with the two lookups. */
export class ConnTable {
  /** Largest number of live connections. */
  readonly capacity: number;
  /** Live connections. */
  size = 0;
  /** Address family (4 or 6); 0 marks a free handle. */
  readonly family: Uint8Array;
  /** IP protocol (6 TCP, 17 UDP). */
  readonly proto: Uint8Array;
  /** Connection state (see tcp_state.ts). */
  readonly state: Uint8Array;
  /** Flag bits (see CONN_* in tcp_state.ts). */
  readonly flags: Uint8Array;
  /** Service index. */
  readonly service: Uint16Array;
  /** Real-server index within the engine's flat server list. */
  readonly server: Uint32Array;
  /** Client address as four 32-bit words (IPv4: word 0, others 0). */
  readonly clientAddr: Uint32Array;
  /** Client port. */
  readonly clientPort: Uint16Array;
  /** Local address index. */
  readonly localIndex: Uint16Array;
  /** Local port. */
  readonly localPort: Uint16Array;
  /** Sequence offset added to client→server sequence numbers (mod 2^32). */
  readonly seqDelta: Uint32Array;
  /**
   * The sequence number after the client's highest segment (its own numbering, before the delta): what the
   * server will expect next once all it was sent has arrived. For the RSTs of a reset.
   */
  readonly nextFromClient: Uint32Array;
  /** The sequence number after the server's highest segment: what the client will expect next. */
  readonly nextFromServer: Uint32Array;
  /**
   * SYN proxy: offset subtracted from server→client sequence numbers (and added to client→server
   * acknowledgements, SACK blocks): the server's ISN minus the cookie the gateway gave the client. 0 otherwise.
   */
  readonly serverDelta: Uint32Array;
  /**
   * Window scale shift the client applies to its windows (0 when none was negotiated); while SYN_SENT, its
   * offer ({@link WSCALE_OFFERED}), so readers mask with {@link WSCALE_SHIFT}.
   */
  readonly clientWscale: Uint8Array;
  /** Window scale shift the server applies to its windows (0 when none was negotiated). */
  readonly serverWscale: Uint8Array;
  /** Largest window the client advertised, scaled: bounds what the server may send (blind-RST checks). */
  readonly clientMaxWin: Uint32Array;
  /** Largest window the server advertised, scaled: bounds what the client may send. */
  readonly serverMaxWin: Uint32Array;
  /**
   * The MSS the client's SYN announced, as clamped toward the server (0: none), and {@link synOptions}: what a
   * SYN re-sent to the server needs beyond the tuple, sequence numbers and window scale (3 bytes).
   */
  readonly clientMss: Uint16Array;
  /** SYN_* bits: SACK permitted, data in the SYN, takeovers so far, the SYN proxy's SYN_PROXY_* bits. */
  readonly synOptions: Uint8Array;
  /** The next handle in a hash chain; for a free handle, the next in the free list (one array for both). */
  private readonly hashNext: Int32Array;
  private readonly buckets: Int32Array;
  private readonly bucketMask: number;
  private byLocal: Int32Array;
  private freeHead = NO_CONN;
  private highWater = 0;

  /** Allocates a table for `capacity` connections and `localAddresses` local addresses. */
  constructor(capacity: number, localAddresses: number) {
    this.capacity = capacity;
    this.family = new Uint8Array(capacity);
    this.proto = new Uint8Array(capacity);
    this.state = new Uint8Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.service = new Uint16Array(capacity);
    this.server = new Uint32Array(capacity);
    this.clientAddr = new Uint32Array(capacity * 4);
    this.clientPort = new Uint16Array(capacity);
    this.localIndex = new Uint16Array(capacity);
    this.localPort = new Uint16Array(capacity);
    this.seqDelta = new Uint32Array(capacity);
    this.nextFromClient = new Uint32Array(capacity);
    this.nextFromServer = new Uint32Array(capacity);
    this.serverDelta = new Uint32Array(capacity);
    this.clientWscale = new Uint8Array(capacity);
    this.serverWscale = new Uint8Array(capacity);
    this.clientMaxWin = new Uint32Array(capacity);
    this.serverMaxWin = new Uint32Array(capacity);
    this.clientMss = new Uint16Array(capacity);
    this.synOptions = new Uint8Array(capacity);
    this.hashNext = new Int32Array(capacity);
    let nb = 1024;
    while (nb < capacity) nb *= 2;
    this.buckets = new Int32Array(nb).fill(NO_CONN);
    this.bucketMask = nb - 1;
    this.byLocal = new Int32Array(localAddresses * 65536).fill(NO_CONN);
  }

  /** Makes room for `localAddresses` local addresses in the local-side index (control path; only grows). */
  growLocals(localAddresses: number): void {
    if (this.byLocal.length >= localAddresses * 65536) return;
    const b = new Int32Array(localAddresses * 65536).fill(NO_CONN);
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
    const ca = this.clientAddr;
    while (id !== NO_CONN) {
      const w = id * 4;
      if (
        this.clientPort[id] === port && ca[w] === a0 && ca[w + 1] === a1 && ca[w + 2] === a2 &&
        ca[w + 3] === a3 &&
        this.service[id] === svc
      ) return id;
      id = this.hashNext[id];
    }
    return NO_CONN;
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
      this.freeHead = this.hashNext[id];
    } else if (this.highWater < this.capacity) {
      id = this.highWater++;
    } else {
      return NO_CONN;
    }
    this.family[id] = family;
    this.proto[id] = proto;
    this.service[id] = svc;
    const w = id * 4;
    this.clientAddr[w] = a0;
    this.clientAddr[w + 1] = a1;
    this.clientAddr[w + 2] = a2;
    this.clientAddr[w + 3] = a3;
    this.clientPort[id] = port;
    this.localIndex[id] = localIndex;
    this.localPort[id] = localPort;
    this.state[id] = 0;
    this.flags[id] = 0;
    this.seqDelta[id] = 0;
    this.serverDelta[id] = 0;
    this.clientWscale[id] = 0;
    this.serverWscale[id] = 0;
    this.clientMaxWin[id] = 0;
    this.serverMaxWin[id] = 0;
    this.clientMss[id] = 0;
    this.synOptions[id] = 0;
    const h = this.hash(svc, a0, a1, a2, a3, port);
    this.hashNext[id] = this.buckets[h];
    this.buckets[h] = id;
    this.byLocal[localIndex * 65536 + localPort] = id;
    this.size++;
    return id;
  }

  /** Unlinks and frees a connection handle. */
  remove(id: number): void {
    if (this.family[id] === 0) return;
    const w = id * 4;
    const h = this.hash(
      this.service[id],
      this.clientAddr[w],
      this.clientAddr[w + 1],
      this.clientAddr[w + 2],
      this.clientAddr[w + 3],
      this.clientPort[id],
    );
    let cur = this.buckets[h];
    let prev = NO_CONN;
    while (cur !== NO_CONN && cur !== id) {
      prev = cur;
      cur = this.hashNext[cur];
    }
    if (cur === id) {
      if (prev === NO_CONN) this.buckets[h] = this.hashNext[id];
      else this.hashNext[prev] = this.hashNext[id];
    }
    const li = this.localIndex[id] * 65536 + this.localPort[id];
    if (this.byLocal[li] === id) this.byLocal[li] = NO_CONN;
    this.family[id] = 0;
    this.hashNext[id] = this.freeHead;
    this.freeHead = id;
    this.size--;
  }

  /** True when `id` is a live connection. */
  isLive(id: number): boolean {
    return id >= 0 && id < this.capacity && this.family[id] !== 0;
  }
}
