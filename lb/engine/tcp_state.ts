/**
 * Connection states and their transitions, driven by the TCP flags seen in each direction (as IPVS tracks a
 * NATed connection without a full TCP stack), and the idle timeout of each state.
 *
 * ```
 *  client SYN        server SYN+ACK        client ACK
 * ───────────► SYN_SENT ─────────► SYN_RECV ─────────► ESTABLISHED
 *                                                        │ FIN (one side)
 *             any RST: CLOSE                             ▼
 *                                         FIN_WAIT ──FIN (other side)──► TIME_WAIT
 * ```
 *
 * @module
 */
import type { Timeouts } from "../config.ts";
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "../../base/packet/tcp.ts";

/** Free handle (never a live connection's state). */
export const STATE_NONE = 0;
/** Client SYN forwarded, waiting for the server's SYN+ACK. */
export const STATE_SYN_SENT = 1;
/** Server SYN+ACK forwarded, waiting for the client's ACK. */
export const STATE_SYN_RECV = 2;
/** Handshake completed. */
export const STATE_ESTABLISHED = 3;
/** One side sent FIN. */
export const STATE_FIN_WAIT = 4;
/** Both sides sent FIN. */
export const STATE_TIME_WAIT = 5;
/** A RST was seen. */
export const STATE_CLOSE = 6;
/** A UDP flow. */
export const STATE_UDP = 7;
/** Names of the states, indexed by state, for stats and logs. */
export const STATE_NAMES: readonly string[] = [
  "none",
  "syn_sent",
  "syn_recv",
  "established",
  "fin_wait",
  "time_wait",
  "close",
  "udp",
];

/** Flag: the client has sent FIN. */
export const CONN_CLIENT_FIN = 0x01;
/** Flag: the server has sent FIN. */
export const CONN_SERVER_FIN = 0x02;
/** Flag: TOA goes into the SYN toward the real server (the service's `toaPlacement` has "syn"). */
export const CONN_TOA = 0x04;
/** Flag: TOA went into the handshake-completing ACK (or could not, and was counted). */
export const CONN_TOA_ACK_DONE = 0x08;
/** Flag: opened by the SYN proxy (the client's handshake was with the gateway; syn_cookie.ts, synproxy.ts). */
export const CONN_SYNPROXY = 0x10;
/** Flag: TOA goes into the ACK completing the handshake (the service's `toaPlacement` has "ack"). */
export const CONN_TOA_ACK = 0x20;

/** The state after a client→server segment with `tcpFlags` ({@link tcpTransition} adds the both-FINs rule). */
export function nextStateFromClient(state: number, tcpFlags: number): number {
  if (tcpFlags & TCP_RST) return STATE_CLOSE;
  if (tcpFlags & TCP_SYN) return state;
  if (tcpFlags & TCP_FIN) {
    return state === STATE_FIN_WAIT || state === STATE_TIME_WAIT ? state : STATE_FIN_WAIT;
  }
  if ((tcpFlags & TCP_ACK) && state === STATE_SYN_RECV) return STATE_ESTABLISHED;
  return state;
}

/** The state after a server→client segment with `tcpFlags`. */
export function nextStateFromServer(state: number, tcpFlags: number): number {
  if (tcpFlags & TCP_RST) return STATE_CLOSE;
  if ((tcpFlags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK)) {
    return state === STATE_SYN_SENT ? STATE_SYN_RECV : state;
  }
  if (tcpFlags & TCP_FIN) {
    return state === STATE_FIN_WAIT || state === STATE_TIME_WAIT ? state : STATE_FIN_WAIT;
  }
  return state;
}

const BOTH_FIN = CONN_CLIENT_FIN | CONN_SERVER_FIN;

/** Bits of a {@link tcpTransition} result holding the next state; the connection flags sit above them. */
export const TRANSITION_STATE_MASK = 0xff;

/**
 * The state and connection flags after one segment, in either direction, packed as
 * `state | flags << 8` so the fast path allocates nothing (read them with {@link TRANSITION_STATE_MASK} and
 * `>>> 8`). A FIN records which side closed; once both sides have, the connection is in TIME_WAIT whatever
 * the per-direction transition said. A FIN with RST or SYN counts as that RST or SYN only (IPVS's order).
 */
export function tcpTransition(
  state: number,
  connFlags: number,
  tcpFlags: number,
  fromClient: boolean,
): number {
  // The common case, first and cheap: a segment without SYN, FIN or RST on an established connection
  // changes nothing (both per-direction transitions below answer ESTABLISHED for it).
  if (state === STATE_ESTABLISHED && (tcpFlags & (TCP_FIN | TCP_RST | TCP_SYN)) === 0) {
    return state | (connFlags << 8);
  }
  const next = fromClient ? nextStateFromClient(state, tcpFlags) : nextStateFromServer(state, tcpFlags);
  // As IPVS's tcp_state_idx: RST wins over SYN, SYN over FIN; a FIN riding with either is no close.
  if ((tcpFlags & (TCP_FIN | TCP_RST | TCP_SYN)) !== TCP_FIN) return next | (connFlags << 8);
  const flags = connFlags | (fromClient ? CONN_CLIENT_FIN : CONN_SERVER_FIN);
  return ((flags & BOTH_FIN) === BOTH_FIN ? STATE_TIME_WAIT : next) | (flags << 8);
}

/** Builds the per-state timeout table (seconds, indexed by state) from the configured timeouts. */
export function timeoutTable(t: Timeouts): Float64Array {
  const a = new Float64Array(STATE_NAMES.length);
  a[STATE_NONE] = t.close;
  a[STATE_SYN_SENT] = t.synSent;
  a[STATE_SYN_RECV] = t.synRecv;
  a[STATE_ESTABLISHED] = t.established;
  a[STATE_FIN_WAIT] = t.finWait;
  a[STATE_TIME_WAIT] = t.timeWait;
  a[STATE_CLOSE] = t.close;
  a[STATE_UDP] = t.udp;
  return a;
}
