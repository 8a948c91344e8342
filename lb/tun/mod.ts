/**
 * The TUN device layer: open a layer-3 TUN (optionally multi-queue) through libc FFI, move packets with
 * poll/read/write on caller-owned buffers (the queue owns the poll set and the `virtio_net_hdr` framing),
 * and configure the link with `ip`. Knows nothing of packet
 * formats or connections (see `base/packet/`, `lb/engine/`).
 *
 * @example
 * ```ts
 * import { addAddress, linkUp, TunDevice } from "./mod.ts";
 * await using dev = TunDevice.open({ name: "lb0" });
 * await linkUp(dev.name);
 * await addAddress(dev.name, "198.18.2.1/24");
 * const q = dev.queues[0];
 * const buf = new Uint8Array(65536);
 * if (await q.waitReadable(1000)) {
 *   for (let n = q.read(buf); n > 0; n = q.read(buf)) q.write(buf, n);
 * }
 * ```
 *
 * @module
 */

export {
  IFF_MULTI_QUEUE,
  IFF_NO_PI,
  IFF_TUN,
  IFF_VNET_HDR,
  IFNAMSIZ_MAX,
  MAX_TUN_QUEUES,
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  TUN_F_TSO_ECN,
  TUN_F_USO4,
  TUN_F_USO6,
  TUN_POLL_READABLE,
  TUN_POLL_SYN_READABLE,
  TUN_POLL_WOKEN,
  TunDevice,
  type TunOpenOptions,
  TunQueue,
  type TunQueueCounters,
  TUNSETIFF,
  TUNSETOFFLOAD,
} from "./tun_device.ts";
export {
  TunError,
  type TunErrorReason,
  TunNameInUseError,
  TunPermissionError,
  TunUnavailableError,
} from "./errors.ts";
export { addAddress, addRoute, deleteRoute, ip, IpCommandError, linkExists, linkUp, setMtu } from "./link.ts";
