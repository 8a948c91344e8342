/**
 * Per-packet cost of the wire codecs: classification, a FULLNAT rewrite of a data segment (addresses, ports,
 * sequence and acknowledgment numbers, SACK, incremental checksums) for IPv4 and IPv6, and the SYN rewrite
 * (NOP the timestamps, clamp the MSS, insert an 8-byte option). Packets are scapy fixtures.
 *
 * Run: deno bench -A bench/packet_bench.ts
 */
import { fixture, fromHex } from "../tests/fixtures/fixtures.ts";
import {
  classifyPacket,
  IPPROTO_TCP,
  ipv4Dst,
  ipv4SetDst,
  ipv4SetSrc,
  ipv4Src,
  ipv6AddressSumDelta,
  ipv6CopyAddress,
  ipv6DstOffset,
  ipv6SrcOffset,
  natApplyDelta,
  PACKET_OK,
  PacketInfo,
  TCP_CHECKSUM,
  tcpAck,
  tcpAdjustChecksum32,
  tcpAdjustSack,
  tcpClampMss,
  tcpInsertOption,
  tcpNopAllOptions,
  TCPOPT_TIMESTAMP,
  tcpSeq,
  tcpSetAck,
  tcpSetDstPort,
  tcpSetSeq,
  tcpSetSrcPort,
} from "../base/packet/mod.ts";

const info = new PacketInfo();
const v4 = fromHex(fixture("tcp4_sack2_ts_p64").hex);
const v6 = fromHex(fixture("tcp6_sack2_ts_p64").hex);
const syn4 = fromHex(fixture("tcp4_syn_linux_p0").hex);
const syn4Buf = new Uint8Array(syn4.length + 64);
const TOA = Uint8Array.from([254, 8, 0x9c, 0x40, 198, 51, 100, 9]);
const LADDR6 = Uint8Array.from([0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
const RADDR6 = Uint8Array.from([0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10]);
let n = 0;

function mustClassify(b: Uint8Array, len: number): void {
  if (classifyPacket(b, 0, len, info) !== PACKET_OK) throw new Error("fixture not accepted");
}

Deno.bench(
  "classifyPacket: IPv4 TCP data segment (timestamps + SACK)",
  { group: "parse", baseline: true },
  () => {
    mustClassify(v4, v4.length);
  },
);

Deno.bench("classifyPacket: IPv6 TCP data segment (timestamps + SACK)", { group: "parse" }, () => {
  mustClassify(v6, v6.length);
});

Deno.bench("FULLNAT rewrite: IPv4 TCP data (classify, addrs, ports, seq/ack, SACK)", {
  group: "rewrite",
  baseline: true,
}, () => {
  mustClassify(v4, v4.length);
  const o = info.l4Off;
  const src = 0x0a000001 + (n++ & 0xff), dst = 0xc0a80a0a;
  const os = ipv4Src(v4, 0), od = ipv4Dst(v4, 0);
  ipv4SetSrc(v4, 0, src);
  tcpAdjustChecksum32(v4, o, os, src);
  ipv4SetDst(v4, 0, dst);
  tcpAdjustChecksum32(v4, o, od, dst);
  tcpSetSrcPort(v4, o, 40000 + (n & 0x3ff));
  tcpSetDstPort(v4, o, 8080);
  tcpSetSeq(v4, o, tcpSeq(v4, o) + 0x1000);
  tcpSetAck(v4, o, tcpAck(v4, o) - 0x2000);
  tcpAdjustSack(v4, o, -0x2000);
});

Deno.bench(
  "FULLNAT rewrite: IPv6 TCP data (classify, addrs, ports, seq/ack, SACK)",
  { group: "rewrite" },
  () => {
    mustClassify(v6, v6.length);
    const o = info.l4Off;
    LADDR6[15] = n++ & 0xff;
    natApplyDelta(
      v6,
      IPPROTO_TCP,
      o + TCP_CHECKSUM,
      v6.length,
      ipv6AddressSumDelta(v6, ipv6SrcOffset(0), LADDR6, 0) +
        ipv6AddressSumDelta(v6, ipv6DstOffset(0), RADDR6, 0),
    );
    ipv6CopyAddress(v6, ipv6SrcOffset(0), LADDR6, 0);
    ipv6CopyAddress(v6, ipv6DstOffset(0), RADDR6, 0);
    tcpSetSrcPort(v6, o, 40000 + (n & 0x3ff));
    tcpSetDstPort(v6, o, 8080);
    tcpSetSeq(v6, o, tcpSeq(v6, o) + 0x1000);
    tcpSetAck(v6, o, tcpAck(v6, o) - 0x2000);
    tcpAdjustSack(v6, o, -0x2000);
  },
);

Deno.bench("SYN rewrite: copy in, classify, NOP timestamps, clamp MSS, insert 8-byte option", {
  group: "syn",
}, () => {
  syn4Buf.set(syn4);
  mustClassify(syn4Buf, syn4.length);
  const o = info.l4Off;
  tcpNopAllOptions(syn4Buf, o, TCPOPT_TIMESTAMP);
  tcpClampMss(syn4Buf, o, 1400);
  if (tcpInsertOption(syn4Buf, info, syn4.length, TOA, 0, 8) < 0) throw new Error("no room");
});
