/**
 * The TOA proxy: accepts on a `TCP_SAVE_SYN` listener, decides each connection's client address (TOA from a
 * trusted peer, else the peer), connects to the backend, sends a PROXY header, then relays bytes both ways
 * until both sides have closed.
 *
 * One epoll loop over FFI drives every socket:
 *
 * ```
 *   epoll_wait (sync, timeout 0; when idle: on a worker thread, so timers and signals still run)
 *     └─ per ready fd, synchronous nonblocking recv/send/connect into preallocated buffers
 *   listener ready → accept4 … (after the batch, so no fd number is reused while its old events are pending)
 * ```
 *
 * Each connection fd is registered once (EPOLLIN | EPOLLOUT | EPOLLRDHUP, edge-triggered) and leaves the set
 * when it is closed: no epoll_ctl per state change. An edge sets a readiness bit in the connection; a bit is
 * cleared only when the call it allows says EAGAIN or reads or writes short, so bytes move until the kernel
 * says stop, and the next edge starts them again.
 *
 * Per direction (client→backend, backend→client) a connection holds at most one `bufferSize` buffer, and
 * only while the destination is not taking bytes; while it is held the source is not read, so the sender's
 * kernel window closes — that is the backpressure, and memory is bounded by 2 × bufferSize × connections,
 * and is zero for idle connections. EOF from one side is passed on
 * as shutdown(SHUT_WR) of the other after its buffer is flushed (half-close); both fds close when both
 * directions have ended, or at once on an error.
 *
 * Established connections that move no byte for `idleTimeoutMs` are closed (both sides) by a one-second
 * timer wheel (toa/idle_wheel.ts): activity is one store per recv/send, and a loop turn looks only at the
 * wheel slot of a second that has just passed. When accept4 (or the backend's socket()) fails for lack of
 * fds, the listener leaves the epoll set for {@link ACCEPT_PAUSE_MS}, so a full fd table cannot spin the
 * loop on a level-triggered listener; such failures are counted and logged at most once a second.
 *
 * Limits: at `maxConnections` open connections the listener leaves the epoll set until one closes, so new
 * clients wait in the kernel's backlog (as HAProxy's `maxconn` does) rather than be refused. A client
 * address (TOA from a trusted peer, else the peer) already holding `maxPerSource` connections has its next
 * one accepted and reset at once: it is the one source to push back on, and the others must not wait. Both
 * are counted and logged once per `logIntervalMs`, as are SYN-cookie fallbacks and malformed TOA.
 *
 * Logs are one line per event with stable keys: `toa-proxy event=NAME key=value …`.
 *
 * @module
 */
import {
  AF_INET,
  AF_INET6,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_DATA_OFFSET,
  EPOLL_EVENT_SIZE,
  EPOLLERR,
  EPOLLET,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  EPOLLRDHUP,
  errno,
  eventfdSignal,
  intOption,
  IPPROTO_TCP,
  libc,
  MSG_NOSIGNAL,
  SHUT_WR,
  SO_ERROR,
  SO_LINGER,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  TCP_NODELAY,
} from "../base/sys/libc.ts";
import { Errno, errnoName } from "../base/sys/errno.ts";
import {
  encodeSockaddr,
  formatHostPort,
  readSockaddr,
  SOCKADDR_MAX,
  type SocketAddress,
} from "./sockaddr.ts";
import { type Listener, openListener, SocketError } from "./listener.ts";
import {
  localAddressOf,
  readSavedSyn,
  recordedClientAddress,
  type RecordedToaTable,
  toaClientAddress,
} from "./client_address.ts";
import { type Cidr, isTrusted } from "./trust.ts";
import type { ToaKindSet } from "../base/packet/toa_option.ts";
import { RateLimitedLog } from "./rate_log.ts";
import { sourceKey } from "./source_key.ts";
import {
  encodeProxyV1,
  encodeProxyV2,
  PROXY_V1_MAX_LEN,
  type ProxyHeader,
  writeProxyV1Tcp,
} from "./proxy_protocol.ts";
import { type IdleEntry, IdleWheel } from "./idle_wheel.ts";

/** Which PROXY header the backend gets: v1 text, v2 binary, or none (plain relay). */
export type ProxyProtocolMode = "v1" | "v2" | "none";

/** Options of {@link ToaProxy.open}. */
export interface ToaProxyOptions {
  /** Where to listen. */
  listen: SocketAddress;
  /** Where to connect for each accepted connection. */
  backend: SocketAddress;
  /** Header to send before the client's bytes. */
  proxyProtocol: ProxyProtocolMode;
  /** Peers whose TOA is believed (the gateway's local addresses). */
  trust: readonly Cidr[];
  /** TCP option kinds taken as TOA (default 253 and 254: base/packet/toa_option.ts DEFAULT_TOA_KINDS). */
  toaKinds?: ToaKindSet;
  /** Backend connect timeout in ms (default 3000). */
  connectTimeoutMs?: number;
  /** Close established connections that moved no byte for this long, in ms; 0: never (default 300000). */
  idleTimeoutMs?: number;
  /**
   * Per-direction buffer bound in bytes, 256 to 2^30 (default 65536): it holds a PROXY header (at most 107
   * bytes in v1, 52 in v2) before the client's first bytes, and recv/send take it as a 32-bit count.
   */
  bufferSize?: number;
  /** listen(2) backlog (default 4096). */
  backlog?: number;
  /** Listen with SO_REUSEPORT: several proxies on one address share its connections (default false). */
  reusePort?: boolean;
  /** At this many open connections stop accepting (they wait in the backlog) until one closes; 0: no limit. */
  maxConnections?: number;
  /** Connections one client address may hold; more are accepted and reset at once. 0: no limit (default). */
  maxPerSource?: number;
  /** At most one log line per this many ms for limit hits, SYN-cookie fallbacks, malformed TOA (10000). */
  logIntervalMs?: number;
  /** Log sink, one line per call (default: stderr). */
  log?: (line: string) => void;
  /**
   * TOA recorded by the kernel's sockops program (toa/bpf/self_cgroup.ts), looked up first; the saved SYN is
   * the fallback (and is read either way, which frees it). Null or absent: the saved SYN only.
   */
  sockops?: RecordedToaTable | null;
}

/** The proxy's counters (a snapshot). */
export interface ToaProxyCounters {
  /** Connections accepted. */
  accepted: number;
  /** … announced with the client from TOA (trusted peer). */
  toa_trusted: number;
  /** … that carried TOA from an untrusted peer: option ignored, peer announced. */
  toa_untrusted_ignored: number;
  /** … whose saved SYN held no TOA: peer announced. */
  no_toa: number;
  /** … with no saved SYN (SYN cookies): peer announced. */
  no_saved_syn: number;
  /** Connections announced from a TOA the sockops program read in the handshake's ACK (in `toa_trusted`). */
  toa_from_ack: number;
  /** … that it read in the saved SYN, in the kernel (in `toa_trusted`). */
  toa_from_syn: number;
  /** … read by the proxy itself from the saved SYN (TCP_SAVED_SYN; in `toa_trusted`). */
  toa_from_saved_syn: number;
  /** … from a trusted peer whose every option of a TOA kind was malformed: peer announced. */
  toa_malformed: number;
  /** Malformed options of a TOA kind (length, family) in trusted peers' SYNs, a valid one after or not. */
  toa_malformed_options: number;
  /** Connections reset at once because their client address already held `maxPerSource` (in `accepted`). */
  per_source_rejected: number;
  /** Times accepting stopped at `maxConnections`; the next clients waited in the backlog. */
  max_connections_reached: number;
  /** Backend connects that failed or timed out; the client connection was closed. */
  backend_errors: number;
  /** Connections ended by a socket error (reset, broken pipe) instead of two clean half-closes. */
  relay_errors: number;
  /** accept4 failures (other than EAGAIN, EINTR, ECONNABORTED) and failed backend socket() calls made ahead of
   * it, fd exhaustion included; each pauses accepting. */
  accept_errors: number;
  /** accept4 or the backend socket() failed for lack of fds (EMFILE, ENFILE); accepting paused briefly. */
  fd_exhausted: number;
  /** Established connections closed (both sides) after the idle timeout. */
  idle_closed: number;
  /** Bytes relayed client → backend (PROXY header not included). */
  bytes_client_to_backend: number;
  /** Bytes relayed backend → client. */
  bytes_backend_to_client: number;
  /** Connections open now. */
  active: number;
}

const C2B = 0;
const B2C = 1;
const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;
/** Events taken per epoll_wait. */
const MAX_EVENTS = 256;
/** Accepts per loop turn, so a connection storm cannot starve established connections. */
const MAX_ACCEPTS = 256;
/** recv calls per connection and direction in a turn, so one fast connection cannot starve the others; one
 * that still has bytes waits for the next turn in the `again` list. */
const MAX_READS = 4;
/** Every connection fd's one registration: all events, edge-triggered (the readiness bits below keep them). */
const CONN_EVENTS = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
/** Conn.ready bits: the client / backend fd may have bytes to read (or an EOF or error to report). */
const RD_C = 1;
const RD_B = 2;
/** … may take bytes (or report an error). */
const WR_C = 4;
const WR_B = 8;
/** … has an EOF or error pending: read on after a short read, until recv says 0 or fails. */
const HUP_C = 16;
const HUP_B = 32;
/**
 * … has sent its FIN (EPOLLRDHUP without EPOLLERR): the kernel queues a FIN only after every byte before it,
 * so a read that comes back short has taken the last of them, and is the EOF without another recv.
 */
const FIN_C = 64;
const FIN_B = 128;
/** Longest idle wait; bounds how late a connect timeout is noticed. */
const WAIT_MS = 100;
/** Sync polls in a row before one wait on the worker thread lets timers and signals run. */
const SYNC_POLLS = 32;
/** Spare relay buffers kept for reuse; beyond this they go to the garbage collector. */
const POOL_MAX = 256;
/** How long accepting stops after accept4 failed (fd exhaustion, for one), in ms. */
export const ACCEPT_PAUSE_MS = 100;
/** At most one accept-failure log line per this many ms; the line says how many failures it stands for. */
const ACCEPT_LOG_MS = 1000;
/** The int 1 of setsockopt, made once: intOption() per call would allocate a buffer per connection. */
const INT_ONE = intOption(1);
/** struct linger { int l_onoff = 1; int l_linger = 0; }: close() resets and leaves no TIME_WAIT behind. */
const LINGER_RESET = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);

/** One relayed connection: the client's fd, the backend's, and per-direction state (index C2B/B2C). */
class Conn implements IdleEntry {
  state = CONNECTING;
  /** Idle-wheel bookkeeping (toa/idle_wheel.ts): last byte moved (ms), slot, position. */
  lastActive = 0;
  wheelSlot = -1;
  wheelPos = 0;
  /** The key this connection counts under in the per-source table, or null when it is not counted. */
  source: string | null = null;
  /**
   * Readiness learnt from edge-triggered events and not yet used up (RD_C … HUP_B): a bit is set by an event
   * and cleared when the call it allows says EAGAIN (or reads or writes short), so no edge is lost.
   */
  ready = 0;
  /** In the `again` list (more to read next turn). */
  queued = false;
  /** Data not yet taken by the destination, at [0, pendLen). */
  pend: [Uint8Array | null, Uint8Array | null] = [null, null];
  pendLen = [0, 0];
  /** The source sent EOF. */
  eof = [false, false];
  /** We sent shutdown(SHUT_WR) to the destination. */
  shut = [false, false];
  constructor(
    readonly cfd: number,
    readonly bfd: number,
    readonly client: SocketAddress,
    readonly peer: SocketAddress,
    readonly deadline: number,
  ) {}
}

/** The proxy: open it, `run()` it, `stop()` it; `counters()` at any time. */
export class ToaProxy {
  /** The bound listen address (the real port when port 0 was asked for). */
  readonly address: SocketAddress;
  private readonly lib = libc();
  private readonly listener: Listener;
  private readonly ep: number;
  private readonly wakeFd: number;
  private readonly events = new Uint8Array(MAX_EVENTS * EPOLL_EVENT_SIZE);
  private readonly eventsView = new DataView(this.events.buffer);
  private readonly ctlBuf = new Uint8Array(EPOLL_EVENT_SIZE);
  private readonly ctlView = new DataView(this.ctlBuf.buffer);
  private readonly scratch: Uint8Array;
  private readonly pool: Uint8Array[] = [];
  private readonly byFd: (Conn | undefined)[] = [];
  private readonly connecting = new Set<Conn>();
  /** Connections that stopped at MAX_READS with bytes still to read: taken up again next turn. */
  private again: Conn[] = [];
  private readonly acceptAddr = new Uint8Array(SOCKADDR_MAX);
  private readonly acceptLen = new Uint8Array(4);
  private readonly optBuf = new Uint8Array(4);
  private readonly optLen = new Uint8Array(4);
  private readonly backendSa: Uint8Array;
  private readonly wildcard: boolean;
  private readonly log: (line: string) => void;
  private readonly bufferSize: number;
  private readonly connectTimeoutMs: number;
  private readonly c: ToaProxyCounters = {
    accepted: 0,
    toa_trusted: 0,
    toa_untrusted_ignored: 0,
    no_toa: 0,
    no_saved_syn: 0,
    toa_from_ack: 0,
    toa_from_syn: 0,
    toa_from_saved_syn: 0,
    toa_malformed: 0,
    toa_malformed_options: 0,
    per_source_rejected: 0,
    max_connections_reached: 0,
    backend_errors: 0,
    relay_errors: 0,
    accept_errors: 0,
    fd_exhausted: 0,
    idle_closed: 0,
    bytes_client_to_backend: 0,
    bytes_backend_to_client: 0,
    active: 0,
  };
  private stopping = false;
  private running: Promise<void> | null = null;
  /** Accepting is paused until this time (ms) after fd exhaustion. */
  private acceptPausedUntil = 0;
  private listenerRegistered = false;
  /** The next connection's backend socket, opened before accept4 takes the client; -1 when none. */
  private spareBfd = -1;
  /** Accept failures not yet logged, and when the next log line may be written. */
  private acceptFailures = 0;
  private acceptLogAt = 0;
  /** The idle timer wheel; null when the idle timeout is 0. */
  private readonly idle: IdleWheel<Conn> | null;
  /** performance.now() of the current loop turn: the time stamp of activity seen in it. */
  private now = performance.now();
  private readonly maxConnections: number;
  private readonly maxPerSource: number;
  /** Open connections per client address (only when maxPerSource > 0). */
  private readonly perSource = new Map<string, number>();
  /** Accepting stopped at maxConnections (the listener is out of the epoll set until a connection closes). */
  private atLimit = false;
  private readonly noSynLog: RateLimitedLog<SocketAddress>;
  private readonly malformedLog: RateLimitedLog<SocketAddress>;
  private readonly perSourceLog: RateLimitedLog<string>;
  private readonly maxConnLog: RateLimitedLog<number>;

  private constructor(private readonly opts: ToaProxyOptions) {
    this.log = opts.log ?? ((l) => console.error(l));
    this.bufferSize = opts.bufferSize ?? 65536;
    // A PROXY header goes first into a buffer; recv/send declare their count u32 (base/sys/libc.ts): the
    // largest count they see is this size.
    if (!Number.isInteger(this.bufferSize) || this.bufferSize < 256 || this.bufferSize > 2 ** 30) {
      throw new RangeError(
        `toa-proxy: bufferSize must be an integer from 256 to 2^30, got ${this.bufferSize}`,
      );
    }
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 3000;
    this.maxConnections = opts.maxConnections ?? 0;
    this.maxPerSource = opts.maxPerSource ?? 0;
    const every = opts.logIntervalMs ?? 10_000;
    const secs = every / 1000;
    // One line per interval: these can come thousands a second (a flood, SYN cookies), a line each would not do.
    this.noSynLog = new RateLimitedLog(every, (n, peer) =>
      this.log(
        `toa-proxy event=no_saved_syn count=${n} interval_s=${secs} last_peer=${formatHostPort(peer)} ` +
          `announced=peer`,
      ));
    this.malformedLog = new RateLimitedLog(every, (n, peer) =>
      this.log(
        `toa-proxy event=toa_malformed count=${n} interval_s=${secs} last_peer=${formatHostPort(peer)}`,
      ));
    this.perSourceLog = new RateLimitedLog(every, (n, source) =>
      this.log(
        `toa-proxy event=per_source_limit rejected=${n} interval_s=${secs} max_per_source=${this.maxPerSource} ` +
          `last_source=${source}`,
      ));
    this.maxConnLog = new RateLimitedLog(every, (n, active) =>
      this.log(
        `toa-proxy event=max_connections reached=${n} interval_s=${secs} ` +
          `max_connections=${this.maxConnections} active=${active}`,
      ));
    const idleMs = opts.idleTimeoutMs ?? 300_000;
    this.idle = idleMs > 0 ? new IdleWheel<Conn>(idleMs, this.now) : null;
    this.scratch = new Uint8Array(this.bufferSize);
    this.backendSa = encodeSockaddr(opts.backend);
    this.listener = openListener(opts.listen, {
      backlog: opts.backlog,
      reusePort: opts.reusePort,
      noDelay: true,
    });
    this.address = this.listener.address;
    this.wildcard = this.address.address === "0.0.0.0" || this.address.address === "::";
    this.ep = this.lib.epoll_create1(EPOLL_CLOEXEC);
    if (this.ep < 0) {
      const e = errno();
      this.lib.close(this.listener.fd);
      throw new SocketError("toa-proxy", "epoll_create1", e);
    }
    this.wakeFd = this.lib.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (this.wakeFd < 0) {
      // Without it stop() could not wake the loop, and epoll_ctl(-1) would fail less clearly below.
      const e = errno();
      this.lib.close(this.ep);
      this.lib.close(this.listener.fd);
      throw new SocketError("toa-proxy", "eventfd", e);
    }
    this.ctl(EPOLL_CTL_ADD, this.wakeFd, EPOLLIN);
    this.ctl(EPOLL_CTL_ADD, this.listener.fd, EPOLLIN);
    this.listenerRegistered = true;
  }

  /** Binds the listener (TCP_SAVE_SYN) and prepares the loop; throws {@link SocketError} (one line). */
  static open(opts: ToaProxyOptions): ToaProxy {
    return new ToaProxy(opts);
  }

  /** A snapshot of the counters. */
  counters(): ToaProxyCounters {
    return { ...this.c };
  }

  /** Runs the loop until {@link stop}; then closes every connection, the listener and the epoll fd. */
  run(): Promise<void> {
    this.running ??= this.loop();
    return this.running;
  }

  /** Asks the loop to end (wakes it at once); `run()`'s promise settles when everything is closed. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    eventfdSignal(this.wakeFd);
  }

  private async loop(): Promise<void> {
    const lib = this.lib;
    let syncTurns = 0;
    try {
      while (!this.stopping) {
        // Poll on the JS thread first: when events are ready (the busy case) no thread hop is paid. When none
        // are, or after SYNC_POLLS busy turns, wait on the worker thread so timers and signal handlers run.
        // (Blocking briefly on the JS thread instead measured slower: docs/toa-proxy.md.)
        let n = 0;
        const busy = this.again.length > 0;
        if (syncTurns < SYNC_POLLS) n = lib.epoll_wait_sync(this.ep, this.events, MAX_EVENTS, 0);
        if (n > 0 || (busy && syncTurns < SYNC_POLLS)) syncTurns++;
        else {
          syncTurns = 0;
          n = await lib.epoll_wait(this.ep, this.events, MAX_EVENTS, busy ? 0 : WAIT_MS);
        }
        if (this.stopping) break;
        const now = this.now = performance.now();
        let acceptReady = false;
        for (let i = 0; i < n; i++) {
          const base = i * EPOLL_EVENT_SIZE;
          const ev = this.eventsView.getUint32(base, true);
          const fd = this.eventsView.getInt32(base + EPOLL_DATA_OFFSET, true);
          if (fd === this.listener.fd) acceptReady = true;
          else if (fd !== this.wakeFd) this.onEvent(fd, ev);
        }
        if (this.again.length > 0) this.resume();
        if (acceptReady) this.acceptMany(now);
        else if (!this.listenerRegistered && now >= this.acceptPausedUntil && !this.atLimit) {
          this.ctl(EPOLL_CTL_ADD, this.listener.fd, EPOLLIN);
          this.listenerRegistered = true;
        }
        if (this.connecting.size > 0) this.expireConnects(now);
        if (this.idle !== null && this.idle.size > 0) {
          this.idle.advance(now, (conn) => {
            this.c.idle_closed++;
            this.close(conn);
          });
        }
        this.noSynLog.flush(now);
        this.malformedLog.flush(now);
        this.perSourceLog.flush(now);
        this.maxConnLog.flush(now);
      }
    } finally {
      this.noSynLog.drain();
      this.malformedLog.drain();
      this.perSourceLog.drain();
      this.maxConnLog.drain();
      for (const conn of this.byFd) if (conn && conn.state !== CLOSED) this.close(conn);
      if (this.spareBfd >= 0) lib.close(this.spareBfd);
      lib.close(this.listener.fd);
      lib.close(this.wakeFd);
      lib.close(this.ep);
    }
  }

  private ctl(op: number, fd: number, mask: number): void {
    this.ctlView.setUint32(0, mask, true);
    this.ctlView.setInt32(EPOLL_DATA_OFFSET, fd, true);
    this.ctlView.setInt32(EPOLL_DATA_OFFSET + 4, 0, true);
    this.lib.epoll_ctl(this.ep, op, fd, this.ctlBuf);
  }

  private acceptMany(now: number): void {
    const lib = this.lib;
    const lenView = new DataView(this.acceptLen.buffer);
    for (let i = 0; i < MAX_ACCEPTS; i++) {
      if (this.maxConnections > 0 && this.c.active >= this.maxConnections) return this.stopAtLimit(now);
      // The backend socket comes first: a client is taken off the backlog only when its backend socket is in
      // hand, so running out of fds leaves it waiting in the kernel, never accepted and then dropped.
      if (this.spareBfd < 0 && !this.makeSpareBackendSocket(now)) return;
      lenView.setUint32(0, SOCKADDR_MAX, true);
      const cfd = lib.accept4(
        this.listener.fd,
        this.acceptAddr,
        this.acceptLen,
        SOCK_NONBLOCK | SOCK_CLOEXEC,
      );
      if (cfd < 0) {
        const e = errno();
        if (e === Errno.EAGAIN) return;
        if (e === Errno.EINTR || e === Errno.ECONNABORTED) continue;
        this.c.accept_errors++;
        return this.pauseAccepting("accept4", e, now);
      }
      if (this.accept(cfd, this.spareBfd, now)) this.spareBfd = -1;
    }
  }

  /**
   * maxConnections are open: the listener leaves the epoll set until one closes (see close()), so new clients
   * wait in the kernel's backlog, as with HAProxy's maxconn, instead of being taken and refused.
   */
  private stopAtLimit(now: number): void {
    this.atLimit = true;
    this.c.max_connections_reached++;
    this.maxConnLog.hit(now, this.c.active);
    if (this.listenerRegistered) {
      this.ctl(EPOLL_CTL_DEL, this.listener.fd, 0);
      this.listenerRegistered = false;
    }
  }

  /** Opens the next connection's backend socket ahead of accept4; on failure pauses accepting, false. */
  private makeSpareBackendSocket(now: number): boolean {
    const family = this.opts.backend.family === 4 ? AF_INET : AF_INET6;
    const bfd = this.lib.socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (bfd < 0) {
      const e = errno();
      this.c.accept_errors++;
      this.pauseAccepting("socket", e, now);
      return false;
    }
    this.lib.setsockopt(bfd, IPPROTO_TCP, TCP_NODELAY, INT_ONE, 4);
    this.spareBfd = bfd;
    return true;
  }

  /**
   * accept4 or socket() failed (out of fds, or worse): the listener leaves the epoll set for ACCEPT_PAUSE_MS
   * rather than spin level-triggered on a connection it cannot take; established connections go on, and
   * the waiting ones stay in the kernel's backlog. Logged at most once per ACCEPT_LOG_MS.
   */
  private pauseAccepting(call: string, e: number, now: number): void {
    if (e === Errno.EMFILE || e === Errno.ENFILE) this.c.fd_exhausted++;
    this.acceptFailures++;
    if (now >= this.acceptLogAt) {
      this.log(
        `toa-proxy event=accept_paused call=${call} errno=${errnoName(e)} failures=${this.acceptFailures} ` +
          `active=${this.c.active} pause_ms=${ACCEPT_PAUSE_MS}`,
      );
      this.acceptFailures = 0;
      this.acceptLogAt = now + ACCEPT_LOG_MS;
    }
    if (this.listenerRegistered) {
      this.ctl(EPOLL_CTL_DEL, this.listener.fd, 0);
      this.listenerRegistered = false;
    }
    this.acceptPausedUntil = now + ACCEPT_PAUSE_MS;
  }

  /** Takes accepted `cfd` with backend socket `bfd`; false when it was refused and `bfd` is still unused. */
  private accept(cfd: number, bfd: number, now: number): boolean {
    const lib = this.lib;
    this.c.accepted++;
    const peer = readSockaddr(this.acceptAddr)!;
    // The saved SYN is read whatever the sockops record says: reading it frees the kernel's copy.
    const syn = readSavedSyn(cfd);
    const rec = this.opts.sockops ? this.opts.sockops.lookup(cfd) : null;
    let decided = recordedClientAddress(rec, peer, this.opts.trust);
    if (decided !== null) {
      this.c[rec!.source === "ack" ? "toa_from_ack" : "toa_from_syn"]++;
    } else {
      decided = toaClientAddress(syn, peer, this.opts.trust, this.opts.toaKinds);
      if (decided.reason === "toa_trusted") this.c.toa_from_saved_syn++;
    }
    this.c[decided.reason]++;
    if (decided.reason === "no_saved_syn") this.noSynLog.hit(now, peer);
    if (decided.malformedToa > 0) {
      this.c.toa_malformed_options += decided.malformedToa;
      this.malformedLog.hit(now, peer);
    }
    let source: string | null = null;
    if (this.maxPerSource > 0) {
      // Keyed by the announced client (IPv6 by /64); a trusted peer announced as itself (no TOA) stands for
      // many clients behind the gateway, so it is not limited.
      const behindGateway = decided.client === peer && decided.reason !== "toa_untrusted_ignored" &&
        isTrusted(this.opts.trust, peer.address);
      if (!behindGateway) {
        source = sourceKey(decided.client);
        const held = this.perSource.get(source) ?? 0;
        if (held >= this.maxPerSource) {
          this.c.per_source_rejected++;
          this.perSourceLog.hit(now, source);
          lib.setsockopt(cfd, SOL_SOCKET, SO_LINGER, LINGER_RESET, LINGER_RESET.length);
          lib.close(cfd);
          return false;
        }
        this.perSource.set(source, held + 1);
      }
    }
    let local: SocketAddress | null = null;
    if (this.opts.proxyProtocol !== "none") local = this.wildcard ? localAddressOf(cfd) : this.address;
    // TCP_NODELAY: inherited from the listener (set there once).
    const conn = new Conn(cfd, bfd, decided.client, peer, now + this.connectTimeoutMs);
    conn.source = source;
    this.c.active++;
    this.byFd[cfd] = conn;
    this.byFd[bfd] = conn;
    if (local !== null) {
      const buf = this.takeBuffer();
      conn.pend[C2B] = buf;
      conn.pendLen[C2B] = this.writeHeader(buf, decided.client, local);
    }
    // Each fd is registered once, for everything, edge-triggered; closing it removes it. The client's first
    // event tells what it already holds; the backend's is added after connect(), so its first edge is the
    // connect's outcome (a socket not yet connecting would report EPOLLHUP).
    this.ctl(EPOLL_CTL_ADD, cfd, CONN_EVENTS);
    const r = lib.connect(bfd, this.backendSa, this.backendSa.length);
    const e = r === 0 ? 0 : errno();
    if (r !== 0 && e !== Errno.EINPROGRESS) {
      this.connectFailed(conn, e);
      return true;
    }
    this.ctl(EPOLL_CTL_ADD, bfd, CONN_EVENTS);
    if (r === 0) this.connected(conn);
    else this.connecting.add(conn);
    return true;
  }

  /**
   * Writes the PROXY header announcing `client` to `local` at the start of `buf`; returns its length. A v1
   * line of one family is written in place (writeProxyV1Tcp: the addresses are formatAddress's text); the
   * rest goes through the checked encoders.
   */
  private writeHeader(buf: Uint8Array, client: SocketAddress, local: SocketAddress): number {
    const v1 = this.opts.proxyProtocol === "v1";
    if (v1 && client.family === local.family && buf.length >= PROXY_V1_MAX_LEN) {
      return writeProxyV1Tcp(buf, client.family, client.address, local.address, client.port, local.port);
    }
    const h = proxyHeaderFor(client, local);
    const header = v1 ? encodeProxyV1(h) : encodeProxyV2(h);
    buf.set(header);
    return header.length;
  }

  private backendError(client: SocketAddress, peer: SocketAddress, e: number | "timeout"): void {
    this.c.backend_errors++;
    const why = e === "timeout" ? "ETIMEDOUT" : errnoName(e);
    this.log(
      `toa-proxy event=backend_error client=${formatHostPort(client)} peer=${formatHostPort(peer)} ` +
        `backend=${formatHostPort(this.opts.backend)} errno=${why}`,
    );
  }

  private connectFailed(conn: Conn, e: number | "timeout"): void {
    this.backendError(conn.client, conn.peer, e);
    this.close(conn);
  }

  private connected(conn: Conn): void {
    this.connecting.delete(conn);
    conn.state = OPEN;
    conn.ready |= WR_B;
    this.idle?.add(conn, this.now);
    this.progress(conn);
  }

  private expireConnects(now: number): void {
    // A Set iterates in insertion order and every deadline is its insertion time + the same timeout, so the
    // first one not yet due ends the walk: a turn costs O(expired + 1), not O(connecting).
    for (const conn of this.connecting) {
      if (now < conn.deadline) return;
      this.connectFailed(conn, "timeout");
    }
  }

  private onEvent(fd: number, ev: number): void {
    const conn = this.byFd[fd];
    if (conn === undefined || conn.state === CLOSED) return;
    const isClient = fd === conn.cfd;
    // Edge-triggered: note what the event allows; progress() uses it up, and errors surface as failing
    // recv/send, EOF as recv 0.
    let bits = 0;
    if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) !== 0) bits |= isClient ? RD_C : RD_B;
    if ((ev & (EPOLLRDHUP | EPOLLERR | EPOLLHUP)) !== 0) bits |= isClient ? HUP_C : HUP_B;
    if ((ev & (EPOLLRDHUP | EPOLLERR)) === EPOLLRDHUP) bits |= isClient ? FIN_C : FIN_B;
    if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) !== 0) bits |= isClient ? WR_C : WR_B;
    conn.ready |= bits;
    if (conn.state === CONNECTING) {
      // The client's readiness waits in `ready`; the backend's first edge is the connect's outcome.
      if (isClient || (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) === 0) return;
      if ((ev & (EPOLLERR | EPOLLHUP)) !== 0) {
        const e = this.socketError(conn.bfd);
        return this.connectFailed(conn, e !== 0 ? e : Errno.ECONNRESET);
      }
      return this.connected(conn);
    }
    this.progress(conn);
  }

  /** Moves what both directions' readiness allows. */
  private progress(conn: Conn): void {
    if (this.move(conn, C2B)) this.move(conn, B2C);
  }

  /** Takes up the connections that stopped at MAX_READS in the last turn. */
  private resume(): void {
    const list = this.again;
    this.again = [];
    for (const conn of list) {
      conn.queued = false;
      if (conn.state === OPEN) this.progress(conn);
    }
  }

  private socketError(fd: number): number {
    new DataView(this.optLen.buffer).setUint32(0, 4, true);
    if (this.lib.getsockopt(fd, SOL_SOCKET, SO_ERROR, this.optBuf, this.optLen) !== 0) return errno();
    return new DataView(this.optBuf.buffer).getInt32(0, true);
  }

  /**
   * Moves direction `d`'s bytes while its readiness bits allow: pending bytes first, then reads from the
   * source, until a call says EAGAIN (clearing the bit it used), EOF, or MAX_READS. While bytes are pending
   * the source is not read, so its kernel window closes (backpressure). False when the connection closed.
   */
  private move(conn: Conn, d: number): boolean {
    const lib = this.lib;
    const src = d === C2B ? conn.cfd : conn.bfd;
    const dst = d === C2B ? conn.bfd : conn.cfd;
    const rd = d === C2B ? RD_C : RD_B;
    const hup = d === C2B ? HUP_C : HUP_B;
    const fin = d === C2B ? FIN_C : FIN_B;
    const wr = d === C2B ? WR_B : WR_C;
    const buf = this.scratch;
    for (let i = 0; i < MAX_READS; i++) {
      if (conn.pendLen[d] > 0) {
        if ((conn.ready & wr) === 0) return true;
        // Top the pending bytes up from the source first, so one send takes both (the PROXY header and the
        // client's first bytes, for one).
        if ((conn.ready & rd) !== 0 && !conn.eof[d] && conn.pendLen[d] < this.bufferSize) {
          i++;
          if (!this.topUp(conn, d)) return false;
        }
        if (!this.flush(conn, d)) return false;
        if (conn.pendLen[d] > 0) return true;
      }
      if (conn.eof[d] || (conn.ready & rd) === 0) return true;
      const n = lib.recv(src, buf, buf.length, 0);
      if (n > 0) {
        conn.lastActive = this.now;
        if (d === C2B) this.c.bytes_client_to_backend += n;
        else this.c.bytes_backend_to_client += n;
        // A short read drained the socket: the next bytes bring a new edge. A pending EOF brings none, so
        // then read on until recv says 0 — unless the FIN is known to have come (FIN_C/FIN_B): then this was
        // the last of the bytes, and the EOF.
        if (n < buf.length) {
          if ((conn.ready & fin) !== 0) {
            conn.eof[d] = true;
            conn.ready &= ~rd;
          } else if ((conn.ready & hup) === 0) conn.ready &= ~rd;
        }
        let off = 0;
        if ((conn.ready & wr) !== 0) {
          const w = lib.send(dst, buf, n, MSG_NOSIGNAL);
          if (w >= 0) off = w;
          else {
            const e = errno();
            if (e !== Errno.EAGAIN && e !== Errno.EINTR) return this.fail(conn, e);
          }
        }
        if (off < n) {
          // The destination is full: keep the rest, and stop reading this source until it drains.
          conn.ready &= ~wr;
          const p = this.takeBuffer();
          p.set(buf.subarray(off, n));
          conn.pend[d] = p;
          conn.pendLen[d] = n - off;
          return true; // an EOF is passed on by flush() once these are out
        }
        if (conn.eof[d]) return this.shutdownDst(conn, d);
        if ((conn.ready & rd) === 0) return true;
      } else if (n === 0) {
        conn.eof[d] = true;
        conn.ready &= ~rd;
        return this.shutdownDst(conn, d);
      } else {
        const e = errno();
        if (e === Errno.EAGAIN) {
          conn.ready &= ~rd;
          return true;
        }
        if (e !== Errno.EINTR) return this.fail(conn, e);
      }
    }
    // Still readable after MAX_READS: the others go first, this one again next turn.
    if (!conn.queued && (conn.ready & rd) !== 0 && !conn.eof[d]) {
      conn.queued = true;
      this.again.push(conn);
    }
    return true;
  }

  /** Reads from direction `d`'s source onto the end of its pending bytes; false when the connection closed. */
  private topUp(conn: Conn, d: number): boolean {
    const p = conn.pend[d]!;
    const len = conn.pendLen[d];
    const rd = d === C2B ? RD_C : RD_B;
    const hup = d === C2B ? HUP_C : HUP_B;
    const fin = d === C2B ? FIN_C : FIN_B;
    const n = this.lib.recv(d === C2B ? conn.cfd : conn.bfd, p.subarray(len), p.length - len, 0);
    if (n > 0) {
      conn.lastActive = this.now;
      if (d === C2B) this.c.bytes_client_to_backend += n;
      else this.c.bytes_backend_to_client += n;
      if (n < p.length - len) {
        // As in move(): after a known FIN, a short read is the EOF too (passed on by flush()).
        if ((conn.ready & fin) !== 0) conn.eof[d] = true;
        if ((conn.ready & (fin | hup)) !== hup) conn.ready &= ~rd;
      }
      conn.pendLen[d] = len + n;
      return true;
    }
    if (n === 0) {
      // EOF: passed on by flush() once the pending bytes are out.
      conn.eof[d] = true;
      conn.ready &= ~rd;
      return true;
    }
    const e = errno();
    if (e === Errno.EAGAIN) conn.ready &= ~rd;
    else if (e !== Errno.EINTR) return this.fail(conn, e);
    return true;
  }

  /** Sends direction `d`'s pending bytes; false when the connection was closed. */
  private flush(conn: Conn, d: number): boolean {
    const p = conn.pend[d]!;
    const len = conn.pendLen[d];
    const dst = d === C2B ? conn.bfd : conn.cfd;
    const w = this.lib.send(dst, p, len, MSG_NOSIGNAL);
    if (w < 0) {
      const e = errno();
      if (e === Errno.EAGAIN) conn.ready &= d === C2B ? ~WR_B : ~WR_C;
      return e === Errno.EAGAIN || e === Errno.EINTR ? true : this.fail(conn, e);
    }
    if (w > 0) conn.lastActive = this.now;
    if (w < len) {
      p.copyWithin(0, w, len);
      conn.pendLen[d] = len - w;
      conn.ready &= d === C2B ? ~WR_B : ~WR_C;
      return true;
    }
    conn.pendLen[d] = 0;
    conn.pend[d] = null;
    this.releaseBuffer(p);
    return conn.eof[d] ? this.shutdownDst(conn, d) : true;
  }

  /**
   * Passes direction `d`'s EOF on once its bytes are out; closes when both ways ended (the second way's FIN
   * then comes from close() itself: both sources are read to EOF, so nothing unread turns it into a reset).
   */
  private shutdownDst(conn: Conn, d: number): boolean {
    if (conn.pendLen[d] > 0 || conn.shut[d]) return true;
    conn.shut[d] = true;
    if (conn.shut[C2B] && conn.shut[B2C]) {
      this.close(conn);
      return false;
    }
    this.lib.shutdown(d === C2B ? conn.bfd : conn.cfd, SHUT_WR);
    return true;
  }

  private fail(conn: Conn, e: number): false {
    this.c.relay_errors++;
    if (e !== Errno.ECONNRESET && e !== Errno.EPIPE) {
      this.log(`toa-proxy event=relay_error client=${formatHostPort(conn.client)} errno=${errnoName(e)}`);
    }
    this.close(conn);
    return false;
  }

  private close(conn: Conn): void {
    if (conn.state === CLOSED) return;
    if (conn.state === CONNECTING) this.connecting.delete(conn);
    this.idle?.remove(conn);
    conn.state = CLOSED;
    // close() also removes the fds from epoll; the byFd slots are cleared before the numbers can be reused.
    this.byFd[conn.cfd] = undefined;
    this.byFd[conn.bfd] = undefined;
    this.lib.close(conn.cfd);
    this.lib.close(conn.bfd);
    for (const d of [C2B, B2C]) {
      const p = conn.pend[d];
      if (p !== null) this.releaseBuffer(p);
      conn.pend[d] = null;
      conn.pendLen[d] = 0;
    }
    this.c.active--;
    if (conn.source !== null) {
      const held = this.perSource.get(conn.source)! - 1;
      if (held === 0) this.perSource.delete(conn.source);
      else this.perSource.set(conn.source, held);
    }
    // Below the limit again: the loop puts the listener back (unless an fd pause still holds).
    if (this.atLimit && this.c.active < this.maxConnections) this.atLimit = false;
  }

  private takeBuffer(): Uint8Array {
    return this.pool.pop() ?? new Uint8Array(this.bufferSize);
  }

  private releaseBuffer(b: Uint8Array): void {
    if (this.pool.length < POOL_MAX) this.pool.push(b);
  }
}

/**
 * The PROXY header announcing `client` as the source and `local` (the address the connection reached) as
 * the destination. The specification wants one family for both; the header takes the client's family, since
 * the source is what servers use. A destination of the other family is mapped: IPv4 → `::ffff:a.b.c.d`
 * under an IPv6 client; IPv6 under an IPv4 client has no IPv4 form and becomes `0.0.0.0`.
 */
export function proxyHeaderFor(client: SocketAddress, local: SocketAddress): ProxyHeader {
  let dst = local.address;
  if (local.family !== client.family) dst = client.family === 6 ? `::ffff:${local.address}` : "0.0.0.0";
  return {
    command: "proxy",
    family: client.family,
    transport: "stream",
    source: { address: client.address, port: client.port },
    destination: { address: dst, port: local.port },
  };
}
