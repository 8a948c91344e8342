#!/usr/bin/python3
"""Writes toa/testdata/saved_syns.json: SYNs as the kernel saves them (IP + TCP header, no payload), built
by scapy so toa/client_address_test.ts checks our decoder against an independent encoder.

Run with Debian's /usr/bin/python3 (python3-scapy): /usr/bin/python3 toa/testdata/gen_saved_syns.py
"""
import json
import os
import socket
import struct

from scapy.all import IP, IPv6, TCP


def toa4(port, addr):
    return (254, struct.pack("!H", port) + socket.inet_aton(addr))


def toa6(port, addr):
    return (254, struct.pack("!H", port) + socket.inet_pton(socket.AF_INET6, addr))


# Linux's own SYN options, as the gateway forwards them (timestamps removed, TOA added).
LINUX_OPTS = [("MSS", 1452), ("SAckOK", b""), ("NOP", None), ("WScale", 7)]

cases = {
    # The gateway's SYN toward the RS: local address 198.18.2.1, client 198.18.1.2:40000 in TOA.
    "v4_toa": (IP(src="198.18.2.1", dst="198.18.3.10") /
               TCP(sport=5000, dport=80, flags="S", seq=1, options=LINUX_OPTS + [toa4(40000, "198.18.1.2")]),
               {"family": 4, "address": "198.18.1.2", "port": 40000}),
    # IPv6 gateway: local fd00:2::1, client fd00:1::2 port 40001 in the 20-byte TOA.
    "v6_toa": (IPv6(src="fd00:2::1", dst="fd00:3::10") /
               TCP(sport=5001, dport=80, flags="S", seq=1, options=[toa6(40001, "fd00:1::2")] + LINUX_OPTS),
               {"family": 6, "address": "fd00:1::2", "port": 40001}),
    # An IPv4 header with options (IHL 6): the decoder must find TCP after them.
    "v4_ip_options_toa": (IP(src="198.18.2.1", dst="198.18.3.10", options=[b"\x01\x01\x01\x00"]) /
                          TCP(sport=5002, dport=80, flags="S", options=[toa4(1, "203.0.113.7")]),
                          {"family": 4, "address": "203.0.113.7", "port": 1}),
    # A plain Linux SYN from a host beside the RS: no TOA.
    "v4_no_toa": (IP(src="198.18.3.11", dst="198.18.3.10") /
                  TCP(sport=5003, dport=80, flags="S", options=LINUX_OPTS + [("Timestamp", (1, 0))]),
                  None),
    # Kind 254 with length 6: not TOA (dpvs and toa.ko only know 8 and 20).
    "v4_kind254_len6": (IP(src="198.18.2.1", dst="198.18.3.10") /
                        TCP(sport=5004, dport=80, flags="S", options=[(254, b"\x00\x01\x02\x03"), ("NOP", None),
                                                                      ("NOP", None)]),
                        None),
    # A wrong-length kind 254 before a valid TOA: skipped, the later one taken (as toa.ko does).
    "v4_bad_len_then_toa": (IP(src="198.18.2.1", dst="198.18.3.10") /
                            TCP(sport=5005, dport=80, flags="S",
                                options=[(254, b"\x00\x01\x02\x03"), toa4(40005, "198.18.1.5")] + LINUX_OPTS),
                            {"family": 4, "address": "198.18.1.5", "port": 40005}),
    # The IPv6 form in an IPv4 SYN: the gateway never changes family, so it is skipped.
    "v4_v6form": (IP(src="198.18.2.1", dst="198.18.3.10") /
                  TCP(sport=5006, dport=80, flags="S", options=[toa6(40006, "fd00:1::6")] + LINUX_OPTS),
                  None),
    # The IPv6 form first, then the IPv4 form, in an IPv4 SYN: the IPv4 one is taken.
    "v4_v6form_then_toa": (IP(src="198.18.2.1", dst="198.18.3.10") /
                           TCP(sport=5007, dport=80, flags="S",
                               options=[toa6(40007, "fd00:1::7"), toa4(40007, "198.18.1.7")]),
                           {"family": 4, "address": "198.18.1.7", "port": 40007}),
    # The IPv4 form in an IPv6 SYN: skipped likewise.
    "v6_v4form": (IPv6(src="fd00:2::1", dst="fd00:3::10") /
                  TCP(sport=5008, dport=80, flags="S", options=[toa4(40008, "198.18.1.8")] + LINUX_OPTS),
                  None),
    # Port 0 is a port like any other: announced as it is, not taken for "no TOA".
    "v4_toa_port0": (IP(src="198.18.2.1", dst="198.18.3.10") /
                     TCP(sport=5009, dport=80, flags="S", options=LINUX_OPTS + [toa4(0, "198.18.1.9")]),
                     {"family": 4, "address": "198.18.1.9", "port": 0}),
}

# Kind-254 options the decoder must skip, per case (toa/client_address_test.ts checks the count).
MALFORMED = {"v4_kind254_len6": 1, "v4_bad_len_then_toa": 1, "v4_v6form": 1, "v4_v6form_then_toa": 1,
             "v6_v4form": 1}

out = {}
for name, (pkt, want) in cases.items():
    raw = bytes(pkt)
    out[name] = {"hex": raw.hex(), "toa": want, "malformed": MALFORMED.get(name, 0), "summary": pkt.summary()}

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "saved_syns.json")
with open(path, "w") as f:
    json.dump(out, f, indent=2, sort_keys=True)
    f.write("\n")
print(path)
