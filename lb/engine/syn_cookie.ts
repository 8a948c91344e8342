/**
 * SYN cookies for the SYN proxy (RFC 4987 §3.6, as Linux's and dpvs's): the gateway answers a client's SYN
 * with a SYN+ACK whose sequence number encodes what it must remember — nothing is stored — and believes the
 * client's ACK only when `ack − 1` is the cookie its tuple, its ISN (`seq − 1`) and a recent minute give.
 *
 * ```
 *  31                               7 6    5 4        1 0
 * ┌──────────────────────────────────┬──────┬──────────┬────┐
 * │ keyed hash (25 bits)             │ mss  │ wscale   │sack│   data bits xor'ed with the hash's low bits
 * └──────────────────────────────────┴──────┴──────────┴────┘
 * ```
 *
 * The hash covers the tuple, the client's ISN and a counter of 64-second slots; a cookie is good in its
 * slot and the one after (64–128 s), like Linux's two-minute limit. 25 bits: a blind attacker needs ~2^24
 * guesses per tuple to open one connection, and every guess must cross the rate-limited path (Linux keeps
 * 24). The data bits (MSS index, the client's window scale or none, SACK permitted) are not covered by the
 * hash: a forged value only changes an option of the attacker's own connection, and each is range-checked.
 * Timestamps are not used to carry more (FULLNAT removes them toward the server anyway).
 *
 * @module
 */

/** Seconds per cookie slot. */
export const COOKIE_SLOT_SECONDS = 64;
/** MSS values a cookie can carry (index 0–3), IPv4, as Linux's msstab: the largest not above the client's. */
export const COOKIE_MSS_V4: readonly number[] = [536, 1300, 1440, 1460];
/** MSS values a cookie can carry for IPv6 (IPv6 minimum MTU 1280 − 60, and common links). */
export const COOKIE_MSS_V6: readonly number[] = [1220, 1420, 1440, 8940];
/** The window-scale field value meaning "the client sent no window scale option". */
export const COOKIE_NO_WSCALE = 15;

const DATA_MASK = 0x7f;

/** Makes and checks SYN cookies with a 4-word secret. */
export class SynCookies {
  private readonly k0: number;
  private readonly k1: number;
  private readonly k2: number;
  private readonly k3: number;
  private readonly epoch: number;

  /**
   * `secret`: four words (the gateway derives them from the ISN secret, so a standby sharing that secret
   * accepts the cookies the active one sent); `epochSeconds` turns engine time into wall time.
   */
  constructor(secret: Uint32Array, epochSeconds: number) {
    // Not the ISN hash's keys as they are: a cookie and an ISN must not be computable from each other.
    this.k0 = (secret[0] ^ 0x5bd1e995) | 0;
    this.k1 = (secret[1] ^ 0x27d4eb2f) | 0;
    this.k2 = (secret[2] ^ 0x165667b1) | 0;
    this.k3 = (secret[3] ^ 0x9e3779b9) | 0;
    this.epoch = epochSeconds;
  }

  /**
   * The hash of one tuple, client ISN and slot (addresses: IPv4 values, or xors of IPv6 words): MurmurHash3's
   * rounds, one word each, seeded with the secret — every word mixed on its own, so no two inputs can cancel.
   */
  private hash(src: number, dst: number, ports: number, isn: number, slot: number): number {
    let h = this.k0;
    h = mixRound(h, src ^ this.k1);
    h = mixRound(h, dst ^ this.k2);
    h = mixRound(h, ports ^ this.k3);
    h = mixRound(h, isn);
    h = mixRound(h, slot);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }

  private slot(now: number): number {
    return Math.floor((now + this.epoch) / COOKIE_SLOT_SECONDS) >>> 0;
  }

  /**
   * The cookie for a SYN: `src`/`dst` the client's and the VIP's address (word or xor of words), `ports`
   * `(clientPort << 16) | vport`, `isn` the SYN's sequence number; `data` from {@link cookieData}.
   */
  make(now: number, src: number, dst: number, ports: number, isn: number, data: number): number {
    const h = this.hash(src, dst, ports, isn, this.slot(now));
    return ((h & ~DATA_MASK) | ((data ^ h) & DATA_MASK)) >>> 0;
  }

  /**
   * Checks `cookie` (the client's ACK number − 1) for the tuple and ISN (the ACK's seq − 1): the data bits
   * when it is good (this slot or the previous), −1 when not.
   */
  check(now: number, src: number, dst: number, ports: number, isn: number, cookie: number): number {
    const s = this.slot(now);
    for (let age = 0; age < 2; age++) {
      const h = this.hash(src, dst, ports, isn, (s - age) >>> 0);
      if (((h ^ cookie) & ~DATA_MASK) === 0) return (cookie ^ h) & DATA_MASK;
    }
    return -1;
  }
}

/** One MurmurHash3 round: word `k` into state `h`. */
function mixRound(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/**
 * Packs what a cookie carries: the MSS index (0–3 into the family's table), the client's window scale shift
 * (0–14, or {@link COOKIE_NO_WSCALE}) and whether it permits SACK.
 */
export function cookieData(mssIndex: number, wscale: number, sack: boolean): number {
  return (mssIndex << 5) | (wscale << 1) | (sack ? 1 : 0);
}

/** The MSS index of cookie data. */
export function cookieMssIndex(data: number): number {
  return (data >>> 5) & 3;
}

/** The client's window scale shift in cookie data, or {@link COOKIE_NO_WSCALE}. */
export function cookieWscale(data: number): number {
  return (data >>> 1) & 15;
}

/** Whether the client permitted SACK, from cookie data. */
export function cookieSack(data: number): boolean {
  return (data & 1) !== 0;
}

/** The largest index of `table` whose MSS is not above `mss` (0 when none is: the table's smallest). */
export function cookieMssIndexFor(table: readonly number[], mss: number): number {
  let i = table.length - 1;
  while (i > 0 && table[i] > mss) i--;
  return i;
}
