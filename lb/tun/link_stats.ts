/**
 * The kernel's own counters of an interface, read from `/proc/net/dev` (control path only: stats requests).
 *
 * For a TUN device the kernel is the sender: its `tx_*` counters are packets it hands to the queues (our
 * reads), its `rx_*` counters packets we write. A queue's ring holds `txqueuelen` packets; a packet arriving
 * at a full ring is dropped and counted in `tx_dropped` (drivers/net/tun.c, `tun_net_xmit`), which is the
 * one place a SYN flood's — or any overload's — losses before the gateway show.
 *
 * Why `/proc/net/dev` and not `/sys/class/net/<dev>/statistics/tx_dropped` (the same `dev_get_stats`
 * figures): `/proc/net` is always the reading process's network namespace, while `/sys` shows the namespace
 * of whoever mounted it, so a process moved into a namespace without a fresh sysfs mount would read another
 * namespace's device of the same name, or none.
 *
 * ```
 * Inter-|   Receive                                                |  Transmit
 *  face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
 *   lb0: 1234     10      0    0    0    0     0          0         5678     20      0    3    0    0     0       0
 * ```
 *
 * @module
 */

/** Kernel counters of one interface (struct rtnl_link_stats64 names). */
export interface LinkStats {
  /** Packets the interface received (for a TUN: packets userspace wrote). */
  rxPackets: number;
  /** Received packets dropped (for a TUN: writes the kernel took but could not deliver). */
  rxDropped: number;
  /** Packets the interface sent (for a TUN: packets queued for userspace to read). */
  txPackets: number;
  /** Packets dropped on the way out (for a TUN: a queue's ring was full — `txqueuelen` packets). */
  txDropped: number;
}

/** Column of each counter in a `/proc/net/dev` line, after the `name:`. */
const RX_PACKETS = 1, RX_DROP = 3, TX_PACKETS = 9, TX_DROP = 11;

/** Finds `dev`'s line in the text of `/proc/net/dev`; null when the interface is not listed. */
export function parseProcNetDev(text: string, dev: string): LinkStats | null {
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0 || line.slice(0, colon).trim() !== dev) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (f.length < 16 || f.some((x) => !Number.isFinite(x))) return null;
    return {
      rxPackets: f[RX_PACKETS],
      rxDropped: f[RX_DROP],
      txPackets: f[TX_PACKETS],
      txDropped: f[TX_DROP],
    };
  }
  return null;
}

/** The kernel's counters of `dev` in this process's network namespace; null when it has no such interface. */
export async function linkStats(dev: string, path = "/proc/net/dev"): Promise<LinkStats | null> {
  return parseProcNetDev(await Deno.readTextFile(path), dev);
}
