#!/usr/bin/python3
"""Audits every IP packet of a pcap file and prints one JSON array, for end-to-end tests that must show
nothing malformed reached a host (tests/e2e_malformed_test.ts).

scapy reads the pcap; the header fields are then read from the raw bytes and every checksum is summed
here over exactly the bytes on the wire, so a lie that a dissector would paper over is reported, not
repaired. Each packet:
{"family", "src", "dst", "proto", "len", "id" (IPv4 identification / IPv6 flow label), "sport", "dport",
"flags" (TCP, scapy's letters), "toa": [{"len", "address", "port"}], "icmpType", "problems": [...],
"hex" (only when there are problems)}.

Problems: ip_version, ip_header_length, ip_length, ip_checksum, fragment, ipv6_extension, truncated,
tcp_data_offset, tcp_options, tcp_checksum, tcp_checksum_partial, udp_length, udp_checksum,
udp6_zero_checksum, icmp_checksum. A checksum left for offload to finish ("partial") is a problem here:
the tests that use this turn tx checksum offload off, so every checksum on the wire must be complete.

Usage: pcap_audit.py FILE.pcap
"""
import json
import socket
import struct
import sys

from scapy.all import rdpcap

EXT = {0, 43, 60, 51}  # hop-by-hop, routing, destination options, AH (the fragment header is a problem)
ETH_MIN_PAYLOAD = 46  # a shorter IP packet is padded up to this on Ethernet


def fold(s):
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def ones_sum(b):
    if len(b) % 2:
        b += b"\x00"
    return fold(sum(struct.unpack("!%dH" % (len(b) // 2), b)))


def pseudo_sum(family, src, dst, proto, length):
    if family == 4:
        return ones_sum(src + dst + struct.pack("!BBH", 0, proto, length))
    return ones_sum(src + dst + struct.pack("!I3xB", length, proto))


def tcp_options(raw):
    """(well-formed, [TOA dicts]) of the option bytes."""
    toa = []
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2 or i + raw[i + 1] > len(raw):
            if kind == 254:
                toa.append({"len": -1, "address": "malformed:" + raw[i:].hex(), "port": -1})
            return False, toa
        n = raw[i + 1]
        if kind == 254:
            data = raw[i + 2:i + n]
            if n in (8, 20):
                fam = socket.AF_INET if n == 8 else socket.AF_INET6
                toa.append({"len": n, "address": socket.inet_ntop(fam, data[2:]),
                            "port": int.from_bytes(data[:2], "big")})
            else:
                toa.append({"len": n, "address": "malformed:" + data.hex(), "port": -1})
        i += n
    return True, toa


def audit(frame):
    """The audit record of one Ethernet frame, or None when it carries no IP packet."""
    if len(frame) < 14:
        return None
    etype = struct.unpack("!H", frame[12:14])[0]
    b = frame[14:]
    out = {"problems": []}
    bad = out["problems"]
    if etype == 0x0800:
        family = 4
        if len(b) < 20:
            bad.append("truncated")
            return finish(out, b)
        ihl = (b[0] & 0x0F) * 4
        total = struct.unpack("!H", b[2:4])[0]
        out.update(family=4, src=socket.inet_ntop(socket.AF_INET, b[12:16]),
                   dst=socket.inet_ntop(socket.AF_INET, b[16:20]), proto=b[9], len=total,
                   id=struct.unpack("!H", b[4:6])[0])
        if b[0] >> 4 != 4:
            bad.append("ip_version")
        if ihl < 20 or ihl > len(b):
            bad.append("ip_header_length")
            return finish(out, b)
        if total < ihl or total > len(b) or (len(b) > total and len(b) > ETH_MIN_PAYLOAD):
            bad.append("ip_length")
            return finish(out, b)
        if ones_sum(b[:ihl]) != 0xFFFF:
            bad.append("ip_checksum")
        if struct.unpack("!H", b[6:8])[0] & 0x3FFF:
            bad.append("fragment")
            return finish(out, b)
        proto, l4 = b[9], b[ihl:total]
        src, dst = b[12:16], b[16:20]
    elif etype == 0x86DD:
        family = 6
        if len(b) < 40:
            bad.append("truncated")
            return finish(out, b)
        plen = struct.unpack("!H", b[4:6])[0]
        out.update(family=6, src=socket.inet_ntop(socket.AF_INET6, b[8:24]),
                   dst=socket.inet_ntop(socket.AF_INET6, b[24:40]), proto=b[6], len=40 + plen,
                   id=struct.unpack("!I", b[0:4])[0] & 0xFFFFF)
        if b[0] >> 4 != 6:
            bad.append("ip_version")
        if 40 + plen > len(b) or (len(b) > 40 + plen and len(b) > ETH_MIN_PAYLOAD):
            bad.append("ip_length")
            return finish(out, b)
        proto, p, end = b[6], 40, 40 + plen
        while proto in EXT or proto == 44:
            if p + 8 > end:
                bad.append("ipv6_extension")
                return finish(out, b)
            if proto == 44 and struct.unpack("!H", b[p + 2:p + 4])[0] & 0xFFF9:
                bad.append("fragment")  # an atomic fragment (offset 0, no more) is a whole packet
                return finish(out, b)
            hl = 8 if proto == 44 else (b[p + 1] + 2) * 4 if proto == 51 else (b[p + 1] + 1) * 8
            proto, p = b[p], p + hl
            if p > end:
                bad.append("ipv6_extension")
                return finish(out, b)
        out["proto"] = proto
        l4 = b[p:end]
        src, dst = b[8:24], b[24:40]
    else:
        return None
    if proto == 6:
        tcp(out, family, src, dst, l4)
    elif proto == 17:
        udp(out, family, src, dst, l4)
    elif proto in (1, 58):
        if len(l4) < 8:
            bad.append("truncated")
        else:
            out["icmpType"] = l4[0]
            s = ones_sum(l4) if proto == 1 else fold(ones_sum(l4) + pseudo_sum(family, src, dst, 58, len(l4)))
            if s != 0xFFFF:
                bad.append("icmp_checksum")
    return finish(out, b)


def tcp(out, family, src, dst, seg):
    bad = out["problems"]
    if len(seg) < 20:
        bad.append("truncated")
        return
    out["sport"], out["dport"] = struct.unpack("!HH", seg[:4])
    flags = seg[13]
    out["flags"] = "".join(c for i, c in enumerate("FSRPAUEC") if flags & (1 << i))
    doff = (seg[12] >> 4) * 4
    if doff < 20 or doff > len(seg):
        bad.append("tcp_data_offset")
        return
    ok, toa = tcp_options(seg[20:doff])
    out["toa"] = toa
    if not ok:
        bad.append("tcp_options")
    if fold(ones_sum(seg) + pseudo_sum(family, src, dst, 6, len(seg))) != 0xFFFF:
        field = struct.unpack("!H", seg[16:18])[0]
        seed = pseudo_sum(family, src, dst, 6, len(seg))
        partial = field == seed or {field, seed} == {0, 0xFFFF}
        bad.append("tcp_checksum_partial" if partial else "tcp_checksum")


def udp(out, family, src, dst, dgram):
    bad = out["problems"]
    if len(dgram) < 8:
        bad.append("truncated")
        return
    out["sport"], out["dport"], ulen, csum = struct.unpack("!HHHH", dgram[:8])
    if ulen != len(dgram):
        bad.append("udp_length")
        return
    if csum == 0:
        if family == 6:
            bad.append("udp6_zero_checksum")
        return
    if fold(ones_sum(dgram) + pseudo_sum(family, src, dst, 17, len(dgram))) != 0xFFFF:
        bad.append("udp_checksum")


def finish(out, b):
    if out["problems"]:
        out["hex"] = bytes(b).hex()
    return out


def main(path):
    records = []
    for pkt in rdpcap(path):
        r = audit(bytes(pkt))
        if r is not None:
            records.append(r)
    json.dump(records, sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    main(sys.argv[1])
