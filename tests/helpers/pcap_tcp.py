#!/usr/bin/python3
"""Prints the TCP segments of a pcap file as one JSON array, for end-to-end tests (tests/helpers/capture.ts).

scapy dissects IP/IPv6 and TCP, so the test judges our gateway's packets with an implementation independent
of ours. "checksum" is "ok" when the TCP checksum verifies, "partial" when the field holds exactly the
uncomplemented pseudo-header sum — a checksum left for offload to finish (CHECKSUM_PARTIAL: the sender's
kernel, or our gateway through the TUN's virtio_net_hdr, passed the job on, and veth hands such packets
to the receiver unverified) — and "bad" otherwise. Options are listed raw, in wire order, as {"kind", "len", "data"}
(data in hex, without kind and length); NOP and EOL appear as kind 1 / 0 with len 1. A TOA option (kind
254, len 8 or 20) also carries "toa": {"port", "address"}, the address as inet_ntop prints it. "ttl" is the
IPv4 TTL or IPv6 hop limit as captured.

Usage: pcap_tcp.py FILE.pcap
"""
import json
import socket
import struct
import sys

from scapy.all import IP, TCP, IPv6, in4_chksum, in6_chksum, rdpcap


def options(raw):
    out = []
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind in (0, 1):
            out.append({"kind": kind, "len": 1, "data": ""})
            i += 1
            if kind == 0:
                break
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2 or i + raw[i + 1] > len(raw):
            out.append({"kind": kind, "len": -1, "data": raw[i:].hex()})  # malformed: keep the rest
            break
        n = raw[i + 1]
        data = raw[i + 2:i + n]
        opt = {"kind": kind, "len": n, "data": data.hex()}
        if kind == 254 and n in (8, 20):
            fam = socket.AF_INET if n == 8 else socket.AF_INET6
            opt["toa"] = {"port": int.from_bytes(data[:2], "big"), "address": socket.inet_ntop(fam, data[2:])}
        out.append(opt)
        i += n
    return out


def fold(total):
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def pseudo_sum(family, src, dst, length):
    """The uncomplemented one's-complement sum of the TCP pseudo-header (RFC 793, RFC 8200 8.1)."""
    if family == 4:
        hdr = socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst)
        hdr += struct.pack("!BBH", 0, 6, length)
    else:
        hdr = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
        hdr += struct.pack("!I3xB", length, 6)
    return fold(sum(struct.unpack("!%dH" % (len(hdr) // 2), hdr)))


def checksum_state(family, l3, seg, field):
    full = in4_chksum(6, l3, seg) if family == 4 else in6_chksum(6, l3, seg)
    if full == 0:
        return "ok"
    seed = pseudo_sum(family, l3.src, l3.dst, len(seg))
    # One's complement has two zeros: 0x0000 and 0xffff name the same sum.
    if field == seed or {field, seed} == {0, 0xFFFF}:
        return "partial"
    return "bad"


def main(path):
    segments = []
    for pkt in rdpcap(path):
        if TCP not in pkt:
            continue
        if IP in pkt:
            l3, family = pkt[IP], 4
        elif IPv6 in pkt:
            l3, family = pkt[IPv6], 6
        else:
            continue
        tcp = pkt[TCP]
        seg = bytes(tcp)
        hlen = tcp.dataofs * 4
        segments.append({
            "time": float(pkt.time),
            "family": family,
            "src": l3.src,
            "dst": l3.dst,
            "sport": tcp.sport,
            "dport": tcp.dport,
            "flags": str(tcp.flags),
            "seq": tcp.seq,
            "ack": tcp.ack,
            "window": tcp.window,
            "options": options(seg[20:hlen]),
            "payloadLen": len(seg) - hlen,
            "checksum": checksum_state(family, l3, seg, tcp.chksum),
            "ttl": l3.ttl if family == 4 else l3.hlim,
        })
    json.dump(segments, sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    main(sys.argv[1])
