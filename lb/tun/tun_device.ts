/**
 * A Linux TUN device (layer 3, `IFF_TUN | IFF_NO_PI`) driven through libc FFI (base/sys/libc.ts).
 *
 * Each queue is one non-blocking fd plus a wake eventfd, and owns its I/O contract, as wireguard-go's
 * `tun.Device` does: the poll set, the framing and the counters live here, so a caller sees packets.
 * The datapath is: wait (`queue.poll(ms)`, a blocking poll(2) on the caller's own thread — a Worker's
 * loop — or `await queue.waitReadable(ms)`, poll(2) on a thread-pool thread so the event loop stays free),
 * then synchronous `read`s into caller-owned buffers until EAGAIN, then synchronous `write`s. Nothing on
 * that path allocates: the pollfd array is preallocated per queue and packet buffers are the caller's.
 *
 * With `IFF_NO_PI` every read returns exactly one IP packet, starting at byte 0 with the version nibble;
 * every write must be exactly one IP packet. Without `IFF_VNET_HDR` the kernel never hands us GSO
 * super-packets, so a packet is at most the device MTU. With it (`offloads`), every frame is
 *
 * ```
 * | virtio_net_hdr (10: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset) | IP packet ... |
 * ```
 *
 * and the queue reads the header (`csumPartial`, `gso`), returns IP lengths, and fixes the header on write
 * for what the packet became (base/packet/virtio_net_hdr.ts is the codec).
 *
 * With `synQueues`, every queue is a pair of kernel queues: its normal one (2i) and its SYN queue (2i + 1),
 * to which the steering program (steering_bpf.ts) sends connection attempts. Each kernel queue has its own
 * ring of `txqueuelen` packets, so a SYN flood overflows the SYN ring and not the one established traffic
 * waits in; the queue polls both fds and {@link TunQueue.readSyn} reads the second, so the caller chooses
 * the order (the worker: normal first, then a bounded number of SYNs).
 *
 * The device is not persistent: it disappears when its last queue fd is closed, which is what makes
 * `close()` a complete clean-up.
 *
 * Reference: Documentation/networking/tuntap.rst in the Linux tree; `drivers/net/tun.c` for the errnos;
 * wireguard-go's tun/tun_linux.go and tun/offload_linux.go for the vnet header handling.
 *
 * @module
 */

import {
  cString,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  errno,
  eventfdDrain,
  eventfdSignal,
  libc,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  POLLERR,
  POLLFD_SIZE,
  POLLHUP,
  POLLIN,
  POLLNVAL,
} from "../../base/sys/libc.ts";
import { Errno, errnoName } from "../../base/sys/errno.ts";
import {
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_HDR_LEN,
  vnetClear,
  vnetFlags,
  vnetGsoType,
  vnetHdrLen,
  vnetSetHdrLen,
} from "../../base/packet/virtio_net_hdr.ts";
import { TunError, TunNameInUseError, TunPermissionError, TunUnavailableError } from "./errors.ts";

/** `_IOW('T', 202, int)`: attach this fd to a TUN/TAP interface (linux/if_tun.h). */
export const TUNSETIFF = 0x400454ca;
/** Layer-3 device: reads and writes are IP packets. */
export const IFF_TUN = 0x0001;
/** No 4-byte packet-information prefix before each packet. */
export const IFF_NO_PI = 0x1000;
/** One fd per queue, so several readers can share a device. */
export const IFF_MULTI_QUEUE = 0x0100;
/** Every packet is preceded by a `virtio_net_hdr` (offload metadata: GSO, partial checksum). */
export const IFF_VNET_HDR = 0x4000;
/** `_IOW('T', 208, unsigned int)`: offloads userspace accepts on read (passed by value). */
export const TUNSETOFFLOAD = 0x400454d0;
/** Offload flag: userspace can take packets whose checksum is still to be completed. */
export const TUN_F_CSUM = 0x01;
/** Offload flag: TCP-over-IPv4 segmentation offload (GSO super-packets). */
export const TUN_F_TSO4 = 0x02;
/** Offload flag: TCP-over-IPv6 segmentation offload. */
export const TUN_F_TSO6 = 0x04;
/** Offload flag: TCP with ECN segmentation offload. */
export const TUN_F_TSO_ECN = 0x08;
/** Offload flag: UDP-over-IPv4 segmentation offload (USO, Linux 6.2+). */
export const TUN_F_USO4 = 0x20;
/** Offload flag: UDP-over-IPv6 segmentation offload (USO). */
export const TUN_F_USO6 = 0x40;

/** Kernel limit on interface name length, without the terminating NUL (IFNAMSIZ - 1). */
export const IFNAMSIZ_MAX = 15;
/** Kernel limit on queues of one multi-queue TUN (MAX_TAP_QUEUES). */
export const MAX_TUN_QUEUES = 256;

/** sizeof(struct ifreq) on 64-bit Linux: 16-byte name then a 24-byte union (flags at offset 16). */
const IFREQ_SIZE = 40;
const IFR_FLAGS_OFFSET = 16;

/** Options for {@link TunDevice.open}. */
export interface TunOpenOptions {
  /** Interface name (1–15 bytes); a `%d` in it lets the kernel pick a free number. */
  name: string;
  /** Number of queues (fds) to open; more than 1 implies `multiQueue`. Default 1. */
  queues?: number;
  /** Open with `IFF_MULTI_QUEUE` even for one queue, so more queues can attach later. Default `queues > 1`. */
  multiQueue?: boolean;
  /**
   * Give every queue a second fd, its SYN queue: queue i is the device's kernel queues 2i (normal) and
   * 2i + 1 (SYN), which a steering program fills ({@link TunQueue.readSyn}). Implies `multiQueue`. Default
   * false.
   */
  synQueues?: boolean;
  /** Path of the clone device; only tests change it. Default `/dev/net/tun`. */
  devicePath?: string;
  /**
   * Open with `IFF_VNET_HDR` and ask for these `TUN_F_*` offloads: reads and writes then carry a 10-byte
   * `virtio_net_hdr` before the IP packet, and reads may be GSO super-packets up to 64 KiB. If the kernel
   * refuses the USO flags, they are dropped and the rest asked again. Default: no vnet header.
   */
  offloads?: number;
}

/** Per-queue counters; plain numbers updated in place so reading them allocates nothing. */
export interface TunQueueCounters {
  /** Packets read from the device. */
  rxPackets: number;
  /** IP bytes read from the device (without the vnet header). */
  rxBytes: number;
  /** Reads shorter than the vnet header (never seen from a sane kernel; skipped, counted). */
  rxRunts: number;
  /** Packets the kernel accepted on write. */
  txPackets: number;
  /** IP bytes the kernel accepted on write (without the vnet header). */
  txBytes: number;
  /** Writes refused by the kernel (EAGAIN: queue full, EINVAL: malformed, EIO: device down ...). */
  txDropped: number;
}

/** {@link TunQueue.poll} result bit: the queue has a packet to read (or an error a read will report). */
export const TUN_POLL_READABLE = 1;
/** {@link TunQueue.poll} result bit: the wake eventfd was written (and has been reset). */
export const TUN_POLL_WOKEN = 2;
/** {@link TunQueue.poll} result bit: the SYN queue has a packet to read ({@link TunQueue.readSyn}). */
export const TUN_POLL_SYN_READABLE = 4;

/** Refused writes are counted per errno below this value (Linux errnos end near 135); the rest at 0. */
const TX_ERRNO_SLOTS = 256;

/**
 * One fd of a TUN device: poll, read and write packets. The queue owns the device's framing, as
 * wireguard-go's `tun.Device` does: with a vnet header (`IFF_VNET_HDR`) every frame is
 * `| virtio_net_hdr (10) | IP packet |`, and {@link read}/{@link write} take the frame buffer but count in
 * IP bytes, the packet starting at {@link headroom}. The header of the frame last read (or loaded with
 * {@link loadFrame}) is summarised in {@link csumPartial} and {@link gso}; {@link write} fixes it for the
 * reply. With a SYN fd (a device opened with `synQueues`) it polls both kernel queues and reads the second
 * with {@link readSyn}; writes all go through the first. Nothing here allocates per packet.
 */
export class TunQueue {
  /** Position of this queue within its device. */
  readonly index: number;
  /** Interface name the queue is attached to. */
  readonly name: string;
  /** Bytes before the IP packet in every frame: `VNET_HDR_LEN` with a vnet header, else 0. */
  readonly headroom: number;
  /** Counters, updated in place. */
  readonly counters: TunQueueCounters = {
    rxPackets: 0,
    rxBytes: 0,
    rxRunts: 0,
    txPackets: 0,
    txBytes: 0,
    txDropped: 0,
  };
  /** The last frame's transport checksum is partial: only the pseudo-header sum, to complete on output. */
  csumPartial = false;
  /** The last frame is a GSO super-packet (several segments' payload behind one header). */
  gso = false;

  #fd: number;
  #wakeFd: number;
  #synFd: number;
  // struct pollfd[3] { int fd; short events; short revents; }: the device fd, the wake eventfd and the SYN
  // queue's fd (-1 without one: poll(2) skips a negative fd and leaves its revents 0).
  #pollBuf = new Uint8Array(3 * POLLFD_SIZE);
  #pollFds = new Int32Array(this.#pollBuf.buffer, 0, 6);
  #pollEvents = new Int16Array(this.#pollBuf.buffer, 0, 12);
  #pending: Promise<number> | undefined;
  #closed = false;
  // Refused writes by errno value (slot 0: out of range); named only when read, by txErrors().
  #txErrno = new Float64Array(TX_ERRNO_SLOTS);

  /**
   * Wraps an already attached fd and the eventfd that wakes its poll (a Worker gets both as numbers);
   * `vnetHdr` says whether the device was opened with `IFF_VNET_HDR`; `synFd` is the fd of the queue's SYN
   * queue, -1 for none. {@link TunDevice.open} makes these.
   */
  constructor(index: number, name: string, fd: number, wakeFd: number, vnetHdr = false, synFd = -1) {
    this.index = index;
    this.name = name;
    this.headroom = vnetHdr ? VNET_HDR_LEN : 0;
    this.#fd = fd;
    this.#wakeFd = wakeFd;
    this.#synFd = synFd;
    this.#pollFds[0] = fd;
    this.#pollEvents[2] = POLLIN;
    this.#pollFds[2] = wakeFd;
    this.#pollEvents[6] = POLLIN;
    this.#pollFds[4] = synFd;
    this.#pollEvents[10] = POLLIN;
  }

  /** The raw file descriptor (for diagnostics; do not close it). */
  get fd(): number {
    return this.#fd;
  }

  /** The SYN queue's raw file descriptor, -1 without one (for diagnostics and Workers; do not close it). */
  get synFd(): number {
    return this.#synFd;
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Blocks the calling thread in poll(2) up to `timeoutMs` on the queue fd, the wake eventfd and the SYN
   * queue's fd; returns 0 on timeout (or a signal), else {@link TUN_POLL_READABLE} |
   * {@link TUN_POLL_SYN_READABLE} | {@link TUN_POLL_WOKEN} bits. A wake-up is consumed here, so the next
   * poll blocks again. For a Worker's own loop, where blocking its thread is the point: no thread-pool hop
   * and promise per wake-up (most of a packet's latency otherwise).
   */
  poll(timeoutMs: number): number {
    const ev = this.#pollEvents;
    ev[3] = 0;
    ev[7] = 0;
    ev[11] = 0;
    if (libc().poll(this.#pollBuf, 3, timeoutMs) <= 0) return 0;
    let r = 0;
    // POLLERR/POLLHUP on the device count as readable: the read that follows reports the errno.
    if (ev[3] !== 0) r |= TUN_POLL_READABLE;
    if (ev[11] !== 0) r |= TUN_POLL_SYN_READABLE;
    if (ev[7] & POLLIN) {
      eventfdDrain(this.#wakeFd);
      r |= TUN_POLL_WOKEN;
    }
    return r;
  }

  /**
   * Waits up to `timeoutMs` (-1: forever) until a packet can be read (from either fd), with poll(2) on a
   * worker thread so the event loop stays free. Resolves `false` on timeout, on a signal interrupting the
   * wait, and when the queue is closed meanwhile; callers just loop.
   */
  async waitReadable(timeoutMs: number): Promise<boolean> {
    if (this.#closed) return false;
    if (this.#pending !== undefined) {
      throw new TunError("invalid-argument", this.name, `queue ${this.index}: waitReadable already pending`);
    }
    this.#pollEvents[3] = 0;
    this.#pollEvents[7] = 0;
    this.#pollEvents[11] = 0;
    const wait = libc().pollWait(this.#pollBuf, 3, timeoutMs);
    this.#pending = wait;
    let rc: number;
    try {
      rc = await wait;
    } finally {
      this.#pending = undefined;
      // close() deferred the fd close to here, so the worker thread never polled a closed (reused) fd.
      if (this.#closed) this.#closeFds();
    }
    if (this.#closed || rc <= 0) return false; // rc < 0 is EINTR in practice; errno is another thread's.
    const revents = this.#pollEvents[3] | this.#pollEvents[11];
    if (revents & (POLLERR | POLLHUP | POLLNVAL)) {
      throw new TunError(
        "io",
        this.name,
        `queue ${this.index}: poll reported revents=0x${revents.toString(16)}`,
      );
    }
    return (revents & POLLIN) !== 0;
  }

  /**
   * Reads one frame into `frame`; returns the IP packet's length (it starts at `frame[headroom]`), or 0
   * when no packet is waiting (EAGAIN). Sets {@link csumPartial} and {@link gso} from its vnet header.
   */
  read(frame: Uint8Array): number {
    return this.#readFrom(this.#fd, frame);
  }

  /**
   * Reads one frame from the SYN queue, as {@link read} does from the normal one; 0 when none is waiting
   * or there is no SYN queue. Counted in the same counters.
   */
  readSyn(frame: Uint8Array): number {
    return this.#synFd < 0 ? 0 : this.#readFrom(this.#synFd, frame);
  }

  #readFrom(fd: number, frame: Uint8Array): number {
    const c = libc();
    for (;;) {
      const n = c.read(fd, frame, frame.byteLength);
      if (n > 0) {
        const len = this.loadFrame(frame, n);
        if (len < 0) {
          this.counters.rxRunts++;
          continue;
        }
        this.counters.rxPackets++;
        this.counters.rxBytes += len;
        return len;
      }
      if (n === 0) return 0;
      const e = errno();
      if (e === Errno.EAGAIN) return 0;
      if (e === Errno.EINTR) continue;
      if (this.#closed) return 0;
      throw new TunError("io", this.name, `queue ${this.index}: read failed`, e);
    }
  }

  /**
   * Takes `frame[0, frameLen)` that arrived by other means (a worker's hand-off ring) as if just read:
   * sets {@link csumPartial} and {@link gso} from its vnet header and returns the IP packet's length, or
   * -1 when the frame is shorter than the header.
   */
  loadFrame(frame: Uint8Array, frameLen: number): number {
    const len = frameLen - this.headroom;
    if (len < 0) return -1;
    if (this.headroom === 0) return len;
    this.csumPartial = (vnetFlags(frame) & VNET_F_NEEDS_CSUM) !== 0;
    this.gso = vnetGsoType(frame) !== VNET_GSO_NONE;
    return len;
  }

  /**
   * Writes the IP packet `frame[headroom, headroom + len)` with its frame's vnet header, fixed for what
   * the packet became: `generated` (a reply we built, complete checksum: the header is cleared), or a
   * rewrite whose headers grew by `headerDelta` bytes (a TOA option; a super-packet's `hdr_len` follows). Returns false
   * (and counts a drop, by errno) when the kernel refuses it, so one bad or unlucky packet never throws
   * out of the datapath.
   */
  write(frame: Uint8Array, len: number, generated = false, headerDelta = 0): boolean {
    const hr = this.headroom;
    if (hr !== 0) {
      if (generated) vnetClear(frame);
      else if (headerDelta !== 0 && vnetGsoType(frame) !== VNET_GSO_NONE) {
        vnetSetHdrLen(frame, vnetHdrLen(frame) + headerDelta);
      }
    }
    const c = libc();
    for (;;) {
      const n = c.write(this.#fd, frame, hr + len);
      if (n >= 0) {
        this.counters.txPackets++;
        this.counters.txBytes += n - hr;
        return true;
      }
      const e = errno();
      if (e === Errno.EINTR) continue;
      this.counters.txDropped++;
      this.#txErrno[e > 0 && e < TX_ERRNO_SLOTS ? e : 0]++;
      return false;
    }
  }

  /**
   * Adds the refused writes, by errno name, to `out` as `tx_error_<NAME>` keys (e.g. `tx_error_EAGAIN`);
   * for stats and logs, not the packet path.
   */
  txErrors(out: Record<string, number> = {}): Record<string, number> {
    const counts = this.#txErrno;
    for (let e = 0; e < TX_ERRNO_SLOTS; e++) {
      if (counts[e] === 0) continue;
      const key = `tx_error_${e === 0 ? "unknown" : errnoName(e).replace(" ", "_")}`;
      out[key] = (out[key] ?? 0) + counts[e];
    }
    return out;
  }

  /** Closes the fd, waking a pending {@link waitReadable} first; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const pending = this.#pending;
    if (pending === undefined) {
      this.#closeFds();
      return;
    }
    eventfdSignal(this.#wakeFd);
    await pending.catch(() => {});
  }

  #closeFds(): void {
    if (this.#fd < 0) return;
    const c = libc();
    c.close(this.#fd);
    c.close(this.#wakeFd);
    if (this.#synFd >= 0) c.close(this.#synFd);
    this.#fd = -1;
    this.#wakeFd = -1;
    this.#synFd = -1;
  }
}

/** A TUN interface and its open queues; the interface exists exactly as long as a queue is open. */
export class TunDevice {
  /** Interface name as the kernel resolved it (matters when a `%d` template was given). */
  readonly name: string;
  /** Whether the device was opened with `IFF_MULTI_QUEUE`. */
  readonly multiQueue: boolean;
  /** The open queues, index i at position i (with `synQueues`, each holds kernel queues 2i and 2i + 1). */
  readonly queues: readonly TunQueue[];
  /** Whether every queue has a SYN queue ({@link TunOpenOptions.synQueues}). */
  readonly synQueues: boolean;
  /** The `TUN_F_*` offloads in force (0 without a vnet header; see {@link TunOpenOptions.offloads}). */
  readonly offloads: number;
  /** Whether packets carry a `virtio_net_hdr`. */
  readonly vnetHdr: boolean;

  private constructor(
    name: string,
    multiQueue: boolean,
    queues: TunQueue[],
    vnetHdr: boolean,
    offloads: number,
  ) {
    this.name = name;
    this.multiQueue = multiQueue;
    this.queues = queues;
    this.synQueues = queues[0].synFd >= 0;
    this.vnetHdr = vnetHdr;
    this.offloads = offloads;
  }

  /**
   * Creates (or attaches to) the TUN interface `options.name` and opens its queues.
   * Throws {@link TunPermissionError}, {@link TunUnavailableError}, {@link TunNameInUseError} or
   * {@link TunError} (`invalid-argument`) with a one-line message.
   */
  static open(options: TunOpenOptions): TunDevice {
    const queueCount = options.queues ?? 1;
    const synQueues = options.synQueues ?? false;
    const multiQueue = options.multiQueue ?? (queueCount > 1 || synQueues);
    let name = options.name;
    validateOptions(name, queueCount, multiQueue, synQueues);
    const queues: TunQueue[] = [];
    const vnetHdr = options.offloads !== undefined;
    const devicePath = options.devicePath ?? "/dev/net/tun";
    let offloads = 0;
    try {
      for (let i = 0; i < queueCount; i++) {
        // Kernel queues are numbered in attach order: the normal one (2i with SYN queues), then its SYN one.
        const { fd, resolvedName } = attach(name, multiQueue, devicePath, vnetHdr);
        name = resolvedName; // later queues must join the same device, not expand `%d` again
        let synFd = -1;
        try {
          if (synQueues) synFd = attach(name, multiQueue, devicePath, vnetHdr).fd;
        } catch (e) {
          libc().close(fd);
          throw e;
        }
        const wakeFd = libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (wakeFd < 0) {
          const e = errno();
          libc().close(fd);
          if (synFd >= 0) libc().close(synFd);
          throw new TunError("io", name, "eventfd failed", e);
        }
        queues.push(new TunQueue(i, name, fd, wakeFd, vnetHdr, synFd));
      }
      if (vnetHdr) offloads = setOffloads(queues[0].fd, name, options.offloads!);
    } catch (err) {
      // Queues hold no pending poll yet, so close() completes synchronously.
      for (const q of queues) void q.close();
      throw err;
    }
    return new TunDevice(name, multiQueue, queues, vnetHdr, offloads);
  }

  /** Closes every queue; the kernel deletes the interface (with its addresses and routes) after the last. */
  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
  }

  /** Lets `await using dev = TunDevice.open(...)` close the device on scope exit. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function validateOptions(name: string, queues: number, multiQueue: boolean, synQueues: boolean): void {
  const len = new TextEncoder().encode(name).length;
  if (len === 0 || len > IFNAMSIZ_MAX || /[\s/:]/.test(name) || name === "." || name === "..") {
    throw new TunError(
      "invalid-argument",
      name,
      `interface name must be 1-${IFNAMSIZ_MAX} bytes without /, : or spaces`,
    );
  }
  if (!Number.isInteger(queues) || queues < 1 || queues > MAX_TUN_QUEUES) {
    throw new TunError(
      "invalid-argument",
      name,
      `queues must be an integer in 1..${MAX_TUN_QUEUES}, got ${queues}`,
    );
  }
  if ((queues > 1 || synQueues) && !multiQueue) {
    throw new TunError(
      "invalid-argument",
      name,
      "more than one queue (or SYN queues) needs multiQueue: true",
    );
  }
  if (synQueues && 2 * queues > MAX_TUN_QUEUES) {
    throw new TunError(
      "invalid-argument",
      name,
      `queues with SYN queues must be at most ${MAX_TUN_QUEUES / 2}, got ${queues}`,
    );
  }
}

/** Asks for `wanted` offloads, without USO if the kernel refuses it; returns the flags in force. */
function setOffloads(fd: number, name: string, wanted: number): number {
  const c = libc();
  if (c.ioctlValue(fd, TUNSETOFFLOAD, wanted) === 0) return wanted;
  const noUso = wanted & ~(TUN_F_USO4 | TUN_F_USO6);
  if (noUso !== wanted && c.ioctlValue(fd, TUNSETOFFLOAD, noUso) === 0) return noUso;
  throw new TunError("io", name, "TUNSETOFFLOAD failed", errno());
}

/** Opens the clone device and binds the new fd to interface `name`; maps errnos to the edge errors. */
function attach(
  name: string,
  multiQueue: boolean,
  devicePath: string,
  vnetHdr = false,
): { fd: number; resolvedName: string } {
  const c = libc();
  const fd = c.open(cString(devicePath), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
  if (fd < 0) {
    const e = errno();
    if (e === Errno.EPERM || e === Errno.EACCES) {
      throw new TunPermissionError(name, `cannot open ${devicePath}: run as root or grant CAP_NET_ADMIN`, e);
    }
    if (e === Errno.ENOENT || e === Errno.ENODEV || e === 6 /* ENXIO */) {
      throw new TunUnavailableError(name, `${devicePath} is missing or has no tun driver behind it`, e);
    }
    throw new TunError("io", name, `cannot open ${devicePath}`, e);
  }
  const ifr = new Uint8Array(IFREQ_SIZE);
  ifr.set(new TextEncoder().encode(name));
  const flags = IFF_TUN | IFF_NO_PI | (multiQueue ? IFF_MULTI_QUEUE : 0) | (vnetHdr ? IFF_VNET_HDR : 0);
  new DataView(ifr.buffer).setUint16(IFR_FLAGS_OFFSET, flags, true /* host order; x86-64/aarch64 are LE */);
  if (c.ioctl(fd, TUNSETIFF, ifr) < 0) {
    const e = errno();
    c.close(fd);
    if (e === Errno.EPERM || e === Errno.EACCES) {
      throw new TunPermissionError(
        name,
        "TUNSETIFF refused: run as root or grant CAP_NET_ADMIN in this netns",
        e,
      );
    }
    if (e === Errno.EBUSY) {
      throw new TunNameInUseError(name, "name already in use by another open TUN device", e);
    }
    if (e === Errno.EINVAL) {
      throw new TunNameInUseError(
        name,
        `name already in use by a device that is not a ${multiQueue ? "multi-queue " : "single-queue "}TUN`,
        e,
      );
    }
    throw new TunError("io", name, "TUNSETIFF failed", e);
  }
  const nul = ifr.indexOf(0);
  const resolvedName = new TextDecoder().decode(
    ifr.subarray(0, nul < 0 || nul > IFNAMSIZ_MAX ? IFNAMSIZ_MAX : nul),
  );
  return { fd, resolvedName };
}
