#!/usr/bin/python3
"""Writes toa/testdata/walker_cases.json: IP packets (the ACK or SYN a real server receives) whose TCP
options the eBPF option walker (toa/bpf/toa_walker.ts) is run over, built by scapy so the walker is checked
against an independent encoder. Each case: the packet in hex, the TOA the walker must take (or null), and
how many malformed options it must count.

Run with Debian's /usr/bin/python3 (python3-scapy): /usr/bin/python3 toa/testdata/gen_walker_cases.py
"""
import json
import os
import socket
import struct

from scapy.all import IP, IPv6, TCP, Raw


def toa4(port, addr, kind=254):
    return (kind, struct.pack("!H", port) + socket.inet_aton(addr))


def toa6(port, addr, kind=254):
    return (kind, struct.pack("!H", port) + socket.inet_pton(socket.AF_INET6, addr))


def v4(opts, flags="A"):
    return IP(src="198.18.2.1", dst="198.18.3.10") / TCP(sport=5000, dport=80, flags=flags, options=opts)


def v6(opts, flags="A"):
    return IPv6(src="fd00:2::1", dst="fd00:3::10") / TCP(sport=5000, dport=80, flags=flags, options=opts)


def raw4(opt_bytes):
    """An IPv4 ACK whose option bytes are given raw (scapy would repair a broken list)."""
    assert len(opt_bytes) % 4 == 0
    tcp = bytes(TCP(sport=5000, dport=80, flags="A", dataofs=5 + len(opt_bytes) // 4)) + opt_bytes
    return IP(src="198.18.2.1", dst="198.18.3.10", proto=6) / Raw(tcp)


C4 = {"family": 4, "address": "198.18.1.2", "port": 40000}
C6 = {"family": 6, "address": "fd00:1::2", "port": 40001}
SACK = ("SAck", (1000, 2000))
TS = ("Timestamp", (1, 2))

cases = {
    "v4 TOA first": (v4([toa4(40000, "198.18.1.2"), ("MSS", 1452), ("SAckOK", b""), ("NOP", None), ("WScale", 7)],
                        "S"), C4, 0),
    "v4 TOA last": (v4([("MSS", 1452), ("SAckOK", b""), ("NOP", None), ("WScale", 7), toa4(40000, "198.18.1.2")],
                       "S"), C4, 0),
    "v4 TOA among SACK and NOPs": (v4([("NOP", None), ("NOP", None), SACK, toa4(40000, "198.18.1.2"),
                                       ("NOP", None), ("NOP", None), TS]), C4, 0),
    "v4 no options": (v4([]), None, 0),
    "v4 options without TOA": (v4([("NOP", None), ("NOP", None), TS]), None, 0),
    "v4 wrong length (254 len 6)": (v4([(254, b"\x00\x01\x02\x03"), ("NOP", None), ("NOP", None)]), None, 1),
    "v4 wrong length, then a TOA": (v4([(254, b"\x00\x01\x02\x03"), toa4(40000, "198.18.1.2")]), C4, 1),
    "v4 the IPv6 form (254 len 20), then the IPv4 one": (v4([toa6(1, "fd00::9"), toa4(40000, "198.18.1.2")]), C4,
                                                         1),
    "v4 two TOAs: the first wins": (v4([toa4(40000, "198.18.1.2"), toa4(1, "6.6.6.6")]), C4, 0),
    "v4 EOL before a TOA": (raw4(b"\x01\x00\xfe\x08\x9c\x40\xc6\x12\x01\x02\x00\x00"), None, 0),
    "v4 truncated: a TOA running past the header": (raw4(b"\x01\x01\xfe\x08"), None, 1),
    "v4 TOA, then an option running past the header": (raw4(b"\xfe\x08\x9c\x40\xc6\x12\x01\x02\x02\x0a\x05\xb4"),
                                                       None, 1),
    "v4 TOA, then a length below 2": (raw4(b"\xfe\x08\x9c\x40\xc6\x12\x01\x02\x05\x01\x00\x00"), None, 1),
    "v4 kind 252 (a form the default set lacks)": (v4([toa4(40000, "198.18.1.2", kind=252)]), None, 0),
    "v6 TOA kind 254 (dpvs)": (v6([toa6(40001, "fd00:1::2"), ("MSS", 1432), ("NOP", None), ("WScale", 7)], "S"),
                               C6, 0),
    "v6 TOA kind 253 (Alibaba/Huawei)": (v6([("NOP", None), ("NOP", None), toa6(40001, "fd00:1::2", kind=253)]),
                                         C6, 0),
    "v6 both kinds: the first wins": (v6([toa6(40001, "fd00:1::2", kind=253), toa6(2, "fd00::bad")]), C6, 0),
    "v6 the IPv4 form (254 len 8): malformed": (v6([toa4(40000, "198.18.1.2")]), None, 1),
    "v6 no options": (v6([]), None, 0),
}

out = {}
for name, (pkt, toa, malformed) in cases.items():
    out[name] = {"hex": bytes(pkt).hex(), "toa": toa, "malformed": malformed, "summary": pkt.summary()}
# A packet cut inside its TCP options: the header says 32 bytes, the packet holds 24 of them.
full = bytes(v4([("NOP", None), ("NOP", None), SACK, toa4(40000, "198.18.1.2")]))
out["v4 packet cut inside the options"] = {"hex": full[:20 + 24].hex(), "toa": None, "malformed": 1,
                                           "summary": "cut"}

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "walker_cases.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
    f.write("\n")
print(f"wrote {len(out)} cases to {path}")
