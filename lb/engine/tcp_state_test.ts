/**
 * tcpTransition: the FIN bookkeeping both directions share, table-driven, and a whole close sequence.
 */
import assert from "node:assert/strict";
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "../../base/packet/tcp.ts";
import {
  CONN_CLIENT_FIN,
  CONN_SERVER_FIN,
  CONN_TOA,
  CONN_TOA_ACK_DONE,
  STATE_CLOSE,
  STATE_ESTABLISHED,
  STATE_FIN_WAIT,
  STATE_NAMES,
  STATE_SYN_RECV,
  STATE_SYN_SENT,
  STATE_TIME_WAIT,
  tcpTransition,
  TRANSITION_STATE_MASK,
} from "./tcp_state.ts";

const FA = TCP_FIN | TCP_ACK;
const BOTH = CONN_CLIENT_FIN | CONN_SERVER_FIN;

// [name, state, conn flags, tcp flags, from client, expected state, expected conn flags]
const cases: [string, number, number, number, boolean, number, number][] = [
  ["client SYN keeps SYN_SENT", STATE_SYN_SENT, 0, TCP_SYN, true, STATE_SYN_SENT, 0],
  ["server SYN+ACK", STATE_SYN_SENT, 0, TCP_SYN | TCP_ACK, false, STATE_SYN_RECV, 0],
  ["client ACK completes", STATE_SYN_RECV, CONN_TOA, TCP_ACK, true, STATE_ESTABLISHED, CONN_TOA],
  ["client FIN first", STATE_ESTABLISHED, 0, FA, true, STATE_FIN_WAIT, CONN_CLIENT_FIN],
  ["server FIN first", STATE_ESTABLISHED, 0, FA, false, STATE_FIN_WAIT, CONN_SERVER_FIN],
  ["server FIN after client's", STATE_FIN_WAIT, CONN_CLIENT_FIN, FA, false, STATE_TIME_WAIT, BOTH],
  ["client FIN after server's", STATE_FIN_WAIT, CONN_SERVER_FIN, FA, true, STATE_TIME_WAIT, BOTH],
  ["client FIN retransmitted", STATE_FIN_WAIT, CONN_CLIENT_FIN, FA, true, STATE_FIN_WAIT, CONN_CLIENT_FIN],
  ["server FIN retransmitted", STATE_FIN_WAIT, CONN_SERVER_FIN, FA, false, STATE_FIN_WAIT, CONN_SERVER_FIN],
  ["FIN in TIME_WAIT stays", STATE_TIME_WAIT, BOTH, FA, true, STATE_TIME_WAIT, BOTH],
  ["last ACK in TIME_WAIT", STATE_TIME_WAIT, BOTH, TCP_ACK, true, STATE_TIME_WAIT, BOTH],
  ["client FIN on a half-open handshake", STATE_SYN_RECV, 0, FA, true, STATE_FIN_WAIT, CONN_CLIENT_FIN],
  ["RST closes", STATE_ESTABLISHED, CONN_CLIENT_FIN, TCP_RST, false, STATE_CLOSE, CONN_CLIENT_FIN],
  // Issue 9 #9, IPVS's tcp_state_idx: RST wins over FIN (CLOSE, the FIN not recorded), SYN over FIN.
  [
    "FIN+RST after peer FIN",
    STATE_FIN_WAIT,
    CONN_SERVER_FIN,
    TCP_FIN | TCP_RST,
    true,
    STATE_CLOSE,
    CONN_SERVER_FIN,
  ],
  ["SYN+FIN on ESTABLISHED", STATE_ESTABLISHED, 0, TCP_SYN | TCP_FIN, true, STATE_ESTABLISHED, 0],
  ["SYN+ACK+FIN from the server", STATE_SYN_SENT, 0, TCP_SYN | TCP_ACK | TCP_FIN, false, STATE_SYN_RECV, 0],
  ["no flags change nothing", STATE_FIN_WAIT, CONN_CLIENT_FIN, 0, false, STATE_FIN_WAIT, CONN_CLIENT_FIN],
  [
    "other flags are kept",
    STATE_ESTABLISHED,
    CONN_TOA | CONN_TOA_ACK_DONE,
    FA,
    false,
    STATE_FIN_WAIT,
    CONN_TOA | CONN_TOA_ACK_DONE | CONN_SERVER_FIN,
  ],
];

for (const [name, state, flags, tcp, fromClient, wantState, wantFlags] of cases) {
  Deno.test(`tcpTransition: ${name}`, () => {
    const r = tcpTransition(state, flags, tcp, fromClient);
    assert.equal(STATE_NAMES[r & TRANSITION_STATE_MASK], STATE_NAMES[wantState]);
    assert.equal(r >>> 8, wantFlags);
  });
}

Deno.test("tcpTransition: a full handshake and close, client closing first", () => {
  let state = STATE_SYN_SENT, flags = 0;
  const step = (tcp: number, fromClient: boolean) => {
    const r = tcpTransition(state, flags, tcp, fromClient);
    state = r & TRANSITION_STATE_MASK;
    flags = r >>> 8;
    return STATE_NAMES[state];
  };
  assert.equal(step(TCP_SYN | TCP_ACK, false), "syn_recv");
  assert.equal(step(TCP_ACK, true), "established");
  assert.equal(step(TCP_ACK, false), "established");
  assert.equal(step(FA, true), "fin_wait");
  assert.equal(step(TCP_ACK, false), "fin_wait");
  assert.equal(step(FA, false), "time_wait");
  assert.equal(step(TCP_ACK, true), "time_wait");
  assert.equal(flags, BOTH);
});
