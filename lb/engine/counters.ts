/**
 * Counters of one worker's engine: every drop has a reason, every notable event a count, and every service
 * and real server its connections, packets and bytes each way. Plain Float64Arrays (exact to 2^53), so the
 * fast path only increments.
 *
 * @module
 */
import { PACKET_REASON_NAMES } from "../../base/packet/validate.ts";

/** Drop reasons past the validator's (which keep their own codes 1–8). */
export const DROP_NOT_FOR_US = 9;
/** A VIP address with no service on that port/protocol (answered with RST or ICMP port unreachable). */
export const DROP_NO_SERVICE = 10;
/** Client segment that is no SYN and matches no connection. */
export const DROP_NO_CONNECTION = 11;
/** Packet to a local address that matches no connection (or not from its real server). */
export const DROP_NO_CONNECTION_REPLY = 12;
/** No real server may take a new connection (all weights 0). */
export const DROP_NO_REAL_SERVER = 13;
/** Local address/port pool exhausted (the client gets a RST). */
export const DROP_PORT_EXHAUSTED = 14;
/** Connection table full (the client gets a RST). */
export const DROP_TABLE_FULL = 15;
/** ICMP error quoting a packet of no known connection. */
export const DROP_ICMP_NO_CONNECTION = 16;
/** ICMP message we do not translate (not an error, not an echo request). */
export const DROP_ICMP_UNSUPPORTED = 17;
/** Protocol not served (neither TCP, UDP nor ICMP). */
export const DROP_PROTOCOL = 18;
/** A SYN+ACK or SYN from the real server side in a state where it makes no sense. */
export const DROP_BAD_STATE = 19;

/** Names of the drop reasons, indexed by code (0 is unused). */
export const DROP_NAMES: readonly string[] = [
  ...PACKET_REASON_NAMES,
  "not_for_us",
  "no_service",
  "no_connection",
  "no_connection_reply",
  "no_real_server",
  "port_exhausted",
  "table_full",
  "icmp_no_connection",
  "icmp_unsupported",
  "protocol",
  "bad_state",
];

/** TOA inserted into a SYN or handshake ACK. */
export const EV_TOA_INSERTED = 0;
/** TOA left out: the 40-byte option space (or the buffer) had no room. */
export const EV_TOA_NO_SPACE = 1;
/** A client-supplied TOA option removed. */
export const EV_TOA_STRIPPED = 2;
/** A SYN's timestamp option removed. */
export const EV_TIMESTAMP_REMOVED = 3;
/** An MSS option lowered. */
export const EV_MSS_CLAMPED = 4;
/** An ICMP error translated for a connection. */
export const EV_ICMP_TRANSLATED = 5;
/** RST sent to a client. */
export const EV_RST_SENT = 6;
/** ICMP port unreachable sent. */
export const EV_ICMP_UNREACH_SENT = 7;
/** ICMP echo reply sent for a VIP or local address. */
export const EV_ECHO_REPLIED = 8;
/** Connection removed by timeout. */
export const EV_EXPIRED = 9;
/** A TIME_WAIT/CLOSE connection replaced by a new SYN from the same client tuple. */
export const EV_REUSED = 10;
/** A generated reply suppressed by the rate limit. */
export const EV_REPLY_RATE_LIMITED = 11;
/** Connections created. */
export const EV_CONNECTIONS = 12;
/** Names of the events, indexed by code. */
export const EVENT_NAMES: readonly string[] = [
  "toa_inserted",
  "toa_no_space",
  "toa_stripped",
  "timestamp_removed",
  "mss_clamped",
  "icmp_translated",
  "rst_sent",
  "icmp_unreach_sent",
  "echo_replied",
  "expired",
  "reused",
  "reply_rate_limited",
  "connections",
];

/** Per-entity traffic counters: index = entity * TRAFFIC_FIELDS + field. */
export const TRAFFIC_FIELDS = 5;
/** Connections created. */
export const T_CONNS = 0;
/** Packets client→server. */
export const T_PKTS_IN = 1;
/** Packets server→client. */
export const T_PKTS_OUT = 2;
/** Bytes (IP) client→server. */
export const T_BYTES_IN = 3;
/** Bytes (IP) server→client. */
export const T_BYTES_OUT = 4;

/** All counters of one engine. */
export class Counters {
  /** Drops by reason code. */
  readonly drops = new Float64Array(DROP_NAMES.length);
  /** Events by code. */
  readonly events = new Float64Array(EVENT_NAMES.length);
  /** Per-service traffic. */
  readonly services: Float64Array;
  /** Per-real-server traffic (flat server index). */
  readonly servers: Float64Array;

  /** Allocates counters for `services` services and `servers` real servers. */
  constructor(services: number, servers: number) {
    this.services = new Float64Array(services * TRAFFIC_FIELDS);
    this.servers = new Float64Array(servers * TRAFFIC_FIELDS);
  }
}
