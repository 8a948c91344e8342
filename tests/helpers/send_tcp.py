#!/usr/bin/python3
"""Sends crafted TCP segments with scapy (a raw socket, so the kernel owns no connection for them), for
end-to-end tests that need what no socket API sends: forged TCP options such as a client-chosen TOA.

Usage: send_tcp.py --dst ADDR --dport N --sport N [--flags S] [--seq N] [--ack N]
                   [--option KIND:HEX ...] [--count N] [--interval S]
  --option  a raw option, kind number and data in hex without kind and length, e.g. 254:000106060606 for a
            TOA claiming 6.6.6.6:1, or 2:05b4 for MSS 1460; repeatable, sent in the order given.
The source address is the route's to --dst (IPv6 when --dst contains ':'). Prints what was sent as JSON.
"""
import argparse
import json

from scapy.all import IP, TCP, IPv6, conf, send


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
    a = ap.parse_args()
    opts = []
    for o in a.option:
        kind, _, data = o.partition(":")
        opts.append((int(kind), bytes.fromhex(data)))
    conf.verb = 0
    l3 = IPv6(dst=a.dst) if ":" in a.dst else IP(dst=a.dst)
    pkt = l3 / TCP(sport=a.sport, dport=a.dport, flags=a.flags, seq=a.seq, ack=a.ack, options=opts)
    send(pkt, count=max(1, min(a.count, 1000)), inter=a.interval)
    print(json.dumps({"src": pkt.src, "dst": a.dst, "sport": a.sport, "dport": a.dport, "flags": a.flags,
                      "count": a.count, "bytes": bytes(pkt).hex()}))


if __name__ == "__main__":
    main()
