#!/usr/bin/python3
"""Sends a seeded mix of malformed Ethernet frames at a gateway, for the wire-level fuzz e2e test
(tests/e2e_malformed_test.ts). scapy builds each frame (an implementation independent of ours), then the
bytes are bent where scapy would fix them (lengths, checksums, header lengths) and the frames go out as
they are, through an AF_PACKET socket: an L3 raw socket would let the kernel rewrite the IPv4 total
length and header checksum.

Classes (IPv4 and IPv6 where the idea exists): truncated headers, IHL / data-offset / total-length /
payload-length lies, bad IP and TCP/UDP/ICMP checksums, TCP option soups (zero-length options, lengths
running past the header, many NOPs, forged option 254 with right and wrong lengths), odd flag combinations,
fragments, IPv4 options and IPv6 extension chains, martian-like sources, random protocols, ICMP errors
quoting garbage. Every address is in 198.18.0.0/15 or fd00::/8. Source ports stay below 30000, away from
the client kernel's ephemeral ports, so no frame can hit a connection of the test's working client.

Frame 0 is always an all-zero echo request to the VIP (see echo_all_zero). Each frame carries its index:
the IPv4 identification field is 0x8000 | index, the IPv6 flow label 0x80000 | index, so a packet seen
later can be traced back to the frame (MANIFEST lists every frame's hex).

Usage: malformed_frames.py --iface eth0 --dst-mac MAC --config JSON --seed N --count N --manifest FILE
  --config  {"vip4", "vip6", "udpVip4", "udpVip6", "local4", "local6", "client4", "client6", "rs4",
             "rs6", "gw4", "gw6", "port", "udpPort"}
Prints one JSON summary: frames sent per class, "tcp|udp address port" of every segment sent, the forged
TOA contents, and the number of frames whose IP layer is sound but transport layer is certainly unusable
("gatewayDrops": the gateway namespace's kernel forwards them, the gateway must drop them).
"""
import argparse
import ipaddress
import json
import random
import socket
import struct
import sys
import time

from scapy.all import (ICMP, IP, TCP, UDP, Ether, ICMPv6DestUnreach, ICMPv6EchoRequest, ICMPv6PacketTooBig,
                       ICMPv6ParamProblem, ICMPv6TimeExceeded, IPv6, IPv6ExtHdrDestOpt,
                       IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, Raw, get_if_hwaddr)

# Forged TOA contents: addresses never used as a source, so a TOA naming one was taken from a client.
FORGED4 = ["198.19.254.1", "198.19.254.2"]
FORGED6 = ["fd00:254::1", "fd00:254::2"]
MAX_COUNT = 5000
BATCH = 100


def toa_data(port, addr):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    return struct.pack("!H", port) + socket.inet_pton(fam, addr)


class Gen:
    def __init__(self, cfg, seed):
        self.c = cfg
        self.r = random.Random(seed)

    # -- addresses and ports ------------------------------------------------------------------------
    def sport(self):
        return self.r.randint(1024, 29999)

    def src4(self):
        """The client's own address most of the time, else a spoofed one inside 198.18.0.0/15."""
        x = self.r.random()
        if x < 0.6:
            return self.c["client4"]
        if x < 0.9:
            a = "198.19.%d.%d" % (self.r.randint(0, 200), self.r.randint(1, 254))
        else:
            # martian-like: the VIP, a local address, the real server, the gateway's own, broadcast, net 0
            a = self.r.choice([self.c["vip4"], self.c["local4"], self.c["rs4"], self.c["gw4"],
                               "198.18.1.255", "198.18.0.0", "198.19.255.255"])
        return a

    def src6(self):
        x = self.r.random()
        if x < 0.6:
            return self.c["client6"]
        if x < 0.9:
            a = "fd00:99::%x" % self.r.randint(1, 0xffff)
        else:
            a = self.r.choice([self.c["vip6"], self.c["local6"], self.c["rs6"], self.c["gw6"], "fd00:1::",
                               "fd00::"])
        return a

    def dst4(self, proto):
        """(address, port) at the VIP (service, or a port without one) or a local address."""
        x = self.r.random()
        if proto == "udp":
            if x < 0.7:
                return self.c["udpVip4"], self.c["udpPort"]
            return (self.c["local4"], self.r.randint(1, 65535)) if x < 0.9 else (self.c["vip4"], 81)
        if x < 0.7:
            return self.c["vip4"], self.c["port"]
        return (self.c["local4"], self.r.randint(1, 65535)) if x < 0.9 else (self.c["vip4"], 81)

    def dst6(self, proto):
        x = self.r.random()
        if proto == "udp":
            if x < 0.7:
                return self.c["udpVip6"], self.c["udpPort"]
            return (self.c["local6"], self.r.randint(1, 65535)) if x < 0.9 else (self.c["vip6"], 81)
        if x < 0.7:
            return self.c["vip6"], self.c["port"]
        return (self.c["local6"], self.r.randint(1, 65535)) if x < 0.9 else (self.c["vip6"], 81)

    # -- building blocks ----------------------------------------------------------------------------
    def l3(self, fam, idx, proto):
        """IP header and (address, port) of the destination, carrying the frame index."""
        if fam == 4:
            d, p = self.dst4(proto)
            return IP(src=self.src4(), dst=d, id=0x8000 | idx, ttl=64), p
        d, p = self.dst6(proto)
        return IPv6(src=self.src6(), dst=d, fl=0x80000 | idx, hlim=64), p

    def options(self):
        """A TCP option soup: well-formed most of the time, malformed otherwise."""
        r = self.r
        out = b""
        for _ in range(r.randint(1, 6)):
            k = r.random()
            if k < 0.2:
                out += b"\x01" * r.randint(1, 12)  # many NOPs
            elif k < 0.35:
                fam = r.choice([4, 6])
                addr = r.choice(FORGED4 if fam == 4 else FORGED6)
                data = toa_data(r.randint(1, 65535), addr)
                if r.random() < 0.3:  # wrong length: cut or padded
                    data = data[:r.randint(0, len(data) - 1)] if r.random() < 0.5 else data + b"\x00" * 3
                out += bytes([254, len(data) + 2]) + data
            elif k < 0.5:
                out += b"\x02\x04" + struct.pack("!H", r.choice([0, 1, 536, 1460, 9000, 65535]))
            elif k < 0.6:
                out += b"\x08\x0a" + r.randbytes(8)  # timestamp
            elif k < 0.68:
                out += b"\x04\x02"  # SACK permitted
            elif k < 0.74:
                out += b"\x03\x03" + bytes([r.randint(0, 255)])  # window scale, any shift
            elif k < 0.8:
                out += bytes([r.randint(2, 253), 0])  # zero length
            elif k < 0.86:
                out += bytes([r.choice([2, 8, 254, 30]), 1])  # length 1
            elif k < 0.92:
                out += bytes([r.randint(2, 255), r.randint(12, 60)]) + r.randbytes(r.randint(0, 6))  # past
            else:
                out += b"\x00" + r.randbytes(r.randint(0, 8))  # EOL, then junk
        return out[:40]

    def tcp(self, sport, dport, flags="S", opts=b"", payload=b""):
        """A TCP layer with raw option bytes (padded to whole words); scapy sums it when it is built."""
        opts += b"\x00" * ((-len(opts)) % 4)
        seg = TCP(sport=sport, dport=dport, flags=flags, seq=self.r.getrandbits(32),
                  ack=self.r.getrandbits(32) if "A" in flags else 0, window=self.r.randint(0, 65535),
                  dataofs=5 + len(opts) // 4)
        return seg / Raw(opts + payload) if opts or payload else seg

    # -- frame classes: each returns (class, IP-layer bytes, certainly dropped by the gateway) --------
    def tcp_opts(self, fam, idx):
        ip, port = self.l3(fam, idx, "tcp")
        flags = self.r.choice(["S", "S", "S", "SE", "SEC", "A", "PA"])
        payload = self.r.randbytes(self.r.choice([0, 0, 7]))
        pkt = ip / self.tcp(self.sport(), port, flags, self.options(), payload)
        return "tcp_option_soup", bytes(pkt), False

    def tcp_flags(self, fam, idx):
        ip, port = self.l3(fam, idx, "tcp")
        flags = self.r.choice(["SF", "SR", "", "FPU", "FSRPAUEC", "SA", "A", "R", "F", "RA", "U", "SFR"])
        return "tcp_odd_flags", bytes(ip / self.tcp(self.sport(), port, flags)), False

    def tcp_bad_checksum(self, fam, idx):
        ip, port = self.l3(fam, idx, "tcp")
        # Ports no other frame uses (sport() stays below 30000, clients' own from 32768): a bad checksum on a
        # connection an earlier frame made would pass through it, as every established segment's does (the
        # gateway updates checksums, it checks only what creates state) and the server's kernel drop it.
        seg = self.tcp(self.r.randint(30000, 32767), port, self.r.choice(["S", "S", "A", "R", "PA"]), self.options())
        b = bytearray(bytes(ip / seg))
        hl = 20 if fam == 4 else 40
        b[hl + 16] ^= 1 + self.r.randint(0, 254)
        return "tcp_bad_checksum", bytes(b), False

    def tcp_data_offset(self, fam, idx):
        ip, port = self.l3(fam, idx, "tcp")
        b = bytearray(bytes(ip / self.tcp(self.sport(), port, "S", self.r.randbytes(self.r.choice([0, 4])))))
        hl = 20 if fam == 4 else 40
        seglen = len(b) - hl
        # below 5 words, or past the segment
        doff = self.r.choice([0, 1, 4, (seglen // 4) + 1, 15])
        b[hl + 12] = (doff << 4) | (b[hl + 12] & 0x0f)
        return "tcp_data_offset_lie", fix_l4(b, fam), True

    def truncated_l4(self, fam, idx):
        proto = self.r.choice(["tcp", "udp", "icmp"])
        ip, port = self.l3(fam, idx, proto)
        n = self.r.randint(0, 19 if proto == "tcp" else 7)
        if proto == "tcp":
            pkt = ip / Raw(bytes(self.tcp(self.sport(), port, "S"))[:n])
            if fam == 4:
                pkt[IP].proto = 6
            else:
                pkt[IPv6].nh = 6
        elif proto == "udp":
            pkt = ip / Raw(bytes(UDP(sport=self.sport(), dport=port))[:n])
            if fam == 4:
                pkt[IP].proto = 17
            else:
                pkt[IPv6].nh = 17
        else:
            pkt = ip / Raw(b"\x03\x03\x00\x00\x00\x00\x00\x00"[:n])
            if fam == 4:
                pkt[IP].proto = 1
            else:
                pkt[IPv6].nh = 58
        return "truncated_transport", bytes(pkt), True

    def truncated_ip(self, fam, idx):
        ip, port = self.l3(fam, idx, "tcp")
        b = bytes(ip / self.tcp(self.sport(), port, "S"))
        return "truncated_ip_header", b[:self.r.randint(1, (20 if fam == 4 else 40) - 1)], False

    def ihl_lie(self, fam, idx):
        if fam == 6:
            return self.v6_ext_chain(fam, idx)
        ip, port = self.l3(fam, idx, "tcp")
        b = bytearray(bytes(ip / self.tcp(self.sport(), port, "S")))
        b[0] = 0x40 | self.r.choice([0, 1, 3, 4, 6, 9, 15])
        return "ihl_lie", fix_ip4(b), False

    def length_lie(self, fam, idx):
        ip, port = self.l3(fam, idx, "tcp")
        seg = self.tcp(self.sport(), port, "S", b"\x02\x04\x05\xb4", self.r.randbytes(16))
        b = bytearray(bytes(ip / seg))
        at, base = (2, 0) if fam == 4 else (4, 40)
        true_len = len(b) - base
        lie = self.r.choice([true_len + self.r.randint(1, 600), max(0, true_len - self.r.randint(1, 30)), 0,
                             0xffff])
        b[at:at + 2] = struct.pack("!H", lie)
        return "ip_length_lie", fix_ip4(b) if fam == 4 else bytes(b), False

    def bad_ip_checksum(self, fam, idx):
        if fam == 6:
            return self.tcp_bad_checksum(fam, idx)
        ip, port = self.l3(fam, idx, "tcp")
        b = bytearray(bytes(ip / self.tcp(self.sport(), port, "S")))
        b[10] ^= 1 + self.r.randint(0, 254)
        return "ip_bad_checksum", bytes(b), False

    def udp_mix(self, fam, idx):
        ip, port = self.l3(fam, idx, "udp")
        pkt = ip / UDP(sport=self.sport(), dport=port) / Raw(self.r.randbytes(self.r.randint(0, 40)))
        b = bytearray(bytes(pkt))
        hl = 20 if fam == 4 else 40
        k = self.r.random()
        if k < 0.35:  # UDP length lies: past the datagram, short of it, below the header
            ulen = len(b) - hl
            lie = self.r.choice([ulen + self.r.randint(1, 100), 0, 7, ulen - 1 if ulen > 8 else ulen + 3])
            b[hl + 4:hl + 6] = struct.pack("!H", lie)
            return "udp_length_lie", fix_l4(b, fam, udp=True), True
        if k < 0.65:
            b[hl + 6] ^= 1 + self.r.randint(0, 254)
            if b[hl + 6] == 0 and b[hl + 7] == 0:
                b[hl + 7] = 1
            return "udp_bad_checksum", bytes(b), False
        if k < 0.85:
            b[hl + 6:hl + 8] = b"\x00\x00"  # no checksum: legal in IPv4, not in IPv6
            return "udp_zero_checksum", bytes(b), False
        return "udp_valid", bytes(b), False

    def fragment(self, fam, idx):
        ip, port = self.l3(fam, idx, self.r.choice(["tcp", "udp"]))
        l4 = bytes(self.tcp(self.sport(), port, "S", b"\x02\x04\x05\xb4", self.r.randbytes(32)))
        r = self.r
        if fam == 4:
            k = r.random()
            if k < 0.4:  # first fragment: MF, offset 0, cut inside or after the TCP header
                ip.flags, ip.frag, data = 1, 0, l4[:r.choice([8, 16, 24])]
            elif k < 0.8:  # a later fragment, possibly overlapping the header
                ip.flags, ip.frag, data = r.choice([0, 1]), r.choice([1, 2, 3, 100]), l4[:24]
            else:  # tiny first fragment: 8 bytes, the ports only
                ip.flags, ip.frag, data = 1, 0, l4[:8]
            ip.proto = 6
            return "ip_fragment", bytes(ip / Raw(data)), True
        off = r.choice([0, 0, 1, 3, 100])
        m = 1 if off == 0 or r.random() < 0.5 else 0
        data = l4[:r.choice([8, 16, 24])] if off == 0 else l4[:24]
        frag = IPv6ExtHdrFragment(nh=6, offset=off, m=m, id=r.getrandbits(32))
        return "ip_fragment", bytes(ip / frag / Raw(data)), True

    def ip_options(self, fam, idx):
        if fam == 6:
            return self.v6_ext_chain(fam, idx)
        ip, port = self.l3(fam, idx, "tcp")
        r = self.r
        k = r.random()
        if k < 0.5:  # well-formed: NOP, router alert, EOL
            opts = b"\x01\x94\x04\x00\x00\x00"
        else:  # soup: unknown types, lengths past the header, zero lengths
            opts = bytes([r.choice([0x44, 0x83, 0x89, 0x07, 0x99, 0x01]), r.choice([0, 1, 3, 39, 4])])
            opts += r.randbytes(r.choice([2, 6, 10]))
        opts += b"\x00" * ((-len(opts)) % 4)
        b = bytearray(bytes(ip / self.tcp(self.sport(), port, "S")))
        b[20:20] = opts
        b[0] = 0x40 | (5 + len(opts) // 4)
        b[2:4] = struct.pack("!H", len(b))
        return "ip_options", fix_ip4(b), False

    def v6_ext_chain(self, fam, idx):
        ip, port = self.l3(6, idx, "tcp")
        r = self.r
        seg = self.tcp(self.sport(), port, "S", b"\x02\x04\x05\xa0")
        k = r.random()
        if k < 0.15:
            pkt = ip / IPv6ExtHdrDestOpt() / seg
        elif k < 0.3:  # hop-by-hop: the gateway namespace's kernel reads it on the way
            pkt = ip / IPv6ExtHdrHopByHop() / seg
        elif k < 0.5:
            pkt = ip / IPv6ExtHdrRouting(type=r.choice([0, 2, 4]), segleft=0, addresses=[]) / seg
        elif k < 0.7:
            pkt = ip
            for _ in range(r.choice([9, 10, 12])):  # more than the gateway walks
                pkt = pkt / IPv6ExtHdrDestOpt()
            pkt = pkt / seg
        elif k < 0.85:  # atomic fragment: offset 0, no more fragments
            pkt = ip / IPv6ExtHdrFragment(nh=6, offset=0, m=0, id=r.getrandbits(32)) / seg
        else:  # an extension header whose length runs past the packet
            b = bytearray(bytes(ip / IPv6ExtHdrDestOpt() / seg))
            b[41] = r.choice([20, 100, 255])
            return "ipv6_extension_headers", bytes(b), False
        return "ipv6_extension_headers", bytes(pkt), False

    def protocol(self, fam, idx):
        ip, _ = self.l3(fam, idx, "tcp")
        p = self.r.choice([0, 2, 4, 41, 47, 50, 51, 132, 136, 253, 254, 255])
        if fam == 6 and p in (0, 41, 50, 51):  # extension headers / tunnels: keep it a plain payload
            p = 253
        if fam == 4:
            ip.proto = p
        else:
            ip.nh = p
        return "random_protocol", bytes(ip / Raw(self.r.randbytes(self.r.randint(0, 64)))), True

    def icmp_error(self, fam, idx):
        r = self.r
        ip, port = self.l3(fam, idx, "tcp")
        k = r.random()
        if fam == 4:
            ip.proto = 1
            quote_ip = IP(src=ip.dst, dst=r.choice([self.c["client4"], "198.19.7.7", self.c["rs4"]]))
            quote = bytes(quote_ip / TCP(sport=port if r.random() < 0.5 else r.randint(1, 65535),
                                         dport=self.sport(), flags="SA"))
            if k < 0.3:
                quote = r.randbytes(r.randint(0, 40))  # garbage
            elif k < 0.6:
                quote = quote[:r.randint(0, 27)]  # cut inside the quoted IP or TCP header
            elif k < 0.8:
                q = bytearray(quote)
                q[0] = 0x40 | r.choice([0, 2, 15])  # quoted IHL lie
                quote = bytes(q)
            t, c = r.choice([(3, 3), (3, 4), (3, 1), (11, 0), (12, 0), (4, 0), (5, 1)])
            pkt = ip / ICMP(type=t, code=c) / Raw(quote)
            b = bytearray(bytes(pkt))
            if r.random() < 0.2:
                b[22] ^= 0x5a  # bad ICMP checksum
            return "icmp_error_garbage", bytes(b), False
        quote_ip = IPv6(src=ip.dst, dst=r.choice([self.c["client6"], "fd00:99::7", self.c["rs6"]]))
        quote = bytes(quote_ip / TCP(sport=port, dport=self.sport(), flags="SA"))
        if k < 0.3:
            quote = r.randbytes(r.randint(0, 60))
        elif k < 0.6:
            quote = quote[:r.randint(0, 47)]
        err = r.choice([ICMPv6DestUnreach(code=4), ICMPv6PacketTooBig(mtu=r.choice([0, 68, 1280])),
                        ICMPv6TimeExceeded(), ICMPv6ParamProblem(ptr=6)])
        b = bytearray(bytes(ip / err / Raw(quote)))
        if r.random() < 0.2:
            b[42] ^= 0x5a
        return "icmp_error_garbage", bytes(b), False

    def icmp_other(self, fam, idx):
        ip, _ = self.l3(fam, idx, "tcp")
        r = self.r
        if fam == 4:
            ip.proto = 1
            t = r.choice([8, 8, 13, 15, 17, 42, 200])  # echo, timestamp, info, mask, extended echo, junk
            pkt = ip / ICMP(type=t, code=r.choice([0, 0, 9])) / Raw(r.randbytes(r.randint(0, 64)))
        else:
            t = r.choice([128, 128, 130, 139, 200])  # echo, MLD query, node info, junk
            pkt = ip / ICMPv6EchoRequest(type=t) / Raw(r.randbytes(r.randint(0, 64)))
        return "icmp_other", bytes(pkt), False

    def echo_all_zero(self, fam, idx):
        """An echo request from the client whose message is all zero but for its type (id 0, seq 0, no
        data): the one ICMP message whose reply must carry checksum 0xffff, which an incremental update
        from the request's 0xf7ff gets wrong (0x0000). Always frame 0, so every run has one."""
        ip = IP(src=self.c["client4"], dst=self.c["vip4"], id=0x8000 | idx, ttl=64)
        return "icmp_echo_all_zero", bytes(ip / ICMP(type=8, code=0, id=0, seq=0)), False

    def bad_version(self, fam, idx):
        ip, port = self.l3(fam, idx, "tcp")
        b = bytearray(bytes(ip / self.tcp(self.sport(), port, "S")))
        b[0] = (self.r.choice([0, 5, 7, 15] + ([6] if fam == 4 else [4])) << 4) | (b[0] & 0x0f)
        return "ip_bad_version", bytes(b), False

    def martian_syn(self, fam, idx):
        """A well-formed SYN from a spoofed source: the gateway may take it, and its TOA names that source."""
        ip, port = self.l3(fam, idx, "tcp")
        if fam == 4:
            ip.src = self.r.choice(["198.19.%d.%d" % (self.r.randint(0, 200), self.r.randint(1, 254)),
                                    self.c["vip4"], self.c["local4"], self.c["rs4"]])
        else:
            ip.src = self.r.choice(["fd00:99::%x" % self.r.randint(1, 0xffff), self.c["vip6"],
                                    self.c["local6"], self.c["rs6"]])
        return "martian_source_syn", bytes(ip / self.tcp(self.sport(), port, "S", b"\x02\x04\x05\xb4")), False


def fold(s):
    while s > 0xffff:
        s = (s & 0xffff) + (s >> 16)
    return s


def fix_ip4(b):
    """Recomputes the IPv4 header checksum over what the IHL claims (within the bytes present)."""
    ihl = (b[0] & 0x0f) * 4
    if ihl < 20 or ihl > len(b):
        ihl = 20
    b[10:12] = b"\x00\x00"
    h = bytes(b[:ihl])
    s = fold(sum(struct.unpack("!%dH" % (ihl // 2), h)))
    b[10:12] = struct.pack("!H", (~s) & 0xffff)
    return bytes(b)


def fix_l4(b, fam, udp=False):
    """Recomputes the TCP/UDP checksum over the whole segment (a header lie, not a checksum error)."""
    hl = 20 if fam == 4 else 40
    seg = bytearray(b[hl:])
    seg[6 if udp else 16:8 if udp else 18] = b"\x00\x00"
    if fam == 4:
        ph = b[12:20] + struct.pack("!BBH", 0, 17 if udp else 6, len(seg))
    else:
        ph = b[8:40] + struct.pack("!I3xB", len(seg), 17 if udp else 6)
    data = ph + seg + (b"\x00" if len(seg) % 2 else b"")
    s = (~fold(sum(struct.unpack("!%dH" % (len(data) // 2), data)))) & 0xffff
    if udp and s == 0:
        s = 0xffff
    at = hl + (6 if udp else 16)
    out = bytearray(b)
    out[at:at + 2] = struct.pack("!H", s)
    return bytes(out)


def main():
    ap = argparse.ArgumentParser(description="send seeded malformed frames")
    ap.add_argument("--iface", required=True)
    ap.add_argument("--dst-mac", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--max-seconds", type=float, default=20.0)
    a = ap.parse_args()
    cfg = json.loads(a.config)
    for k, v in cfg.items():
        if isinstance(v, str) and not in_test_space(v):
            sys.exit(f"address {k}={v} outside 198.18.0.0/15 and fd00::/8")
    count = max(1, min(a.count, MAX_COUNT))
    g = Gen(cfg, a.seed)
    classes = [g.tcp_opts, g.tcp_opts, g.tcp_flags, g.tcp_bad_checksum, g.tcp_data_offset, g.truncated_l4,
               g.truncated_ip, g.ihl_lie, g.length_lie, g.bad_ip_checksum, g.udp_mix, g.udp_mix, g.fragment,
               g.ip_options, g.protocol, g.icmp_error, g.icmp_error, g.icmp_other, g.bad_version,
               g.martian_syn]
    src_mac = get_if_hwaddr(a.iface)
    frames = []
    sent = {}
    certain = 0
    sources = set()
    with open(a.manifest, "w") as mf:
        for i in range(count):
            fam = 4 if g.r.random() < 0.55 or i == 0 else 6
            cls, l3, dropped = g.r.choice(classes)(fam, i) if i > 0 else g.echo_all_zero(fam, i)
            check_addresses(l3, fam)
            eth = bytes(Ether(src=src_mac, dst=a.dst_mac, type=0x0800 if fam == 4 else 0x86DD))
            frames.append(eth + l3)
            key = f"{cls}/v{fam}"
            sent[key] = sent.get(key, 0) + 1
            certain += dropped
            mf.write(json.dumps({"i": i, "class": key, "hex": l3.hex()}) + "\n")
            sources.update(l4_source(l3, fam))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    t0 = time.monotonic()
    n = 0
    for off in range(0, len(frames), BATCH):
        if time.monotonic() - t0 > a.max_seconds:
            break
        for f in frames[off:off + BATCH]:
            s.send(f)
            n += 1
        time.sleep(0.1)  # paced: a busy 2-core box, and a client that must keep working
    s.close()
    print(json.dumps({
        "seed": a.seed,
        "built": len(frames),
        "sent": n,
        "seconds": round(time.monotonic() - t0, 2),
        "classes": sent,
        "gatewayDrops": certain if n == len(frames) else None,
        "sources": sorted(sources),
        "forged": FORGED4 + FORGED6,
    }))


def l4_source(l3, fam):
    """"tcp|udp address port" of a frame's TCP segment or UDP datagram, read from the bytes as the gateway
    would (past IPv6 extension headers); nothing when it holds no source port."""
    if fam == 4:
        if len(l3) < 20:
            return []
        p, proto, src = (l3[0] & 0x0F) * 4, l3[9], socket.inet_ntop(socket.AF_INET, l3[12:16])
    else:
        if len(l3) < 40:
            return []
        p, proto, src = 40, l3[6], socket.inet_ntop(socket.AF_INET6, l3[8:24])
        for _ in range(16):
            if proto not in (0, 43, 60, 44, 51) or p + 2 > len(l3):
                break
            hl = 8 if proto == 44 else (l3[p + 1] + 2) * 4 if proto == 51 else (l3[p + 1] + 1) * 8
            proto, p = l3[p], p + hl
    if proto not in (6, 17) or p < 20 or p + 2 > len(l3):
        return []
    return [f"{'tcp' if proto == 6 else 'udp'} {src} {struct.unpack('!H', l3[p:p + 2])[0]}"]


def in_test_space(a):
    try:
        ip = ipaddress.ip_address(a)
    except ValueError:
        return True  # not an address
    net = ipaddress.ip_network("198.18.0.0/15" if ip.version == 4 else "fd00::/8")
    return ip in net


def check_addresses(l3, fam):
    """Refuses to send a frame whose IP addresses (as far as present) leave the test's address space."""
    if fam == 4:
        net, at, size = ipaddress.ip_network("198.18.0.0/15"), (12, 16), 4
    else:
        net, at, size = ipaddress.ip_network("fd00::/8"), (8, 24), 16
    for o in at:
        if len(l3) >= o + size:
            addr = ipaddress.ip_address(l3[o:o + size])
            if addr not in net:
                raise SystemExit(f"refusing a frame with address {addr}: {l3.hex()}")


if __name__ == "__main__":
    main()
