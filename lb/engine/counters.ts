/**
 * Counters of one worker's engine: every drop has a reason, every notable event a count, and every service
 * and real server its connections, packets and bytes each way. Plain Float64Arrays (exact to 2^53), so the
 * fast path only increments.
 *
 * @module
 */
import { PACKET_REASON_NAMES } from "../../base/packet/validate.ts";

/**
 * Builds a names array from a name → code table: each name lands at its code, after `before` (the codes
 * below the table's). Codes are checked in counters_test.ts to be unique and dense.
 */
function namesByCode(table: Readonly<Record<string, number>>, before: readonly string[] = []): string[] {
  const names = [...before];
  for (const [name, code] of Object.entries(table)) names[code] = name;
  return names;
}

/**
 * Drop reasons past the validator's (which keep their own codes 1–8), name → code: the one table the DROP_*
 * constants and DROP_NAMES are made from.
 */
export const DROP_REASONS = {
  /** Not addressed to a VIP or local address of ours. */
  not_for_us: 9,
  /** A VIP address with no service on that port/protocol (answered with RST or ICMP port unreachable). */
  no_service: 10,
  /** Client segment that is no SYN and matches no connection (answered with a RST unless it is one). */
  no_connection: 11,
  /** Packet to a local address that matches no connection (or not from its real server). */
  no_connection_reply: 12,
  /** No real server may take a new connection (all weights 0). */
  no_real_server: 13,
  /** Local address/port pool exhausted (the client gets a RST). */
  port_exhausted: 14,
  /** Connection table full (the client gets a RST). */
  table_full: 15,
  /** ICMP error quoting a packet of no known connection. */
  icmp_no_connection: 16,
  /** ICMP message we do not translate (not an error, not an echo request). */
  icmp_unsupported: 17,
  /** Protocol not served (neither TCP, UDP nor ICMP). */
  protocol: 18,
  /** A SYN+ACK or SYN from the real server side in a state where it makes no sense. */
  bad_state: 19,
  /** An echo request that would be answered, but the reply rate limit (`replyRate`) is spent. */
  echo_rate_limited: 20,
  /** A transport checksum that does not verify: a client SYN or first datagram, or an ICMP message. */
  bad_checksum: 21,
  /** Source address no client can have: a VIP or local address (land), loopback, multicast, unspecified, broadcast. */
  martian_source: 22,
  /** A fragment whose offset, length or last-fragment flag contradicts its datagram (discarded with it). */
  frag_malformed: 23,
  /** A fragment overlapping another of its datagram (RFC 5722; IPv4 too): the datagram is discarded. */
  frag_overlap: 24,
  /** An exact duplicate of a fragment held (RFC 8200 §4.5 allows dropping it alone). */
  frag_duplicate: 25,
  /** A first fragment without the whole transport header (RFC 1858, RFC 7112): the datagram is discarded. */
  frag_tiny: 26,
  /** A fragment reaching past 65535 bytes, or the caller's buffer: the datagram is discarded. */
  frag_too_big: 27,
  /** One fragment too many for a datagram (the reassembler's `maxFragments`): the datagram is discarded. */
  frag_too_many: 28,
  /** A fragment of a datagram already discarded (RFC 5722: later fragments are discarded too). */
  frag_discarded: 29,
  /**
   * A real server's ACK to the gateway's SYN (it still holds the tuple): dropped, answered with a RST and the
   * SYN again (`takeover_rst`) unless the connection's takeovers or the reply rate are spent.
   */
  takeover: 30,
  /** SYN proxy: a client segment while the server side is still opening, with no slot left to keep it. */
  synproxy_not_kept: 31,
} as const;

/** Not addressed to a VIP or local address of ours. */
export const DROP_NOT_FOR_US = DROP_REASONS.not_for_us;
/** A VIP address with no service on that port/protocol (answered with RST or ICMP port unreachable). */
export const DROP_NO_SERVICE = DROP_REASONS.no_service;
/** Client segment that is no SYN and matches no connection. */
export const DROP_NO_CONNECTION = DROP_REASONS.no_connection;
/** Packet to a local address that matches no connection (or not from its real server). */
export const DROP_NO_CONNECTION_REPLY = DROP_REASONS.no_connection_reply;
/** No real server may take a new connection (all weights 0). */
export const DROP_NO_REAL_SERVER = DROP_REASONS.no_real_server;
/** Local address/port pool exhausted (the client gets a RST). */
export const DROP_PORT_EXHAUSTED = DROP_REASONS.port_exhausted;
/** Connection table full (the client gets a RST). */
export const DROP_TABLE_FULL = DROP_REASONS.table_full;
/** ICMP error quoting a packet of no known connection. */
export const DROP_ICMP_NO_CONNECTION = DROP_REASONS.icmp_no_connection;
/** ICMP message we do not translate (not an error, not an echo request). */
export const DROP_ICMP_UNSUPPORTED = DROP_REASONS.icmp_unsupported;
/** Protocol not served (neither TCP, UDP nor ICMP). */
export const DROP_PROTOCOL = DROP_REASONS.protocol;
/** A SYN+ACK or SYN from the real server side in a state where it makes no sense. */
export const DROP_BAD_STATE = DROP_REASONS.bad_state;
/** An echo request that would be answered, but the reply rate limit (`replyRate`) is spent. */
export const DROP_ECHO_RATE_LIMITED = DROP_REASONS.echo_rate_limited;
/** A transport checksum that does not verify: a client SYN or first datagram, or an ICMP message. */
export const DROP_BAD_CHECKSUM = DROP_REASONS.bad_checksum;
/** Source address no client can have: a VIP or local address (land), loopback, multicast, unspecified, broadcast. */
export const DROP_MARTIAN_SOURCE = DROP_REASONS.martian_source;
/** A fragment whose offset, length or last-fragment flag contradicts its datagram (discarded with it). */
export const DROP_FRAG_MALFORMED = DROP_REASONS.frag_malformed;
/** A fragment overlapping another of its datagram (RFC 5722; IPv4 too): the datagram is discarded. */
export const DROP_FRAG_OVERLAP = DROP_REASONS.frag_overlap;
/** An exact duplicate of a fragment held (RFC 8200 §4.5 allows dropping it alone). */
export const DROP_FRAG_DUPLICATE = DROP_REASONS.frag_duplicate;
/** A first fragment without the whole transport header (RFC 1858, RFC 7112): the datagram is discarded. */
export const DROP_FRAG_TINY = DROP_REASONS.frag_tiny;
/** A fragment reaching past 65535 bytes, or the caller's buffer: the datagram is discarded. */
export const DROP_FRAG_TOO_BIG = DROP_REASONS.frag_too_big;
/** One fragment too many for a datagram (the reassembler's `maxFragments`): the datagram is discarded. */
export const DROP_FRAG_TOO_MANY = DROP_REASONS.frag_too_many;
/** A fragment of a datagram already discarded (RFC 5722: later fragments are discarded too). */
export const DROP_FRAG_DISCARDED = DROP_REASONS.frag_discarded;
/** Code of `synproxy_not_kept`. */
export const DROP_SYNPROXY_NOT_KEPT = DROP_REASONS.synproxy_not_kept;

/** A real server's ACK to the gateway's SYN (it still holds the tuple): dropped, answered if it may be. */
export const DROP_TAKEOVER = DROP_REASONS.takeover;

/** Names of the drop reasons, indexed by code: the validator's reasons (0 is unused), then DROP_REASONS. */
export const DROP_NAMES: readonly string[] = namesByCode(DROP_REASONS, PACKET_REASON_NAMES);

/** Engine events, name → code: the one table the EV_* constants and EVENT_NAMES are made from. */
export const EVENTS = {
  /** TOA inserted into a SYN or handshake ACK. */
  toa_inserted: 0,
  /** TOA left out: the 40-byte option space (or the buffer) had no room. */
  toa_no_space: 1,
  /** An option 254 removed: a client's (only the gateway's TOA may reach a server) or a server's. */
  toa_stripped: 2,
  /** A SYN's timestamp option removed. */
  timestamp_removed: 3,
  /** An MSS option lowered. */
  mss_clamped: 4,
  /** An ICMP error translated for a connection. */
  icmp_translated: 5,
  /** RST sent to a client. */
  rst_sent: 6,
  /** ICMP port unreachable sent. */
  icmp_unreach_sent: 7,
  /** ICMP echo reply sent for a VIP or local address. */
  echo_replied: 8,
  /** Connection removed by timeout. */
  expired: 9,
  /** A TIME_WAIT/CLOSE connection replaced by a new SYN from the same client tuple. */
  reused: 10,
  /** A generated reply suppressed by the rate limit. */
  reply_rate_limited: 11,
  /** Connections created. */
  connections: 12,
  /** Fragments toward a VIP or local address taken by the reassembler. */
  frag_received: 13,
  /** Fragments held for the rest of their datagram: `process` returned 0 without a drop. */
  frag_held: 14,
  /** Datagrams reassembled and passed on as one packet. */
  frag_reassembled: 15,
  /** Datagrams discarded incomplete when their reassembly time ran out. */
  frag_timeout: 16,
  /** Datagrams discarded incomplete to make room (datagram slots or bytes held). */
  frag_evicted: 17,
  /** IPv6 fragments the engine built from a reassembled datagram too large for the MTU. */
  frag_sent: 18,
  /** A RST outside its receiver's window: forwarded, the connection's state and timer left as they were. */
  rst_out_of_window: 19,
  /**
   * A real server answered the gateway's SYN with an ACK (it still holds the tuple: TIME_WAIT, or a stale
   * connection): the ACK dropped, a RST sent to free the tuple and the SYN sent again.
   */
  takeover_rst: 20,
  /**
   * A half-open or closing entry (SYN_SENT, SYN_RECV, CLOSE, TIME_WAIT) removed to make room for a new
   * connection: the table was full, or the local pool of the new one's family exhausted.
   */
  evicted: 21,
  /** SYN proxy: a SYN answered with a SYN cookie (no entry, no local port). */
  syncookie_sent: 22,
  /** SYN proxy: a client ACK whose cookie verified: the connection is made and the server side opened. */
  syncookie_valid: 23,
  /** SYN proxy: an ACK without connection whose cookie did not verify (then handled as no connection). */
  syncookie_bad: 24,
  /** SYN proxy switched on for `auto` services (half-open entries past the threshold). */
  synproxy_on: 25,
  /** SYN proxy switched off again for `auto` services. */
  synproxy_off: 26,
  /** SYN proxy: the server refused the gateway's SYN (RST): the client, already connected, gets a RST. */
  synproxy_refused: 27,
  /** SYN proxy: a client segment kept until the server side is open, then sent. */
  synproxy_kept: 28,
  /** SYN proxy: the SYN toward the server sent again (the client retransmitted while it was opening). */
  synproxy_syn_retransmit: 29,
} as const;

/** TOA inserted into a SYN or handshake ACK. */
export const EV_TOA_INSERTED = EVENTS.toa_inserted;
/** TOA left out: the 40-byte option space (or the buffer) had no room. */
export const EV_TOA_NO_SPACE = EVENTS.toa_no_space;
/** An option 254 removed, from a client's segment or a server's. */
export const EV_TOA_STRIPPED = EVENTS.toa_stripped;
/** A SYN's timestamp option removed. */
export const EV_TIMESTAMP_REMOVED = EVENTS.timestamp_removed;
/** An MSS option lowered. */
export const EV_MSS_CLAMPED = EVENTS.mss_clamped;
/** An ICMP error translated for a connection. */
export const EV_ICMP_TRANSLATED = EVENTS.icmp_translated;
/** RST sent to a client. */
export const EV_RST_SENT = EVENTS.rst_sent;
/** ICMP port unreachable sent. */
export const EV_ICMP_UNREACH_SENT = EVENTS.icmp_unreach_sent;
/** ICMP echo reply sent for a VIP or local address. */
export const EV_ECHO_REPLIED = EVENTS.echo_replied;
/** Connection removed by timeout. */
export const EV_EXPIRED = EVENTS.expired;
/** A TIME_WAIT/CLOSE connection replaced by a new SYN from the same client tuple. */
export const EV_REUSED = EVENTS.reused;
/** A generated reply suppressed by the rate limit. */
export const EV_REPLY_RATE_LIMITED = EVENTS.reply_rate_limited;
/** Connections created. */
export const EV_CONNECTIONS = EVENTS.connections;
/** Fragments toward a VIP or local address taken by the reassembler. */
export const EV_FRAG_RECEIVED = EVENTS.frag_received;
/** Fragments held for the rest of their datagram: `process` returned 0 without a drop. */
export const EV_FRAG_HELD = EVENTS.frag_held;
/** Datagrams reassembled and passed on as one packet. */
export const EV_FRAG_REASSEMBLED = EVENTS.frag_reassembled;
/** Datagrams discarded incomplete when their reassembly time ran out. */
export const EV_FRAG_TIMEOUT = EVENTS.frag_timeout;
/** Datagrams discarded incomplete to make room (datagram slots or bytes held). */
export const EV_FRAG_EVICTED = EVENTS.frag_evicted;
/** IPv6 fragments the engine built from a reassembled datagram too large for the MTU. */
export const EV_FRAG_SENT = EVENTS.frag_sent;
/** A RST outside its receiver's window: forwarded, the connection's state and timer left as they were. */
export const EV_RST_OUT_OF_WINDOW = EVENTS.rst_out_of_window;
/** A real server's ACK to the gateway's SYN: RST to free the tuple, and the SYN sent again. */
export const EV_TAKEOVER_RST = EVENTS.takeover_rst;
/** A half-open or closing entry removed to make room for a new connection (table or pool full). */
export const EV_EVICTED = EVENTS.evicted;
/** Code of `syncookie_sent`. */
export const EV_SYNCOOKIE_SENT = EVENTS.syncookie_sent;
/** Code of `syncookie_valid`. */
export const EV_SYNCOOKIE_VALID = EVENTS.syncookie_valid;
/** Code of `syncookie_bad`. */
export const EV_SYNCOOKIE_BAD = EVENTS.syncookie_bad;
/** Code of `synproxy_on`. */
export const EV_SYNPROXY_ON = EVENTS.synproxy_on;
/** Code of `synproxy_off`. */
export const EV_SYNPROXY_OFF = EVENTS.synproxy_off;
/** Code of `synproxy_refused`. */
export const EV_SYNPROXY_REFUSED = EVENTS.synproxy_refused;
/** Code of `synproxy_kept`. */
export const EV_SYNPROXY_KEPT = EVENTS.synproxy_kept;
/** Code of `synproxy_syn_retransmit`. */
export const EV_SYNPROXY_SYN_RETRANSMIT = EVENTS.synproxy_syn_retransmit;
/** Names of the events, indexed by code. */
export const EVENT_NAMES: readonly string[] = namesByCode(EVENTS);

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
  /** Per-service traffic (by service slot). */
  services: Float64Array;
  /** Per-real-server traffic (flat server slot). */
  servers: Float64Array;

  /** Allocates counters for `services` services and `servers` real servers. */
  constructor(services: number, servers: number) {
    this.services = new Float64Array(services * TRAFFIC_FIELDS);
    this.servers = new Float64Array(servers * TRAFFIC_FIELDS);
  }

  /** Makes room for `services` service slots and `servers` server slots, keeping the counts (control path). */
  grow(services: number, servers: number): void {
    if (this.services.length < services * TRAFFIC_FIELDS) {
      const a = new Float64Array(services * TRAFFIC_FIELDS);
      a.set(this.services);
      this.services = a;
    }
    if (this.servers.length < servers * TRAFFIC_FIELDS) {
      const a = new Float64Array(servers * TRAFFIC_FIELDS);
      a.set(this.servers);
      this.servers = a;
    }
  }
}
