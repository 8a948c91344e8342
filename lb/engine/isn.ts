/**
 * Initial sequence numbers toward the real servers, as RFC 6528 (and Linux's secure_tcp_seq) make them:
 * ISN = M + F(tuple, secret), M a clock ticking every 4 µs, F a keyed hash of the connection's four-tuple.
 *
 * Why not plain random numbers: a real server keeps closed connections in TIME_WAIT, and a new SYN on the
 * same (local address, local port, RS, port) tuple is accepted only when its sequence number lies after the
 * old connection's (timestamps, the other way out, are removed from FULLNAT SYNs). A random ISN loses half
 * the time: the server answers with an ACK for the old connection, the client resets, and the connection
 * costs a retry. A clock-driven ISN is after the old one unless the old connection sent more than 250,000
 * bytes per millisecond of its age. The secret keeps ISNs unguessable to anyone who cannot see the traffic.
 *
 * @module
 */

/** Ticks of the ISN clock per second (one every 4 µs, RFC 6528). */
const TICKS_PER_SECOND = 250_000;

/** Generates ISNs from a wall-clock base plus a keyed hash of the tuple. */
export class IsnGenerator {
  private readonly k0: number;
  private readonly k1: number;
  private readonly k2: number;
  private readonly k3: number;
  private readonly epoch: number;

  /**
   * `secret` is four random 32-bit words; `epochSeconds` is added to the engine's clock to make it wall
   * time, so ISNs keep growing across gateway restarts too.
   */
  constructor(secret: Uint32Array, epochSeconds: number) {
    this.k0 = secret[0] | 0;
    this.k1 = secret[1] | 0;
    this.k2 = secret[2] | 0;
    this.k3 = secret[3] | 0;
    this.epoch = epochSeconds;
  }

  /** The keyed hash F of a tuple (the address arguments are IPv4 values or xors of IPv6 words). */
  hash(localAddr: number, localPort: number, serverAddr: number, serverPort: number): number {
    let h = Math.imul(localAddr ^ this.k0, 0xcc9e2d51);
    h = Math.imul((h << 15) | (h >>> 17), 0x1b873593) ^ this.k1;
    h = Math.imul(h ^ serverAddr ^ this.k2, 0x85ebca6b);
    h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64;
    h ^= ((localPort << 16) | serverPort) ^ this.k3;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }

  /** The ISN for a tuple at engine time `now` (seconds). */
  next(now: number, localAddr: number, localPort: number, serverAddr: number, serverPort: number): number {
    const m = Math.floor(((now + this.epoch) * TICKS_PER_SECOND) % 4294967296);
    return (m + this.hash(localAddr, localPort, serverAddr, serverPort)) >>> 0;
  }
}
