#!/usr/bin/python3
"""Fragment fixtures for lb/engine/reassembly_test.ts and engine_test.ts, built by scapy (an independent
implementation): each case is a whole datagram and the fragments scapy's fragment()/fragment6() cut it
into. Run: /usr/bin/python3 lb/engine/testdata/gen_frag_fixtures.py > lb/engine/testdata/frag_fixtures.json
"""
import json
import random

from scapy.all import (IP, TCP, UDP, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                       IPv6ExtHdrRouting, Raw, fragment, fragment6)

random.seed(9)
CLIENT, VIP, CLIENT6, VIP6 = "198.18.1.2", "198.18.0.100", "fd00:1::2", "fd00::100"


def payload(n):
    return bytes(random.getrandbits(8) for _ in range(n))


def v4(name, pkt, size):
    whole = IP(bytes(pkt))  # checksums and lengths filled
    frags = fragment(whole, fragsize=size)
    return {"name": name, "datagram": bytes(whole).hex(), "fragments": [bytes(f).hex() for f in frags]}


cases = [
    v4("v4_udp_4000", IP(src=CLIENT, dst=VIP, id=0x1234) / UDP(sport=40000, dport=53) / Raw(payload(4000)), 1480),
    v4("v4_tcp_3000", IP(src=CLIENT, dst=VIP, id=0x4321) /
       TCP(sport=40001, dport=80, flags="PA", seq=1000, ack=1, options=[("NOP", None), ("NOP", None),
                                                                       ("Timestamp", (1, 2))]) /
       Raw(payload(3000)), 1000),
    v4("v4_udp_small_frags", IP(src=CLIENT, dst=VIP, id=7) / UDP(sport=40002, dport=53) / Raw(payload(600)), 64),
]
for name, head, tail, size, fid in [
    ("v6_udp_4000", IPv6(src=CLIENT6, dst=VIP6), UDP(sport=40000, dport=53) / Raw(payload(4000)), 1280,
     0xabcdef01),
    ("v6_hbh_frag_dest_udp", IPv6(src=CLIENT6, dst=VIP6) / IPv6ExtHdrHopByHop(),
     IPv6ExtHdrDestOpt() / UDP(sport=40003, dport=53) / Raw(payload(3000)), 1280, 0x55),
    ("v6_routing_frag_tcp", IPv6(src=CLIENT6, dst=VIP6) / IPv6ExtHdrRouting(addresses=[], segleft=0),
     TCP(sport=40004, dport=80, flags="PA", seq=5, ack=6) / Raw(payload(2500)), 1280, 0x77),
]:
    # The datagram reassembly must yield: the same layers without the Fragment header.
    whole = bytes(head.copy() / tail.copy())
    frags = fragment6(head.copy() / IPv6ExtHdrFragment(id=fid) / tail.copy(), size)
    cases.append({"name": name, "datagram": whole.hex(), "fragments": [bytes(f).hex() for f in frags]})

print(json.dumps(cases, indent=1))
