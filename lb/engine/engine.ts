/**
 * The FULLNAT engine of one worker, as LVS FULLNAT and dpvs do it, in pure code: packet bytes in, packet
 * bytes out, a clock passed in. No syscalls, so it runs the same under tests, benchmarks and the TUN loop.
 *
 * client → VIP:vport   becomes   localAddr:localPort → RS:port   (seq + delta; SYN: no timestamps, MSS
 *                                                                clamped, TOA inserted; TOA in the ACK
 *                                                                that completes the handshake)
 * RS:port → localAddr:localPort  becomes  VIP:vport → client     (ack − delta, SACK blocks − delta)
 *
 * {@link Engine.process} rewrites the packet in place and returns the length to write back (a forwarded
 * packet, or a reply the gateway generated in the same buffer), 0 when it was dropped — always counted —
 * or held (a fragment waiting for the rest of its datagram, counted as `frag_held`), or, with several
 * workers, −(owner + 1) for a packet whose connection another worker owns (steering.ts). Nothing on this
 * path throws or allocates; fragments take the reassembler's rare path (reassembly.ts), which is bounded.
 *
 * The control path ({@link Engine.reconfigure}, {@link Engine.setServerUp}, {@link Engine.resetServer},
 * listings) may allocate: services and servers live in slots keyed by "tcp 198.18.0.100:80" and
 * "198.18.3.10:80", kept across reloads, grown for new keys, drained for removed ones (docs/engine.md).
 *
 * @module
 */
import type { GatewayConfig, ToaPlacement } from "../config.ts";
import type { ConnectionRow, EngineCounters } from "../stats.ts";
import { hostPort } from "../../base/addr.ts";
import { formatIpv4 } from "../../base/packet/ipv4.ts";
import { formatIpv6 } from "../../base/packet/ipv6.ts";
import { read16, read32, write16 } from "../../base/packet/checksum.ts";
import {
  IPV6_FRAGMENT_HEADER_LEN,
  ipv6FragmentId,
  ipv6Unfragmentable,
  ipv6WriteFragmentHeader,
} from "../../base/packet/fragment.ts";
import {
  IPV6_EXT_DEST_OPTS,
  IPV6_EXT_FRAGMENT,
  IPV6_EXT_ROUTING,
  IPV6_HEADER_LEN,
  IPV6_PAYLOAD_LENGTH,
} from "../../base/packet/ipv6.ts";
import { ICMP_ECHO_REQUEST, ICMP_HEADER_LEN, icmpIsError } from "../../base/packet/icmp.ts";
import { ICMPV6_ECHO_REQUEST, icmpv6IsError } from "../../base/packet/icmpv6.ts";
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, ipv4Id } from "../../base/packet/ipv4.ts";
import {
  ipDstOffset,
  ipGiveBackHop,
  ipSrcOffset,
  natApplyDelta,
  NatRewrite,
  natSetAddress,
  natSetPort,
  readAddressWords,
} from "../../base/packet/nat.ts";
import { PacketInfo } from "../../base/packet/packet_info.ts";
import {
  buildEchoReply,
  buildPortUnreachable,
  buildTcpRst,
  buildTcpSegment,
} from "../../base/packet/reply.ts";
import {
  TCP_ACK,
  TCP_ACK_NUM,
  TCP_DST_PORT,
  TCP_FIN,
  TCP_FLAGS,
  TCP_MAX_HEADER_LEN,
  TCP_MIN_HEADER_LEN,
  TCP_RST,
  TCP_SEQ,
  TCP_SRC_PORT,
  TCP_SYN,
  TCP_WINDOW,
  tcpAdjustSack,
  tcpClampMss,
  tcpCompactOptions,
  tcpFindOption,
  tcpHeaderLength,
  tcpInsertOption,
  tcpNextOption,
  tcpNopAllOptions,
  TCPOPT_MSS,
  TCPOPT_NOP,
  TCPOPT_SACK_PERMITTED,
  TCPOPT_TIMESTAMP,
  TCPOPT_WINDOW_SCALE,
  tcpSetAck,
  tcpSetSeq,
  tcpWriteSynOptions,
} from "../../base/packet/tcp.ts";
import { fillTransportChecksum, transportChecksumOk } from "../../base/packet/transport_checksum.ts";
import { classifyPacket, PACKET_FRAGMENT, PACKET_OK } from "../../base/packet/validate.ts";
import { nopToaOptions, TOA_V4_LEN, TOA_V6_LEN, writeToaWords } from "../../base/packet/toa_option.ts";
import { transportChecksumFieldOffset } from "../../base/packet/transport_checksum.ts";
import { ADDR_MAP_MISS, AddrMap } from "./addr_map.ts";
import {
  ConnTable,
  NO_CONN,
  SYN_DATA,
  SYN_PROXY_BITS,
  SYN_PROXY_CLIENT_WSCALE,
  SYN_PROXY_KEPT,
  SYN_PROXY_SERVER_NO_WSCALE,
  SYN_SACK_PERMITTED,
  SYN_TAKEOVER_ONE,
  SYN_TAKEOVERS,
  WSCALE_OFFERED,
  WSCALE_SHIFT,
} from "./conn_table.ts";
import * as C from "./counters.ts";
import { KeptSegments } from "./kept_segments.ts";
import { SynproxyAuto } from "./synproxy_auto.ts";
import { PLAIN_MEMORY, type TableMemory } from "./table_memory.ts";
import { LocalPool } from "./local_pool.ts";
import { createScheduler } from "./scheduler/mod.ts";
import { type Scheduler, ServerSet } from "./scheduler/scheduler.ts";
import {
  CONN_SYNPROXY,
  CONN_TOA,
  CONN_TOA_ACK,
  CONN_TOA_ACK_DONE,
  STATE_CLOSE,
  STATE_ESTABLISHED,
  STATE_NAMES,
  STATE_SYN_RECV,
  STATE_SYN_SENT,
  STATE_TIME_WAIT,
  STATE_UDP,
  tcpTransition,
  timeoutTable,
  TRANSITION_STATE_MASK,
} from "./tcp_state.ts";
import { TimerWheel } from "./timer_wheel.ts";
import { IsnGenerator } from "./isn.ts";
import { steerClient, steerFragment, steerLocalPort } from "./steering.ts";
import { Reassembler, type ReassemblyOptions } from "./reassembly.ts";
import { COOKIE_NO_WSCALE, cookieSack, cookieWscale, SynCookies } from "./syn_cookie.ts";
import {
  cookieMss,
  GATEWAY_WSCALE,
  rescaleWindow,
  synCookieData,
  synWscale,
  writeSynAckOptions,
} from "./synproxy.ts";

/** Service SYN proxy modes, per service slot. */
const SP_OFF = 0;
const SP_ON = 1;
const SP_AUTO = 2;
/** A SYN proxy step that leaves the packet to the ordinary path. */
const SP_CONTINUE = -0x40000000;
/** Client segments kept while their server side opens, per worker (each waits about one round trip). */
const KEPT_SLOTS = 256;
/**
 * A service's `toaPlacement` as the connection flags a new connection starts with: the SYN toward the real
 * server (forwarded, or the SYN proxy's own, and any sent again for a takeover) carries TOA with CONN_TOA,
 * the ACK completing the server's handshake with CONN_TOA_ACK.
 */
const TOA_PLACEMENT_FLAGS: Readonly<Record<ToaPlacement, number>> = {
  "syn+ack": CONN_TOA | CONN_TOA_ACK,
  "ack": CONN_TOA_ACK,
  "syn": CONN_TOA,
};

/** Options of one worker's engine. */
export interface EngineOptions {
  /** This worker's index (owns local ports p with p % workers === worker). */
  worker?: number;
  /** Number of workers. */
  workers?: number;
  /** The clock at start, in seconds. */
  now?: number;
  /**
   * Source of initial sequence numbers, for tests that want them predictable. Default: the RFC 6528
   * generator (isn.ts), clock plus keyed hash, with a secret from crypto.
   */
  random32?: () => number;
  /** Seconds to add to `now` for wall-clock time (keeps ISNs growing across restarts). Default: derived. */
  epoch?: number;
  /**
   * The ISN hash secret (4 words). The gateway keeps one per boot (isn_secret.ts) so that ISNs for a tuple
   * keep growing across restarts; default: random.
   */
  isnSecret?: Uint32Array;
  /** Generated replies (RST, ICMP) per second for this worker. Default: the config's `replyRate` / workers. */
  replyRate?: number;
  /**
   * Memory of the connection table and timer wheel: the worker gives aligned, huge-page buffers
   * (base/sys/aligned.ts); default plain ones (table_memory.ts).
   */
  memory?: TableMemory;
  /** Limits of fragment reassembly (datagrams, bytes, fragments, timeouts); defaults in reassembly.ts. */
  reassembly?: ReassemblyOptions;
  /**
   * Source of the random starts, in [0, 1): where each local address's port ring begins (local_pool.ts) and
   * the first IPv6 fragment id this worker sends. Default: `Math.random`. Tests and the fuzzer pass a fixed
   * one so a run replays with the same local ports.
   */
  random?: () => number;
}

/**
 * The sequence number after the TCP segment `info` describes (payload, plus one each for SYN and FIN),
 * or `prev` when that is further on (a retransmission or a reordered segment moves nothing back).
 */
function segmentEnd(seq: number, info: PacketInfo, flags: number, prev: number): number {
  const end = (seq + (info.end - info.l4Off - info.l4HeaderLen) + (flags & TCP_SYN ? 1 : 0) +
    (flags & TCP_FIN ? 1 : 0)) >>> 0;
  return (flags & TCP_SYN) || ((end - prev) | 0) > 0 ? end : prev;
}

/** Bytes of a queued packet's slot: a SYN with the whole 40 bytes of options over IPv6 (40 + 60) fits. */
const QUEUE_SLOT = 128;
/** SYNs a connection may send again to take over a tuple its real server still holds (see takeover). */
const MAX_TAKEOVERS = 2;
/** Entries a new connection looks at, at most, for one to evict when the table or its pool is full. */
const EVICT_SCAN = 64;

/** One worker's FULLNAT engine: connections, pools, schedulers, counters. */
export class Engine {
  /** The connection table. */
  readonly conns: ConnTable;
  /** Idle-timeout wheel over connection handles. */
  readonly wheel: TimerWheel;
  /** Local address/port pool of this worker. */
  readonly pool: LocalPool;
  /** All counters. */
  readonly counters: C.Counters;
  /** Server sets per service slot (effective weights and live counts). */
  readonly sets: ServerSet[];
  /** The configuration the engine was built from, or last reconfigured with. */
  config: GatewayConfig;
  /** Fragments held until their datagram is whole (reassembly.ts). */
  readonly frags: Reassembler;

  private readonly info = new PacketInfo();
  private readonly inner = new PacketInfo();
  private readonly words = new Uint32Array(4);
  private readonly toaBuf = new Uint8Array(TOA_V6_LEN);
  /** The tuple rewrite of the packet in hand, with its checksum policy (full, or partial for offload). */
  private readonly rw = new NatRewrite();
  private timeouts: Float64Array;
  private svcMap: AddrMap = new AddrMap(1);
  private vipMap: AddrMap = new AddrMap(1);
  private localMap: AddrMap = new AddrMap(1);
  private svcFamily = new Uint8Array(0);
  private svcAddr = new Uint32Array(0);
  private svcPort = new Uint16Array(0);
  private svcProto = new Uint8Array(0);
  /** Per service slot: the connection flags of its TOA placement (CONN_TOA, CONN_TOA_ACK); 0 without TOA. */
  private svcToa = new Uint8Array(0);
  /** Per service slot: 1 when a reload removed it (existing connections go on, no new ones). */
  private svcDraining = new Uint8Array(0);
  /** Per service slot: its key, "tcp 198.18.0.100:80". */
  private readonly svcKeys: string[] = [];
  /** Per service slot: flat server slot of each of its servers, by index in its ServerSet. */
  private readonly svcRs: Int32Array[] = [];
  private readonly schedulers: Scheduler[] = [];
  private rsAddr = new Uint32Array(0);
  private rsPort = new Uint16Array(0);
  /** Per flat server slot: its index in its service's ServerSet. */
  private rsIdx = new Int32Array(0);
  /** Per flat server slot: the configured weight. */
  private rsWeight = new Int32Array(0);
  /** Per flat server slot: 0 while a health check says down. */
  private rsUp = new Uint8Array(0);
  /** Per flat server slot: 1 when a reload removed it. */
  private rsDraining = new Uint8Array(0);
  private localAddr = new Uint32Array(0);
  private readonly localText: string[] = [];
  private mss4: number;
  private mss6: number;
  private readonly random32: (() => number) | undefined;
  private readonly isn: IsnGenerator;
  private readonly fixedReplyRate: number | undefined;
  private replyRate: number;
  private replyBurst: number;
  private replyTokens: number;
  private replyAt: number;
  private now: number;
  private readonly expireFn: (id: number) => void;
  /** This worker's index. */
  readonly worker: number;
  /** Number of workers sharing the traffic. */
  readonly workers: number;
  /** After {@link process}: the output is a reply the engine built (complete checksums, no offload). */
  generated = false;
  /** After {@link process}: how many bytes the transport header grew (TOA) or shrank (option packing). */
  headerDelta = 0;
  /**
   * After {@link process}: the length of the packet now in the buffer — the input's, or the datagram
   * reassembled from it. A hand-off (a negative return) carries this many bytes.
   */
  length = 0;
  private partial = false;
  /**
   * Packets the engine built for the input in hand beyond the one {@link process} returned (a takeover's
   * SYN after its RST), handed out by {@link nextOutput} in order: fixed slots, no allocation.
   */
  private readonly queue = [new Uint8Array(QUEUE_SLOT), new Uint8Array(QUEUE_SLOT)];
  private readonly queueLen = new Int32Array(this.queue.length);
  private queued = 0;
  private queuePos = 0;
  /** A reassembled IPv6 datagram too big for the MTU, sent again as fragments by {@link nextOutput}. */
  private outBuf: Uint8Array | undefined;
  private outLen = 0;
  private outPos = 0;
  private outHdr = 0;
  private outNhAt = 0;
  private outNext = 0;
  private outId = 0;
  /** Scratch for {@link evictHalfOpen}: handles nearest their deadline. */
  private readonly evictIds = new Int32Array(EVICT_SCAN);
  /** Scratch for ipv6Unfragmentable: length, Next Header offset. */
  private readonly unfrag = new Int32Array(2);
  /** SYN cookies of the SYN proxy. */
  private readonly cookies: SynCookies;
  /** Per service slot: SP_OFF, SP_ON or SP_AUTO. */
  private svcSynproxy = new Uint8Array(0);
  /** Scratch for the options of the segments the SYN proxy builds. */
  private readonly spOptBuf = new Uint8Array(40);
  /** Client segments kept while their connections' server sides open (the SYN proxy). */
  private readonly kept: KeptSegments;
  /** After {@link process}: the connection whose kept segment {@link nextOutput} sends next, or -1. */
  private replayId = -1;
  /** Connections in SYN_SENT or SYN_RECV (the `auto` SYN proxy's measure). */
  halfOpen = 0;

  /** The SYN proxy of `auto` services is on in this worker (the worker logs its switches). */
  get synproxyActive(): boolean {
    return this.spAuto.active;
  }
  /** The `auto` SYN proxy's on/off state (synproxy_auto.ts). */
  private readonly spAuto = new SynproxyAuto();

  /** Builds the engine for one worker from a validated configuration. */
  constructor(config: GatewayConfig, opts: EngineOptions = {}) {
    this.config = config;
    const worker = opts.worker ?? 0;
    const workers = opts.workers ?? config.workers;
    this.now = opts.now ?? 0;
    this.worker = worker;
    this.workers = workers;
    this.random32 = opts.random32;
    const secret = opts.isnSecret ?? crypto.getRandomValues(new Uint32Array(4));
    this.isn = new IsnGenerator(secret, opts.epoch ?? Date.now() / 1000 - this.now);
    this.cookies = new SynCookies(secret, opts.epoch ?? Date.now() / 1000 - this.now);
    this.replyRate = opts.replyRate ?? config.replyRate / workers;
    this.fixedReplyRate = opts.replyRate;
    // The bucket holds at least one token, or a worker's share below 1/s could never answer at all.
    this.replyBurst = this.replyRate > 0 ? Math.max(1, this.replyRate) : 0;
    this.replyTokens = this.replyBurst;
    this.replyAt = this.now;
    const capacity = Math.max(1, Math.ceil(config.maxConnections / workers));
    const memory = opts.memory ?? PLAIN_MEMORY;
    this.conns = new ConnTable(capacity, 0, memory);
    this.kept = new KeptSegments(KEPT_SLOTS, config.mtu + 64);
    this.wheel = new TimerWheel(capacity, this.now, undefined, this.conns.timerFields(), memory);
    this.pool = new LocalPool(
      [],
      config.portRange[0],
      config.portRange[1],
      worker,
      workers,
      opts.random,
    );
    this.timeouts = timeoutTable(config.timeouts);
    // MSS so that a full segment plus TOA still fits the MTU: MTU − IP − TCP − TOA.
    this.mss4 = config.mtu - 20 - 20 - TOA_V4_LEN;
    this.mss6 = config.mtu - 40 - 20 - TOA_V6_LEN;

    this.counters = new C.Counters(0, 0);
    this.sets = [];
    this.layout(config);
    this.frags = new Reassembler(this.counters, opts.reassembly);
    // Fragment ids this worker sends: distinct across workers (steps of `workers`), unpredictable start.
    const start = opts.random === undefined
      ? crypto.getRandomValues(new Uint32Array(1))[0]
      : Math.floor(opts.random() * 0x100000000);
    this.outId = (start * workers + worker) >>> 0;
    this.expireFn = (id) => {
      this.counters.events[C.EV_EXPIRED]++;
      this.removeConnection(id);
    };
  }

  /**
   * Applies a new configuration to the running engine (control path): services matched by key
   * ("tcp 198.18.0.100:80") and servers by "address:port" within them keep their slots, so connections and
   * counters go on; new ones get new slots; removed ones drain (no new connections, existing ones keep
   * flowing until they end). Weights, schedulers, `toa`, `toaPlacement`, timeouts, MTU and reply rate
   * apply to new connections. Local addresses may only be added. Throws, changing nothing, when the new
   * configuration needs a restart (workers, maxConnections, portRange, a local address removed).
   */
  reconfigure(config: GatewayConfig): void {
    const old = this.config;
    if (config.workers !== old.workers) throw new Error("reconfigure: workers changed (needs a restart)");
    if (config.maxConnections !== old.maxConnections) {
      throw new Error("reconfigure: maxConnections changed (needs a restart)");
    }
    if (config.portRange[0] !== old.portRange[0] || config.portRange[1] !== old.portRange[1]) {
      throw new Error("reconfigure: portRange changed (needs a restart)");
    }
    const now = new Set(config.localAddresses.map((a) => a.text));
    const gone = this.localText.filter((t) => !now.has(t));
    if (gone.length > 0) {
      throw new Error(`reconfigure: local address ${gone[0]} removed (local addresses may only be added)`);
    }
    this.config = config;
    this.layout(config);
  }

  /** Builds or updates every per-slot table from `config` (constructor and {@link reconfigure}). */
  private layout(config: GatewayConfig): void {
    this.timeouts = timeoutTable(config.timeouts);
    this.spAuto.threshold = Math.max(1, Math.ceil(config.synproxyThreshold / this.workers));
    this.mss4 = config.mtu - 20 - 20 - TOA_V4_LEN;
    this.mss6 = config.mtu - 40 - 20 - TOA_V6_LEN;
    if (this.fixedReplyRate === undefined) {
      this.replyRate = config.replyRate / this.workers;
      this.replyBurst = this.replyRate > 0 ? Math.max(1, this.replyRate) : 0;
      if (this.replyTokens > this.replyBurst) this.replyTokens = this.replyBurst;
    }
    // Local addresses: existing keep their index, new ones are appended.
    for (const a of config.localAddresses) {
      if (this.localText.includes(a.text)) continue;
      const i = this.localText.length;
      this.localText.push(a.text);
      this.localAddr = grow(this.localAddr, (i + 1) * 4);
      this.localAddr.set(a.words, i * 4);
      this.pool.addAddress(a.family);
      this.conns.growLocals(i + 1);
    }
    // Services: matched by key; the rest drain.
    const seen = new Uint8Array(this.svcKeys.length + config.services.length);
    let nRs = this.rsPort.length;
    for (const s of config.services) {
      const key = `${s.protocol} ${hostPort(s.vip, s.port)}`;
      let i = this.svcKeys.indexOf(key);
      const proto = s.protocol === "udp" ? IPPROTO_UDP : IPPROTO_TCP;
      if (i < 0) {
        i = this.svcKeys.length;
        this.svcKeys.push(key);
        const n = i + 1;
        this.svcFamily = grow(this.svcFamily, n);
        this.svcAddr = grow(this.svcAddr, n * 4);
        this.svcPort = grow(this.svcPort, n);
        this.svcProto = grow(this.svcProto, n);
        this.svcToa = grow(this.svcToa, n);
        this.svcSynproxy = grow(this.svcSynproxy, n);
        this.svcDraining = grow(this.svcDraining, n);
        this.svcFamily[i] = s.vip.family;
        this.svcAddr.set(s.vip.words, i * 4);
        this.svcPort[i] = s.port;
        this.svcProto[i] = proto;
        this.svcRs.push(new Int32Array(0));
        this.counters.grow(n, nRs);
      }
      seen[i] = 1;
      // Where TOA goes, as the connection flags a new connection starts with.
      this.svcToa[i] = s.toa && proto === IPPROTO_TCP ? TOA_PLACEMENT_FLAGS[s.toaPlacement] : 0;
      this.svcSynproxy[i] = proto !== IPPROTO_TCP || s.synproxy === "off"
        ? SP_OFF
        : s.synproxy === "on"
        ? SP_ON
        : SP_AUTO;
      this.svcDraining[i] = 0;
      const oldSet = this.sets[i] as ServerSet | undefined;
      const keys = oldSet ? oldSet.keys.slice() : [];
      const rsKeys = s.realServers.map((r) => hostPort(r.address, r.port));
      let slots = this.svcRs[i];
      const added = rsKeys.filter((k) => !keys.includes(k));
      if (added.length > 0) {
        const first = slots.length;
        slots = grow(slots, first + added.length);
        for (let k = 0; k < added.length; k++) slots[first + k] = nRs++;
        this.svcRs[i] = slots;
        keys.push(...added);
        this.rsAddr = grow(this.rsAddr, nRs * 4);
        this.rsPort = grow(this.rsPort, nRs);
        this.rsIdx = grow(this.rsIdx, nRs);
        this.rsWeight = grow(this.rsWeight, nRs);
        this.rsDraining = grow(this.rsDraining, nRs);
        const up = new Uint8Array(nRs).fill(1);
        up.set(this.rsUp);
        this.rsUp = up;
        this.counters.grow(this.svcKeys.length, nRs);
      }
      s.realServers.forEach((r, ri) => {
        const j = keys.indexOf(rsKeys[ri]);
        const f = slots[j];
        this.rsAddr.set(r.address.words, f * 4);
        this.rsPort[f] = r.port;
        this.rsIdx[f] = j;
        this.rsWeight[f] = r.weight;
        this.rsDraining[f] = 0;
      });
      for (let j = 0; j < keys.length; j++) if (!rsKeys.includes(keys[j])) this.rsDraining[slots[j]] = 1;
      let set = oldSet;
      if (!oldSet || added.length > 0) {
        set = new ServerSet(keys, keys.map(() => 0));
        if (oldSet) {
          set.active.set(oldSet.active);
          set.inactive.set(oldSet.inactive);
        }
        this.sets[i] = set;
      }
      this.effectiveWeights(i);
      if (set !== oldSet || this.schedulers[i].name !== s.scheduler) {
        this.schedulers[i] = createScheduler(s.scheduler, set!);
      } else {
        this.schedulers[i].rebuild();
      }
    }
    for (let i = 0; i < this.svcKeys.length; i++) {
      if (seen[i]) continue;
      this.svcDraining[i] = 1;
      for (const f of this.svcRs[i]) this.rsDraining[f] = 1;
      this.effectiveWeights(i);
      this.schedulers[i].rebuild();
    }
    // The maps hold every slot, draining ones too: their connections' packets must still be found.
    const n = this.svcKeys.length;
    this.svcMap = new AddrMap(n);
    this.vipMap = new AddrMap(n);
    for (let i = 0; i < n; i++) {
      const a = this.svcAddr;
      const o = i * 4;
      this.svcMap.set(
        this.svcFamily[i],
        a[o],
        a[o + 1],
        a[o + 2],
        a[o + 3],
        this.svcPort[i],
        this.svcProto[i],
        i,
      );
      this.vipMap.set(this.svcFamily[i], a[o], a[o + 1], a[o + 2], a[o + 3], 0, 0, i);
    }
    this.localMap = new AddrMap(this.localText.length);
    for (let i = 0; i < this.localText.length; i++) {
      const a = this.localAddr;
      const o = i * 4;
      this.localMap.set(this.pool.families[i], a[o], a[o + 1], a[o + 2], a[o + 3], 0, 0, i);
    }
  }

  /** Recomputes service slot `svc`'s effective weights: configured, or 0 when down or draining. */
  private effectiveWeights(svc: number): void {
    const set = this.sets[svc];
    const slots = this.svcRs[svc];
    for (let j = 0; j < slots.length; j++) {
      const f = slots[j];
      set.weights[j] = this.rsDraining[f] || !this.rsUp[f] || this.svcDraining[svc] ? 0 : this.rsWeight[f];
    }
  }

  /** Slot of the service keyed `service` ("tcp 198.18.0.100:80"), or -1 (control path). */
  serviceSlot(service: string): number {
    return this.svcKeys.indexOf(service);
  }

  /** Index of server `server` ("198.18.3.10:80") in service slot `svc`'s ServerSet, or -1 (control path). */
  serverSlot(svc: number, server: string): number {
    return svc < 0 || svc >= this.sets.length ? -1 : this.sets[svc].keys.indexOf(server);
  }

  /**
   * Marks a real server up or down (a health check's verdict; control path): down, its effective weight is
   * 0 and it gets no new connections; its configured weight is kept for when it is up again. `svc` and
   * `server` are a service slot and an index in its set ({@link serviceSlot}, {@link serverSlot}). Returns
   * false when there is no such server.
   */
  setServerUp(svc: number, server: number, up: boolean): boolean {
    if (svc < 0 || svc >= this.sets.length || server < 0 || server >= this.svcRs[svc].length) return false;
    this.rsUp[this.svcRs[svc][server]] = up ? 1 : 0;
    this.effectiveWeights(svc);
    this.schedulers[svc].rebuild();
    return true;
  }

  /**
   * Ends every connection of server `server` of service slot `svc` now (control path): for TCP, a RST to
   * the client (from VIP:vport) and one to the real server (from local address:port), each passed to
   * `emit(bytes, length)` — sequence numbers are the last acknowledgements each side sent, which the
   * engine tracks — then the entry goes (its local port back to the pool). Returns the connections removed.
   */
  resetServer(svc: number, server: number, emit: (b: Uint8Array, len: number) => void): number {
    if (svc < 0 || svc >= this.sets.length || server < 0 || server >= this.svcRs[svc].length) return 0;
    const f = this.svcRs[svc][server];
    const conns = this.conns;
    const buf = new Uint8Array(128);
    let n = 0;
    for (let id = 0; id < conns.capacity && conns.size > 0; id++) {
      if (!conns.isLive(id) || conns.service(id) !== svc || conns.server(id) !== f) continue;
      if (conns.proto(id) === IPPROTO_TCP && conns.state(id) !== STATE_CLOSE) {
        let len = this.buildRst(buf, id, false);
        if (len > 0) emit(buf, len);
        len = this.buildRst(buf, id, true);
        if (len > 0) emit(buf, len);
        this.counters.events[C.EV_RST_SENT] += 2;
      }
      this.removeConnection(id);
      n++;
    }
    return n;
  }

  /**
   * Builds in `b` a RST+ACK for connection `id`: toward the real server (local:lport → RS:port) or toward
   * the client (VIP:vport → client:cport), each with the sequence number its receiver expects next.
   */
  private buildRst(b: Uint8Array, id: number, toServer: boolean): number {
    const conns = this.conns;
    // A RST must carry exactly the sequence number its receiver expects next (RFC 5961): the end of what its
    // peer sent through us, which it has all received by the time this RST, sent after it, arrives.
    // Client numbers go to the server shifted by seqDelta; server numbers to the client by the SYN proxy's
    // serverDelta (0 otherwise).
    const toClient = this.serverSeqToClient(id, conns.nextFromServer(id));
    const seq = toServer ? (conns.nextFromClient(id) + conns.seqDelta(id)) >>> 0 : toClient;
    const ack = toServer ? conns.nextFromServer(id) : conns.nextFromClient(id);
    return this.connSegment(b, id, toServer, seq, ack, TCP_RST | TCP_ACK, 0, 0);
  }

  /**
   * Builds in `b` a segment of connection `id` with no payload and the first `optLen` bytes of `spOptBuf` as
   * options: toward its real server (local:lport → RS:port) or its client (VIP:vport → client:cport).
   */
  private connSegment(
    b: Uint8Array,
    id: number,
    toServer: boolean,
    seq: number,
    ack: number,
    flags: number,
    window: number,
    optLen: number,
  ): number {
    const conns = this.conns;
    const svc = conns.service(id);
    const f = conns.server(id);
    return toServer
      ? buildTcpSegment(
        b,
        conns.family(id),
        this.localAddr,
        conns.localIndex(id) * 4,
        this.rsAddr,
        f * 4,
        conns.localPort(id),
        this.rsPort[f],
        seq,
        ack,
        flags,
        window,
        this.spOptBuf,
        optLen,
      )
      : buildTcpSegment(
        b,
        conns.family(id),
        this.svcAddr,
        svc * 4,
        conns.addrWords(id),
        conns.addrAt(id),
        this.svcPort[svc],
        conns.clientPort(id),
        seq,
        ack,
        flags,
        window,
        this.spOptBuf,
        optLen,
      );
  }

  /**
   * A server sequence number as connection `id`'s client knows it: minus the SYN proxy's serverDelta — but
   * while the proxy still opens the server side, nextFromServer is the client's own view (cookie + 1).
   */
  private serverSeqToClient(id: number, seq: number): number {
    const conns = this.conns;
    if (!(conns.flags(id) & CONN_SYNPROXY) || conns.state(id) === STATE_SYN_SENT) return seq;
    return (seq - conns.serverDelta(id)) >>> 0;
  }

  /**
   * Builds in `b` the SYN connection `id` sent its real server, again, from what the entry keeps: the
   * tuple, the gateway's ISN (the client's, `nextFromClient − 1`, plus the delta), the client's window and
   * options as they were forwarded — TOA first (as inserted), MSS as clamped, window scale, SACK permitted;
   * no timestamps (they were removed). Returns its length.
   */
  private buildSyn(b: Uint8Array, id: number): number {
    const conns = this.conns;
    const fam = conns.family(id);
    const syn = conns.synOptions(id);
    const ws = conns.clientWscale(id);
    const o = this.spOptBuf;
    let n = 0;
    if (conns.flags(id) & CONN_TOA) {
      // Counted here, so the SYN proxy's SYN and a takeover's SYN sent again both count theirs.
      this.counters.events[C.EV_TOA_INSERTED]++;
      n = writeToaWords(o, 0, fam, conns.clientPort(id), conns.addrWords(id), conns.addrAt(id));
      while (n & 3) o[n++] = TCPOPT_NOP;
    }
    n = tcpWriteSynOptions(
      o,
      n,
      conns.clientMss(id),
      ws & WSCALE_OFFERED ? ws & WSCALE_SHIFT : -1,
      (syn & SYN_SACK_PERMITTED) !== 0,
    );
    // In SYN_SENT only SYNs (never scaled) have set it; a stray segment scaled by the offer is capped.
    const win = conns.clientMaxWin(id);
    const seq = conns.nextFromClient(id) - 1 + conns.seqDelta(id);
    return this.connSegment(b, id, true, seq, 0, TCP_SYN, win > 0xffff ? 0xffff : win, n);
  }

  /**
   * The real server answered connection `id`'s SYN (in SYN_SENT) with an ACK, in `b`: it still holds the
   * tuple — a TIME_WAIT left by another gateway or an earlier life of this one, which answers a SYN it does
   * not take for a new connection (ISN not past the old one's, or PAWS) with an ACK, or a stale established
   * socket (RFC 5961's challenge ACK). Forwarded, the ACK would reach a client in SYN-SENT, which
   * answers it with a RST and waits a second or more to retransmit. Instead the ACK is dropped, and the
   * server gets a RST with seq = the ACK's acknowledgement — exactly its RCV.NXT, which a TIME_WAIT socket
   * takes to end itself (Linux tcp_timewait_state_process, unless net.ipv4.tcp_rfc1337 = 1) and an
   * established one accepts — followed at once by the SYN again on the same local port ({@link nextOutput}).
   * At most {@link MAX_TAKEOVERS} times per connection, under the reply rate limit; then the ACK is only
   * dropped and the client's own retransmissions go on. Counted: the drop `takeover` always (as a refusal
   * counts its drop, answered or not), the event `takeover_rst` when answered.
   */
  private takeover(b: Uint8Array, id: number): number {
    const conns = this.conns;
    const info = this.info;
    if (!this.partial && !transportChecksumOk(b, info)) return this.drop(C.DROP_BAD_CHECKSUM);
    // The ACK is dropped, answered or not (as a refusal is).
    this.counters.drops[C.DROP_TAKEOVER]++;
    const opts = conns.synOptions(id);
    if ((opts & SYN_TAKEOVERS) >= MAX_TAKEOVERS * SYN_TAKEOVER_ONE || !this.mayReply()) return 0;
    conns.setSynOptions(id, opts + SYN_TAKEOVER_ONE);
    this.counters.events[C.EV_TAKEOVER_RST]++;
    this.generated = true;
    const n = buildTcpRst(b, info);
    // A SYN that carried data (TFO) cannot be rebuilt from the entry: the client's retransmission sends it.
    if ((opts & SYN_DATA) === 0) {
      this.queueLen[0] = this.buildSyn(this.queue[0], id);
      this.queued = 1;
    }
    // The SYN_SENT timer starts again with the SYN.
    this.setState(id, STATE_SYN_SENT);
    return n;
  }

  /** Per local address: ports in use, free, and failed acquisitions (dpvs sa_used/sa_free/sa_miss). */
  poolUsage(): { address: string; used: number; free: number; misses: number }[] {
    return this.localText.map((address, i) => ({
      address,
      used: this.pool.portsPerAddress - this.pool.free(i),
      free: this.pool.free(i),
      misses: this.pool.misses[i],
    }));
  }

  /** Up to `max` live connections, as ipvsadm -Lnc lists them with dpvs's local column (control path). */
  connections(max = 10000): ConnectionRow[] {
    const conns = this.conns;
    const out: ConnectionRow[] = [];
    for (let id = 0; id < conns.capacity && out.length < max && out.length < conns.size; id++) {
      if (!conns.isLive(id)) continue;
      const fam = conns.family(id);
      const svc = conns.service(id);
      const f = conns.server(id);
      const hp = (a: Uint32Array, o: number, port: number) => {
        const t = wordsText(fam, a, o);
        return fam === 4 ? `${t}:${port}` : `[${t}]:${port}`;
      };
      out.push({
        proto: conns.proto(id) === IPPROTO_UDP ? "udp" : "tcp",
        state: conns.proto(id) === IPPROTO_UDP ? "UDP" : STATE_NAMES[conns.state(id)].toUpperCase(),
        expiresIn: Math.max(0, Math.round(this.wheel.deadline(id) - this.now)),
        source: hp(conns.addrWords(id), conns.addrAt(id), conns.clientPort(id)),
        virtual: hp(this.svcAddr, svc * 4, this.svcPort[svc]),
        local: hp(this.localAddr, conns.localIndex(id) * 4, conns.localPort(id)),
        destination: hp(this.rsAddr, f * 4, this.rsPort[f]),
      });
    }
    return out;
  }

  /** Sets a real server's configured weight (0 drains it) and rebuilds its service's scheduler (control path). */
  setWeight(service: number, server: number, weight: number): void {
    this.rsWeight[this.svcRs[service][server]] = weight;
    this.effectiveWeights(service);
    this.schedulers[service].rebuild();
  }

  /** Flat index of a service's real server, as used by the per-server counters. */
  serverIndex(service: number, server: number): number {
    return this.svcRs[service][server];
  }

  /** Copies the counters out (control path): what `snapshot` in lb/stats.ts sums over workers. */
  exportCounters(runtime: Record<string, number> = {}): EngineCounters {
    const c = this.counters;
    return {
      worker: this.worker,
      size: this.conns.size,
      drops: c.drops.slice(),
      events: c.events.slice(),
      services: c.services.slice(),
      servers: c.servers.slice(),
      serviceKeys: this.svcKeys.slice(),
      schedulers: this.schedulers.map((s) => s.name),
      serviceDraining: this.svcDraining.slice(),
      serverKeys: this.sets.map((s) => s.keys.slice()),
      serverSlots: this.svcRs.map((s) => s.slice()),
      configuredWeights: this.svcRs.map((s) => Int32Array.from(s, (f) => this.rsWeight[f])),
      serverDraining: this.svcRs.map((s) => Uint8Array.from(s, (f) => this.rsDraining[f])),
      weights: this.sets.map((s) => s.weights.slice()),
      active: this.sets.map((s) => s.active.slice()),
      inactive: this.sets.map((s) => s.inactive.slice()),
      pools: this.poolUsage(),
      runtime,
    };
  }

  /** Advances the clock: expires idle connections and stale fragments. Call about once a second. */
  tick(now: number): number {
    this.now = now;
    this.frags.expire(now);
    const ev = this.counters.events;
    if (this.spAuto.tick(now, this.halfOpen, ev[C.EV_SYNCOOKIE_SENT], ev[C.EV_SYNCOOKIE_VALID])) {
      ev[C.EV_SYNPROXY_OFF]++;
    }
    return this.wheel.advance(now, this.expireFn);
  }

  /**
   * Handles one IP packet in `b[0, len)` at time `now` (seconds). Returns the length of the packet to send
   * (rewritten in place, possibly longer — `b` must have room for TOA — or a generated reply), 0 when
   * the packet was dropped (counted by reason) or is a fragment held for the rest of its datagram
   * (counted as `frag_held`), or −(owner + 1) when worker `owner` owns its connection (hand over
   * {@link length} bytes: the packet untouched, or the datagram its fragments made). When the return is
   * positive, call {@link nextOutput} until it returns 0 for more packets to send (IPv6 fragments).
   */
  process(b: Uint8Array, len: number, now: number, csumPartial = false): number {
    this.now = now;
    this.generated = false;
    this.headerDelta = 0;
    this.length = len;
    this.outLen = 0;
    this.replayId = -1;
    this.queued = 0;
    this.queuePos = 0;
    this.partial = csumPartial;
    const out = this.route(b, len);
    // Routers do not fragment IPv6 (RFC 8200): the kernel would answer Packet Too Big, so we fragment what
    // we reassembled (here or on another worker: anything past the MTU without a partial checksum — a GSO
    // super-packet always has one — came from reassembly), forwarded or answered (a large echo request).
    if (out > this.config.mtu && !this.partial && this.info.family === 6) {
      // What follows the IP length (a link's padding, kept on forwarded packets) is no part of the datagram.
      const ipLen = IPV6_HEADER_LEN + read16(b, IPV6_PAYLOAD_LENGTH);
      if (ipLen > this.config.mtu) return this.fragmentOut(b, ipLen < out ? ipLen : out);
    }
    return out;
  }

  /** {@link process} without the IPv6 fragmentation of its output. */
  private route(b: Uint8Array, len: number): number {
    const info = this.info;
    const r = classifyPacket(b, 0, len, info);
    if (r !== PACKET_OK) {
      if (r === PACKET_FRAGMENT) return this.fragment(b);
      this.counters.drops[r]++;
      return 0;
    }
    const fam = info.family;
    const proto = info.l4Proto;
    const w = this.words;
    readAddressWords(b, fam, info.ipOff + ipDstOffset(fam), w);
    if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
      const dport = read16(b, info.l4Off + TCP_DST_PORT); // UDP's ports sit at the same offsets
      const svc = this.svcMap.get(fam, w[0], w[1], w[2], w[3], dport, proto);
      if (svc !== ADDR_MAP_MISS) return this.fromClient(b, len, svc);
      const li = this.localMap.get(fam, w[0], w[1], w[2], w[3], 0, 0);
      if (li !== ADDR_MAP_MISS) return this.fromServer(b, len, li);
      if (this.vipMap.get(fam, w[0], w[1], w[2], w[3], 0, 0) !== ADDR_MAP_MISS) return this.noService(b, len);
      return this.drop(C.DROP_NOT_FOR_US);
    }
    if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6) return this.icmp(b, len);
    return this.drop(C.DROP_PROTOCOL);
  }

  private drop(reason: number): number {
    this.counters.drops[reason]++;
    return 0;
  }

  /**
   * A fragment to a VIP or local address: held by the reassembler (on the worker its datagram hashes to,
   * since later fragments carry no ports) until the datagram is whole, which then goes through
   * {@link process} as one packet.
   */
  private fragment(b: Uint8Array): number {
    const info = this.info;
    const fam = info.family;
    const w = this.words;
    readAddressWords(b, fam, info.ipOff + ipDstOffset(fam), w);
    if (
      this.vipMap.get(fam, w[0], w[1], w[2], w[3], 0, 0) === ADDR_MAP_MISS &&
      this.localMap.get(fam, w[0], w[1], w[2], w[3], 0, 0) === ADDR_MAP_MISS
    ) return this.drop(C.DROP_NOT_FOR_US);
    // Only what the gateway serves is worth memory: TCP, UDP, ICMP (IPv6: or an extension header first).
    const p = info.l4Proto;
    if (
      p !== IPPROTO_TCP && p !== IPPROTO_UDP &&
      (fam === 4
        ? p !== IPPROTO_ICMP
        : p !== IPPROTO_ICMPV6 && p !== IPV6_EXT_DEST_OPTS && p !== IPV6_EXT_ROUTING)
    ) return this.drop(PACKET_FRAGMENT);
    if (this.workers > 1) {
      let x = w[0] ^ w[1] ^ w[2] ^ w[3];
      readAddressWords(b, fam, info.ipOff + ipSrcOffset(fam), w);
      x ^= w[0] ^ w[1] ^ w[2] ^ w[3];
      const id = fam === 4 ? ipv4Id(b, info.ipOff) : ipv6FragmentId(b, info.l4Off - IPV6_FRAGMENT_HEADER_LEN);
      const owner = steerFragment(x, id, this.workers);
      if (owner !== this.worker) return -owner - 1;
    }
    const n = this.frags.add(b, info, this.now);
    if (n === 0) return 0; // held or dropped: the reassembler counted which
    this.length = n;
    return this.route(b, n);
  }

  /** Keeps the IPv6 datagram in `b[0, len)` and puts its first fragment in `b` (see {@link nextOutput}). */
  private fragmentOut(b: Uint8Array, len: number): number {
    const u = this.unfrag;
    if (!ipv6Unfragmentable(b, 0, len, u) || u[0] + IPV6_FRAGMENT_HEADER_LEN + 8 > this.config.mtu) {
      return this.drop(C.DROP_FRAG_TOO_BIG);
    }
    const hl = u[0];
    // The datagram must survive the first fragment being built in `b`: keep a copy (rare path).
    const out = this.outBuf ??= new Uint8Array(b.length);
    out.set(b.subarray(0, len));
    this.outLen = len;
    this.outPos = 0;
    this.outHdr = hl;
    this.outNhAt = u[1];
    this.outNext = out[this.outNhAt];
    this.outId = (this.outId + this.workers) >>> 0;
    return this.nextOutput(b);
  }

  /**
   * After {@link process} returned a length: the next packet to send for the same input, built in `b` —
   * an IPv6 fragment of a reassembled datagram larger than the MTU, or a packet the engine queued (a
   * takeover's SYN) — or 0 when there is none. {@link generated} and {@link headerDelta} describe it.
   */
  nextOutput(b: Uint8Array): number {
    if (this.replayId >= 0) return this.replayKept(b);
    const data = this.outLen - this.outHdr;
    if (this.outPos >= data) {
      if (this.queuePos >= this.queued) return 0;
      const k = this.queuePos++;
      const n = this.queueLen[k];
      const q = this.queue[k];
      for (let i = 0; i < n; i++) b[i] = q[i];
      this.generated = true;
      this.headerDelta = 0;
      return n;
    }
    const out = this.outBuf!;
    const hl = this.outHdr;
    const pos = this.outPos;
    // Every fragment but the last carries a multiple of 8 bytes; all fit the MTU with the Fragment header.
    const chunk = (this.config.mtu - hl - IPV6_FRAGMENT_HEADER_LEN) & ~7;
    const n = data - pos < chunk ? data - pos : chunk;
    b.set(out.subarray(0, hl), 0);
    b[this.outNhAt] = IPV6_EXT_FRAGMENT;
    ipv6WriteFragmentHeader(b, hl, this.outNext, pos, pos + n < data, this.outId);
    b.set(out.subarray(hl + pos, hl + pos + n), hl + IPV6_FRAGMENT_HEADER_LEN);
    const len = hl + IPV6_FRAGMENT_HEADER_LEN + n;
    write16(b, IPV6_PAYLOAD_LENGTH, len - IPV6_HEADER_LEN);
    this.outPos = pos + n;
    this.generated = true; // complete checksums, no offload: the vnet header is cleared
    this.headerDelta = 0;
    this.counters.events[C.EV_FRAG_SENT]++;
    return len;
  }

  /** Token bucket for generated replies, so a flood of bad packets cannot turn the gateway into an amplifier. */
  private mayReply(): boolean {
    const t = this.replyTokens + (this.now - this.replyAt) * this.replyRate;
    this.replyAt = this.now;
    this.replyTokens = t > this.replyBurst ? this.replyBurst : t;
    if (this.replyTokens < 1) {
      this.counters.events[C.EV_REPLY_RATE_LIMITED]++;
      return false;
    }
    this.replyTokens--;
    return true;
  }

  /** Answers a segment the gateway refuses with a RST (or a datagram with port unreachable). */
  private refuse(b: Uint8Array, len: number, reason: number): number {
    this.counters.drops[reason]++;
    if (!this.mayReply()) return 0;
    this.generated = true;
    const info = this.info;
    if (info.l4Proto === IPPROTO_TCP) {
      const n = buildTcpRst(b, info);
      if (n > 0) this.counters.events[C.EV_RST_SENT]++;
      return n;
    }
    const n = buildPortUnreachable(b, info, len);
    if (n > 0) this.counters.events[C.EV_ICMP_UNREACH_SENT]++;
    return n;
  }

  /**
   * The one place a client's TCP segment that is no SYN and matches no connection is decided (a SYN proxy's
   * cookie check of a pure ACK goes before the call). After a restart, or once an entry expired, the
   * client's stack still holds the connection: a RST (RFC 793: seq = its ACK, else ACK = its seq + length)
   * ends it at once instead of leaving the client to retransmit into silence until it times out. Counted as
   * `no_connection`, answered or not (the reply token bucket); a RST is never answered, and a segment
   * whose checksum fails gets no answer (`bad_checksum`): the reset must be for what the client sent.
   */
  private noConnection(b: Uint8Array, len: number, flags: number): number {
    if (flags & TCP_RST) return this.drop(C.DROP_NO_CONNECTION);
    if (!this.partial && !transportChecksumOk(b, this.info)) return this.drop(C.DROP_BAD_CHECKSUM);
    return this.refuse(b, len, C.DROP_NO_CONNECTION);
  }

  private noService(b: Uint8Array, len: number): number {
    const w = this.words;
    readAddressWords(b, this.info.family, this.info.ipOff + ipSrcOffset(this.info.family), w);
    if (this.martianSource(this.info.family, w)) return this.drop(C.DROP_MARTIAN_SOURCE);
    return this.refuse(b, len, C.DROP_NO_SERVICE);
  }

  /**
   * True when the source `w` (address words) is one no client can have: one of our own addresses (a land
   * attack, or a loop), loopback, multicast, unspecified (0/8, ::) or the limited broadcast. Such a packet
   * must neither create state nor be answered: the answer would go to ourselves or to a group.
   */
  private martianSource(fam: number, w: Uint32Array): boolean {
    if (fam === 4) {
      const top = w[0] >>> 24;
      if (top === 0 || top === 127 || (top >= 224 && top < 240) || w[0] === 0xffffffff) return true;
    } else if (w[0] >>> 24 === 0xff || (w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] <= 1)) {
      return true;
    }
    return this.vipMap.get(fam, w[0], w[1], w[2], w[3], 0, 0) !== ADDR_MAP_MISS ||
      this.localMap.get(fam, w[0], w[1], w[2], w[3], 0, 0) !== ADDR_MAP_MISS;
  }

  /** ISN toward the real server for connection `id` (its tuple is filled in). */
  private nextIsn(id: number): number {
    if (this.random32) return this.random32() >>> 0;
    const c = this.conns;
    const la = c.localIndex(id) * 4;
    const ra = c.server(id) * 4;
    const lo = this.localAddr;
    const rs = this.rsAddr;
    return this.isn.next(
      this.now,
      lo[la] ^ lo[la + 1] ^ lo[la + 2] ^ lo[la + 3],
      c.localPort(id),
      rs[ra] ^ rs[ra + 1] ^ rs[ra + 2] ^ rs[ra + 3],
      this.rsPort[c.server(id)],
    );
  }

  /**
   * Removes one entry that holds a table slot and a local pair but no live connection — SYN_SENT, SYN_RECV
   * (half-open: a SYN flood's, or a server that never answered), CLOSE, TIME_WAIT — to make room for a new
   * connection, of family `fam` (its pool is exhausted) or any (0: the table is full). Of the entries nearest
   * their deadline (the timer wheel's soonest slots: at most {@link EVICT_SCAN} looked at, so the work per
   * new connection is bounded), a half-open one goes first, else a closed one; ESTABLISHED, FIN_WAIT and UDP
   * entries are never taken. Counted `evicted`.
   */
  private evictHalfOpen(fam: number): boolean {
    const conns = this.conns;
    const ids = this.evictIds;
    const n = this.wheel.soonest(ids);
    // Half-open ones first (a flood's), then closed ones (which still catch a closed connection's strays).
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < n; k++) {
        const id = ids[k];
        const st = conns.state(id);
        const open = st === STATE_SYN_SENT || st === STATE_SYN_RECV;
        const closed = st === STATE_CLOSE || st === STATE_TIME_WAIT;
        if (!(pass === 0 ? open : closed) || (fam !== 0 && conns.family(id) !== fam)) continue;
        this.counters.events[C.EV_EVICTED]++;
        this.removeConnection(id);
        return true;
      }
    }
    return false;
  }

  /** Creates the connection for a new client flow; returns its handle or −reason. */
  private newConnection(b: Uint8Array, svc: number, fam: number, sport: number): number {
    const info = this.info;
    const w = this.words; // client address words (filled by the caller)
    const set = this.sets[svc];
    let h = Math.imul(w[0] ^ w[1] ^ 0x9e3779b9, 0x85ebca6b) ^ w[2];
    h = Math.imul(h ^ (h >>> 13) ^ w[3], 0xc2b2ae35);
    h = (h ^ (h >>> 16)) >>> 0;
    const idx = this.schedulers[svc].pick(h);
    if (idx < 0) return -C.DROP_NO_REAL_SERVER;
    // Under pressure, half-open and closing entries give way first (IPVS's drop_entry); never a live one.
    if (this.conns.size >= this.conns.capacity && !this.evictHalfOpen(0)) return -C.DROP_TABLE_FULL;
    let lp = this.pool.acquire(fam);
    if (lp < 0 && this.evictHalfOpen(fam)) lp = this.pool.acquire(fam);
    if (lp < 0) {
      this.pool.miss(fam);
      return -C.DROP_PORT_EXHAUSTED;
    }
    const li = Math.floor(lp / 65536);
    const id = this.conns.insert(fam, info.l4Proto, svc, w[0], w[1], w[2], w[3], sport, li, lp & 0xffff);
    const server = this.svcRs[svc][idx];
    this.conns.setServer(id, server);
    if (info.l4Proto === IPPROTO_TCP) {
      this.conns.setState(id, STATE_SYN_SENT);
      const ev = this.counters.events;
      if (
        this.spAuto.halfOpened(++this.halfOpen, this.now, ev[C.EV_SYNCOOKIE_SENT], ev[C.EV_SYNCOOKIE_VALID])
      ) {
        ev[C.EV_SYNPROXY_ON]++;
      }
      this.conns.setFlags(id, this.svcToa[svc]);
      this.conns.setSeqDelta(id, (this.nextIsn(id) - read32(b, info.l4Off + 4)) >>> 0);
    } else {
      this.conns.setState(id, STATE_UDP);
    }
    set.inactive[idx]++;
    const c = this.counters;
    c.events[C.EV_CONNECTIONS]++;
    c.services[svc * C.TRAFFIC_FIELDS + C.T_CONNS]++;
    c.servers[server * C.TRAFFIC_FIELDS + C.T_CONNS]++;
    return id;
  }

  /** Moves a connection to `state`, keeping the scheduler's active/inactive counts and the timer right. */
  private setState(id: number, state: number): void {
    const conns = this.conns;
    const old = conns.state(id);
    if (old !== state) {
      const svc = conns.service(id);
      const idx = this.rsIdx[conns.server(id)];
      const set = this.sets[svc];
      if (old === STATE_ESTABLISHED) {
        set.active[idx]--;
        set.inactive[idx]++;
      } else if (state === STATE_ESTABLISHED) {
        set.inactive[idx]--;
        set.active[idx]++;
      }
      if (old === STATE_SYN_SENT || old === STATE_SYN_RECV) this.halfOpen--;
      if (state === STATE_SYN_SENT || state === STATE_SYN_RECV) this.halfOpen++;
      conns.setState(id, state);
    }
    this.wheel.setDeadline(id, this.now + this.timeouts[state]);
  }

  /** Removes a connection: counts, timer, local port back to the pool. */
  private removeConnection(id: number): void {
    const conns = this.conns;
    const svc = conns.service(id);
    const idx = this.rsIdx[conns.server(id)];
    const set = this.sets[svc];
    const state = conns.state(id);
    if (state === STATE_ESTABLISHED) set.active[idx]--;
    else set.inactive[idx]--;
    if (state === STATE_SYN_SENT || state === STATE_SYN_RECV) this.halfOpen--;
    if ((conns.flags(id) & CONN_SYNPROXY) && (conns.synOptions(id) & SYN_PROXY_KEPT)) this.kept.release(id);
    this.wheel.cancel(id);
    this.pool.release(conns.localIndex(id), conns.localPort(id));
    conns.remove(id);
  }

  /** Inserts TOA for connection `id` into the segment; returns the new length (unchanged when no room). */
  private insertToa(b: Uint8Array, len: number, id: number): number {
    const conns = this.conns;
    const info = this.info;
    const t = this.toaBuf;
    const n = writeToaWords(
      t,
      0,
      conns.family(id),
      conns.clientPort(id),
      conns.addrWords(id),
      conns.addrAt(id),
    );
    let r = tcpInsertOption(b, info, len, t, 0, n);
    if (r < 0 && tcpHeaderLength(b, info.l4Off) + n > TCP_MAX_HEADER_LEN) {
      // NOPs (alignment, removed options) may be what takes the room: pack the options and try again.
      len = tcpCompactOptions(b, info, len);
      r = tcpInsertOption(b, info, len, t, 0, n);
    }
    if (r < 0) {
      this.counters.events[C.EV_TOA_NO_SPACE]++;
      return len;
    }
    this.counters.events[C.EV_TOA_INSERTED]++;
    return r;
  }

  /**
   * The client's handshake segments' option edits toward the server (connection `id` in `state` before
   * this segment; `syn`: a SYN that opens it): MSS clamped, timestamps removed, TOA inserted into the SYN
   * and/or the ACK completing the handshake, as the service's `toaPlacement` says. Returns the new length.
   * Apart from {@link fromClient} so that the established path stays small enough for the compiler to inline
   * its helpers.
   */
  private handshakeEdits(
    b: Uint8Array,
    len: number,
    id: number,
    state: number,
    flags: number,
    syn: boolean,
  ): number {
    const info = this.info;
    const o = info.l4Off;
    const conns = this.conns;
    if ((flags & (TCP_SYN | TCP_RST)) === TCP_SYN && info.l4HeaderLen > TCP_MIN_HEADER_LEN) {
      // Any segment with SYN and no RST may set an MSS (as iptables' TCPMSS matches): keep room for TOA.
      if (tcpClampMss(b, o, info.family === 4 ? this.mss4 : this.mss6)) {
        this.counters.events[C.EV_MSS_CLAMPED]++;
      }
    }
    if (syn) {
      // The client's window scale offer, settled by the server's SYN+ACK (a retransmitted SYN changes none),
      // and what a SYN sent again for it (takeover) needs: MSS as clamped, SACK permitted, data or not.
      if (state === STATE_SYN_SENT) this.recordSynOptions(b, o, id);
      if (info.l4HeaderLen > TCP_MIN_HEADER_LEN) {
        // Clients behind one local address have unrelated clocks: the server's PAWS would drop them.
        const ts = tcpNopAllOptions(b, o, TCPOPT_TIMESTAMP);
        if (ts > 0) this.counters.events[C.EV_TIMESTAMP_REMOVED]++;
      }
      if (conns.flags(id) & CONN_TOA) len = this.insertToa(b, len, id);
    } else if (
      state === STATE_SYN_RECV && (flags & (TCP_ACK | TCP_RST)) === TCP_ACK &&
      (conns.flags(id) & (CONN_TOA_ACK | CONN_TOA_ACK_DONE)) === CONN_TOA_ACK
    ) {
      // The ACK completing the handshake: toa.ko reads the address from this one (syn_recv_sock).
      conns.setFlags(id, conns.flags(id) | CONN_TOA_ACK_DONE);
      len = this.insertToa(b, len, id);
    }
    return len;
  }

  /**
   * Records, from the client's SYN at `o` (MSS already clamped), in one walk over its options: its window
   * scale offer (settled by the server's SYN+ACK), and what a SYN sent again for it (takeover) needs — MSS,
   * SACK permitted, whether it carried data. The first option of each kind counts, as tcpFindOption's.
   */
  private recordSynOptions(b: Uint8Array, o: number, id: number): void {
    const conns = this.conns;
    const info = this.info;
    let ws = 0;
    let mss = 0;
    let sack = 0;
    if (info.l4HeaderLen > TCP_MIN_HEADER_LEN) {
      for (let p = tcpNextOption(b, o, -1); p >= 0; p = tcpNextOption(b, o, p)) {
        const kind = b[p];
        if (kind === TCPOPT_WINDOW_SCALE && ws === 0 && b[p + 1] === 3) {
          ws = WSCALE_OFFERED | (b[p + 2] > 14 ? 14 : b[p + 2]);
        } else if (kind === TCPOPT_MSS && mss === 0 && b[p + 1] === 4) {
          mss = read16(b, p + 2);
        } else if (kind === TCPOPT_SACK_PERMITTED) {
          sack = SYN_SACK_PERMITTED;
        }
      }
    }
    conns.setClientWscale(id, ws);
    conns.setClientMss(id, mss);
    conns.setSynOptions(
      id,
      (conns.synOptions(id) & (SYN_TAKEOVERS | SYN_PROXY_BITS)) | sack |
        (info.end - o > info.l4HeaderLen ? SYN_DATA : 0),
    );
  }

  /**
   * Window scaling of connection `id`, from the server's SYN+ACK at `o` (RFC 7323): on only when both the
   * client's SYN and this SYN+ACK carry the option; each side's shift is the one it announced (at most 14).
   */
  private settleWindowScale(b: Uint8Array, o: number, id: number): void {
    const conns = this.conns;
    const offer = conns.clientWscale(id);
    const server = windowScaleOffer(b, o, this.info.l4HeaderLen);
    const on = (offer & WSCALE_OFFERED) !== 0 && (server & WSCALE_OFFERED) !== 0;
    conns.setClientWscale(id, on ? offer & WSCALE_SHIFT : 0);
    conns.setServerWscale(id, on ? server & WSCALE_SHIFT : 0);
  }

  /**
   * True when a RST from the client (`fromClient`) or the server of connection `id` is one its receiver
   * would act on, so it may close the entry: its sequence number within the largest window the receiver
   * advertised of the sender's next one — either way, since the receiver may not have all of it yet
   * (RFC 793 §3.4, RFC 5961 §3). In SYN_SENT the server's RST has no window to be judged by: RFC 793 has a
   * SYN-SENT receiver take it only with an ACK of its SYN, so that is the test (gateway ISN + 1).
   */
  private rstInWindow(b: Uint8Array, o: number, id: number, flags: number, fromClient: boolean): boolean {
    const conns = this.conns;
    if (!fromClient && conns.state(id) === STATE_SYN_SENT) {
      return (flags & TCP_ACK) !== 0 &&
        read32(b, o + TCP_ACK_NUM) === ((conns.nextFromClient(id) + conns.seqDelta(id)) >>> 0);
    }
    const next = fromClient ? conns.nextFromClient(id) : conns.nextFromServer(id);
    const win = fromClient ? conns.serverMaxWin(id) : conns.clientMaxWin(id);
    const d = (read32(b, o + TCP_SEQ) - next) | 0;
    return d <= win && -d <= win;
  }

  /** client → VIP: find or create the connection, rewrite toward the real server. */
  private fromClient(b: Uint8Array, len: number, svc: number): number {
    const info = this.info;
    const fam = info.family;
    const o = info.l4Off;
    const isTcp = info.l4Proto === IPPROTO_TCP;
    const w = this.words;
    readAddressWords(b, fam, info.ipOff + ipSrcOffset(fam), w);
    const sport = read16(b, o + TCP_SRC_PORT);
    if (this.workers > 1) {
      const owner = steerClient(w[0] ^ w[1] ^ w[2] ^ w[3], sport, this.workers);
      if (owner !== this.worker) return -owner - 1;
    }
    const flags = isTcp ? b[o + TCP_FLAGS] : 0;
    const conns = this.conns;
    // Only a SYN without ACK, RST or FIN opens a connection (or gets the handshake's option edits).
    const syn = isTcp && (flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) === TCP_SYN;
    // A SYN may create state and take a local port: its checksum must hold first, before any edit keeps it
    // (wrong) up to date. A partial checksum is the sending kernel's own, for the offload to finish.
    if (syn && !this.partial && !transportChecksumOk(b, info)) return this.drop(C.DROP_BAD_CHECKSUM);
    // Before any header edit: a partial checksum is restored from its value here (see NatRewrite).
    this.rw.begin(b, info, !this.partial);
    if (isTcp && info.l4HeaderLen > TCP_MIN_HEADER_LEN) {
      // Nobody may choose the address a real server sees: any client-sent TOA (253 or 254) becomes NOPs.
      const n = nopToaOptions(b, o);
      if (n > 0) this.counters.events[C.EV_TOA_STRIPPED] += n;
    }
    let id = conns.findClient(svc, w[0], w[1], w[2], w[3], sport);
    if (
      id !== NO_CONN && syn && (conns.state(id) === STATE_TIME_WAIT || conns.state(id) === STATE_CLOSE)
    ) {
      // A new SYN on a closing tuple starts a new connection (IPVS conn_reuse): the old one gives way.
      this.removeConnection(id);
      this.counters.events[C.EV_REUSED]++;
      id = NO_CONN;
    }
    if (id === NO_CONN) {
      // A service a reload removed keeps its connections but takes no new ones: as if it were not there.
      if (this.svcDraining[svc]) return this.noService(b, len);
      // Every connection was checked here when it was made, so a live one never has a martian client.
      if (this.martianSource(fam, w)) return this.drop(C.DROP_MARTIAN_SOURCE);
      const sp = isTcp ? this.svcSynproxy[svc] : SP_OFF;
      if (sp !== SP_OFF) {
        // The SYN proxy: SYNs get a cookie while it is on; an ACK may prove a cookie even after it went off.
        if (syn && (sp === SP_ON || this.spAuto.active)) return this.cookieReply(b, svc, sport);
        if (
          (flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) === TCP_ACK &&
          (sp === SP_ON || this.spAuto.acceptsCookies(this.now))
        ) {
          const r = this.cookieAck(b, len, svc, sport);
          if (r !== SP_CONTINUE) return r;
        }
      }
      if (isTcp && !syn) return this.noConnection(b, len, flags);
      if (!isTcp && !this.partial && !transportChecksumOk(b, info)) return this.drop(C.DROP_BAD_CHECKSUM);
      id = this.newConnection(b, svc, fam, sport);
      if (id < 0) return isTcp || -id !== C.DROP_NO_REAL_SERVER ? this.refuse(b, len, -id) : this.drop(-id);
    }
    const server = conns.server(id);
    if (isTcp) {
      const state = conns.state(id);
      const cf = conns.flags(id);
      // Opened by the SYN proxy, the server side still opening: the client's segments wait for it.
      if ((cf & CONN_SYNPROXY) && state === STATE_SYN_SENT) return this.synproxyOpening(b, len, id, flags);
      // A RST out of its receiver's window is forwarded, but changes nothing here (see rstInWindow).
      const blind = (flags & TCP_RST) !== 0 && !this.rstInWindow(b, o, id, flags, true);
      const t = blind ? state | (cf << 8) : tcpTransition(state, cf, flags, true);
      if (t >>> 8 !== cf) conns.setFlags(id, t >>> 8);
      const seq = read32(b, o + TCP_SEQ);
      tcpSetSeq(b, o, seq + conns.seqDelta(id));
      // For a RST this gateway may have to send (resetServer): where the client's numbering has got to.
      if (!blind) conns.setNextFromClient(id, segmentEnd(seq, info, flags, conns.nextFromClient(id)));
      // The largest window the client advertised bounds what the server may send (a SYN's is never scaled).
      // Read as the client sent it: the SYN proxy may rescale it for the server next.
      const win = read16(b, o + TCP_WINDOW) << (flags & TCP_SYN ? 0 : conns.clientWscale(id) & WSCALE_SHIFT);
      if (win > conns.clientMaxWin(id)) conns.setClientMaxWin(id, win);
      if (cf & CONN_SYNPROXY) this.synproxyToServer(b, id, flags);
      // Only a SYN or the segment after the server's SYN+ACK has handshake edits to make.
      if ((flags & TCP_SYN) || state === STATE_SYN_RECV) {
        len = this.handshakeEdits(b, len, id, state, flags, syn);
      }
      if (blind) this.counters.events[C.EV_RST_OUT_OF_WINDOW]++;
      else this.setState(id, t & TRANSITION_STATE_MASK);
    } else {
      this.setState(id, STATE_UDP);
    }
    this.rewriteTuple(b, id, true);
    this.countTraffic(svc, server, C.T_PKTS_IN, C.T_BYTES_IN, len);
    return len;
  }

  /**
   * Rewrites the packet an ICMP error quotes (classified into `this.inner`) to what connection `id`'s peer
   * on the other side sent — `toServer`: the real server's RS:port → local:lport; else the client's
   * client:cport → VIP:vport — and addresses the error itself to that sender. `extraDelta` is the checksum
   * delta of changes the caller already made to the quote (the sequence number). The quote's own checksum
   * is fixed incrementally where its bytes are present; the caller re-sums the ICMP message.
   */
  private translateQuoted(b: Uint8Array, id: number, toServer: boolean, extraDelta: number): void {
    const conns = this.conns;
    const server = conns.server(id);
    const svc = conns.service(id);
    // The quote's source is the sender the error goes to; its destination, what that sender talked to.
    const src = toServer ? this.rsAddr : conns.addrWords(id);
    const sa = toServer ? server * 4 : conns.addrAt(id);
    const sport = toServer ? this.rsPort[server] : conns.clientPort(id);
    const dst = toServer ? this.localAddr : this.svcAddr;
    const da = toServer ? conns.localIndex(id) * 4 : svc * 4;
    const dport = toServer ? conns.localPort(id) : this.svcPort[svc];
    const q = this.inner;
    const fam = q.family;
    const qo = q.l4Off;
    const d = extraDelta + natSetAddress(b, fam, q.ipOff, false, src, sa) +
      natSetAddress(b, fam, q.ipOff, true, dst, da) + natSetPort(b, qo + TCP_SRC_PORT, sport) +
      natSetPort(b, qo + TCP_DST_PORT, dport);
    natApplyDelta(b, q.l4Proto, qo + transportChecksumFieldOffset(q.l4Proto), q.end, d);
    const ip = this.info.ipOff;
    natSetAddress(b, fam, ip, false, dst, da);
    natSetAddress(b, fam, ip, true, src, sa);
  }

  /**
   * Adds one packet of `len` bytes to a service's and a server's counters (`pkts`, `bytes`: T_PKTS_IN and
   * T_BYTES_IN, or the _OUT pair). Kept small: it is inlined into both directions' paths.
   */
  private countTraffic(svc: number, server: number, pkts: number, bytes: number, len: number): void {
    const c = this.counters;
    const s = svc * C.TRAFFIC_FIELDS;
    const r = server * C.TRAFFIC_FIELDS;
    c.services[s + pkts]++;
    c.services[s + bytes] += len;
    c.servers[r + pkts]++;
    c.servers[r + bytes] += len;
  }

  /**
   * Rewrites connection `id`'s packet in hand to its other side: toward the real server
   * (local address:port → RS:port) or back toward the client (VIP:vport → client:port), then has
   * {@link NatRewrite} fix the transport checksum under the packet's policy (begun before the header edits).
   */
  private rewriteTuple(b: Uint8Array, id: number, toServer: boolean): void {
    const info = this.info;
    const rw = this.rw;
    const conns = this.conns;
    if (toServer) {
      const server = conns.server(id);
      rw.addresses(b, info, this.localAddr, conns.localIndex(id) * 4, this.rsAddr, server * 4);
      rw.ports(b, info, conns.localPort(id), this.rsPort[server]);
    } else {
      const svc = conns.service(id);
      rw.addresses(b, info, this.svcAddr, svc * 4, conns.addrWords(id), conns.addrAt(id));
      rw.ports(b, info, this.svcPort[svc], conns.clientPort(id));
    }
    rw.finish(b, info);
    this.headerDelta = info.l4HeaderLen - rw.headerLen0;
    ipGiveBackHop(b, info.family, info.ipOff);
  }

  /** RS → local address: find the connection, rewrite back toward the client. */
  private fromServer(b: Uint8Array, len: number, li: number): number {
    const info = this.info;
    const fam = info.family;
    const o = info.l4Off;
    const isTcp = info.l4Proto === IPPROTO_TCP;
    const conns = this.conns;
    const lport = read16(b, o + TCP_DST_PORT);
    if (this.workers > 1) {
      const owner = steerLocalPort(lport, this.workers);
      if (owner !== this.worker) return -owner - 1;
    }
    const id = conns.findLocal(li, lport);
    if (id === NO_CONN || conns.proto(id) !== info.l4Proto) return this.drop(C.DROP_NO_CONNECTION_REPLY);
    const server = conns.server(id);
    const w = this.words;
    readAddressWords(b, fam, info.ipOff + ipSrcOffset(fam), w);
    const ra = server * 4;
    if (
      read16(b, o + TCP_SRC_PORT) !== this.rsPort[server] || w[0] !== this.rsAddr[ra] ||
      w[1] !== this.rsAddr[ra + 1] ||
      w[2] !== this.rsAddr[ra + 2] || w[3] !== this.rsAddr[ra + 3]
    ) return this.drop(C.DROP_NO_CONNECTION_REPLY);
    const svc = conns.service(id);
    this.rw.begin(b, info, !this.partial);
    if (isTcp) {
      const flags = b[o + TCP_FLAGS];
      const state = conns.state(id);
      if ((conns.flags(id) & CONN_SYNPROXY) && state === STATE_SYN_SENT) {
        return this.synproxyServerOpening(b, id, flags);
      }
      if (
        (flags & TCP_SYN) && (!(flags & TCP_ACK) || (state !== STATE_SYN_SENT && state !== STATE_SYN_RECV))
      ) {
        return this.drop(C.DROP_BAD_STATE);
      }
      // Our SYN answered with an ACK: the server still holds the tuple (see takeover).
      if (state === STATE_SYN_SENT && (flags & (TCP_SYN | TCP_RST | TCP_ACK)) === TCP_ACK) {
        return this.takeover(b, id);
      }
      const cf = conns.flags(id);
      // A RST out of its receiver's window is forwarded, but changes nothing here (see rstInWindow).
      const blind = (flags & TCP_RST) !== 0 && !this.rstInWindow(b, o, id, flags, false);
      const t = blind ? state | (cf << 8) : tcpTransition(state, cf, flags, false);
      if (t >>> 8 !== cf) conns.setFlags(id, t >>> 8);
      const delta = conns.seqDelta(id);
      if (!blind) {
        conns.setNextFromServer(
          id,
          segmentEnd(read32(b, o + TCP_SEQ), info, flags, conns.nextFromServer(id)),
        );
      }
      // The server's SYN+ACK settles window scaling; its window, as a SYN's, is not scaled.
      if ((flags & TCP_SYN) && state === STATE_SYN_SENT) this.settleWindowScale(b, o, id);
      const win = read16(b, o + TCP_WINDOW) << (flags & TCP_SYN ? 0 : conns.serverWscale(id));
      if (win > conns.serverMaxWin(id)) conns.setServerMaxWin(id, win);
      if (flags & TCP_ACK) tcpSetAck(b, o, read32(b, o + TCP_ACK_NUM) - delta);
      if (info.l4HeaderLen > TCP_MIN_HEADER_LEN) {
        // No TOA toward a client either: a server's 253/254 (its own gateway's, or forged) becomes NOPs.
        const n = nopToaOptions(b, o);
        if (n > 0) this.counters.events[C.EV_TOA_STRIPPED] += n;
        tcpAdjustSack(b, o, -delta);
        // The SYN+ACK's MSS bounds what the client sends; leave room for the TOA the gateway may add.
        if ((flags & TCP_SYN) && tcpClampMss(b, o, fam === 4 ? this.mss4 : this.mss6)) {
          this.counters.events[C.EV_MSS_CLAMPED]++;
        }
      }
      if (cf & CONN_SYNPROXY) this.synproxyToClient(b, id);
      if (blind) this.counters.events[C.EV_RST_OUT_OF_WINDOW]++;
      else this.setState(id, t & TRANSITION_STATE_MASK);
    } else {
      this.setState(id, STATE_UDP);
    }
    this.rewriteTuple(b, id, false);
    this.countTraffic(svc, server, C.T_PKTS_OUT, C.T_BYTES_OUT, len);
    return len;
  }

  // ---- The SYN proxy (syn_cookie.ts, synproxy.ts): the handshake with the client, then the server's. ----

  /** The cookie's address word of service slot `svc`'s VIP (the xor of its words). */
  private vipWord(svc: number): number {
    const a = this.svcAddr;
    const o = svc * 4;
    return (a[o] ^ a[o + 1] ^ a[o + 2] ^ a[o + 3]) >>> 0;
  }

  /** Answers the client's SYN in `b` with a SYN+ACK whose sequence number is the cookie; creates nothing. */
  private cookieReply(b: Uint8Array, svc: number, sport: number): number {
    const info = this.info;
    const fam = info.family;
    const o = info.l4Off;
    const w = this.words; // the client's address words
    const isn = read32(b, o + TCP_SEQ);
    const data = synCookieData(b, o, fam);
    const cookie = this.cookies.make(
      this.now,
      (w[0] ^ w[1] ^ w[2] ^ w[3]) >>> 0,
      this.vipWord(svc),
      ((sport << 16) | this.svcPort[svc]) >>> 0,
      isn,
      data,
    );
    const opts = this.spOptBuf;
    const n = writeSynAckOptions(opts, fam === 4 ? this.mss4 : this.mss6, data);
    this.generated = true;
    this.counters.events[C.EV_SYNCOOKIE_SENT]++;
    return buildTcpSegment(
      b,
      fam,
      this.svcAddr,
      svc * 4,
      w,
      0,
      this.svcPort[svc],
      sport,
      cookie,
      isn + 1,
      TCP_SYN | TCP_ACK,
      0xffff,
      opts,
      n,
    );
  }

  /**
   * A client's ACK with no connection, to a service with the SYN proxy: when it proves a cookie, makes the
   * connection (local port, server, ISN), keeps the segment if it carries data, and returns the SYN toward
   * the server built in `b`. SP_CONTINUE when the cookie is not good (the ordinary no-connection path).
   */
  private cookieAck(b: Uint8Array, len: number, svc: number, sport: number): number {
    const info = this.info;
    const o = info.l4Off;
    const w = this.words;
    const seq = read32(b, o + TCP_SEQ);
    const ack = read32(b, o + TCP_ACK_NUM);
    const isn = (seq - 1) >>> 0;
    const data = this.cookies.check(
      this.now,
      (w[0] ^ w[1] ^ w[2] ^ w[3]) >>> 0,
      this.vipWord(svc),
      ((sport << 16) | this.svcPort[svc]) >>> 0,
      isn,
      (ack - 1) >>> 0,
    );
    if (data < 0) {
      this.counters.events[C.EV_SYNCOOKIE_BAD]++;
      return SP_CONTINUE;
    }
    // It creates state and takes a local port: its checksum must hold, as a SYN's must.
    if (!this.partial && !transportChecksumOk(b, info)) return this.drop(C.DROP_BAD_CHECKSUM);
    const id = this.newConnection(b, svc, info.family, sport);
    if (id < 0) return this.refuse(b, len, -id);
    const conns = this.conns;
    // newConnection took the ACK's seq (ISN + 1) for the client's ISN: the server's ISN maps to the ISN.
    conns.setSeqDelta(id, (conns.seqDelta(id) + 1) >>> 0);
    conns.setFlags(id, conns.flags(id) | CONN_SYNPROXY);
    // What buildSyn sends the server, as a forwarded SYN would have left it in the entry.
    const ws = cookieWscale(data);
    conns.setClientWscale(id, ws === COOKIE_NO_WSCALE ? 0 : WSCALE_OFFERED | ws);
    conns.setClientMss(id, cookieMss(data, info.family, info.family === 4 ? this.mss4 : this.mss6));
    conns.setSynOptions(
      id,
      (cookieSack(data) ? SYN_SACK_PERMITTED : 0) |
        (ws === COOKIE_NO_WSCALE ? 0 : SYN_PROXY_CLIENT_WSCALE),
    );
    // The ACK's window is scaled already (the client took our window scale offer).
    conns.setClientMaxWin(id, (read16(b, o + TCP_WINDOW) << (ws === COOKIE_NO_WSCALE ? 0 : ws)) >>> 0);
    // Until the server's SYN+ACK: serverDelta holds the client's ISN, nextFromServer the cookie + 1; what
    // the client sent next (kept data) counts once it is forwarded.
    conns.setServerDelta(id, isn);
    conns.setNextFromServer(id, ack);
    conns.setNextFromClient(id, seq);
    this.counters.events[C.EV_SYNCOOKIE_VALID]++;
    this.countTraffic(svc, conns.server(id), C.T_PKTS_IN, C.T_BYTES_IN, len);
    if (info.end - o - info.l4HeaderLen > 0) this.keep(b, len, id);
    this.setState(id, STATE_SYN_SENT);
    return this.proxySyn(b, id);
  }

  /** Appends connection `id`'s TOA to the options in `opts[0, n)`, padded to 4 bytes; returns the length. */
  private appendToa(opts: Uint8Array, n: number, id: number): number {
    const conns = this.conns;
    n += writeToaWords(
      opts,
      n,
      conns.family(id),
      conns.clientPort(id),
      conns.addrWords(id),
      conns.addrAt(id),
    );
    while (n & 3) opts[n++] = 1; // NOP
    this.counters.events[C.EV_TOA_INSERTED]++;
    return n;
  }

  /** Builds in `b` the SYN toward the server for SYN proxy connection `id` (the entry holds its options). */
  private proxySyn(b: Uint8Array, id: number): number {
    this.generated = true;
    return this.buildSyn(b, id);
  }

  /** Keeps the client segment in `b[0, len)` for connection `id` until its server side is open. */
  private keep(b: Uint8Array, len: number, id: number): boolean {
    if ((this.conns.synOptions(id) & SYN_PROXY_KEPT) || len > this.kept.slotSize) return false;
    // Sent later as the gateway's own packet (the offload state of this frame will be gone): sum it whole.
    if (this.partial) fillTransportChecksum(b, this.info);
    if (!this.kept.put(id, b, len)) return false;
    this.conns.setSynOptions(id, this.conns.synOptions(id) | SYN_PROXY_KEPT);
    this.counters.events[C.EV_SYNPROXY_KEPT]++;
    return true;
  }

  /** {@link nextOutput}'s SYN proxy part: the kept client segment, through the ordinary path now. */
  private replayKept(b: Uint8Array): number {
    const id = this.replayId;
    this.replayId = -1;
    const len = this.kept.take(id, b);
    if (len < 0) return 0;
    this.conns.setSynOptions(id, this.conns.synOptions(id) & ~SYN_PROXY_KEPT);
    this.partial = false;
    this.length = len;
    const out = this.route(b, len);
    this.generated = true; // complete checksums, no offload state: the frame's vnet header is not this one's
    this.headerDelta = 0;
    return out > 0 ? out : 0;
  }

  /**
   * A client segment for SYN proxy connection `id` while the server side opens: a RST gives up (the server
   * gets one too); data or a FIN is kept (one segment); anything else — the client retransmitting, the
   * segment kept already — sends the SYN again, at most every half second.
   */
  private synproxyOpening(b: Uint8Array, len: number, id: number, flags: number): number {
    const info = this.info;
    if (flags & TCP_RST) {
      const n = this.buildRst(b, id, true);
      this.removeConnection(id);
      this.generated = true;
      this.counters.events[C.EV_RST_SENT]++;
      return n;
    }
    const carries = info.end - info.l4Off - info.l4HeaderLen > 0 || (flags & TCP_FIN) !== 0;
    if (carries && this.keep(b, len, id)) return 0;
    if (this.wheel.deadline(id) - this.now > this.timeouts[STATE_SYN_SENT] - 0.5) {
      return this.drop(C.DROP_SYNPROXY_NOT_KEPT);
    }
    this.counters.events[C.EV_SYNPROXY_SYN_RETRANSMIT]++;
    this.setState(id, STATE_SYN_SENT);
    return this.proxySyn(b, id);
  }

  /**
   * The server's answer to the SYN proxy's SYN: a SYN+ACK opens the server side — the sequence spaces are
   * bridged (serverDelta), window scaling settled, and the ACK that completes the server's handshake (with
   * TOA when the placement has "ack") goes back in `b`, followed by the kept segment ({@link nextOutput});
   * a RST refuses it, and the client, connected to the gateway already, gets a RST.
   */
  private synproxyServerOpening(b: Uint8Array, id: number, flags: number): number {
    const info = this.info;
    const o = info.l4Off;
    const conns = this.conns;
    const clientIsn = conns.serverDelta(id);
    const ackOk = (flags & TCP_ACK) !== 0 &&
      read32(b, o + TCP_ACK_NUM) === ((clientIsn + conns.seqDelta(id) + 1) >>> 0);
    if (flags & TCP_RST) {
      if (!ackOk) return this.drop(C.DROP_BAD_STATE);
      const n = this.buildRst(b, id, false);
      this.counters.events[C.EV_SYNPROXY_REFUSED]++;
      this.counters.events[C.EV_RST_SENT]++;
      this.removeConnection(id);
      this.generated = true;
      return n;
    }
    // Our SYN answered with an ACK: the server still holds the tuple (see takeover).
    if ((flags & (TCP_SYN | TCP_ACK)) === TCP_ACK) return this.takeover(b, id);
    if ((flags & (TCP_SYN | TCP_ACK)) !== (TCP_SYN | TCP_ACK) || !ackOk) return this.drop(C.DROP_BAD_STATE);
    const s = read32(b, o + TCP_SEQ);
    const cookie = (conns.nextFromServer(id) - 1) >>> 0;
    conns.setServerDelta(id, (s - cookie) >>> 0);
    conns.setNextFromServer(id, (s + 1) >>> 0);
    // The client scales its windows by its own shift whatever the server does (it took our offer of 7).
    conns.setClientWscale(id, conns.clientWscale(id) & WSCALE_SHIFT);
    if (conns.synOptions(id) & SYN_PROXY_CLIENT_WSCALE) {
      const sws = synWscale(b, o);
      conns.setServerWscale(id, sws < 0 ? 0 : sws);
      if (sws < 0) conns.setSynOptions(id, conns.synOptions(id) | SYN_PROXY_SERVER_NO_WSCALE);
    }
    conns.setServerMaxWin(id, read16(b, o + TCP_WINDOW));
    this.setState(id, STATE_ESTABLISHED);
    const opts = this.spOptBuf;
    let n = 0;
    if (conns.flags(id) & CONN_TOA_ACK) {
      n = this.appendToa(opts, 0, id);
      conns.setFlags(id, conns.flags(id) | CONN_TOA_ACK_DONE);
    }
    // The client's window as the server reads it: scaled by the client's shift, or raw when it declined.
    let win = conns.clientMaxWin(id);
    if (!(conns.synOptions(id) & SYN_PROXY_SERVER_NO_WSCALE)) win >>>= conns.clientWscale(id);
    if (conns.synOptions(id) & SYN_PROXY_KEPT) this.replayId = id;
    this.generated = true;
    const seq = clientIsn + 1 + conns.seqDelta(id);
    return this.connSegment(b, id, true, seq, s + 1, TCP_ACK, win > 0xffff ? 0xffff : win, n);
  }

  /** Client → server on a SYN proxy connection: the server's numbers in ack and SACK, the window's scale. */
  private synproxyToServer(b: Uint8Array, id: number, flags: number): void {
    const o = this.info.l4Off;
    const conns = this.conns;
    const sd = conns.serverDelta(id);
    if (flags & TCP_ACK) tcpSetAck(b, o, read32(b, o + TCP_ACK_NUM) + sd);
    if (this.info.l4HeaderLen > TCP_MIN_HEADER_LEN) tcpAdjustSack(b, o, sd);
    if (conns.synOptions(id) & SYN_PROXY_SERVER_NO_WSCALE) rescaleWindow(b, o, conns.clientWscale(id), 0);
  }

  /** Server → client on a SYN proxy connection: the cookie's numbering, the window in the client's scale. */
  private synproxyToClient(b: Uint8Array, id: number): void {
    const o = this.info.l4Off;
    const conns = this.conns;
    tcpSetSeq(b, o, read32(b, o + TCP_SEQ) - conns.serverDelta(id));
    if (conns.synOptions(id) & SYN_PROXY_CLIENT_WSCALE) {
      rescaleWindow(b, o, conns.serverWscale(id), GATEWAY_WSCALE);
    }
  }

  /** ICMP: echo replies for our addresses; errors translated for the connection they concern. */
  private icmp(b: Uint8Array, len: number): number {
    const info = this.info;
    const fam = info.family;
    const o = info.l4Off;
    const type = b[o];
    const w = this.words; // destination words, filled by process()
    const isVip = this.vipMap.get(fam, w[0], w[1], w[2], w[3], 0, 0) !== ADDR_MAP_MISS;
    const li = isVip ? ADDR_MAP_MISS : this.localMap.get(fam, w[0], w[1], w[2], w[3], 0, 0);
    if (!isVip && li === ADDR_MAP_MISS) return this.drop(C.DROP_NOT_FOR_US);
    readAddressWords(b, fam, info.ipOff + ipSrcOffset(fam), w);
    if (this.martianSource(fam, w)) return this.drop(C.DROP_MARTIAN_SOURCE);
    // Answered or translated, a message is re-summed: a corrupt one must not come out with a good checksum.
    // Always checked: checksum offload (a partial mark) covers TCP and UDP only; every ICMP sender sums its own.
    if (!transportChecksumOk(b, info)) return this.drop(C.DROP_BAD_CHECKSUM);
    if (type === (fam === 4 ? ICMP_ECHO_REQUEST : ICMPV6_ECHO_REQUEST)) {
      if (!this.mayReply()) return this.drop(C.DROP_ECHO_RATE_LIMITED);
      this.generated = true;
      this.counters.events[C.EV_ECHO_REPLIED]++;
      return buildEchoReply(b, info);
    }
    if (!(fam === 4 ? icmpIsError(type) : icmpv6IsError(type))) return this.drop(C.DROP_ICMP_UNSUPPORTED);
    const q = this.inner;
    const qOff = o + ICMP_HEADER_LEN; // ICMPv6 errors quote from the same offset
    if (classifyPacket(b, qOff, info.end - qOff, q, true) !== PACKET_OK || q.family !== fam) {
      return this.drop(C.DROP_ICMP_NO_CONNECTION);
    }
    const qp = q.l4Proto;
    if (qp !== IPPROTO_TCP && qp !== IPPROTO_UDP) return this.drop(C.DROP_ICMP_NO_CONNECTION);
    const conns = this.conns;
    const qo = q.l4Off;
    const qsrc = q.ipOff + ipSrcOffset(fam);
    const qdst = q.ipOff + ipDstOffset(fam);
    let id: number;
    if (isVip) {
      // From the client side, about a packet we sent VIP:vport → client:cport. Hand it to the real server as
      // an error about its own packet RS:port → local:lport, sent from the local address.
      // The quote's source is the VIP the error was sent to (quote and message name one VIP).
      if (!sameAddress(b, fam, qsrc, info.ipOff + ipDstOffset(fam))) {
        return this.drop(C.DROP_ICMP_NO_CONNECTION);
      }
      readAddressWords(b, fam, qsrc, w);
      const svc = this.svcMap.get(fam, w[0], w[1], w[2], w[3], read16(b, qo + TCP_SRC_PORT), qp);
      if (svc === ADDR_MAP_MISS) return this.drop(C.DROP_ICMP_NO_CONNECTION);
      readAddressWords(b, fam, qdst, w);
      if (this.workers > 1) {
        const owner = steerClient(w[0] ^ w[1] ^ w[2] ^ w[3], read16(b, qo + TCP_DST_PORT), this.workers);
        if (owner !== this.worker) return -owner - 1;
      }
      id = conns.findClient(svc, w[0], w[1], w[2], w[3], read16(b, qo + TCP_DST_PORT));
      if (id === NO_CONN) return this.drop(C.DROP_ICMP_NO_CONNECTION);
      this.translateQuoted(b, id, true, 0);
    } else {
      // From the real-server side, about a packet we sent local:lport → RS:port. Hand it to the client as an
      // error about its own packet client:cport → VIP:vport, with the client's sequence number back.
      if (this.workers > 1) {
        const owner = steerLocalPort(read16(b, qo + TCP_SRC_PORT), this.workers);
        if (owner !== this.worker) return -owner - 1;
      }
      id = conns.findLocal(li, read16(b, qo + TCP_SRC_PORT));
      if (id === NO_CONN || conns.proto(id) !== qp) return this.drop(C.DROP_ICMP_NO_CONNECTION);
      // The whole quoted tuple, as IPVS's ip_vs_out_icmp: from the local address the error came to, to the
      // connection's real server and port. Anything else was never sent for this connection.
      const server = conns.server(id);
      readAddressWords(b, fam, qsrc, w);
      const la = li * 4;
      const lo = this.localAddr;
      if (w[0] !== lo[la] || w[1] !== lo[la + 1] || w[2] !== lo[la + 2] || w[3] !== lo[la + 3]) {
        return this.drop(C.DROP_ICMP_NO_CONNECTION);
      }
      readAddressWords(b, fam, qdst, w);
      const ra = server * 4;
      const rs = this.rsAddr;
      if (
        read16(b, qo + TCP_DST_PORT) !== this.rsPort[server] || w[0] !== rs[ra] || w[1] !== rs[ra + 1] ||
        w[2] !== rs[ra + 2] || w[3] !== rs[ra + 3]
      ) return this.drop(C.DROP_ICMP_NO_CONNECTION);
      let d = 0;
      if (qp === IPPROTO_TCP) {
        const seq = (read32(b, qo + TCP_SEQ) - conns.seqDelta(id)) >>> 0;
        d = natSetPort(b, qo + TCP_SEQ, seq >>> 16) + natSetPort(b, qo + TCP_SEQ + 2, seq & 0xffff);
      }
      this.translateQuoted(b, id, false, d);
    }
    // ICMP errors are rare: re-sum the whole message rather than track every inner change.
    fillTransportChecksum(b, info);
    ipGiveBackHop(b, fam, info.ipOff);
    this.counters.events[C.EV_ICMP_TRANSLATED]++;
    return len;
  }
}

/**
 * The window scale option of the SYN or SYN+ACK at `o` (header `hl` bytes): {@link WSCALE_OFFERED} | shift
 * (capped at 14, RFC 7323 §2.3), or 0 when it carries none.
 */
function windowScaleOffer(b: Uint8Array, o: number, hl: number): number {
  if (hl <= TCP_MIN_HEADER_LEN) return 0;
  const at = tcpFindOption(b, o, TCPOPT_WINDOW_SCALE);
  if (at < 0 || b[at + 1] !== 3) return 0;
  return WSCALE_OFFERED | (b[at + 2] > 14 ? 14 : b[at + 2]);
}

/** A copy of typed array `a` with room for `n` elements (control path). */
function grow<T extends Uint8Array | Uint16Array | Uint32Array | Int32Array>(a: T, n: number): T {
  if (a.length >= n) return a;
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}

/** Writes a 32-bit word big-endian. */
function writeWord(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

/** Text of the address in words `a[o..o+4)` of family `fam`. */
function wordsText(fam: number, a: Uint32Array, o: number): string {
  if (fam === 4) return formatIpv4(a[o]);
  const b = new Uint8Array(16);
  for (let k = 0; k < 4; k++) writeWord(b, k * 4, a[o + k]);
  return formatIpv6(b, 0);
}

/** True when the addresses at `x` and `y` in `b` (IPv4: 4 bytes, IPv6: 16) are the same. */
function sameAddress(b: Uint8Array, fam: number, x: number, y: number): boolean {
  const n = fam === 4 ? 4 : 16;
  for (let i = 0; i < n; i++) if (b[x + i] !== b[y + i]) return false;
  return true;
}
