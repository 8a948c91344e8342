#!/usr/bin/python3
"""Echo fixtures from scapy (an implementation independent of ours): request -> expected reply, or -> drop.

Writes lb/echo/testdata/echo_fixtures.json (one JSON object: {"cases": [{"name", "request", "reply" or null,
"counter"}]}, packets as hex), which lb/echo/echo_test.ts reads; regenerate with
`/usr/bin/python3 lb/echo/testdata/gen_echo_fixtures.py` (needs python3-scapy).
"""
import json
import os
from scapy.all import IP, IPv6, ICMP, ICMPv6EchoRequest, ICMPv6EchoReply, UDP, Raw, ICMPv6ND_RS


def hx(p):
    return bytes(p).hex()


cases = []


def add(name, req, reply, counter):
    cases.append({"name": name, "request": hx(req), "reply": hx(reply) if reply is not None else None,
                  "counter": counter})


pay = bytes(range(56))
add("icmp4 echo, DF, tos",
    IP(src="198.18.1.2", dst="198.18.0.100", ttl=63, id=0x1234, flags="DF", tos=0x10) / ICMP(id=7, seq=1) / pay,
    IP(src="198.18.0.100", dst="198.18.1.2", ttl=64, id=0x1234, flags="DF", tos=0x10) / ICMP(type=0, id=7, seq=1) / pay,
    "icmp4")
add("icmp6 echo",
    IPv6(src="fd00:1::2", dst="fd00::100", hlim=63, fl=0x12345) / ICMPv6EchoRequest(id=9, seq=2, data=pay),
    IPv6(src="fd00::100", dst="fd00:1::2", hlim=64, fl=0x12345) / ICMPv6EchoReply(id=9, seq=2, data=pay),
    "icmp6")
add("udp4 odd length",
    IP(src="198.18.1.2", dst="198.18.0.100", ttl=63, id=1) / UDP(sport=40000, dport=7) / b"abc",
    IP(src="198.18.0.100", dst="198.18.1.2", ttl=64, id=1) / UDP(sport=7, dport=40000) / b"abc",
    "udp4")
udp0 = IP(src="198.18.1.2", dst="198.18.0.100", ttl=63, id=2) / UDP(sport=1, dport=2, chksum=0) / b"zero"
add("udp4 without checksum stays without",
    udp0, IP(src="198.18.0.100", dst="198.18.1.2", ttl=64, id=2) / UDP(sport=2, dport=1, chksum=0) / b"zero", "udp4")
add("udp6",
    IPv6(src="fd00:1::2", dst="fd00::100", hlim=63) / UDP(sport=5353, dport=9000) / (b"x" * 1201),
    IPv6(src="fd00::100", dst="fd00:1::2", hlim=64) / UDP(sport=9000, dport=5353) / (b"x" * 1201),
    "udp6")
add("udp4 bad checksum", IP(src="198.18.1.2", dst="198.18.0.100") / UDP(sport=1, dport=2, chksum=0xdead) / b"q",
    None, "dropChecksum")
add("icmp4 bad ip header checksum", IP(src="198.18.1.2", dst="198.18.0.100", chksum=0xbeef) / ICMP(), None,
    "dropChecksum")
add("icmp4 fragment", IP(src="198.18.1.2", dst="198.18.0.100", flags="MF") / ICMP() / pay, None, "dropFragment")
add("icmp4 to broadcast", IP(src="198.18.1.2", dst="255.255.255.255") / ICMP(), None, "dropMulticast")
add("icmp6 router solicitation from the kernel", IPv6(src="fd00::1", dst="ff02::2") / ICMPv6ND_RS(), None,
    "dropMulticast")
add("icmp4 echo reply is not answered", IP(src="198.18.1.2", dst="198.18.0.100") / ICMP(type=0), None,
    "dropUnsupported")
req = bytes(IP(src="198.18.1.2", dst="198.18.0.100") / ICMP() / pay)
cases.append({"name": "truncated icmp4", "request": req[:30].hex(), "reply": None, "counter": "dropMalformed"})
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "echo_fixtures.json")
with open(out, "w") as f:
    json.dump({"cases": cases}, f, indent=1)
    f.write("\n")
print(f"wrote {len(cases)} cases to {out}")
