#!/usr/bin/python3
"""Sends crafted TCP segments with scapy (a raw socket, so the kernel owns no connection for them), for
end-to-end tests that need what no socket API sends: forged TCP options such as a client-chosen TOA.

Usage: send_tcp.py --dst ADDR --dport N --sport N [--flags S] [--seq N] [--ack N]
                   [--option KIND:HEX ...] [--count N] [--interval S] [--partial]
  --option  a raw option, kind number and data in hex without kind and length, e.g. 254:000106060606 for a
            TOA claiming 6.6.6.6:1, or 2:05b4 for MSS 1460; repeatable, sent in the order given.
  --partial send as a kernel socket on an offloading device does: CHECKSUM_PARTIAL, the checksum field
            holding the pseudo-header sum for the device (or the next hop's) to finish. Sent through an
            AF_PACKET socket with PACKET_VNET_HDR (flags NEEDS_CSUM), so the skb stays partial across veth
            and a router forwards it partial: a TUN with offloads reads it with NEEDS_CSUM set.
The source address is the route's to --dst (IPv6 when --dst contains ':'). Prints what was sent as JSON.
"""
import argparse
import json
import socket
import struct

from scapy.all import IP, TCP, Ether, IPv6, conf, get_if_hwaddr, getmacbyip, getmacbyip6, send

SOL_PACKET = 263
PACKET_VNET_HDR = 15
VIRTIO_NET_HDR_F_NEEDS_CSUM = 1


def fold(total):
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def words(b):
    return sum(int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2))


def send_partial(pkt, v6):
    """Sends `pkt` (IP/TCP) as a CHECKSUM_PARTIAL skb on the route's device; returns the bytes sent."""
    iface, src, hop = (conf.route6 if v6 else conf.route).route(pkt.dst)
    raw = bytearray(bytes(pkt))
    ihl = 40 if v6 else (raw[0] & 15) * 4
    seg_len = len(raw) - ihl
    addrs = raw[8:40] if v6 else raw[12:20]
    raw[ihl + 16:ihl + 18] = fold(words(addrs) + 6 + seg_len).to_bytes(2, "big")
    nexthop = pkt.dst if hop in ("0.0.0.0", "::") else hop
    mac = getmacbyip6(nexthop) if v6 else getmacbyip(nexthop)
    if mac is None:
        raise SystemExit(f"send_tcp.py: no link-layer address for {nexthop}")
    frame = bytes(Ether(src=get_if_hwaddr(iface), dst=mac, type=0x86DD if v6 else 0x0800)) + bytes(raw)
    # struct virtio_net_hdr, host byte order: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset.
    vnet = struct.pack("=BBHHHH", VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 14 + ihl, 16)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:
        s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        s.bind((iface, 0))
        s.send(vnet + frame)
    finally:
        s.close()
    return bytes(raw)


def main():
    ap = argparse.ArgumentParser(description="send crafted TCP segments")
    ap.add_argument("--dst", required=True)
    ap.add_argument("--dport", type=int, required=True)
    ap.add_argument("--sport", type=int, required=True)
    ap.add_argument("--flags", default="S")
    ap.add_argument("--seq", type=int, default=1000)
    ap.add_argument("--ack", type=int, default=0)
    ap.add_argument("--option", action="append", default=[])
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--interval", type=float, default=0.0)
    ap.add_argument("--partial", action="store_true")
    a = ap.parse_args()
    opts = []
    for o in a.option:
        kind, _, data = o.partition(":")
        opts.append((int(kind), bytes.fromhex(data)))
    conf.verb = 0
    v6 = ":" in a.dst
    l3 = IPv6(dst=a.dst) if v6 else IP(dst=a.dst)
    pkt = l3 / TCP(sport=a.sport, dport=a.dport, flags=a.flags, seq=a.seq, ack=a.ack, options=opts)
    if a.partial:
        sent = send_partial(pkt, v6)
    else:
        send(pkt, count=max(1, min(a.count, 1000)), inter=a.interval)
        sent = bytes(pkt)
    print(json.dumps({"src": pkt.src, "dst": a.dst, "sport": a.sport, "dport": a.dport, "flags": a.flags,
                      "count": 1 if a.partial else a.count, "bytes": sent.hex()}))


if __name__ == "__main__":
    main()
