/**
 * The SYN proxy's option work, apart from the engine's glue (engine.ts): what a client's SYN asks for
 * (packed into the cookie), the options of the gateway's SYN+ACK to the client and of its SYN to the real
 * server, and the window rescaling the two handshakes can make necessary.
 *
 * ```
 * client                  gateway                        real server
 *   SYN ──────────────────►  cookie (no state)
 *   ◄───────── SYN+ACK seq=cookie, MSS, WS 7, SACK-perm
 *   ACK ack=cookie+1 ─────►  cookie good: entry, local port
 *                            SYN seq=ISN, client's MSS/WS/SACK, TOA ─────►
 *                            ◄──────────────────────────── SYN+ACK seq=S
 *                            ACK (TOA) ─────────────────────────────────►
 *   data ◄──────────────────────────────────────────────────────────────► seq/ack shifted both ways:
 *                            client→server: seq + (ISN − client ISN), ack + (S − cookie)
 *                            server→client: seq − (S − cookie),  ack − (ISN − client ISN)
 * ```
 *
 * The client was told window scale {@link GATEWAY_WSCALE}; the server picks its own. When they differ, the
 * server's windows are rescaled on their way to the client; when the server declined scaling altogether,
 * the client's windows are scaled up on their way to the server (it reads them unscaled).
 *
 * @module
 */
import { read16, write16Summed } from "../../base/packet/checksum.ts";
import {
  TCP_CHECKSUM,
  TCP_WINDOW,
  tcpFindOption,
  tcpMss,
  TCPOPT_SACK_PERMITTED,
  TCPOPT_WINDOW_SCALE,
  tcpWriteSynOptions,
} from "../../base/packet/tcp.ts";
import {
  COOKIE_MSS_V4,
  COOKIE_MSS_V6,
  COOKIE_NO_WSCALE,
  cookieData,
  cookieMssIndex,
  cookieMssIndexFor,
  cookieSack,
  cookieWscale,
} from "./syn_cookie.ts";

/** The window scale the gateway offers a client in its SYN+ACK (Linux's usual shift for large buffers). */
export const GATEWAY_WSCALE = 7;
/** Largest shift RFC 7323 allows. */
const MAX_WSCALE = 14;

/** The window scale shift a SYN or SYN+ACK at TCP offset `o` asks for (capped at 14), or -1 without one. */
export function synWscale(b: Uint8Array, o: number): number {
  const p = tcpFindOption(b, o, TCPOPT_WINDOW_SCALE);
  if (p < 0 || b[p + 1] !== 3) return -1;
  return b[p + 2] > MAX_WSCALE ? MAX_WSCALE : b[p + 2];
}

/** What the client's SYN at TCP offset `o` asks for, as cookie data (syn_cookie.ts). */
export function synCookieData(b: Uint8Array, o: number, family: number): number {
  const table = family === 4 ? COOKIE_MSS_V4 : COOKIE_MSS_V6;
  const mss = tcpMss(b, o);
  // Without an MSS option a peer may send 536 bytes (IPv4) or 1220 (IPv6): the tables' smallest.
  const idx = mss < 0 ? 0 : cookieMssIndexFor(table, mss);
  const ws = synWscale(b, o);
  const p = tcpFindOption(b, o, TCPOPT_SACK_PERMITTED);
  return cookieData(idx, ws < 0 ? COOKIE_NO_WSCALE : ws, p >= 0 && b[p + 1] === 2);
}

/** The MSS cookie data carries, for `family`, no larger than `max` (the gateway's clamp). */
export function cookieMss(data: number, family: number, max: number): number {
  const v = (family === 4 ? COOKIE_MSS_V4 : COOKIE_MSS_V6)[cookieMssIndex(data)];
  return v < max ? v : max;
}

/**
 * The options of the gateway's SYN+ACK to a client whose SYN gave cookie `data`: the gateway's MSS, and
 * window scale {@link GATEWAY_WSCALE} and SACK-permitted where the client offered them. No timestamps:
 * FULLNAT removes them toward the server. Returns the length.
 */
export function writeSynAckOptions(opts: Uint8Array, mss: number, data: number): number {
  const ws = cookieWscale(data) === COOKIE_NO_WSCALE ? -1 : GATEWAY_WSCALE;
  return tcpWriteSynOptions(opts, 0, mss, ws, cookieSack(data));
}

/**
 * Rewrites the window field of the segment at TCP offset `o` from shift `from` to shift `to` (a window the
 * receiver reads with `to`), keeping the checksum; capped at 65535, and never turned into 0 when it was not.
 */
export function rescaleWindow(b: Uint8Array, o: number, from: number, to: number): void {
  const w = read16(b, o + TCP_WINDOW);
  if (w === 0 || from === to) return;
  let v: number;
  if (from > to) {
    v = w << (from - to);
    if (v > 0xffff) v = 0xffff;
  } else {
    v = w >>> (to - from);
    if (v === 0) v = 1;
  }
  write16Summed(b, o + TCP_WINDOW, v, o + TCP_CHECKSUM);
}
