/**
 * A Linux TUN device (layer 3, `IFF_TUN | IFF_NO_PI`) driven through libc FFI.
 *
 * Each queue is one non-blocking fd. The datapath is: `await queue.waitReadable(ms)` (a `poll(2)` on a
 * worker thread, so the event loop stays free), then synchronous `read`s into caller-owned buffers until
 * EAGAIN, then synchronous `write`s. Nothing on that path allocates: the pollfd array is preallocated per
 * queue and packet buffers are the caller's.
 *
 * With `IFF_NO_PI` every read returns exactly one IP packet, starting at byte 0 with the version nibble;
 * every write must be exactly one IP packet. Without `IFF_VNET_HDR` the kernel never hands us GSO
 * super-packets, so a packet is at most the device MTU.
 *
 * The device is not persistent: it disappears when its last queue fd is closed, which is what makes
 * `close()` a complete clean-up.
 *
 * Reference: Documentation/networking/tuntap.rst in the Linux tree; `drivers/net/tun.c` for the errnos.
 *
 * @module
 */

import {
  cString,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  errno,
  libc,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
} from "./libc.ts";
import { Errno } from "../../base/sys/errno.ts";
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
  /** Bytes read from the device. */
  rxBytes: number;
  /** Packets the kernel accepted on write. */
  txPackets: number;
  /** Bytes the kernel accepted on write. */
  txBytes: number;
  /** Writes refused by the kernel (EAGAIN: queue full, EINVAL: malformed, EIO: device down ...). */
  txDropped: number;
  /** errno of the most recent refused write, 0 if none yet. */
  txLastErrno: number;
}

/** One fd of a TUN device: poll, read and write packets. */
export class TunQueue {
  /** Position of this queue within its device. */
  readonly index: number;
  /** Interface name the queue is attached to. */
  readonly name: string;
  /** Counters, updated in place. */
  readonly counters: TunQueueCounters = {
    rxPackets: 0,
    rxBytes: 0,
    txPackets: 0,
    txBytes: 0,
    txDropped: 0,
    txLastErrno: 0,
  };

  #fd: number;
  #wakeFd: number;
  // struct pollfd[2] { int fd; short events; short revents; }: the device fd and the close() wake-up fd.
  #pollBuf = new Uint8Array(16);
  #pollFds = new Int32Array(this.#pollBuf.buffer, 0, 4);
  #pollEvents = new Int16Array(this.#pollBuf.buffer, 0, 8);
  #wakeBuf = new BigUint64Array([1n]);
  #pending: Promise<number> | undefined;
  #closed = false;

  /** Wraps an already attached fd; use {@link TunDevice.open} instead. */
  constructor(index: number, name: string, fd: number, wakeFd: number) {
    this.index = index;
    this.name = name;
    this.#fd = fd;
    this.#wakeFd = wakeFd;
    this.#pollFds[0] = fd;
    this.#pollEvents[2] = POLLIN;
    this.#pollFds[2] = wakeFd;
    this.#pollEvents[6] = POLLIN;
  }

  /** The raw file descriptor (for diagnostics; do not close it). */
  get fd(): number {
    return this.#fd;
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Waits up to `timeoutMs` (-1: forever) until a packet can be read. Resolves `false` on timeout, on a
   * signal interrupting the wait, and when the queue is closed meanwhile; callers just loop.
   */
  async waitReadable(timeoutMs: number): Promise<boolean> {
    if (this.#closed) return false;
    if (this.#pending !== undefined) {
      throw new TunError("invalid-argument", this.name, `queue ${this.index}: waitReadable already pending`);
    }
    this.#pollEvents[3] = 0;
    this.#pollEvents[7] = 0;
    const wait = libc().pollWait(this.#pollBuf, 2, timeoutMs);
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
    const revents = this.#pollEvents[3];
    if (revents & (POLLERR | POLLHUP | POLLNVAL)) {
      throw new TunError(
        "io",
        this.name,
        `queue ${this.index}: poll reported revents=0x${revents.toString(16)}`,
      );
    }
    return (revents & POLLIN) !== 0;
  }

  /** Reads one packet into `buf`; returns its length, or 0 when no packet is waiting (EAGAIN). */
  read(buf: Uint8Array): number {
    const c = libc();
    for (;;) {
      const n = c.read(this.#fd, buf, buf.byteLength);
      if (n > 0) {
        this.counters.rxPackets++;
        this.counters.rxBytes += n;
        return n;
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
   * Reads up to `bufs.length` packets (stopping at EAGAIN) into `bufs[i]`, storing lengths in `sizes[i]`;
   * returns how many were read. One loop turn drains the queue this way, as wireguard-go's batch read does.
   */
  readBatch(bufs: readonly Uint8Array[], sizes: Int32Array | number[]): number {
    let i = 0;
    for (; i < bufs.length; i++) {
      const n = this.read(bufs[i]);
      if (n === 0) break;
      sizes[i] = n;
    }
    return i;
  }

  /**
   * Writes the packet `buf[0, len)`; returns false (and counts a drop) when the kernel refuses it, so a
   * single bad or unlucky packet never throws out of the datapath.
   */
  write(buf: Uint8Array, len: number): boolean {
    const c = libc();
    for (;;) {
      const n = c.write(this.#fd, buf, len);
      if (n >= 0) {
        this.counters.txPackets++;
        this.counters.txBytes += n;
        return true;
      }
      const e = errno();
      if (e === Errno.EINTR) continue;
      this.counters.txDropped++;
      this.counters.txLastErrno = e;
      return false;
    }
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
    libc().write(this.#wakeFd, this.#wakeBuf, 8);
    await pending.catch(() => {});
  }

  #closeFds(): void {
    if (this.#fd < 0) return;
    const c = libc();
    c.close(this.#fd);
    c.close(this.#wakeFd);
    this.#fd = -1;
    this.#wakeFd = -1;
  }
}

/** A TUN interface and its open queues; the interface exists exactly as long as a queue is open. */
export class TunDevice {
  /** Interface name as the kernel resolved it (matters when a `%d` template was given). */
  readonly name: string;
  /** Whether the device was opened with `IFF_MULTI_QUEUE`. */
  readonly multiQueue: boolean;
  /** The open queues, index i at position i. */
  readonly queues: readonly TunQueue[];
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
    const multiQueue = options.multiQueue ?? queueCount > 1;
    let name = options.name;
    validateOptions(name, queueCount, multiQueue);
    const queues: TunQueue[] = [];
    const vnetHdr = options.offloads !== undefined;
    let offloads = 0;
    try {
      for (let i = 0; i < queueCount; i++) {
        const { fd, resolvedName } = attach(name, multiQueue, options.devicePath ?? "/dev/net/tun", vnetHdr);
        name = resolvedName; // later queues must join the same device, not expand `%d` again
        const wakeFd = libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (wakeFd < 0) {
          const e = errno();
          libc().close(fd);
          throw new TunError("io", name, "eventfd failed", e);
        }
        queues.push(new TunQueue(i, name, fd, wakeFd));
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

function validateOptions(name: string, queues: number, multiQueue: boolean): void {
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
  if (queues > 1 && !multiQueue) {
    throw new TunError("invalid-argument", name, "more than one queue needs multiQueue: true");
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
