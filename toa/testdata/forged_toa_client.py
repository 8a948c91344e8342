#!/usr/bin/python3
"""An HTTP/1.0 GET over a TCP connection driven by scapy, with a forged TOA option in its SYN: what any host
beside a real server could send to claim another client's address. The kernel owns no socket for this
connection and would answer the SYN-ACK with a RST, so the caller must drop outgoing RSTs from --sport
first (the e2e test does it with nftables). Prints the response body (after the blank line) on stdout.

--src sets the SYN's source address (default: the route's); --bad-first puts a kind-254 option of length 6
(neither TOA form) before the TOA, as a broken writer would.

Usage: forged_toa_client.py --dst ADDR --dport N --sport N --toa ADDR:PORT [--path /ip] [--timeout S]
                            [--src ADDR] [--bad-first]
"""
import argparse
import socket
import struct
import sys
import threading

from scapy.all import IP, TCP, AsyncSniffer, L3RawSocket, conf, send, sr1


def is_local(addr):
    """Whether `addr` is an address of this host (it can be bound to)."""
    s = socket.socket()
    try:
        s.bind((addr, 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dst", required=True)
    ap.add_argument("--dport", type=int, required=True)
    ap.add_argument("--sport", type=int, required=True)
    ap.add_argument("--toa", required=True)
    ap.add_argument("--path", default="/ip")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--src", default=None)
    ap.add_argument("--bad-first", action="store_true")
    a = ap.parse_args()
    conf.verb = 0
    local = is_local(a.dst)
    if local:
        # A destination on this host: scapy's own route table (main table only) knows nothing of it and its
        # layer-3 socket would look for a MAC; a raw IP socket sends through the local stack instead.
        conf.L3socket = L3RawSocket
    toa_addr, toa_port = a.toa.rsplit(":", 1)
    toa = (254, struct.pack("!H", int(toa_port)) + socket.inet_aton(toa_addr))
    ip = IP(dst=a.dst, src=a.src) if a.src else IP(dst=a.dst)
    bad = [(254, b"\x00\x01\x02\x03")] if a.bad_first else []
    syn = ip / TCP(sport=a.sport, dport=a.dport, flags="S", seq=1000, options=[("MSS", 1400)] + bad + [toa])
    # Listen for the answer on lo when the destination is local: scapy would pick the default route's interface.
    synack = sr1(syn, timeout=a.timeout, iface="lo") if local else sr1(syn, timeout=a.timeout)
    if synack is None or TCP not in synack or (synack[TCP].flags & 0x12) != 0x12:
        print("no SYN-ACK", file=sys.stderr)
        return 1
    rcv = synack[TCP].seq + 1
    send(ip / TCP(sport=a.sport, dport=a.dport, flags="A", seq=1001, ack=rcv))
    req = f"GET {a.path} HTTP/1.0\r\nHost: {a.dst}\r\n\r\n".encode()
    started = threading.Event()
    sniffer = AsyncSniffer(
        # the route's interface (without a default route scapy would pick lo), or lo for a local destination
        iface="lo" if local else conf.route.route(a.dst)[0],
        lfilter=lambda p: TCP in p and p[TCP].sport == a.dport and p[TCP].dport == a.sport,
        stop_filter=lambda p: TCP in p and (p[TCP].flags & 0x05) != 0,  # FIN or RST ends the response
        timeout=a.timeout,
        started_callback=started.set,
    )
    sniffer.start()
    started.wait(a.timeout)  # a response that arrives before the capture socket opens would be missed
    send(ip / TCP(sport=a.sport, dport=a.dport, flags="PA", seq=1001, ack=rcv) / req)
    sniffer.join()
    data = {}
    for p in sniffer.results or []:
        payload = bytes(p[TCP].payload)
        if payload:
            data[p[TCP].seq] = payload
    body = b"".join(data[s] for s in sorted(data))
    # Leave nothing half-open on the server.
    send(ip / TCP(sport=a.sport, dport=a.dport, flags="R", seq=1001 + len(req)))
    head, _, rest = body.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/"):
        print(f"no HTTP response: {body[:200]!r}", file=sys.stderr)
        return 1
    sys.stdout.write(rest.decode(errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
