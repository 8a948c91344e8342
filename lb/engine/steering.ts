/**
 * Which worker owns a packet's connection, as one formula shared by the engine (which hands a packet it
 * does not own to its owner) and the TUN steering BPF program (which sends it to the owner's queue in the
 * first place, `lb/tun/steering_bpf.ts`):
 *
 * - toward a VIP: a hash of the client's address and port — the worker that sees the SYN creates the entry;
 * - toward a local address: the local port modulo the worker count — each worker only hands out the ports
 *   `p % workers === worker` (local_pool.ts);
 * - a fragment (either way): a hash of its source, destination and identification, so all the fragments of
 *   a datagram meet in one worker's reassembler; the whole datagram then goes to its owner by the rules
 *   above. The BPF program does not read fragments specially; the engine hands them over.
 *
 * The hash uses only 32-bit multiply, shift, xor and modulo, so the BPF program computes the same number.
 *
 * @module
 */

/** Multiplier of the ownership hash (the 32-bit golden ratio). */
export const STEER_MULTIPLIER = 0x9e3779b1;

/**
 * Owner of a client flow: `addr` is the client's IPv4 address, or the xor of the four words of its IPv6
 * address; `port` the client's port.
 */
export function steerClient(addr: number, port: number, workers: number): number {
  const x = (addr ^ ((port << 16) | port)) >>> 0;
  return (Math.imul(x, STEER_MULTIPLIER) >>> 16) % workers;
}

/** Owner of a local port. */
export function steerLocalPort(port: number, workers: number): number {
  return port % workers;
}

/**
 * Reassembling worker of a fragment: `addrs` is the xor of the source and destination address words (IPv4:
 * the two addresses), `id` the IPv4 or IPv6 fragment identification.
 */
export function steerFragment(addrs: number, id: number, workers: number): number {
  return (Math.imul((addrs ^ id) >>> 0, STEER_MULTIPLIER) >>> 16) % workers;
}
